import nodeos.api.model as model
from nodeos.api.kinds import RESOURCES
from nodeos.api.model.validation import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    selector_matches,
    validate_annotations,
    validate_label_selector,
    validate_labels,
    validate_port,
    validate_protocol,
    validate_required,
)

from .samples import KINDS, check, fields, only, sample


def test_public_api_is_exactly_three_functions():
    assert sorted(model.__all__) == ["default", "qos_class", "validate"]


def test_every_served_kind_has_defaults_and_validation():
    kinds = {r.kind for r in RESOURCES}
    assert set(model._DEFAULTERS) == kinds
    assert set(model._VALIDATORS) == kinds


def test_dns_names():
    assert is_dns1123_label("web-1") == []
    assert is_dns1123_label("a" * 64)[0] == "must be no more than 63 characters"
    assert is_dns1123_label("web.1") and is_dns1123_label("-web") and is_dns1123_label("Web")
    assert is_dns1123_subdomain("web.example.com") == []
    assert is_dns1123_subdomain("a" * 254)[0] == "must be no more than 253 characters"
    assert is_dns1123_subdomain("web\n")


def test_qualified_names():
    assert is_qualified_name("app.kubernetes.io/name") == []
    assert is_qualified_name("My_Name.1") == []
    assert is_qualified_name("/name") == ["prefix part must be non-empty"]
    assert is_qualified_name("a/b/c")[0].startswith("a qualified name must consist of")
    assert is_qualified_name("x" * 64)[0] == "name part must be no more than 63 characters"
    assert is_qualified_name("Bad_Prefix/name")[0].startswith("prefix part a lowercase RFC 1123 subdomain")


def test_labels_report_at_the_map():
    assert validate_labels({"app": "web", "tier": ""}, "metadata.labels") == []
    cause = only(validate_labels({"app": "-bad"}, "metadata.labels"))
    assert cause.field == "metadata.labels"
    assert cause.message.startswith('Invalid value: "-bad": a valid label must be an empty string')
    assert fields(validate_labels({"bad key!": "v"}, "metadata.labels")) == ["metadata.labels"]
    assert only(validate_labels({"a": "x" * 64}, "l")).message.endswith("must be no more than 63 characters")
    assert only(validate_labels({"a": 1}, "l")).reason == "FieldValueTypeInvalid"
    assert only(validate_labels(["a"], "l")).reason == "FieldValueTypeInvalid"


def test_annotations_total_size():
    assert validate_annotations({"a": "x" * 1000}, "metadata.annotations") == []
    cause = only(validate_annotations({"a": "x" * 256 * 1024}, "metadata.annotations"))
    assert (cause.reason, cause.message) == ("FieldValueTooLong", "Too long: may not be more than 262144 bytes")
    assert validate_annotations({"\ud800": "\udfff"}, "a")  # lone surrogates: invalid key, no crash


def test_label_selector_operators():
    ok = {"matchLabels": {"a": "b"}, "matchExpressions": [
        {"key": "x", "operator": "In", "values": ["1"]}, {"key": "y", "operator": "DoesNotExist"}]}
    assert validate_label_selector(ok, "spec.selector") == []
    bad = {"matchExpressions": [
        {"key": "x", "operator": "In"},
        {"key": "y", "operator": "Exists", "values": ["1"]},
        {"key": "z", "operator": "Near", "values": ["1"]},
        {"key": "w", "operator": "NotIn", "values": ["-no-"]},
    ]}
    causes = validate_label_selector(bad, "spec.selector")
    assert [(c.field, c.reason) for c in causes] == [
        ("spec.selector.matchExpressions[0].values", "FieldValueRequired"),
        ("spec.selector.matchExpressions[1].values", "FieldValueForbidden"),
        ("spec.selector.matchExpressions[2].operator", "FieldValueInvalid"),
        ("spec.selector.matchExpressions[3].values[0]", "FieldValueInvalid"),
    ]


