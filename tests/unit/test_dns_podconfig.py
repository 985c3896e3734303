from nodeos.agent.podman.dnsconfig import ClusterDns, pod_resolv_conf
from nodeos.agent.podman.specgen import pod_spec
from nodeos.network.dns.resolvconf import ResolvConf, parse_resolv_conf

HOST = ResolvConf(("192.0.2.53", "127.0.0.53"), ("corp.example", "example"), ("timeout:2",))
CLUSTER = ClusterDns("cluster.local", "10.244.1.1", HOST)


def pod(namespace="shop", **spec):
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": {"containers": [{"name": "c"}], **spec}}


def test_parse_resolv_conf():
    text = ("# generated\nnameserver 10.0.0.2\nnameserver 10.0.0.3 ; comment\ndomain old.example\n"
            "search a.example b.example.\noptions ndots:2 edns0\noptions rotate\n\n  \nbogus line\n")
    assert parse_resolv_conf(text) == ResolvConf(("10.0.0.2", "10.0.0.3"), ("a.example", "b.example"),
                                                 ("ndots:2", "edns0", "rotate"))
    assert parse_resolv_conf("") == ResolvConf()


def test_cluster_first_is_the_default_with_kubernetes_search_path_and_ndots():
    assert pod_resolv_conf(pod(), CLUSTER) == ResolvConf(
        ("10.244.1.1",), ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "example"),
        ("ndots:5",))
    assert pod_resolv_conf(pod(dnsPolicy="ClusterFirst"), CLUSTER) == pod_resolv_conf(pod(), CLUSTER)


def test_another_cluster_domain():
    resolv = pod_resolv_conf(pod("default"), ClusterDns("corp.internal.", "10.244.9.1", ResolvConf()))
    assert resolv.searches == ("default.svc.corp.internal", "svc.corp.internal", "corp.internal")


def test_default_policy_and_host_network_pods_get_the_hosts_untouched():
    assert pod_resolv_conf(pod(dnsPolicy="Default"), CLUSTER) is None
    assert pod_resolv_conf(pod(hostNetwork=True), CLUSTER) is None
    assert pod_resolv_conf(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), CLUSTER).nameservers == \
        ("10.244.1.1",)


def test_without_a_cluster_dns_cluster_first_falls_back_to_the_hosts():
    assert pod_resolv_conf(pod(), ClusterDns("cluster.local", None, HOST)) is None


def test_none_policy_is_only_dns_config():
    config = {"nameservers": ["1.1.1.1"], "searches": ["x.example"],
              "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    assert pod_resolv_conf(pod(dnsPolicy="None", dnsConfig=config), CLUSTER) == \
        ResolvConf(("1.1.1.1",), ("x.example",), ("ndots:2", "edns0"))


def test_dns_config_adds_to_cluster_first_without_duplicates_and_options_override_by_name():
    config = {"nameservers": ["10.244.1.1", "1.1.1.1"], "searches": ["svc.cluster.local", "extra.example"],
              "options": [{"name": "ndots", "value": "1"}, {"name": "single-request"}]}
    resolv = pod_resolv_conf(pod(dnsConfig=config), CLUSTER)
    assert resolv.nameservers == ("10.244.1.1", "1.1.1.1")
    assert resolv.searches[-1] == "extra.example" and resolv.searches.count("svc.cluster.local") == 1
    assert resolv.options == ("ndots:1", "single-request")


def test_dns_config_on_the_hosts_settings_drops_loopback_nameservers():
    resolv = pod_resolv_conf(pod(dnsPolicy="Default", dnsConfig={"searches": ["x.example"]}), CLUSTER)
    assert resolv == ResolvConf(("192.0.2.53",), ("corp.example", "example", "x.example"), ("timeout:2",))


def test_limits_of_three_nameservers_and_32_searches():
    config = {"nameservers": [f"10.0.0.{i}" for i in range(5)], "searches": [f"s{i}.example" for i in range(40)]}
    resolv = pod_resolv_conf(pod(dnsPolicy="None", dnsConfig=config), CLUSTER)
    assert resolv.nameservers == ("10.0.0.0", "10.0.0.1", "10.0.0.2") and len(resolv.searches) == 32


def test_pod_spec_carries_libpods_dns_fields():
    spec = pod_spec(pod(), network="nodeos", labels={}, name="p", dns=pod_resolv_conf(pod(), CLUSTER))
    assert spec["dns_server"] == ["10.244.1.1"] and spec["dns_option"] == ["ndots:5"]
    assert spec["dns_search"][:3] == ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert "dns_server" not in pod_spec(pod(), network="nodeos", labels={}, name="p")
    empty = pod_spec(pod(), network="nodeos", labels={}, name="p", dns=ResolvConf(("1.1.1.1",)))
    assert empty["dns_search"] == ["."]  # no search domains, not the host's
