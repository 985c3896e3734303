import pytest

from nodeos.api.model.workloads import SELECTOR_MISMATCH

from .samples import check, defaulted, fields, only, sample

APPS = ["ReplicaSet", "Deployment", "DaemonSet"]


@pytest.mark.parametrize("kind", ["ReplicationController", "ReplicaSet", "Deployment"])
def test_replicas_default_to_one(kind):
    assert defaulted(kind)["spec"]["replicas"] == 1
    obj = sample(kind)
    obj["spec"]["replicas"] = 0
    assert defaulted(kind, obj)["spec"]["replicas"] == 0


def test_deployment_defaults():
    spec = defaulted("Deployment")["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert "minReadySeconds" not in spec
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always" and pod_spec["dnsPolicy"] == "ClusterFirst"
    assert pod_spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "status" not in spec["template"]


def test_recreate_strategy_gets_no_rolling_update():
    deploy = sample("Deployment")
    deploy["spec"]["strategy"] = {"type": "Recreate"}
    assert defaulted("Deployment", deploy)["spec"]["strategy"] == {"type": "Recreate"}


def test_daemon_set_defaults():
    spec = defaulted("DaemonSet")["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert "replicas" not in spec


def test_replication_controller_selector_and_labels_default_to_template_labels():
    rc = defaulted("ReplicationController")
    assert rc["spec"]["selector"] == {"app": "web"}
    assert rc["metadata"]["labels"] == {"app": "web"}
    assert check("ReplicationController", rc) == []


@pytest.mark.parametrize("kind", APPS)
def test_selector_required(kind):
    obj = sample(kind)
    del obj["spec"]["selector"]
    causes = check(kind, obj)
    assert fields(causes)[0] == "spec.selector" and causes[0].reason == "FieldValueRequired"


@pytest.mark.parametrize("kind", APPS)
def test_selector_must_match_template(kind):
    obj = sample(kind)
    obj["spec"]["selector"] = {"matchLabels": {"app": "api"}}
    cause = only(check(kind, obj))
    assert cause.field == "spec.template.metadata.labels"
    assert cause.message.endswith(SELECTOR_MISMATCH)


@pytest.mark.parametrize("kind", APPS)
def test_empty_selector_is_invalid(kind):
    obj = sample(kind)
    obj["spec"]["selector"] = {}
    assert fields(check(kind, obj)) == ["spec.selector"]


@pytest.mark.parametrize("kind", APPS)
def test_selector_is_immutable(kind):
    old = defaulted(kind)
    new = sample(kind)
    new["spec"]["selector"]["matchExpressions"] = [{"key": "app", "operator": "Exists"}]
    cause = only(check(kind, new, old))
    assert (cause.field, cause.message.endswith("field is immutable")) == ("spec.selector", True)


def test_replication_controller_selector_may_change():
    old = defaulted("ReplicationController")
    new = sample("ReplicationController")
    new["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    new["spec"]["selector"] = {"app": "web", "v": "2"}
    assert check("ReplicationController", new, old) == []


@pytest.mark.parametrize("kind", ["ReplicationController", *APPS])
def test_template_must_restart_always(kind):
    obj = sample(kind)
    obj["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    cause = only(check(kind, obj))
    assert cause.field == "spec.template.spec.restartPolicy"
    assert cause.message == 'Unsupported value: "OnFailure": supported values: "Always"'


@pytest.mark.parametrize("kind", ["ReplicationController", "ReplicaSet", "Deployment"])
def test_replicas_must_be_a_non_negative_integer(kind):
    obj = sample(kind)
    obj["spec"]["replicas"] = -1
    assert only(check(kind, obj)).message == "Invalid value: -1: must be greater than or equal to 0"
    obj["spec"]["replicas"] = "three"
    assert only(check(kind, obj)).reason == "FieldValueTypeInvalid"


def test_template_pod_spec_is_validated_with_its_path():
    deploy = sample("Deployment")
    deploy["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    assert fields(check("Deployment", deploy)) == ["spec.template.spec.containers[0].image"]


def test_deployment_strategy():
    deploy = sample("Deployment")
    deploy["spec"]["strategy"] = {"type": "BlueGreen"}
    assert only(check("Deployment", deploy)).field == "spec.strategy.type"
    deploy["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}
    cause = only(check("Deployment", deploy))
    assert (cause.field, cause.message) == ("spec.strategy.rollingUpdate.maxUnavailable",
                                            'Invalid value: "0%": may not be 0 when `maxSurge` is 0')
    deploy["spec"]["strategy"] = {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "half", "maxUnavailable": "150%"}}
    assert fields(check("Deployment", deploy)) == ["spec.strategy.rollingUpdate.maxUnavailable",
                                                   "spec.strategy.rollingUpdate.maxSurge"]
    deploy["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}}
    assert check("Deployment", deploy) == []


def test_daemon_set_rolling_update():
    ds = sample("DaemonSet")
    ds["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
    assert fields(check("DaemonSet", ds)) == ["spec.updateStrategy.rollingUpdate.maxSurge"]
    ds["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert check("DaemonSet", ds) == []
