"""Label and field selectors: parsing, matching, canonical strings, errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeos.api.kinds import by_kind
from nodeos.api.selectors import (
    EVERYTHING,
    NOTHING,
    label_selector_from_dict,
    parse_field_selector,
    parse_label_selector,
)
from nodeos.errors import ApiError

POD = by_kind("v1", "Pod")
NODE = by_kind("v1", "Node")
EVENT = by_kind("v1", "Event")
LEASE = by_kind("coordination.k8s.io/v1", "Lease")

WEB = {"app": "web", "tier": "fe", "version": "3"}


@pytest.mark.parametrize(("text", "labels", "expected"), [
    ("app=web", WEB, True),
    ("app==web", WEB, True),
    ("app=db", WEB, False),
    ("app!=db", WEB, True),
    ("missing!=x", WEB, True),
    ("app in (db,web)", WEB, True),
    ("app in (db)", WEB, False),
    ("app notin (db)", WEB, True),
    ("app notin (web)", WEB, False),
    ("missing notin (x)", WEB, True),
    ("missing in (x)", WEB, False),
    ("app", WEB, True),
    ("missing", WEB, False),
    ("!missing", WEB, True),
    ("!app", WEB, False),
    ("app=web,tier=fe", WEB, True),
    ("app=web,tier=be", WEB, False),
    ("version>2", WEB, True),
    ("version<3", WEB, False),
    ("app>2", WEB, False),  # not an integer: never matches
    ("", WEB, True),
    ("", None, True),
    ("app", None, False),
    ("!app", None, True),
    ("empty=", {"empty": ""}, True),
    ("empty=", {}, False),
])
def test_label_selector_matches(text: str, labels: dict[str, str] | None, expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_whitespace_is_tolerated() -> None:
    spaced = parse_label_selector("  app = web ,tier  in(fe , be) ,  ! canary,env notin ( prod )  ")
    assert str(spaced) == "app=web,!canary,env notin (prod),tier in (be,fe)"
    assert spaced.matches(WEB)


def test_canonical_string_sorts_requirements_and_values() -> None:
    selector = parse_label_selector("z notin (b,a),a==1,m,!n,k!=v,n2>5")
    assert str(selector) == "a==1,k!=v,m,!n,n2>5,z notin (a,b)"
    assert str(parse_label_selector(str(selector))) == str(selector)


def test_empty_selector_is_everything() -> None:
    selector = parse_label_selector("")
    assert selector.empty and selector == EVERYTHING and str(selector) == ""
    assert not parse_label_selector("a").empty


@pytest.mark.parametrize("text", [
    "a in (b", "a in b", "a=b c", "!", "a b", "a=(b)", "x/y/z=1", "a=b,", ",a", "(", "a,,b",
    "a=" + "v" * 64, "a=-bad", "Bad Key=1", "a in (x y)", "a>b", "a<", "!a=b", "a=b=c",
])
def test_bad_label_selectors_are_bad_requests(text: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(text)
    assert err.value.code == 400 and err.value.reason == "BadRequest"


def test_requirement_errors_say_unable_to_parse_requirement() -> None:
    with pytest.raises(ApiError, match=r"^unable to parse requirement: "):
        parse_label_selector("a in (b")
    with pytest.raises(ApiError, match=r'values\[0\]\[a\]: Invalid value: "-x"'):
        parse_label_selector("a=-x")


def test_non_string_selector_is_a_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(["a=b"])  # type: ignore[arg-type]
    assert err.value.code == 400


def test_prefixed_keys_and_empty_values() -> None:
    selector = parse_label_selector("node-role.kubernetes.io/control-plane,app.kubernetes.io/name in (web,)")
    assert selector.matches({"node-role.kubernetes.io/control-plane": "", "app.kubernetes.io/name": ""})
    assert str(selector) == "app.kubernetes.io/name in (,web),node-role.kubernetes.io/control-plane"


def test_matches_tolerates_garbage_labels() -> None:
    selector = parse_label_selector("app=web")
    assert not selector.matches({"app": 7})
    assert not selector.matches("app=web")  # type: ignore[arg-type]
    assert parse_label_selector("app!=web").matches({"app": None})


# -- metav1.LabelSelector ----------------------------------------------------------------------------


def test_none_selects_nothing_and_empty_selects_everything() -> None:
    assert label_selector_from_dict(None) == NOTHING
    assert not NOTHING.matches({}) and not NOTHING.matches({"a": "b"}) and not NOTHING.empty
    assert label_selector_from_dict({}) == EVERYTHING
    assert label_selector_from_dict({"matchLabels": {}, "matchExpressions": []}).matches({"x": "y"})


def test_from_dict_combines_labels_and_expressions() -> None:
    selector = label_selector_from_dict({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "version", "operator": "Exists"},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
        ],
    })
    assert str(selector) == "app=web,!canary,env notin (prod),tier in (be,fe),version"
    assert selector.matches(WEB)
    assert not selector.matches({**WEB, "canary": "yes"})
    assert not selector.matches({**WEB, "env": "prod"})


def test_scale_status_selector_string() -> None:
    assert str(label_selector_from_dict({"matchLabels": {"b": "2", "a": "1"}})) == "a=1,b=2"


@pytest.mark.parametrize(("selector", "field"), [
    ({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}, "matchExpressions[0].operator"),
    ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "matchExpressions[0].values"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "matchExpressions[0].values"),
    ({"matchExpressions": [{"operator": "Exists"}]}, "matchExpressions[0].key"),
    ({"matchExpressions": ["a"]}, "matchExpressions[0]"),
    ({"matchExpressions": {"a": 1}}, "matchExpressions"),
    ({"matchLabels": {"a": 1}}, "matchLabels[a]"),
    ({"matchLabels": {"a": "-bad-"}}, "matchLabels[a]"),
    ({"matchLabels": {"bad key": "x"}}, "matchLabels"),
    ({"matchLabels": ["a"]}, "matchLabels"),
])
def test_invalid_label_selector_objects_are_422_with_a_field(selector: dict, field: str) -> None:
    with pytest.raises(ApiError) as err:
        label_selector_from_dict(selector)
    assert err.value.code == 422 and err.value.reason == "Invalid"
    assert err.value.details["causes"][0]["field"] == field


def test_from_dict_rejects_non_objects() -> None:
    with pytest.raises(ApiError) as err:
        label_selector_from_dict("app=web")  # type: ignore[arg-type]
    assert err.value.code == 422


# -- field selectors ---------------------------------------------------------------------------------

SCHEDULED = {"metadata": {"name": "web-1", "namespace": "default"},
             "spec": {"nodeName": "n1", "restartPolicy": "Always"}, "status": {"phase": "Running"}}
PENDING = {"metadata": {"name": "web-2", "namespace": "default"}, "spec": {}, "status": {"phase": "Pending"}}


@pytest.mark.parametrize(("text", "obj", "expected"), [
    ("metadata.name=web-1", SCHEDULED, True),
    ("metadata.name==web-1", SCHEDULED, True),
    ("metadata.name=web-2", SCHEDULED, False),
    ("metadata.name!=web-2", SCHEDULED, True),
    ("spec.nodeName=n1", SCHEDULED, True),
    ("spec.nodeName=", PENDING, True),
    ("spec.nodeName=", SCHEDULED, False),
    ("spec.nodeName!=", SCHEDULED, True),
    ("status.phase!=Running,status.phase!=Succeeded", PENDING, True),
    ("status.phase!=Running,status.phase!=Succeeded", SCHEDULED, False),
    ("metadata.namespace=default,spec.restartPolicy=Always", SCHEDULED, True),
    ("", PENDING, True),
    (" spec.nodeName = n1 ", SCHEDULED, True),
])
def test_pod_field_selector(text: str, obj: dict, expected: bool) -> None:
    assert parse_field_selector(text, POD).matches(obj) is expected


def test_exact_name_is_the_pinned_name() -> None:
    assert parse_field_selector("metadata.name=web-1", POD).exact_name == "web-1"
    assert parse_field_selector("status.phase=Running,metadata.name==x", POD).exact_name == "x"
    assert parse_field_selector("metadata.name!=web-1", POD).exact_name is None
    assert parse_field_selector("", POD).exact_name is None
    assert parse_field_selector("spec.nodeName=n1", POD).required_value("spec.nodeName") == "n1"


def test_unknown_field_names_the_known_ones() -> None:
    with pytest.raises(ApiError) as err:
        parse_field_selector("spec.nodeName=n1", LEASE)
    assert err.value.code == 400
    assert err.value.message == ('"spec.nodeName" is not a known field selector: only "metadata.name", '
                                 '"metadata.namespace"')


def test_node_and_event_fields() -> None:
    schedulable = parse_field_selector("spec.unschedulable=false", NODE)
    assert schedulable.matches({"metadata": {"name": "n1"}, "spec": {}})
    assert not schedulable.matches({"metadata": {"name": "n1"}, "spec": {"unschedulable": True}})
    event = {"involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": "u1"},
             "reason": "Started", "type": "Normal"}
    selector = parse_field_selector("involvedObject.kind=Pod,involvedObject.name=web-1,"
                                    "involvedObject.uid=u1,type=Normal,reason=Started", EVENT)
    assert selector.matches(event)
    assert not selector.matches({**event, "type": "Warning"})


def test_escaped_values_and_string_form() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b\=c\\d", POD)
    assert selector.exact_name == r"a,b=c\d"
    assert str(selector) == r"metadata.name=a\,b\=c\\d"


@pytest.mark.parametrize("text", ["metadata.name", "=x", r"metadata.name=a\x", "metadata.name=a=b", "x\\"])
def test_bad_field_selectors_are_bad_requests(text: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_field_selector(text, POD)
    assert err.value.code == 400


def test_field_selector_matches_tolerates_garbage() -> None:
    selector = parse_field_selector("spec.nodeName=", POD)
    assert selector.matches({"spec": "garbage"})
    assert not selector.matches(["not", "an", "object"])  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abc=!(),<> in/.-_\\0123", max_size=30))
def test_parsers_only_ever_raise_api_errors(text: str) -> None:
    for parse in (parse_label_selector, lambda t: parse_field_selector(t, POD)):
        try:
            parse(text)
        except ApiError as err:
            assert err.code == 400
