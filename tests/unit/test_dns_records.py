import dns.name
import dns.rcode
import dns.rdatatype as T

from nodeos.network.dns.records import ClusterZone


def service(name="web", ns="default", *, cluster_ip="10.96.0.10", ports=None, **spec):
    ports = ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}]
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "ports": ports, **spec}}


def endpoints(name="web", ns="default", *subsets):
    return {"metadata": {"name": name, "namespace": ns}, "subsets": list(subsets)}


def subset(ips, ports=(("http", 8080),), not_ready=(), hostnames=None):
    hostnames = hostnames or {}
    return {"addresses": [{"ip": ip, "nodeName": "n1", "targetRef": {"kind": "Pod", "name": f"pod-{ip[-1]}"},
                           **({"hostname": hostnames[ip]} if ip in hostnames else {})} for ip in ips],
            "notReadyAddresses": [{"ip": ip, "nodeName": "n1"} for ip in not_ready],
            "ports": [{"name": name, "port": port, "protocol": "TCP"} for name, port in ports]}


def zone(*objects, domain="cluster.local"):
    services = {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in objects if "spec" in o}
    eps = {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in objects if "subsets" in o}
    return ClusterZone(domain, services.get, eps.get)


def ask(z, name, rdtype=T.A):
    answer = z.answer(dns.name.from_text(name), rdtype)
    texts = sorted(r.to_text() for rrset in answer.answer for r in rrset)
    return answer, texts


def test_cluster_ip_service_is_its_a_record_with_the_ttl():
    answer, texts = ask(zone(service()), "web.default.svc.cluster.local.")
    assert answer.rcode == dns.rcode.NOERROR and texts == ["10.96.0.10"]
    assert answer.answer[0].ttl == 5 and answer.authority == []


def test_names_are_case_insensitive_and_the_answer_keeps_the_asked_case():
    answer, texts = ask(zone(service()), "WEB.Default.SVC.Cluster.Local")
    assert texts == ["10.96.0.10"]
    assert answer.answer[0].name.to_text() == "WEB.Default.SVC.Cluster.Local."


def test_relative_and_absolute_names_alike():
    z = zone(service())
    assert z.contains(dns.name.from_text("web.default.svc.cluster.local."))
    assert z.contains(dns.name.from_text("web.default.svc.cluster.local"))
    assert not z.contains(dns.name.from_text("example.com."))
    assert not z.contains(dns.name.from_text("notcluster.local."))


def test_headless_service_is_its_ready_endpoints():
    z = zone(service(cluster_ip="None"),
             endpoints("web", "default", subset(["10.244.1.9", "10.244.2.3"], not_ready=["10.244.1.5"]),
                       subset(["10.244.1.9"], ports=(("metrics", 9090),))))
    answer, texts = ask(z, "web.default.svc.cluster.local.")
    assert answer.rcode == dns.rcode.NOERROR and texts == ["10.244.1.9", "10.244.2.3"]


def test_headless_service_without_ready_endpoints_is_nodata():
    z = zone(service(cluster_ip="None"), endpoints("web", "default", subset([], not_ready=["10.244.1.5"])))
    answer, texts = ask(z, "web.default.svc.cluster.local.")
    assert answer.rcode == dns.rcode.NOERROR and texts == []
    assert answer.authority[0].rdtype == T.SOA


def test_headless_endpoint_by_hostname_pod_name_or_dashed_ip():
    z = zone(service(cluster_ip="None"),
             endpoints("web", "default", subset(["10.244.1.9", "10.244.2.3"], hostnames={"10.244.1.9": "web-0"})))
    assert ask(z, "web-0.web.default.svc.cluster.local.")[1] == ["10.244.1.9"]
    assert ask(z, "pod-3.web.default.svc.cluster.local.")[1] == ["10.244.2.3"]
    assert ask(z, "10-244-2-3.web.default.svc.cluster.local.")[1] == ["10.244.2.3"]
    assert ask(z, "nobody.web.default.svc.cluster.local.")[0].rcode == dns.rcode.NXDOMAIN


def test_endpoint_names_of_a_cluster_ip_service_do_not_exist():
    z = zone(service(), endpoints("web", "default", subset(["10.244.1.9"])))
    assert ask(z, "10-244-1-9.web.default.svc.cluster.local.")[0].rcode == dns.rcode.NXDOMAIN


def test_srv_for_a_named_port_of_a_cluster_ip_service():
    _, texts = ask(zone(service()), "_http._tcp.web.default.svc.cluster.local.", T.SRV)
    assert texts == ["0 100 80 web.default.svc.cluster.local."]
    assert ask(zone(service()), "_http._udp.web.default.svc.cluster.local.", T.SRV)[0].rcode == dns.rcode.NXDOMAIN
    assert ask(zone(service()), "_dns._tcp.web.default.svc.cluster.local.", T.SRV)[0].rcode == dns.rcode.NXDOMAIN


