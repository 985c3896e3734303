from .samples import check, defaulted, fields, only, sample


def test_namespace_defaults():
    ns = defaulted("Namespace")
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}


def test_namespace_finalizers():
    ns = sample("Namespace")
    ns["spec"] = {"finalizers": ["kubernetes", "example.com/cleanup", "custom"]}
    assert fields(check("Namespace", ns)) == ["spec.finalizers[2]"]


def test_node_taints_and_cidr():
    node = sample("Node")
    node["spec"]["podCIDR"] = "10.42.1.0"
    node["spec"]["taints"] = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                              {"key": "dedicated", "effect": "NoSchedule"}, {"key": "x", "effect": "Sometimes"}]
    assert fields(check("Node", node)) == ["spec.podCIDR", "spec.taints[1]", "spec.taints[2].effect"]


def test_node_pod_cidr_is_set_once():
    old = sample("Node")
    new = sample("Node")
    new["spec"]["podCIDR"] = "10.42.2.0/24"
    assert only(check("Node", new, old)).field == "spec.podCIDR"
    del old["spec"]["podCIDR"]
    assert check("Node", new, old) == []


def test_node_capacity_quantities():
    node = sample("Node")
    node["status"] = {"capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"}, "allocatable": {"cpu": "x"}}
    assert fields(check("Node", node)) == ["status.allocatable[cpu]"]


def test_event_needs_involved_object_in_its_namespace():
    event = sample("Event")
    del event["involvedObject"]
    cause = only(check("Event", event))
    assert (cause.field, cause.reason) == ("involvedObject", "FieldValueRequired")
    event = sample("Event")
    event["involvedObject"]["namespace"] = "other"
    assert only(check("Event", event)).message == 'Invalid value: "other": does not match event.namespace'
    event = sample("Event")
    event["involvedObject"] = {"kind": "Node", "name": "node-1"}
    assert check("Event", event) == []


def test_lease_spec_types():
    lease = sample("Lease")
    lease["spec"].update(leaseDurationSeconds=0, renewTime="yesterday", holderIdentity=7)
    assert fields(check("Lease", lease)) == ["spec.holderIdentity", "spec.leaseDurationSeconds", "spec.renewTime"]
    lease = sample("Lease")
    lease["spec"]["renewTime"] = "2024-05-01T10:00:00.123456Z"
    assert check("Lease", lease) == []


def test_binding_target_and_create_only():
    binding = sample("Binding")
    binding["target"] = {"kind": "Pod"}
    assert fields(check("Binding", binding)) == ["target.kind", "target.name"]
    assert only(check("Binding", sample("Binding"), sample("Binding"))).reason == "FieldValueForbidden"
