"""The audit log of a real TLS daemon driven by the real kubectl as a token user, and across a SIGKILL."""

from __future__ import annotations

import importlib.util
import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.daemon import Daemon
from tests.kubectl import run_kubectl
from tests.waiting import poll

MUTATING_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
# The authorization helper's work: with it, a view-only user is refused with a 403.
AUTHZ = importlib.util.find_spec("nodeos.api.authz") is not None


def nodeos(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nodeos", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    daemon = Daemon(tmp_path_factory.mktemp("audit-master"), name="audit-master", extra_config="tls = true\n")
    daemon.write_config()
    data = daemon.workdir / "data"
    data.mkdir(mode=0o700)
    (data / "policy.toml").write_text('[[bind]]\nrole = "edit"\nusers = ["alice"]\n\n'
                                      '[[bind]]\nrole = "view"\nusers = ["bob"]\n')
    daemon.start()
    yield daemon
    daemon.stop()


def token_kubeconfig(master: Daemon, path: Path, user: str) -> Path:
    result = nodeos("kubeconfig", "--config", str(master.config_path), "--user", user, "--group", "team", "--token")
    assert result.returncode == 0, result.stderr
    path.write_text(result.stdout)
    token = yaml.safe_load(result.stdout)["users"][0]["user"]["token"]
    ca = ssl.create_default_context(cafile=str(master.workdir / "data" / "pki" / "ca.crt"))

    def known() -> bool:  # the server re-reads its token file every second
        response = httpx.get(f"https://127.0.0.1:{master.port}/api", verify=ca,
                             headers={"Authorization": f"Bearer {token}"})
        return response.status_code != 401

    poll(known, 10, f"the token of {user} is known", master.log)
    return path


def audit_events(master: Daemon) -> list[dict]:
    path = master.workdir / "data" / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(master: Daemon, match, what: str) -> dict:
    """The first audit Event ``match`` accepts, once it is in the file."""
    return poll(lambda: next((e for e in audit_events(master) if match(e)), None), 10, what, master.log)


def ref(event: dict) -> tuple:
    o = event.get("objectRef", {})
    return event["verb"], o.get("resource"), o.get("namespace"), o.get("name"), event["responseStatus"]["code"]


def test_kubectl_creates_and_deletes_as_a_token_user(master, tmp_path):
    config = token_kubeconfig(master, tmp_path / "alice", "alice")

    def kubectl(*args: str):
        return run_kubectl(config, tmp_path / "cache", *args, context=master.log())

    kubectl("run", "audited", "--image=busybox:1.36", "--restart=Never")
    kubectl("get", "pods")
    kubectl("get", "pod", "audited", "-o", "yaml")
    kubectl("delete", "pod", "audited", "--wait=false")
    deleted = wait_for(master, lambda e: ref(e)[0] == "delete" and ref(e)[3] == "audited", "the delete's line")
    created = next(e for e in audit_events(master) if ref(e)[0] == "create" and ref(e)[3] == "audited")
    assert ref(created) == ("create", "pods", "default", "audited", 201)
    assert ref(deleted) == ("delete", "pods", "default", "audited", 200)
    for event in (created, deleted):
        assert event["user"]["username"] == "alice"
        assert set(event["user"]["groups"]) == {"team", "system:authenticated"}
        assert event["sourceIPs"] == ["127.0.0.1"]
        assert event["userAgent"].startswith("kubectl/")
        assert (event["kind"], event["apiVersion"], event["level"]) == ("Event", "audit.k8s.io/v1", "Metadata")
    assert created["requestReceivedTimestamp"] < deleted["requestReceivedTimestamp"]
    # reads are not audited: every line is a mutation
    assert {e["verb"] for e in audit_events(master)} <= MUTATING_VERBS


def test_refusals_are_logged_with_their_code(master, tmp_path):
    config = token_kubeconfig(master, tmp_path / "alice", "alice")

    def kubectl(*args: str):
        return run_kubectl(config, tmp_path / "cache", *args, check=False, context=master.log())

    assert kubectl("create", "configmap", "twice").returncode == 0
    assert "already exists" in kubectl("create", "configmap", "twice").stderr
    assert kubectl("create", "configmap", "Not_Valid").returncode == 1
    # kubectl stops at its discovery's 401 (a read): the mutation goes without it
    ca = ssl.create_default_context(cafile=str(master.workdir / "data" / "pki" / "ca.crt"))
    refused = httpx.delete(f"https://127.0.0.1:{master.port}/api/v1/namespaces/default/configmaps/twice", verify=ca,
                           headers={"Authorization": "Bearer not-a-token"})
    assert refused.status_code == 401

    conflict = wait_for(master, lambda e: ref(e)[-1] == 409, "the 409's line")
    assert ref(conflict) == ("create", "configmaps", "default", "twice", 409)
    assert conflict["responseStatus"]["reason"] == "AlreadyExists"
    invalid = wait_for(master, lambda e: ref(e)[-1] == 422, "the 422's line")
    assert ref(invalid) == ("create", "configmaps", "default", "Not_Valid", 422)
    unauthorized = wait_for(master, lambda e: ref(e)[-1] == 401, "the 401's line")
    assert ref(unauthorized) == ("delete", "configmaps", "default", "twice", 401)
    assert unauthorized["user"] == {"username": "system:anonymous", "groups": ["system:unauthenticated"]}


@pytest.mark.skipif(not AUTHZ, reason="authorization (nodeos.api.authz) has not landed: no 403 to log")
def test_a_forbidden_request_is_logged_with_403(master, tmp_path):
    config = token_kubeconfig(master, tmp_path / "bob", "bob")
    result = run_kubectl(config, tmp_path / "cache", "create", "namespace", "bobs", check=False)
    assert result.returncode == 1 and "Forbidden" in result.stderr, result.stderr
    forbidden = wait_for(master, lambda e: ref(e)[-1] == 403, "the 403's line")
    # refused before its body was read: no name, as in kube-apiserver's audit
    assert ref(forbidden) == ("create", "namespaces", None, None, 403)
    assert forbidden["user"]["username"] == "bob"
    assert forbidden["responseStatus"]["reason"] == "Forbidden"


def test_an_acknowledged_mutation_is_in_the_log_after_sigkill(tmp_path):
    daemon = Daemon(tmp_path / "node")
    daemon.start()
    try:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "before-kill"}}
        assert httpx.post(f"{daemon.url}/api/v1/namespaces", json=namespace).status_code == 201
        wait_for(daemon, lambda e: ref(e)[3] == "before-kill", "the create's line")
        daemon.kill()
        daemon.start()
        namespace["metadata"]["name"] = "after-restart"
        assert httpx.post(f"{daemon.url}/api/v1/namespaces", json=namespace).status_code == 201
        wait_for(daemon, lambda e: ref(e)[3] == "after-restart", "the next create's line")
        names = [ref(e)[3] for e in audit_events(daemon)]
        assert names == ["before-kill", "after-restart"]  # appended to, whole lines, nothing else
    finally:
        daemon.stop()