def test_srv_of_a_headless_service_names_each_endpoint_with_its_address():
    z = zone(service(cluster_ip="None"),
             endpoints("web", "default", subset(["10.244.1.9", "10.244.2.3"], hostnames={"10.244.1.9": "web-0"})))
    answer, texts = ask(z, "_HTTP._TCP.web.default.svc.cluster.local.", T.SRV)
    assert texts == ["0 50 8080 pod-3.web.default.svc.cluster.local.", "0 50 8080 web-0.web.default.svc.cluster.local."]
    additional = sorted((rrset.name.to_text(), rrset[0].to_text()) for rrset in answer.additional)
    assert additional == [("pod-3.web.default.svc.cluster.local.", "10.244.2.3"),
                          ("web-0.web.default.svc.cluster.local.", "10.244.1.9")]


def test_unknown_names_in_the_zone_are_nxdomain_with_the_soa():
    z = zone(service())
    for name in ("nope.default.svc.cluster.local.", "web.other.svc.cluster.local.", "x.cluster.local.",
                 "a.b.web.default.svc.cluster.local."):
        answer, texts = ask(z, name)
        assert answer.rcode == dns.rcode.NXDOMAIN and texts == [], name
        [soa] = answer.authority
        assert soa.rdtype == T.SOA and soa.name.to_text() == "cluster.local." and soa[0].minimum == 5


def test_other_types_of_a_known_name_are_nodata():
    z = zone(service())
    for rdtype in (T.AAAA, T.MX, T.TXT):
        answer, texts = ask(z, "web.default.svc.cluster.local.", rdtype)
        assert answer.rcode == dns.rcode.NOERROR and texts == []
        assert [rrset.rdtype for rrset in answer.authority] == [T.SOA]
    answer, texts = ask(z, "_http._tcp.web.default.svc.cluster.local.", T.A)
    assert answer.rcode == dns.rcode.NOERROR and texts == []


def test_names_on_the_way_to_services_exist():
    z = zone(service())
    for name in ("svc.cluster.local.", "default.svc.cluster.local.", "any.svc.cluster.local.",
                 "pod.cluster.local."):
        answer, texts = ask(z, name)
        assert answer.rcode == dns.rcode.NOERROR and texts == [], name


def test_the_apex_has_the_soa():
    _, texts = ask(zone(), "cluster.local.", T.SOA)
    assert len(texts) == 1 and texts[0].startswith("ns.dns.cluster.local. hostmaster.cluster.local.")
    assert ask(zone(), "cluster.local.", T.A)[0].rcode == dns.rcode.NOERROR


def test_external_name_service_is_a_cname():
    z = zone(service("ext", cluster_ip=None, ports=[], type="ExternalName", externalName="db.example.com"))
    answer, texts = ask(z, "ext.default.svc.cluster.local.")
    assert texts == ["db.example.com."] and answer.answer[0].rdtype == T.CNAME


def test_pod_names_are_their_dashed_ip():
    z = zone()
    assert ask(z, "10-244-1-5.default.pod.cluster.local.")[1] == ["10.244.1.5"]
    assert ask(z, "10-244-1.default.pod.cluster.local.")[0].rcode == dns.rcode.NXDOMAIN


def test_another_domain():
    z = zone(service(), domain="corp.internal")
    assert ask(z, "web.default.svc.corp.internal.")[1] == ["10.96.0.10"]
    assert not z.contains(dns.name.from_text("web.default.svc.cluster.local."))


def reverse(*objects):
    import ipaddress

    from nodeos.network.dns.records import ReverseZone

    z = zone(*objects)
    services = [o for o in objects if "spec" in o]
    return ReverseZone(z, [ipaddress.ip_network("10.96.0.0/16"), ipaddress.ip_network("10.244.0.0/16")],
                       lambda: services)


def test_reverse_names_of_cluster_ips_and_headless_endpoints():
    r = reverse(service(), service("db", cluster_ip="None"),
                endpoints("db", "default", subset(["10.244.1.9"], hostnames={"10.244.1.9": "db-0"})))
    assert ask(r, "10.0.96.10.in-addr.arpa.", T.PTR)[1] == ["web.default.svc.cluster.local."]
    assert ask(r, "9.1.244.10.in-addr.arpa.", T.PTR)[1] == ["db-0.db.default.svc.cluster.local."]
    unknown = ask(r, "99.1.244.10.in-addr.arpa.", T.PTR)[0]
    assert unknown.rcode == dns.rcode.NXDOMAIN and unknown.authority[0].name.to_text() == "244.10.in-addr.arpa."
    assert ask(r, "10.0.96.10.in-addr.arpa.", T.A)[0].answer == []


def test_reverse_names_outside_the_cluster_ranges_are_not_ours():
    r = reverse(service())
    for name in ("1.0.0.192.in-addr.arpa.", "96.10.in-addr.arpa.", "x.0.96.10.in-addr.arpa.", "10.0.96.10.example."):
        assert not r.contains(dns.name.from_text(name)), name
    assert r.contains(dns.name.from_text("10.0.96.10.IN-ADDR.ARPA."))
