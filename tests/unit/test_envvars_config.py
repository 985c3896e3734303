"""Environment variables from ConfigMaps and Secrets, as the kubelet resolves them: envFrom (with prefix),
configMapKeyRef and secretKeyRef, optional references, the kubelet's messages, order and precedence."""

from __future__ import annotations

import base64

import pytest

from nodeos.agent.envvars import container_env, invalid_env_from_keys


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def cm(name, data=None, binary=None):
    obj = {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}, "data": data or {}}
    if binary is not None:
        obj["binaryData"] = binary
    return obj


def secret(name, data):
    return {"kind": "Secret", "metadata": {"name": name, "namespace": "ns"},
            "data": {k: b64(v) for k, v in data.items()}}


POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"containers": []}}
OBJECTS = {
    ("configmaps", "cfg"): cm("cfg", {"MODE": "fast", "LEVEL": "3", "SHARED": "from-cm"}),
    ("secrets", "creds"): secret("creds", {"USER": "admin", "PASS": "s3cr=t", "SHARED": "from-secret"}),
    ("configmaps", "gone"): None,
    ("secrets", "gone"): None,
}


def env_of(container, objects=OBJECTS, services=()):
    return container_env(POD, {"name": "c", **container}, pod_ip="10.244.0.5", host_ip="192.0.2.1",
                         node_name="n1", services=services, objects=objects)


def test_env_from_then_env_later_wins_and_values_expand_against_env_from():
    env, problems = env_of({
        "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "creds"}, "prefix": "DB_"},
                    {"secretRef": {"name": "creds"}}],
        "env": [{"name": "LEVEL", "value": "9"},
                {"name": "URL", "value": "$(DB_USER):$(DB_PASS)@$(MODE)"},
                {"name": "KEYED", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "PASS"}}}],
    })
    assert problems == []
    assert env["MODE"] == "fast"
    assert env["LEVEL"] == "9"                    # env after envFrom: env wins
    assert env["SHARED"] == "from-secret"         # a later envFrom source wins over an earlier one
    assert env["DB_USER"] == "admin" and env["DB_PASS"] == "s3cr=t"
    assert env["URL"] == "admin:s3cr=t@fast"
    assert env["KEYED"] == "fast" and env["TOKEN"] == "s3cr=t"


def test_env_from_overrides_service_variables():
    service = {"metadata": {"name": "mode", "namespace": "ns"},
               "spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 80}]}}
    objects = {("configmaps", "cfg"): cm("cfg", {"MODE_SERVICE_HOST": "mine"})}
    env, problems = env_of({"envFrom": [{"configMapRef": {"name": "cfg"}}]}, objects, services=[service])
    assert problems == [] and env["MODE_SERVICE_HOST"] == "mine" and env["MODE_SERVICE_PORT"] == "80"


def test_missing_objects_and_keys_are_the_kubelets_problems():
    env, problems = env_of({
        "envFrom": [{"configMapRef": {"name": "gone"}}, {"secretRef": {"name": "gone"}}],
        "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope"}}},
                {"name": "C", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope"}}},
                {"name": "D", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}},
                {"name": "E", "value": "still here"}],
    })
    assert problems == [
        'configmap "gone" not found',
        'secret "gone" not found',
        "couldn't find key nope in ConfigMap ns/cfg",
        "couldn't find key nope in Secret ns/creds",
    ]
    assert env["E"] == "still here" and not {"A", "B", "C", "D"} & set(env)


def test_optional_references_to_missing_objects_or_keys_are_left_out():
    env, problems = env_of({
        "envFrom": [{"configMapRef": {"name": "gone", "optional": True}},
                    {"secretRef": {"name": "gone", "optional": True}}],
        "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k", "optional": True}}},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": True}}},
                {"name": "C", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope", "optional": True}}},
                {"name": "AFTER", "value": "$(A)"}],
    })
    assert problems == []
    assert not {"A", "B", "C"} & set(env) and env["AFTER"] == "$(A)"


def test_an_object_that_could_not_be_read_is_a_problem_even_when_optional():
    _, problems = env_of({"envFrom": [{"configMapRef": {"name": "unread", "optional": True}}],
                          "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}]})
    assert problems == ["couldn't get configmap ns/unread", "couldn't get secret ns/x"]
    _, problems = container_env(POD, {"name": "c", "envFrom": [{"secretRef": {"name": "x"}}]}, pod_ip=None,
                                host_ip="h", node_name="n", services=())  # no objects given at all
    assert problems == ["couldn't get secret ns/x"]


def test_env_from_skips_invalid_names_and_says_which():
    objects = {("configmaps", "cfg"): cm("cfg", {"ok": "1", "1BAD": "2", "has space": "3", "dots.and-dash": "4"})}
    container = {"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}},
                                          {"configMapRef": {"name": "cfg"}, "prefix": "P_"}]}
    env, problems = env_of(container, objects)
    assert problems == []
    assert env == {"ok": "1", "dots.and-dash": "4", "P_ok": "1", "P_1BAD": "2", "P_dots.and-dash": "4"}
    assert invalid_env_from_keys(POD, container, objects) == [
        "Keys [1BAD, has space] from the EnvFrom configMap ns/cfg were skipped since they are considered "
        "invalid environment variable names.",
        "Keys [P_has space] from the EnvFrom configMap ns/cfg were skipped since they are considered "
        "invalid environment variable names.",
    ]
    assert invalid_env_from_keys(POD, {"name": "c", "envFrom": [{"secretRef": {"name": "gone"}}]}, OBJECTS) == []


def test_secret_data_must_be_base64_of_utf8_and_binary_config_data_is_not_for_env():
    objects = {
        ("secrets", "raw"): {"metadata": {"name": "raw"}, "data": {"K": b64(b"\xff\xfe")}},
        ("secrets", "bad"): {"metadata": {"name": "bad"}, "data": {"K": "not base64!"}},
        ("configmaps", "bin"): cm("bin", {"TEXT": "t"}, binary={"BLOB": b64("b")}),
        ("configmaps", "odd"): {"metadata": {"name": "odd"}, "data": ["not", "a", "map"]},
        ("configmaps", "sur"): {"metadata": {"name": "sur"}, "data": {"K": "\udc80"}},
    }
    env, problems = env_of({
        "envFrom": [{"configMapRef": {"name": "bin"}}],
        "env": [{"name": "R", "valueFrom": {"secretKeyRef": {"name": "raw", "key": "K"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "bad", "key": "K"}}},
                {"name": "O", "valueFrom": {"configMapKeyRef": {"name": "odd", "key": "K"}}},
                {"name": "S", "valueFrom": {"configMapKeyRef": {"name": "sur", "key": "K"}}},
                {"name": "BLOB", "valueFrom": {"configMapKeyRef": {"name": "bin", "key": "BLOB"}}}],
    }, objects)
    assert env["TEXT"] == "t" and "BLOB" not in env
    assert problems == [
        "Secret ns/raw has data that is not UTF-8 text",
        "key K in Secret ns/bad is not valid base64",
        "the data of ConfigMap ns/odd is not a map of strings",
        "key K in ConfigMap ns/sur is not valid Unicode",
        "couldn't find key BLOB in ConfigMap ns/bin",
    ]


@pytest.mark.parametrize("size", [0, 1, 2**20])
def test_secret_values_of_any_size_come_through(size):
    objects = {("secrets", "big"): secret("big", {"K": "x" * size})}
    env, problems = env_of({"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "big", "key": "K"}}}]},
                           objects)
    assert problems == [] and env["K"] == "x" * size
