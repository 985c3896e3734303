"""The node agent on real Podman, through a real all-in-one daemon: what a user of the pods sees."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.podman import podman
from tests.podnode import PodmanNode, container_status, is_ready, phase


@pytest.fixture
def node(podman_node):
    return podman_node


@pytest.fixture
def ns(node) -> str:
    return node.namespace()


def sh(image: str, script: str, name: str = "main", **extra) -> dict:
    return {"name": name, "image": image, "command": ["sh", "-c", script], **extra}


def running(pod: dict) -> bool:
    return phase(pod) == "Running" and is_ready(pod)


def podman_containers(namespace: str, pod_name: str) -> list[dict]:
    import json

    out = podman("ps", "-a", "--format", "json", "--filter", f"label=nodeos.pod-namespace={namespace}",
                 "--filter", f"label=nodeos.pod-name={pod_name}").stdout
    return [c for c in json.loads(out or "[]") if "nodeos.container-name" in (c.get("Labels") or {})]  # not infra


def test_a_pod_runs_gets_an_ip_and_serves_on_it(node, ns, test_image):
    node.create_pod(ns, "web", [sh(test_image, "echo hello > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
                                   ports=[{"containerPort": 8080}])])
    pod = node.wait_pod(ns, "web", running)
    status = pod["status"]
    assert status["podIP"].startswith("10.244.") and status["hostIP"] == "127.0.0.1"
    web = container_status(pod, "web" if False else "main")
    assert web["ready"] and web["started"] and web["restartCount"] == 0
    assert web["containerID"].startswith("podman://") and web["imageID"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"}
    assert httpx.get(f"http://{status['podIP']}:8080/index.html", timeout=5).text == "hello\n"
    reasons = [e["reason"] for e in node.events(ns, "web")]
    assert {"Scheduled", "Pulled", "Created", "Started"} <= set(reasons)


def test_env_command_args_and_downward_api(node, ns, test_image):
    container = {"name": "main", "image": test_image, "command": ["sh", "-c"],
                 "args": ["echo \"$(GREETING) from $MY_POD in $MY_NS on $MY_NODE at $MY_IP\"; sleep 3600"],
                 "env": [{"name": "GREETING", "value": "hi"},
                         {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                         {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                         {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}
    node.create_pod(ns, "env", [container])
    pod = node.wait_pod(ns, "env", running)
    (found,) = podman_containers(ns, "env")
    logs = podman("logs", found["Id"]).stdout
    assert logs == f"hi from env in {ns} on {node.name} at {pod['status']['podIP']}\n"


def test_restart_policies_and_exit_codes(node, ns, test_image):
    node.create_pod(ns, "done", [sh(test_image, "exit 0")], restartPolicy="OnFailure")
    node.create_pod(ns, "fails", [sh(test_image, "exit 3")], restartPolicy="Never")
    done = node.wait_pod(ns, "done", lambda p: phase(p) == "Succeeded")
    assert container_status(done, "main")["state"]["terminated"]["reason"] == "Completed"
    failed = node.wait_pod(ns, "fails", lambda p: phase(p) == "Failed")
    terminated = container_status(failed, "main")["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert container_status(failed, "main")["restartCount"] == 0


def test_a_crashing_container_backs_off_and_restarts(node, ns, test_image):
    node.create_pod(ns, "crash", [sh(test_image, "echo run; exit 2")])
    pod = node.wait_pod(ns, "crash", lambda p: container_status(p, "main").get("restartCount", 0) >= 1,
                        timeout=40)
    status = container_status(pod, "main")
    assert status["lastState"]["terminated"]["exitCode"] == 2
    # between runs it is ContainerCreating for a moment, then waits out the back-off
    pod = node.wait_pod(ns, "crash", lambda p: waiting_reason(p) == "CrashLoopBackOff", timeout=40)
    assert "back-off" in container_status(pod, "main")["state"]["waiting"]["message"]
    assert phase(pod) == "Running" and not is_ready(pod)
    assert "BackOff" in {e["reason"] for e in node.events(ns, "crash")}


def test_oom_killed(node, ns, test_image):
    hog = sh(test_image, "sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1",
             resources={"limits": {"memory": "16Mi"}})
    node.create_pod(ns, "oom", [hog], restartPolicy="Never")
    pod = node.wait_pod(ns, "oom", lambda p: phase(p) == "Failed")
    terminated = container_status(pod, "main")["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled" and terminated["exitCode"] == 137


def test_init_containers_run_in_order_and_share_an_empty_dir(node, ns, test_image):
    mount = [{"name": "work", "mountPath": "/work"}]
    node.create_pod(ns, "init", [sh(test_image, "cat /work/log; sleep 3600", volumeMounts=mount)],
                    initContainers=[sh(test_image, "echo one >> /work/log", name="first", volumeMounts=mount),
                                    sh(test_image, "echo two >> /work/log", name="second", volumeMounts=mount)],
                    volumes=[{"name": "work", "emptyDir": {}}])
    pod = node.wait_pod(ns, "init", running)
    assert [c["state"]["terminated"]["reason"] for c in pod["status"]["initContainerStatuses"]] == [
        "Completed", "Completed"]
    main = next(c for c in podman_containers(ns, "init") if c["Labels"]["nodeos.container-name"] == "main")
    # Running means started, not that its first command has written: wait for the log (and fail on a wrong one)
    logs = node.wait_for(lambda: podman("logs", main["Id"]).stdout, 10, "main's log")
    assert logs == "one\ntwo\n"


def test_readiness_and_liveness_probes(node, ns, test_image):
    never_ready = sh(test_image, "sleep 3600", readinessProbe={"tcpSocket": {"port": 9}, "periodSeconds": 1})
    node.create_pod(ns, "unready", [never_ready])
    unhealthy = sh(test_image, "sleep 3600", livenessProbe={"exec": {"command": ["false"]}, "periodSeconds": 1,
                                                            "failureThreshold": 2})
    node.create_pod(ns, "unhealthy", [unhealthy], terminationGracePeriodSeconds=1)
    pod = node.wait_pod(ns, "unready", lambda p: phase(p) == "Running")
    time.sleep(3)
    pod = node.pod(ns, "unready")
    assert not is_ready(pod) and container_status(pod, "main")["started"]
    pod = node.wait_pod(ns, "unhealthy", lambda p: container_status(p, "main").get("restartCount", 0) >= 1,
                        timeout=40)
    reasons = {e["reason"] for e in node.events(ns, "unhealthy")}
    assert {"Unhealthy", "Killing"} <= reasons


def test_a_missing_image_is_a_clear_reason_and_harms_no_one(node, ns, test_image):
    node.create_pod(ns, "missing", [{"name": "main", "image": "localhost/nodeos-test/absent:1",
                                     "imagePullPolicy": "Never"}])
    node.create_pod(ns, "fine", [sh(test_image, "sleep 3600")])
    pod = node.wait_pod(ns, "missing", lambda p: container_status(p, "main").get("state", {}).get("waiting", {}).get(
        "reason") not in (None, "ContainerCreating"))
    waiting = container_status(pod, "main")["state"]["waiting"]
    assert waiting["reason"] == "ErrImageNeverPull" and "localhost/nodeos-test/absent:1" in waiting["message"]
    assert "Failed" in {e["reason"] for e in node.events(ns, "missing")}
    node.wait_pod(ns, "fine", running)


def test_a_command_that_does_not_exist(node, ns, test_image):
    node.create_pod(ns, "nocmd", [{"name": "main", "image": test_image, "command": ["/no/such/thing"]}],
                    restartPolicy="Never")
    pod = node.wait_pod(ns, "nocmd", lambda p: phase(p) == "Failed")
    terminated = container_status(pod, "main")["state"]["terminated"]
    assert terminated["exitCode"] != 0 and terminated.get("message")


def test_deletion_honours_the_grace_period_then_removes_everything(node, ns, test_image):
    stubborn = sh(test_image, "trap '' TERM; while true; do sleep 1; done")
    node.create_pod(ns, "stubborn", [stubborn], terminationGracePeriodSeconds=3)
    polite = sh(test_image, "trap 'exit 0' TERM; while true; do sleep 1; done")
    node.create_pod(ns, "polite", [polite], terminationGracePeriodSeconds=30)
    node.wait_pod(ns, "stubborn", running)
    node.wait_pod(ns, "polite", running)
    started = time.monotonic()
    for name in ("stubborn", "polite"):
        assert httpx.delete(f"{node.url}/api/v1/namespaces/{ns}/pods/{name}", timeout=10).status_code == 200
    node.wait_for(lambda: node.pod(ns, "polite") is None, 15, "polite pod gone")
    polite_took = time.monotonic() - started
    node.wait_for(lambda: node.pod(ns, "stubborn") is None, 15, "stubborn pod gone")
    stubborn_took = time.monotonic() - started
    assert polite_took < 3 <= stubborn_took < 10
    assert podman_containers(ns, "stubborn") == [] and podman_containers(ns, "polite") == []


def test_restarting_the_daemon_restarts_no_container(node, ns, test_image):
    node.create_pod(ns, "steady", [sh(test_image, "sleep 3600")])
    before = node.wait_pod(ns, "steady", running)
    ids = {c["Id"]: c["StartedAt"] for c in podman_containers(ns, "steady")}
    node.restart()
    time.sleep(3)  # the agent has resynced by now
    after = node.wait_pod(ns, "steady", running)
    assert {c["Id"]: c["StartedAt"] for c in podman_containers(ns, "steady")} == ids
    assert container_status(after, "main")["containerID"] == container_status(before, "main")["containerID"]
    assert container_status(after, "main")["restartCount"] == 0
    assert after["status"]["podIP"] == before["status"]["podIP"]


def test_pods_deleted_while_the_agent_was_down_are_cleaned_up(node, ns, test_image):
    node.create_pod(ns, "orphan", [sh(test_image, "sleep 3600")], terminationGracePeriodSeconds=1)
    node.wait_pod(ns, "orphan", running)
    node.daemon.stop()
    node.daemon.start()  # the API is back; force-delete before the agent resyncs its pods
    httpx.delete(f"{node.url}/api/v1/namespaces/{ns}/pods/orphan", params={"gracePeriodSeconds": 0}, timeout=10)
    node.wait_node_ready()
    node.wait_for(lambda: podman_containers(ns, "orphan") == [], 30, "orphan's containers removed")


def waiting_reason(pod: dict) -> str | None:
    return container_status(pod, "main").get("state", {}).get("waiting", {}).get("reason")


def test_pull_failures_back_off(node, ns, test_image):
    # Always pulls, and these machines reach no registry: the pull fails though the image is here.
    node.create_pod(ns, "always", [{"name": "main", "image": test_image, "imagePullPolicy": "Always",
                                    "command": ["sleep", "3600"]}])
    pod = node.wait_pod(ns, "always", lambda p: waiting_reason(p) in ("ErrImagePull", "ImagePullBackOff"))
    assert test_image in container_status(pod, "main")["state"]["waiting"]["message"]
    node.wait_pod(ns, "always", lambda p: waiting_reason(p) == "ImagePullBackOff", timeout=30)
    reasons = {e["reason"] for e in node.events(ns, "always")}
    assert {"Pulling", "Failed"} <= reasons


def test_a_limit_podman_refuses_and_an_unknown_volume_are_reasons_not_crashes(node, ns, test_image):
    tiny = sh(test_image, "sleep 3600", resources={"limits": {"memory": "1Ki"}})
    node.create_pod(ns, "tiny", [tiny])
    node.create_pod(ns, "secretvol", [sh(test_image, "sleep 3600")],
                    volumes=[{"name": "s", "secret": {"secretName": "nope"}}])
    node.create_pod(ns, "fine", [sh(test_image, "sleep 3600")])
    # runc refuses a memory limit below its minimum when starting: a start error, retried with back-off
    pod = node.wait_pod(ns, "tiny", lambda p: waiting_reason(p) == "CrashLoopBackOff", timeout=30)
    last = container_status(pod, "main")["lastState"]["terminated"]
    assert last["reason"] == "StartError" and "memory" in last["message"]
    node.wait_for(lambda: "FailedMount" in {e["reason"] for e in node.events(ns, "secretvol")}, 30,
                  "a FailedMount event")
    assert phase(node.pod(ns, "secretvol")) == "Pending"
    node.wait_pod(ns, "fine", running)


def test_a_startup_probe_holds_back_readiness_until_it_passes(node, ns, test_image):
    slow = sh(test_image, "sleep 3; touch /tmp/started; sleep 3600",
              startupProbe={"exec": {"command": ["test", "-f", "/tmp/started"]}, "periodSeconds": 1,
                            "failureThreshold": 30},
              readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1})
    node.create_pod(ns, "slow", [slow])
    pod = node.wait_pod(ns, "slow", lambda p: phase(p) == "Running")
    status = container_status(pod, "main")
    assert not status["started"] and not status["ready"]
    pod = node.wait_pod(ns, "slow", running, timeout=20)
    assert container_status(pod, "main")["started"]


def test_a_pre_stop_hook_runs_before_the_container_is_stopped(node, ns, test_image, tmp_path):
    out = tmp_path / "hook"
    out.mkdir()
    container = sh(test_image, "trap 'echo term >> /out/log; exit 0' TERM; while true; do sleep 1; done",
                   volumeMounts=[{"name": "out", "mountPath": "/out"}],
                   lifecycle={"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /out/log"]}}})
    node.create_pod(ns, "hooked", [container], terminationGracePeriodSeconds=10,
                    volumes=[{"name": "out", "hostPath": {"path": str(out), "type": "Directory"}}])
    node.wait_pod(ns, "hooked", running)
    httpx.delete(f"{node.url}/api/v1/namespaces/{ns}/pods/hooked", timeout=10)
    node.wait_for(lambda: node.pod(ns, "hooked") is None, 15, "hooked pod gone")
    assert (out / "log").read_text() == "prestop\nterm\n"


def test_another_node_on_the_same_podman_leaves_our_pods_alone(node, ns, test_image, tmp_path, podman_socket):
    node.create_pod(ns, "mine", [sh(test_image, "sleep 3600")])
    node.wait_pod(ns, "mine", running)
    ids = {c["Id"] for c in podman_containers(ns, "mine")}
    other = PodmanNode(tmp_path / "other", podman_socket).start()  # its garbage collection runs at start
    try:
        collected = other.wait_for(lambda: _collections(other), 60, "the other node's first garbage collection")
        assert collected == ["removed 0 pod(s)"]
        assert {c["Id"] for c in podman_containers(ns, "mine")} == ids
    finally:
        other.stop()
    assert running(node.pod(ns, "mine"))


def _collections(node: PodmanNode) -> list[str]:
    return re.findall(r"garbage collection (removed \d+ pod\(s\))", node.daemon.log())
