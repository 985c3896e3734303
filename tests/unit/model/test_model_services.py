from .samples import check, defaulted, fields, only, sample


def test_service_defaults():
    spec = defaulted("Service")["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec


def test_node_port_service_defaults():
    svc = sample("Service")
    svc["spec"]["type"] = "NodePort"
    svc["spec"]["ports"][0]["targetPort"] = "http"
    spec = defaulted("Service", svc)["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["ports"][0]["targetPort"] == "http"


def test_external_name_gets_no_ip_families():
    svc = {"metadata": {"name": "db", "namespace": "default"},
           "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    assert check("Service", svc) == []
    assert "ipFamilies" not in svc["spec"]


def test_ports_required_unless_headless_or_external_name():
    svc = sample("Service")
    svc["spec"]["ports"] = []
    cause = only(check("Service", svc))
    assert (cause.field, cause.reason) == ("spec.ports", "FieldValueRequired")
    svc["spec"]["clusterIP"] = "None"
    assert check("Service", svc) == []


def test_service_ports():
    svc = sample("Service")
    svc["spec"]["type"] = "NodePort"
    svc["spec"]["ports"] = [
        {"name": "http", "port": 80}, {"port": 81}, {"name": "http", "port": 0},
        {"name": "x", "port": 80}, {"name": "y", "port": 90, "protocol": "HTTP"},
        {"name": "z", "port": 91, "nodePort": 80}, {"name": "t", "port": 92, "targetPort": 70000},
    ]
    assert fields(check("Service", svc)) == [
        "spec.ports[1].name", "spec.ports[2].name", "spec.ports[2].port", "spec.ports[2].targetPort",
        "spec.ports[3]",
        "spec.ports[4].protocol", "spec.ports[5].nodePort", "spec.ports[6].targetPort"]


def test_node_port_forbidden_for_cluster_ip():
    svc = sample("Service")
    svc["spec"]["ports"][0]["nodePort"] = 30080
    cause = only(check("Service", svc))
    assert cause.message == "Forbidden: may not be used when `type` is 'ClusterIP'"


def test_type_affinity_and_cluster_ip_values():
    svc = sample("Service")
    svc["spec"].update(type="Ingress", sessionAffinity="Sticky", clusterIP="10.0.0.300")
    assert fields(check("Service", svc)) == ["spec.type", "spec.clusterIP", "spec.sessionAffinity"]
    svc = sample("Service")
    svc["spec"]["selector"] = {"app": "not valid"}
    assert fields(check("Service", svc)) == ["spec.selector"]


def test_client_ip_affinity_defaults_timeout():
    svc = sample("Service")
    svc["spec"]["sessionAffinity"] = "ClientIP"
    assert check("Service", svc) == []
    assert svc["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_cluster_ip_immutable_once_set():
    old = sample("Service")
    old["spec"]["clusterIP"] = "10.96.0.10"
    check("Service", old)
    new = sample("Service")
    new["spec"]["clusterIP"] = "10.96.0.11"
    cause = only(check("Service", new, old))
    assert (cause.field, cause.message) == ("spec.clusterIP", 'Invalid value: "10.96.0.11": may not change once set')
    same = sample("Service")
    same["spec"]["clusterIP"] = "10.96.0.10"
    assert check("Service", same, old) == []
    external = {"metadata": old["metadata"], "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    assert check("Service", external, old) == []


def test_endpoints():
    ep = sample("Endpoints")
    ep["subsets"] = [{"addresses": [{"ip": "10.0.0.999"}, {"ip": "127.0.0.1"}], "ports": [{"port": 0}]},
                     {"ports": [{"port": 80}]}]
    assert fields(check("Endpoints", ep)) == [
        "subsets[0].addresses[0].ip", "subsets[0].addresses[1].ip", "subsets[0].ports[0].port", "subsets[1]"]
    assert ep["subsets"][1]["ports"][0]["protocol"] == "TCP"