def test_no_audit_log_when_turned_off(tmp_path):
    daemon = Daemon(tmp_path / "node", extra_config='audit_log = ""\n')
    daemon.start()
    try:
        assert httpx.post(f"{daemon.url}/api/v1/namespaces",
                          json={"metadata": {"name": "unaudited"}}).status_code == 201
    finally:
        daemon.stop()
    assert not (tmp_path / "node" / "data" / "audit.log").exists()


def test_an_exec_is_logged_as_a_create_of_pods_exec(master, tmp_path):
    """On the insecure port, of a pod no node runs: refused, and logged with the refusal's code."""
    def kubectl(*args: str, check: bool = True):
        return run_kubectl(master.kubeconfig(), tmp_path / "cache", *args, check=check, context=master.log())

    kubectl("run", "unbound", "--image=busybox:1.36", "--restart=Never")
    result = kubectl("exec", "unbound", "--", "sh", check=False)
    assert result.returncode == 1, result.stderr
    event = wait_for(master, lambda e: e.get("objectRef", {}).get("subresource") == "exec", "the exec's line")
    assert ref(event)[:4] == ("create", "pods", "default", "unbound")
    assert event["responseStatus"]["code"] >= 400, event
    assert event["user"]["username"] == "system:unsecured"  # the insecure port's caller
