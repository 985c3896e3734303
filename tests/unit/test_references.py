"""Which Secrets and ConfigMaps a pod references (what its node may read and its agent must fetch)."""

from nodeos.api.model.references import CONFIG_MAP, SECRET, referenced_names, references


def _pod() -> dict:
    return {"spec": {
        "imagePullSecrets": [{"name": "pull"}],
        "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
        "containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "S_"}],
                        "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
                                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "x"}}},
                                {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                {"name": "D", "value": "plain"}]}],
        "volumes": [{"name": "v1", "secret": {"secretName": "certs"}},
                    {"name": "v2", "configMap": {"name": "files"}},
                    {"name": "v3", "projected": {"sources": [{"secret": {"name": "p-secret"}},
                                                             {"configMap": {"name": "p-config"}},
                                                             {"downwardAPI": {"items": []}}]}},
                    {"name": "v4", "emptyDir": {}}]}}


def test_every_place_a_pod_names_a_secret_or_a_config_map():
    pod = _pod()
    assert referenced_names(pod, SECRET) == {"pull", "init-env", "db", "certs", "p-secret"}
    assert referenced_names(pod, CONFIG_MAP) == {"settings", "flags", "files", "p-config"}


def test_a_pod_without_references_and_broken_shapes_name_nothing():
    assert list(references({})) == []
    assert list(references({"spec": {"containers": [None, {"env": [None, {"valueFrom": None}]}],
                                      "volumes": [None, {"secret": {}}, {"configMap": {"name": ""}}],
                                      "imagePullSecrets": [None]}})) == []
