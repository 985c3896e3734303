"""Kubernetes pods and containers as libpod spec generators: namespaces, command/args, resources, security."""

from __future__ import annotations

import pytest

from nodeos.agent.podman.specgen import container_spec, hostname, pod_spec, resource_limits


def pod(name="web-1", containers=None, **spec):
    return {"metadata": {"name": name, "namespace": "ns", "uid": "u-1"},
            "spec": {"containers": containers or [{"name": "c", "image": "img"}], **spec}}


def spec_of(container, p=None, env=None, **kw):
    p = p or pod(containers=[container])
    args = {"pod_id": "POD", "name": "k8s_c", "labels": {"l": "1"}, "env": env or {}, "mounts": [], "image": "img:1"}
    return container_spec(p, container, **{**args, **kw})


# -- the pod

def test_pod_spec_joins_the_given_network_and_shares_net_ipc_uts():
    spec = pod_spec(pod(), network="nodeos", labels={"a": "b"}, name="k8s_ns_web-1_u-1")
    assert spec == {"name": "k8s_ns_web-1_u-1", "labels": {"a": "b"}, "infra_name": "k8s_ns_web-1_u-1-infra",
                    "shared_namespaces": ["ipc", "net", "uts"], "hostname": "web-1",
                    "netns": {"nsmode": "bridge"}, "Networks": {"nodeos": {}}}


def test_pod_spec_without_a_network_is_on_podmans_default_bridge():
    spec = pod_spec(pod(), network=None, labels={}, name="p")
    assert spec["netns"] == {"nsmode": "bridge"}
    assert "Networks" not in spec


def test_pod_spec_host_network_uses_the_hosts_namespaces_and_name():
    spec = pod_spec(pod(hostNetwork=True, hostname="ignored"), network="nodeos", labels={}, name="p")
    assert spec["netns"] == {"nsmode": "host"}
    assert spec["utsns"] == {"nsmode": "host"}
    assert "hostname" not in spec and "Networks" not in spec


def test_pod_spec_shares_pid_only_when_asked():
    assert "pid" in pod_spec(pod(shareProcessNamespace=True), network=None, labels={}, name="p")["shared_namespaces"]
    assert "pid" not in pod_spec(pod(shareProcessNamespace=False), network=None, labels={}, name="p")[
        "shared_namespaces"]
    host_pid = pod_spec(pod(hostPID=True), network=None, labels={}, name="p")
    assert host_pid["pidns"] == {"nsmode": "host"} and "pid" in host_pid["shared_namespaces"]


def test_hostname_is_spec_hostname_or_the_name_cut_to_a_label():
    assert hostname(pod(hostname="db-0")) == "db-0"
    long_name = "a" * 61 + "-." + "d" * 10
    assert hostname(pod(name=long_name)) == "a" * 61  # 63 characters, then no trailing '-' or '.'
    assert hostname(pod(name="a" * 60 + "-b.cdef")) == "a" * 60 + "-b"
    assert hostname(pod(name="x" * 63)) == "x" * 63


# -- command and args

@pytest.mark.parametrize(("container", "want"), [
    ({}, {}),                                                                   # the image's ENTRYPOINT and CMD
    ({"args": ["a", "$(X)"]}, {"command": ["a", "x"]}),                         # the image's ENTRYPOINT, new CMD
    ({"command": ["sh", "-c", "echo $(X)"]}, {"entrypoint": ["sh", "-c", "echo x"], "command": []}),  # no CMD
    ({"command": ["echo"], "args": ["$(X)", "$$(X)", "$(NOPE)"]},
     {"entrypoint": ["echo"], "command": ["x", "$(X)", "$(NOPE)"]}),
    ({"command": [], "args": []}, {}),                                          # empty lists mean unset
])
def test_command_and_args_follow_kubernetes(container, want):
    spec, problems = spec_of({"name": "c", **container}, env={"X": "x"})
    assert problems == []
    assert {k: spec[k] for k in ("entrypoint", "command") if k in spec} == want


def test_container_spec_carries_identity_env_mounts_and_never_restarts():
    mounts = [{"destination": "/data", "type": "bind", "source": "/v", "options": ["rbind", "rw"]}]
    spec, problems = spec_of({"name": "c", "image": "ignored", "workingDir": "/w", "tty": True, "stdin": True},
                             env={"A": "1"}, mounts=mounts)
    assert problems == []
    assert spec["name"] == "k8s_c" and spec["image"] == "img:1" and spec["pod"] == "POD"
    assert spec["labels"] == {"l": "1"} and spec["env"] == {"A": "1"} and spec["mounts"] == mounts
    assert spec["restart_policy"] == "no"
    assert spec["work_dir"] == "/w" and spec["create_working_dir"] is True
    assert spec["terminal"] is True and spec["stdin"] is True
    assert "portmappings" not in spec
    plain, _ = spec_of({"name": "c"})
    assert plain["terminal"] is False and plain["stdin"] is False and "work_dir" not in plain