def test_selector_matching():
    selector = {"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}
    assert selector_matches(selector, {"app": "web"})
    assert selector_matches(selector, {"app": "web", "tier": "front"})
    assert not selector_matches(selector, {"app": "web", "tier": "db"})
    assert not selector_matches(selector, {"app": "api"})


def test_ports_and_protocols():
    assert validate_port(80, "p") == [] and validate_port(65535, "p") == []
    assert only(validate_port(0, "p")).reason == "FieldValueRequired"
    assert only(validate_port(65536, "p")).message == "Invalid value: 65536: must be between 1 and 65535, inclusive"
    assert only(validate_port("80", "p")).reason == "FieldValueTypeInvalid"
    assert validate_protocol("SCTP", "p") == []
    assert only(validate_protocol("X", "p")).message == 'Unsupported value: "X": supported values: "TCP", "UDP", "SCTP"'
    assert only(validate_protocol("", "p")).message == "Required value"


# -- metadata, for every kind

def test_every_sample_is_valid():
    for kind in KINDS:
        assert check(kind, sample(kind)) == [], kind


def test_name_or_generate_name_required():
    pod = sample("Pod")
    del pod["metadata"]["name"]
    cause = only(check("Pod", pod))
    assert (cause.field, cause.reason, cause.message) == (
        "metadata.name", "FieldValueRequired", "Required value: name or generateName is required")
    pod["metadata"]["generateName"] = "web-"
    assert check("Pod", pod) == []


def test_name_rules_per_kind():
    pod = sample("Pod")
    pod["metadata"]["name"] = "Foo_Bar"
    cause = only(check("Pod", pod))
    assert cause.field == "metadata.name"
    assert cause.message.startswith('Invalid value: "Foo_Bar": a lowercase RFC 1123 subdomain must consist of')
    pod["metadata"]["name"] = "web.example"
    assert check("Pod", pod) == []
    ns = sample("Namespace")
    ns["metadata"]["name"] = "team.a"
    assert "RFC 1123 label" in only(check("Namespace", ns)).message
    svc = sample("Service")
    svc["metadata"]["name"] = "1web"
    assert "DNS-1035 label" in only(check("Service", svc)).message


def test_namespace_required_or_forbidden():
    pod = sample("Pod")
    del pod["metadata"]["namespace"]
    assert fields(check("Pod", pod)) == ["metadata.namespace"]
    node = sample("Node")
    node["metadata"]["namespace"] = "default"
    assert only(check("Node", node)).reason == "FieldValueForbidden"


def test_owner_references_and_finalizers():
    pod = sample("Pod")
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web"}]
    pod["metadata"]["finalizers"] = ["example.com/keep", "bad/name/x"]
    assert fields(check("Pod", pod)) == ["metadata.ownerReferences[0].uid", "metadata.finalizers"]
    pod["metadata"]["finalizers"] = []
    pod["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": n, "uid": n, "controller": True} for n in "ab"]
    assert only(check("Pod", pod)).message.endswith('Found "true" in references for a and b')


def test_identity_is_immutable_on_update():
    old = sample("Pod")
    check("Pod", old)
    new = sample("Pod")
    new["metadata"]["name"] = "web-1"
    cause = only(check("Pod", new, old))
    assert (cause.field, cause.message) == ("metadata.name", 'Invalid value: "web-1": field is immutable')


def test_required_fields():
    assert validate_required({"image": "x"}, "image", "spec.containers[0]") == []
    for empty in ({}, {"image": ""}, {"image": None}, {"image": []}, "not an object"):
        cause = only(validate_required(empty, "image", "spec.containers[0]"))
        assert (cause.field, cause.reason) == ("spec.containers[0].image", "FieldValueRequired")


def test_too_deep_to_compare_is_one_cause():
    nested = 1
    for _ in range(5000):
        nested = [nested]
    pod = sample("Pod")
    pod["spec"]["containers"] = nested
    model.default(KINDS["Pod"], pod)
    assert "nested more than" in only(model.validate(KINDS["Pod"], pod, sample("Pod"))).message


def test_non_object_body():
    assert fields(model.validate(KINDS["Pod"], [], None)) == [""]
