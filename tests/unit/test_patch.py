"""JSON patch, merge patch and strategic merge patch.

The strategic cases include patches captured from kubectl 1.32's
client-side ``apply`` against a stub server, so they are the shapes the
server really receives.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeos.api.kinds import by_kind
from nodeos.api.patch import (
    MAX_JSON_PATCH_OPERATIONS,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)
from nodeos.errors import ApiError

POD = by_kind("v1", "Pod")
NODE = by_kind("v1", "Node")
SERVICE = by_kind("v1", "Service")
DEPLOYMENT = by_kind("apps/v1", "Deployment")
ENDPOINTS = by_kind("v1", "Endpoints")


# -- RFC 7386 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("target", "patch", "result"), [  # RFC 7386 appendix A
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_rfc_examples(target: dict, patch: dict, result: dict) -> None:
    before = copy.deepcopy(target)
    assert apply_merge_patch(target, patch) == result
    assert target == before


def test_merge_patch_must_be_an_object() -> None:
    for patch in (["a"], "x", None, 3):
        with pytest.raises(ApiError) as err:
            apply_merge_patch({"a": 1}, patch)
        assert err.value.code == 400


def test_merge_patch_scale_replicas() -> None:
    scale = {"kind": "Scale", "spec": {"replicas": 1}, "status": {"replicas": 1}}
    assert apply_merge_patch(scale, {"spec": {"replicas": 3}})["spec"] == {"replicas": 3}


# -- RFC 6902 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("doc", "ops", "result"), [  # RFC 6902 appendix A, and a few more
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),
    ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ({"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}], {"foo": ["bar", ["abc", "def"]]}),
    ({"/": 1, "~": 2}, [{"op": "replace", "path": "/~1", "value": 3}, {"op": "remove", "path": "/~0"}], {"/": 3}),
    ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}, {"op": "replace", "path": "/c/b", "value": 2}],
     {"a": {"b": 1}, "c": {"b": 2}}),
    ({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}], {"b": 2}),
    ({"a": None}, [{"op": "test", "path": "/a", "value": None}], {"a": None}),
])
def test_json_patch(doc: dict, ops: list, result: dict) -> None:
    before = copy.deepcopy(doc)
    assert apply_json_patch(doc, ops) == result
    assert doc == before


def test_json_patch_rollout_undo_shape() -> None:
    """``kubectl rollout undo`` replaces the template and annotations."""
    deployment = {"metadata": {"annotations": {"deployment.kubernetes.io/revision": "2"}},
                  "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "v2"}]}}}}
    template = {"spec": {"containers": [{"name": "a", "image": "v1"}]}}
    ops = [{"op": "replace", "path": "/spec/template", "value": template},
           {"op": "replace", "path": "/metadata/annotations",
            "value": {"deployment.kubernetes.io/revision": "1"}}]
    result = apply_json_patch(deployment, ops)
    assert result["spec"]["template"]["spec"]["containers"][0]["image"] == "v1"


@pytest.mark.parametrize(("doc", "ops"), [
    ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),
    ({"a": 1}, [{"op": "test", "path": "/a", "value": True}]),  # 1 is not true
    ({"a": True}, [{"op": "test", "path": "/a", "value": 1}]),
    ({"a": 1}, [{"op": "test", "path": "/missing", "value": 1}]),
    ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),
    ({"foo": "bar"}, [{"op": "remove", "path": "/baz"}]),
    ({"foo": "bar"}, [{"op": "replace", "path": "/baz", "value": 1}]),
    ({"foo": [1]}, [{"op": "add", "path": "/foo/2", "value": 1}]),
    ({"foo": [1]}, [{"op": "remove", "path": "/foo/1"}]),
    ({"foo": [1]}, [{"op": "replace", "path": "/foo/-", "value": 2}]),
    ({"foo": [1, 2]}, [{"op": "remove", "path": "/foo/01"}]),
    ({"foo": [1, 2]}, [{"op": "remove", "path": "/foo/-1"}]),
    ({"foo": "bar"}, [{"op": "add", "path": "/foo/x", "value": 1}]),
    ({"a": {"b": {}}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}]),
    ({"a": 1}, [{"op": "copy", "from": "/nope", "path": "/b"}]),
    ({"a": 1}, [{"op": "remove", "path": ""}]),
    ({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]),  # the result must stay an object
])
def test_json_patch_that_does_not_apply_is_422(doc: dict, ops: list) -> None:
    before = copy.deepcopy(doc)
    with pytest.raises(ApiError) as err:
        apply_json_patch(doc, ops)
    assert err.value.code == 422 and err.value.reason == "Invalid"
    assert doc == before


def test_failed_test_op_message() -> None:
    with pytest.raises(ApiError, match="testing value /spec/replicas failed"):
        apply_json_patch({"spec": {"replicas": 1}}, [{"op": "test", "path": "/spec/replicas", "value": 2}])


@pytest.mark.parametrize("ops", [
    {"op": "add"}, "nope", [1], [{"op": "frob", "path": "/a"}], [{"path": "/a"}], [{"op": "add", "value": 1}],
    [{"op": "add", "path": "/a"}], [{"op": "move", "path": "/a"}], [{"op": "add", "path": "a", "value": 1}],
])
def test_malformed_json_patch_is_400(ops: Any) -> None:
    with pytest.raises(ApiError) as err:
        apply_json_patch({"a": 1}, ops)
    assert err.value.code == 400


def test_json_patch_operation_limit() -> None:
    ops = [{"op": "test", "path": "/a", "value": 1}] * (MAX_JSON_PATCH_OPERATIONS + 1)
    with pytest.raises(ApiError) as err:
        apply_json_patch({"a": 1}, ops)
    assert err.value.code == 413


def test_json_patch_failure_leaves_nothing_half_done() -> None:
    doc = {"a": 1}
    with pytest.raises(ApiError):
        apply_json_patch(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/c"}])
    assert doc == {"a": 1}


def test_json_patch_values_are_copied() -> None:
    value = {"x": [1]}
    result = apply_json_patch({}, [{"op": "add", "path": "/v", "value": value}])
    result["v"]["x"].append(2)
    assert value == {"x": [1]}


# -- strategic merge patch ---------------------------------------------------------------------------

def deployment(*containers: dict, **spec: Any) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": list(containers)}},
                 **spec},
    }


A = {"name": "a", "image": "nginx:1", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]}
B = {"name": "b", "image": "busybox:1"}


def containers(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


def smp(resource: Any, doc: dict, patch: dict) -> dict:
    """Apply and check the invariants every strategic merge must keep."""
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    result = apply_strategic_merge_patch(resource, doc, patch)
    assert doc == doc_before and patch == patch_before, "inputs were mutated"
    assert "$" not in json.dumps(result), f"a directive leaked into the result: {result}"
    assert "null" not in json.dumps(result), f"a null leaked into the result: {result}"
    return result


def test_apply_changes_one_image_and_removes_a_label() -> None:
    patch = {"metadata": {"labels": {"tier": None}},
             "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                                            "containers": [{"image": "nginx:2", "name": "a"}]}}}}
    result = smp(DEPLOYMENT, deployment(A, B), patch)
    assert result["metadata"]["labels"] == {"app": "web"}
    assert containers(result) == [{**A, "image": "nginx:2"}, B]


def test_apply_reorders_containers() -> None:
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}}}
    assert [c["name"] for c in containers(smp(DEPLOYMENT, deployment(A, B), patch))] == ["b", "a"]


def test_apply_removes_a_container_and_reorders_env() -> None:
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}],
        "containers": [{"$setElementOrder/env": [{"name": "Y"}, {"name": "X"}],
                        "env": [{"name": "Y", "value": "2"}], "name": "a"},
                       {"$patch": "delete", "name": "b"}]}}}}
    result = containers(smp(DEPLOYMENT, deployment(A, B), patch))
    assert [c["name"] for c in result] == ["a"]
    assert result[0]["env"] == [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]
    assert result[0]["ports"] == [{"containerPort": 80}]


def test_apply_removes_an_env_var_and_adds_volumes() -> None:
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}],
        "containers": [{"$setElementOrder/env": [], "env": [{"$patch": "delete", "name": "X"}], "name": "a",
                        "volumeMounts": [{"mountPath": "/data", "name": "v"}]}],
        "volumes": [{"emptyDir": {}, "name": "v"}]}}}}
    result = containers(smp(DEPLOYMENT, deployment(A), patch))[0]
    assert result["env"] == []
    assert result["volumeMounts"] == [{"mountPath": "/data", "name": "v"}]


def test_apply_switches_strategy_with_retain_keys() -> None:
    doc = deployment(A, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}})
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}}}
    assert smp(DEPLOYMENT, doc, patch)["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_drops_fields_not_listed() -> None:
    doc = deployment(A)
    doc["spec"]["template"]["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/volumes": [{"name": "v"}],
        "volumes": [{"$retainKeys": ["hostPath", "name"], "emptyDir": None, "hostPath": {"path": "/tmp"},
                     "name": "v"}]}}}}
    volumes = smp(DEPLOYMENT, doc, patch)["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "v", "hostPath": {"path": "/tmp"}}]


def test_retain_keys_must_cover_the_patch() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}
    with pytest.raises(ApiError) as err:
        apply_strategic_merge_patch(DEPLOYMENT, deployment(A), patch)
    assert err.value.code == 400


def test_finalizers_merge_as_a_set_with_parallel_deletions() -> None:
    doc = {"metadata": {"name": "p", "finalizers": ["a/b", "c/d"]}}
    added = smp(POD, doc, {"metadata": {"$setElementOrder/finalizers": ["a/b", "c/d", "e/f"],
                                        "finalizers": ["e/f"]}})
    assert added["metadata"]["finalizers"] == ["a/b", "c/d", "e/f"]
    removed = smp(POD, doc, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/b"],
                                          "$setElementOrder/finalizers": ["c/d"]}})
    assert removed["metadata"]["finalizers"] == ["c/d"]
    assert smp(POD, doc, {"metadata": {"finalizers": ["c/d", "x"]}})["metadata"]["finalizers"] == ["a/b", "c/d", "x"]


def test_merge_order_follows_kubernetes() -> None:
    """New items come first unless ordered; untouched items keep their place (strategicpatch tests)."""
    doc = deployment({"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"})
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}}}}
    assert [c["name"] for c in containers(smp(DEPLOYMENT, doc, patch))] == ["2", "3", "1"]
    added = {"spec": {"template": {"spec": {"containers": [{"name": "4"}]}}}}
    assert [c["name"] for c in containers(smp(DEPLOYMENT, doc, added))] == ["4", "1", "2", "3"]
    ordered = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "3"}, {"name": "2"},
                                                                               {"name": "1"}],
                                              "containers": [{"name": "3", "image": "x"}]}}}}
    assert [c["name"] for c in containers(smp(DEPLOYMENT, doc, ordered))] == ["3", "2", "1"]


def test_set_element_order_may_name_absent_items() -> None:
    doc = deployment({"name": "1"}, {"name": "3"})
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
        "containers": [{"name": "3", "image": "x"}, {"name": "1", "image": "y"}]}}}}
    assert containers(smp(DEPLOYMENT, doc, patch)) == [{"name": "3", "image": "x"}, {"name": "1", "image": "y"}]


def test_set_element_order_must_agree_with_the_patch() -> None:
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "a"}],
                                            "containers": [{"name": "b", "image": "x"}]}}}}
    with pytest.raises(ApiError) as err:
        apply_strategic_merge_patch(DEPLOYMENT, deployment(A, B), patch)
    assert err.value.code == 400


def test_lists_without_merge_key_are_replaced() -> None:
    pod = {"spec": {"containers": [{"name": "a", "envFrom": [{"configMapRef": {"name": "x"}}]}],
                    "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]}}
    patch = {"spec": {"tolerations": [{"key": "c", "operator": "Exists"}],
                      "containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "y"}}]}]}}
    result = smp(POD, pod, patch)
    assert result["spec"]["tolerations"] == [{"key": "c", "operator": "Exists"}]
    assert result["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": "y"}}]


def test_node_taints_are_replaced_as_kubectl_assumes() -> None:
    node = {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoSchedule"}]},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"},
                                     {"type": "Hostname", "address": "n1"}]}}
    patch = {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]},
             "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.2"}]}}
    result = smp(NODE, node, patch)
    assert result["spec"]["taints"] == [{"key": "b", "effect": "NoExecute"}]
    assert result["status"]["addresses"] == [{"type": "InternalIP", "address": "10.0.0.2"},
                                             {"type": "Hostname", "address": "n1"}]


def test_service_ports_merge_by_port() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]}}
    result = smp(SERVICE, svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}})
    assert result["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443, "targetPort": 8443}]


def test_container_ports_merge_by_container_port_and_conditions_by_type() -> None:
    pod = {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]},
           "status": {"conditions": [{"type": "Ready", "status": "False"},
                                     {"type": "PodScheduled", "status": "True"}]}}
    patch = {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 81}]}]},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    result = smp(POD, pod, patch)
    assert [p["containerPort"] for p in result["spec"]["containers"][0]["ports"]] == [81, 80]
    assert {c["type"]: c["status"] for c in result["status"]["conditions"]} == {"Ready": "True",
                                                                                 "PodScheduled": "True"}


def test_owner_references_merge_by_uid() -> None:
    doc = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}
    result = smp(ENDPOINTS, doc, {"metadata": {"ownerReferences": [{"uid": "2", "controller": True}]}})
    assert result["metadata"]["ownerReferences"] == [{"uid": "1", "name": "a"},
                                                     {"uid": "2", "name": "b", "controller": True}]


def test_endpoints_subsets_are_replaced() -> None:
    doc = {"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]}
    assert smp(ENDPOINTS, doc, {"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]})["subsets"] == \
        [{"addresses": [{"ip": "10.0.0.2"}]}]


def test_patch_directives_in_maps_and_lists() -> None:
    doc = deployment(A, B)
    replaced = smp(DEPLOYMENT, doc, {"metadata": {"labels": {"$patch": "replace", "only": "me"}}})
    assert replaced["metadata"]["labels"] == {"only": "me"}
    deleted = smp(DEPLOYMENT, doc, {"metadata": {"labels": {"$patch": "delete"}}})
    assert deleted["metadata"]["labels"] == {}
    merged = smp(DEPLOYMENT, doc, {"metadata": {"labels": {"$patch": "merge", "x": "y"}}})
    assert merged["metadata"]["labels"] == {"app": "web", "tier": "fe", "x": "y"}
    whole_list = {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "c"}]}}}}
    assert containers(smp(DEPLOYMENT, doc, whole_list)) == [{"name": "c"}]


def test_nulls_delete_and_unmatched_nulls_vanish() -> None:
    doc = {"spec": {"a": 1, "b": {"c": 2}}}
    result = smp(POD, doc, {"spec": {"a": None, "missing": None, "b": {"c": None, "d": None},
                                     "new": {"x": None, "y": 1}}})
    assert result == {"spec": {"b": {}, "new": {"y": 1}}}


def test_new_values_have_their_directives_applied() -> None:
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "a"}],
                                            "containers": [{"name": "a", "$setElementOrder/env": [{"name": "X"}],
                                                            "env": [{"name": "X", "value": "1"}]}]}}}}
    result = smp(DEPLOYMENT, {"metadata": {"name": "new"}}, patch)
    assert containers(result) == [{"name": "a", "env": [{"name": "X", "value": "1"}]}]


def test_type_changes_replace() -> None:
    result = smp(POD, {"spec": {"a": [1], "b": {"c": 1}, "c": "x"}}, {"spec": {"a": {"x": 1}, "b": [2], "c": {"d": 1}}})
    assert result == {"spec": {"a": {"x": 1}, "b": [2], "c": {"d": 1}}}


@pytest.mark.parametrize("patch", [
    ["not", "an", "object"],
    {"metadata": {"labels": {"$patch": "explode"}}},
    {"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}},
    {"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}},
    {"spec": {"template": {"spec": {"containers": [{"$patch": "bogus", "name": "a"}]}}}},
    {"spec": {"template": {"spec": {"containers": ["a", {"name": "b"}]}}}},
    {"spec": {"template": {"spec": {"$setElementOrder/containers": "a"}}}},
    {"spec": {"template": {"spec": {"$setElementOrder/containers": [], "containers": {"name": "a"}}}}},
    {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
    {"spec": {"$retainKeys": "type"}},
])
def test_malformed_strategic_patches_are_400(patch: Any) -> None:
    with pytest.raises(ApiError) as err:
        apply_strategic_merge_patch(DEPLOYMENT, deployment(A, B), patch)
    assert err.value.code == 400


def test_lists_of_lists_are_invalid() -> None:
    with pytest.raises(ApiError) as err:
        apply_strategic_merge_patch(POD, {"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": [["b"]]}})
    assert err.value.code == 422


def test_deep_nesting_is_a_bad_request_not_a_crash() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    for apply in (lambda: apply_strategic_merge_patch(POD, {}, deep), lambda: apply_merge_patch({}, deep),
                  lambda: apply_merge_patch(deep, {"a": None}),
                  lambda: apply_json_patch({}, [{"op": "add", "path": "/x", "value": deep}])):
        with pytest.raises(ApiError) as err:
            apply()
        assert err.value.code == 400


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b", "name", "$patch", "delete"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "name", "containers", "env", "$patch", "$retainKeys",
                                       "$setElementOrder/containers", "$deleteFromPrimitiveList/finalizers",
                                       "finalizers", "spec", "metadata"]), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, JSON_VALUES)
def test_patches_only_ever_raise_api_errors(doc: Any, patch: Any) -> None:
    doc = doc if isinstance(doc, dict) else {"spec": doc}
    for apply in (lambda: apply_strategic_merge_patch(DEPLOYMENT, doc, patch),
                  lambda: apply_merge_patch(doc, patch),
                  lambda: apply_json_patch(doc, patch)):
        try:
            assert isinstance(apply(), dict)
        except ApiError as err:
            assert err.code in (400, 413, 422)
