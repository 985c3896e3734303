import pytest

from nodeos.api.model import qos_class

from .samples import check, defaulted, fields, only, sample


def test_pod_spec_defaults():
    spec = defaulted("Pod")["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    assert spec["priority"] == 0


def test_container_defaults():
    container = defaulted("Pod")["spec"]["containers"][0]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    assert container["resources"] == {}
    assert container["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/nginx", "Always"), ("localhost:5000/nginx:1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"), ("nginx:latest@sha256:" + "a" * 64, "Always"),
])
def test_image_pull_policy(image, policy):
    pod = sample("Pod")
    pod["spec"]["containers"][0]["image"] = image
    assert defaulted("Pod", pod)["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_explicit_values_are_kept():
    pod = sample("Pod")
    pod["spec"].update(restartPolicy="Never", terminationGracePeriodSeconds=0, enableServiceLinks=False)
    pod["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    spec = defaulted("Pod", pod)["spec"]
    assert (spec["restartPolicy"], spec["terminationGracePeriodSeconds"], spec["enableServiceLinks"]) == (
        "Never", 0, False)
    assert spec["containers"][0]["imagePullPolicy"] == "Never"


def test_port_protocol_and_probe_defaults():
    pod = sample("Pod")
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    pod["spec"]["containers"][0]["livenessProbe"] = {"httpGet": {"port": 80}}
    container = defaulted("Pod", pod)["spec"]["containers"][0]
    assert container["ports"][0]["protocol"] == "TCP"
    assert container["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                                          "timeoutSeconds": 1, "periodSeconds": 10,
                                          "successThreshold": 1, "failureThreshold": 3}


def test_status_defaults_on_create():
    status = defaulted("Pod")["status"]
    assert status == {"phase": "Pending", "qosClass": "BestEffort"}


def test_requests_default_to_limits_on_pods_only():
    pod = sample("Pod")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "500m", "memory": "128Mi"},
                                                 "requests": {"cpu": "100m"}}
    pod = defaulted("Pod", pod)
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert pod["status"]["qosClass"] == "Burstable"
    deploy = sample("Deployment")
    deploy["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    resources = defaulted("Deployment", deploy)["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert "requests" not in resources


def test_qos_classes():
    def spec(*resources):
        return {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}
    both = {"cpu": "1", "memory": "1Gi"}
    assert qos_class(spec({})) == "BestEffort"
    assert qos_class(spec({"requests": {"cpu": "0"}})) == "BestEffort"
    assert qos_class(spec({"requests": both, "limits": both})) == "Guaranteed"
    assert qos_class(spec({"requests": {"cpu": "1000m", "memory": "1Gi"}, "limits": both})) == "Guaranteed"
    assert qos_class(spec({"requests": both, "limits": both}, {})) == "Burstable"
    assert qos_class(spec({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": both})) == "Burstable"
    assert qos_class(spec({"requests": {"cpu": "1"}})) == "Burstable"
    assert qos_class(spec({"limits": {"cpu": "bogus"}})) == "BestEffort"


def test_containers_required():
    pod = sample("Pod")
    pod["spec"]["containers"] = []
    cause = only(check("Pod", pod))
    assert (cause.field, cause.message) == ("spec.containers", "Required value")


def test_container_name_and_image():
    pod = sample("Pod")
    pod["spec"]["containers"] = [{"name": "app"}, {"name": "app", "image": "x"}, {"name": "Bad_Name", "image": "x"}]
    assert fields(check("Pod", pod)) == [
        "spec.containers[0].image", "spec.containers[2].name", "spec.containers[1].name"]
    assert check("Pod", pod)[-1].reason == "FieldValueDuplicate"


def test_init_container_name_clash_is_reported_on_the_init_container():
    pod = sample("Pod")
    pod["spec"]["initContainers"] = [{"name": "app", "image": "x"}]
    assert fields(check("Pod", pod)) == ["spec.initContainers[0].name"]


def test_container_ports():
    pod = sample("Pod")
    pod["spec"]["containers"][0]["ports"] = [
        {"containerPort": 80, "name": "http"}, {"containerPort": 70000}, {"containerPort": 81, "name": "http"},
        {"containerPort": 82, "protocol": "ICMP"}, {"containerPort": 83, "name": "Not_A_Port"},
    ]
    assert fields(check("Pod", pod)) == [
        "spec.containers[0].ports[1].containerPort", "spec.containers[0].ports[3].protocol",
        "spec.containers[0].ports[4].name", "spec.containers[0].ports[2].name"]


def test_restart_policy():
    pod = sample("Pod")
    pod["spec"]["restartPolicy"] = "Sometimes"
    cause = only(check("Pod", pod))
    assert cause.message == 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'


def test_resources():
    pod = sample("Pod")
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "2", "memory": "lots", "gpu": "1"},
                                                 "limits": {"cpu": "1"}}
    causes = check("Pod", pod)
    assert fields(causes) == ["spec.containers[0].resources.requests[memory]",
                              "spec.containers[0].resources.requests[gpu]",
                              "spec.containers[0].resources.requests"]
    assert causes[0].message.startswith('Invalid value: "lots": quantities must match the regular expression')
    assert causes[1].message.endswith("must be a standard resource for containers")
    assert causes[2].message == 'Invalid value: "2": must be less than or equal to cpu limit of 1'


def test_volumes_and_mounts():
    pod = sample("Pod")
    pod["spec"]["volumes"] = [
        {"name": "data"}, {"name": "data", "emptyDir": {}}, {"name": "host", "hostPath": {}},
        {"name": "two", "emptyDir": {}, "configMap": {"name": "c"}},
    ]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/d"},
                                                    {"name": "nope", "mountPath": "/n"}]
    causes = check("Pod", pod)
    assert pod["spec"]["volumes"][0]["emptyDir"] == {}  # a sourceless volume is scratch space
    assert [(c.field, c.reason) for c in causes] == [
        ("spec.volumes[2].hostPath.path", "FieldValueRequired"),
        ("spec.volumes[3].configMap", "FieldValueForbidden"),
        ("spec.volumes[1].name", "FieldValueDuplicate"),
        ("spec.containers[0].volumeMounts[1].name", "FieldValueNotFound"),
    ]


def test_env_names():
    pod = sample("Pod")
    pod["spec"]["containers"][0]["env"] = [{"name": "GOOD_name.1", "value": "x"}, {"name": "1BAD"}, {"value": "v"},
                                           {"name": "REF", "valueFrom": {}}]
    assert fields(check("Pod", pod)) == ["spec.containers[0].env[1].name", "spec.containers[0].env[2].name",
                                         "spec.containers[0].env[3].valueFrom"]


def test_wrong_json_types_are_causes():
    pod = sample("Pod")
    pod["spec"]["containers"] = {}
    pod["spec"]["terminationGracePeriodSeconds"] = "30"
    pod["metadata"]["labels"] = "app=web"
    causes = check("Pod", pod)
    assert {c.field for c in causes} == {"spec.containers", "spec.terminationGracePeriodSeconds", "metadata.labels"}
    assert {c.reason for c in causes} == {"FieldValueTypeInvalid"}


# -- updates

def _running_pod():
    pod = defaulted("Pod")
    pod["spec"]["nodeName"] = "node-1"
    pod["spec"]["tolerations"] = [{"key": "a", "operator": "Exists"}]
    return pod


def test_pod_image_deadline_and_tolerations_may_change():
    old = _running_pod()
    new = _running_pod()
    new["spec"]["containers"][0]["image"] = "registry.local/app:2.0"
    new["spec"]["activeDeadlineSeconds"] = 60
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists", "effect": "NoExecute"})
    assert check("Pod", new, old) == []


def test_rest_of_pod_spec_is_immutable():
    old = _running_pod()
    new = _running_pod()
    new["spec"]["containers"][0]["command"] = ["sh"]
    cause = only(check("Pod", new, old))
    assert (cause.field, cause.reason) == ("spec", "FieldValueForbidden")
    assert cause.message.startswith("Forbidden: pod updates may not change fields other than")


def test_tolerations_may_not_be_removed_and_deadline_not_raised():
    old = _running_pod()
    old["spec"]["activeDeadlineSeconds"] = 60
    new = _running_pod()
    new["spec"]["activeDeadlineSeconds"] = 120
    new["spec"]["tolerations"] = []
    assert fields(check("Pod", new, old)) == ["spec.activeDeadlineSeconds", "spec.tolerations"]


def test_status_changes_are_not_spec_changes():
    old = _running_pod()
    new = _running_pod()
    new["status"] = {"phase": "Running", "qosClass": "BestEffort", "podIP": "10.42.0.5"}
    assert check("Pod", new, old) == []
