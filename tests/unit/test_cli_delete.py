"""``delete`` (with waiting) and ``describe``."""

from __future__ import annotations

import argparse
import json

import httpx
import pytest
import trio

from nodeos.api.kinds import resolve
from nodeos.cli import delete
from nodeos.client.testing import FakeApi
from tests.unit.test_cli_main import Cli, pod

PODS, EVENTS, DEPLOY = resolve("pods"), resolve("events"), resolve("deployments")


@pytest.fixture
def cli(monkeypatch, capsys) -> Cli:
    cli = Cli(monkeypatch, capsys)
    for name, app in (("a", "web"), ("b", "web"), ("c", "db")):
        cli.fake.put(PODS, pod(name, app=app))
    return cli


def names(fake: FakeApi) -> list[str]:
    return sorted(name for (_, _, name) in fake.objects)


def test_delete_by_name_and_type_slash_name(cli):
    assert cli("delete", "pod", "a")[:2] == (0, 'pod "a" deleted\n')
    assert cli("delete", "pods/b", "--wait=false")[:2] == (0, 'pod "b" deleted\n')
    assert names(cli.fake) == ["c"]
    assert cli.fake.requests[-1].method == "DELETE"  # no wait after --wait=false


def test_delete_missing_and_ignore_not_found(cli):
    code, out, err = cli("delete", "pod", "ghost", "a")
    assert (code, out, err) == (1, 'pod "a" deleted\n', 'Error from server (NotFound): pods "ghost" not found\n')
    assert cli("delete", "pod", "ghost", "--ignore-not-found")[:3] == (0, "", "")


def test_delete_by_selector_and_from_file(cli, tmp_path):
    assert cli("delete", "pods", "-l", "app=web")[1] == 'pod "a" deleted\npod "b" deleted\n'
    path = tmp_path / "c.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: c}\n")
    assert cli("delete", "-f", str(path))[1] == 'pod "c" deleted\n'
    assert names(cli.fake) == []


def test_delete_needs_a_name_selector_or_all(cli):
    code, _, err = cli("delete", "pods")
    assert code == 1
    assert "no name was specified" in err
    assert cli("delete", "pods", "--all")[0] == 0
    assert names(cli.fake) == []


async def test_wait_lasts_until_the_object_is_gone(autojump_clock, capsys):
    fake = FakeApi()
    fake.put(PODS, pod("slow"))

    def graceful(request):  # the API keeps the pod until its containers stop
        if request.method == "DELETE":
            obj = fake.objects[(PODS.store_prefix(), "default", "slow")]
            obj["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
            return httpx.Response(200, json=fake.put(PODS, obj))
        return None

    fake.hook = graceful
    args = argparse.Namespace(type="pod", names=["slow"], filename=[], selector=None, all=False,
                              ignore_not_found=False, wait=True, timeout=None, grace_period=30,
                              cascade="foreground", namespace=None)
    finished = []
    async with fake.client() as api, trio.open_nursery() as nursery:
        async def run():
            finished.append(await delete.run(args, api))
        nursery.start_soon(run)
        await trio.sleep(10)
        assert finished == []
        fake.remove(PODS, "default", "slow")
        await trio.sleep(1)
    assert finished == [0]
    sent = fake.requests[0]
    assert sent.method == "DELETE"
    assert json.loads(sent.content) == {"kind": "DeleteOptions", "apiVersion": "v1",
                                        "propagationPolicy": "Foreground", "gracePeriodSeconds": 30}
    assert any(r.url.params.get("fieldSelector") == "metadata.name=slow" and r.url.params.get("watch")
               for r in fake.requests)


def test_describe_pod_with_events(cli):
    obj = cli.fake.objects[(PODS.store_prefix(), "default", "a")]
    obj["spec"]["nodeName"] = "node-1"
    obj["metadata"]["annotations"] = {"note": "hi"}
    obj["status"] = {"phase": "Running", "podIP": "10.0.0.7",
                     "conditions": [{"type": "Ready", "status": "True"}],
                     "containerStatuses": [{"name": "c", "ready": True, "restartCount": 2,
                                            "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}}]}
    cli.fake.put(EVENTS, {"metadata": {"name": "a.1", "namespace": "default"}, "type": "Normal",
                          "reason": "Scheduled", "message": "assigned to node-1",
                          "involvedObject": {"kind": "Pod", "name": "a", "namespace": "default"},
                          "source": {"component": "scheduler"}, "lastTimestamp": "2024-01-01T00:00:00Z"})
    cli.fake.put(EVENTS, {"metadata": {"name": "b.1", "namespace": "default"}, "type": "Normal",
                          "reason": "Other", "message": "not ours",
                          "involvedObject": {"kind": "Pod", "name": "b", "namespace": "default"}})
    code, out, err = cli("describe", "pod", "a")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["Name:", "a"]
    for expected in (["Labels:", "app=web"], ["Annotations:", "note=hi"], ["Node:", "node-1"],
                     ["Status:", "Running"], ["IP:", "10.0.0.7"], ["Image:", "busybox"],
                     ["Restart", "Count:", "2"], ["State:", "Running"], ["Ready:", "True"],
                     ["Started:", "2024-01-01T00:00:00Z"]):
        assert any(line.split() == expected for line in lines), (expected, out)
    events = out[out.index("Events:"):]
    assert "Scheduled" in events and "scheduler" in events and "assigned to node-1" in events
    assert "not ours" not in events
    selector = cli.fake.requests[-1].url.params["fieldSelector"]
    assert selector == "involvedObject.name=a,involvedObject.namespace=default"


def test_describe_deployment(cli):
    cli.fake.put(DEPLOY, {"metadata": {"name": "web", "namespace": "default"},
                          "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                                   "template": {"metadata": {"labels": {"app": "web"}},
                                                "spec": {"containers": [{"name": "w", "image": "nginx"}]}}},
                          "status": {"replicas": 3, "availableReplicas": 2}})
    code, out, _ = cli("describe", "deploy/web")
    assert code == 0
    assert "3 desired | 0 updated | 3 total | 2 available | 0 unavailable" in out
    assert out.splitlines()[-1].split() == ["Events:", "<none>"]


def test_describe_other_kinds_prints_spec_fields(cli):
    cli.fake.put(resolve("leases"), {"metadata": {"name": "sched", "namespace": "default"},
                                     "spec": {"holderIdentity": "m1", "leaseDurationSeconds": 15}})
    code, out, _ = cli("describe", "lease", "sched")
    assert code == 0
    lines = out.splitlines()
    assert lines.index("Spec:") < lines.index("  holderIdentity:        m1")
