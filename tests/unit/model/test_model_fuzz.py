"""Untrusted bodies: ``default`` then ``validate`` must answer with causes,
never with a Python exception, whatever JSON they are given."""

import copy
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeos.api import model
from nodeos.errors import Cause

from .samples import KINDS, RICH, SAMPLES, defaulted, rich, sample

FIELD_NAMES = [
    "metadata", "spec", "status", "name", "namespace", "generateName", "labels", "annotations",
    "ownerReferences", "finalizers", "containers", "initContainers", "image", "ports", "port",
    "containerPort", "protocol", "targetPort", "nodePort", "resources", "limits", "requests", "cpu",
    "memory", "volumes", "volumeMounts", "emptyDir", "hostPath", "path", "env", "valueFrom", "selector",
    "matchLabels", "matchExpressions", "operator", "values", "key", "template", "replicas", "strategy",
    "rollingUpdate", "maxSurge", "maxUnavailable", "type", "clusterIP", "clusterIPs", "subsets",
    "addresses", "ip", "involvedObject", "target", "tolerations", "taints", "effect", "livenessProbe",
    "httpGet", "restartPolicy", "activeDeadlineSeconds", "sessionAffinity", "updateStrategy",
]
SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
    | st.sampled_from(["", "None", "Always", "TCP", "In", "Exists", "1Gi", "25%", "0%", "a", "10.0.0.1",
                       "RollingUpdate", "ExternalName", "NodePort", "-", "a/b/c", "\ud800", "1e99999"])
    | st.text(max_size=12)
)
KEYS = st.sampled_from(FIELD_NAMES) | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=30,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=6)
# (NaN never equals itself, so objects are compared as JSON text)
# NODEOS_FUZZ_EXAMPLES=20000 for a long hunt; the default keeps the unit tier fast
FAST = settings(max_examples=int(os.environ.get("NODEOS_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def run(kind: str, obj, old) -> list[Cause]:
    model.default(KINDS[kind], obj)
    before = json.dumps(obj)
    causes = model.validate(KINDS[kind], obj, old)
    assert json.dumps(obj) == before, "validate must not change the object"
    assert isinstance(causes, list)
    for cause in causes:
        assert isinstance(cause, Cause) and isinstance(cause.field, str) and isinstance(cause.message, str)
        cause.as_dict()
    return causes


@FAST
@given(kind=st.sampled_from(sorted(KINDS)), obj=OBJECTS | JSON, old=st.none() | OBJECTS)
def test_arbitrary_json_never_raises(kind, obj, old):
    run(kind, obj, old)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _replace(doc, path, value):
    if not path:
        return value
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


@FAST
@given(kind=st.sampled_from([*sorted(SAMPLES), *(f"rich {k}" for k in sorted(RICH))]), data=st.data())
def test_mutated_valid_objects_never_raise(kind, data):
    if kind.startswith("rich "):
        kind = kind.removeprefix("rich ")
        base = defaulted(kind, rich(kind))
    else:
        base = defaulted(kind)
    path = data.draw(st.sampled_from(list(_paths(base))))
    mutated = _replace(copy.deepcopy(base), path, data.draw(JSON))
    run(kind, mutated, None)
    run(kind, copy.deepcopy(mutated), base)
    once = copy.deepcopy(mutated)
    model.default(KINDS[kind], once)
    twice = copy.deepcopy(once)
    model.default(KINDS[kind], twice)
    assert json.dumps(once) == json.dumps(twice), "defaulting must be idempotent"


def test_samples_stay_valid_after_update_with_themselves():
    for kind in KINDS:
        if kind != "Binding":
            assert run(kind, sample(kind), defaulted(kind)) == [], kind
    for kind in RICH:
        assert run(kind, rich(kind), None) == [], kind
        assert run(kind, rich(kind), defaulted(kind, rich(kind))) == [], kind