# -- resources

def limits_of(resources):
    limits, problems = resource_limits({"name": "c", "resources": resources})
    assert problems == []
    return limits


def test_memory_limit_in_bytes_without_swap():
    assert limits_of({"limits": {"memory": "128Mi"}})["memory"] == {"limit": 134217728, "swap": 134217728}
    assert limits_of({"limits": {"memory": "1G"}})["memory"]["limit"] == 10**9
    assert limits_of({"limits": {"memory": "1000.5"}})["memory"]["limit"] == 1001  # whole bytes, rounded up
    assert "memory" not in limits_of({})
    assert "memory" not in limits_of({"limits": {"memory": "0"}})  # zero: no limit


@pytest.mark.parametrize(("limit", "quota"), [("500m", 50_000), ("2", 200_000), ("1.5", 150_000),
                                              ("5m", 1_000), ("1m", 1_000)])  # at least 1 ms per period
def test_cpu_limit_as_cfs_quota(limit, quota):
    cpu = limits_of({"limits": {"cpu": limit}})["cpu"]
    assert cpu["quota"] == quota and cpu["period"] == 100_000


@pytest.mark.parametrize(("resources", "shares"), [
    ({}, 2),                                              # best effort: the minimum
    ({"requests": {"cpu": "250m"}}, 256),
    ({"requests": {"cpu": "1"}}, 1024),
    ({"requests": {"cpu": "1m"}}, 2),
    ({"requests": {"cpu": "1000"}}, 262_144),             # the kernel's maximum
    ({"limits": {"cpu": "500m"}}, 512),                   # the request defaults to the limit
    ({"limits": {"cpu": "2"}, "requests": {"cpu": "100m"}}, 102),
])
def test_cpu_request_as_shares(resources, shares):
    cpu = limits_of(resources)["cpu"]
    assert cpu["shares"] == shares
    assert ("quota" in cpu) == ("cpu" in resources.get("limits", {}))


def test_bad_quantities_are_problems():
    spec, problems = spec_of({"name": "c", "resources": {"limits": {"memory": "lots", "cpu": "1"}}})
    assert problems == ["resources.limits.memory 'lots': quantities must match the regular expression "
                        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"]
    assert spec["resource_limits"]["cpu"]["quota"] == 100_000


# -- security

def test_run_as_user_and_group_container_over_pod():
    p = pod(securityContext={"runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4, 5], "fsGroup": 2000})
    spec, problems = spec_of({"name": "c"}, p)
    assert problems == []
    assert spec["user"] == "1000:3000"
    assert spec["groups"] == ["4", "5", "2000"]
    spec, _ = spec_of({"name": "c", "securityContext": {"runAsUser": 0}}, p)
    assert spec["user"] == "0:3000"
    spec, _ = spec_of({"name": "c", "securityContext": {"runAsUser": 7}})
    assert spec["user"] == "7" and "groups" not in spec


def test_run_as_policy_problems():
    _, problems = spec_of({"name": "c", "securityContext": {"runAsGroup": 5}})
    assert problems == ["securityContext.runAsGroup is set without runAsUser"]
    non_root = pod(securityContext={"runAsNonRoot": True})
    _, problems = spec_of({"name": "c", "securityContext": {"runAsUser": 0}}, non_root)
    assert problems == ["securityContext.runAsUser 0 breaks the runAsNonRoot policy"]
    _, problems = spec_of({"name": "c", "securityContext": {"runAsUser": 10, "runAsNonRoot": True}})
    assert problems == []


def test_capabilities_privileged_read_only_and_no_new_privileges():
    context = {"privileged": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
               "capabilities": {"add": ["NET_ADMIN", "cap_sys_time"], "drop": ["ALL", "all"]}}
    spec, problems = spec_of({"name": "c", "securityContext": context})
    assert problems == []
    assert spec["cap_add"] == ["CAP_NET_ADMIN", "CAP_SYS_TIME"]
    assert spec["cap_drop"] == ["ALL", "ALL"]
    assert spec["privileged"] is True and spec["read_only_filesystem"] is True and spec["no_new_privileges"] is True
    plain, _ = spec_of({"name": "c"})
    assert not {"cap_add", "cap_drop", "privileged", "read_only_filesystem", "no_new_privileges", "user"} & set(plain)


def test_seccomp_is_unconfined_unless_runtime_default():
    assert spec_of({"name": "c"})[0]["seccomp_profile_path"] == "unconfined"
    runtime = pod(securityContext={"seccompProfile": {"type": "RuntimeDefault"}})
    assert "seccomp_profile_path" not in spec_of({"name": "c"}, runtime)[0]
    spec, problems = spec_of({"name": "c", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}, runtime)
    assert spec["seccomp_profile_path"] == "unconfined" and problems == []
    local = {"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}
    spec, problems = spec_of({"name": "c", "securityContext": local})
    assert problems == ["securityContext.seccompProfile type 'Localhost' is not supported"]
