"""``apply``, ``create`` and reading manifests."""

from __future__ import annotations

import io
import json

import pytest
import yaml

from nodeos.api.kinds import resolve
from nodeos.cli import manifests
from nodeos.cli.apply import LAST_APPLIED, three_way_patch
from nodeos.cli.common import CliError
from tests.unit.test_cli_main import Cli

PODS, DEPLOY = resolve("pods"), resolve("deployments")


@pytest.fixture
def cli(monkeypatch, capsys) -> Cli:
    return Cli(monkeypatch, capsys)


def deployment(**labels) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": labels},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}]}}}}


def write(path, *docs) -> str:
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


# -- the three-way patch ----------------------------------------------------------------------------

def test_patch_removes_what_the_manifest_dropped_and_keeps_server_fields():
    last = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1, "y": 2}}
    desired = {"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}}
    live = {"metadata": {"labels": {"a": "1", "b": "2", "c": "by-someone"}, "uid": "u"},
            "spec": {"x": 1, "y": 2, "defaulted": True}, "status": {"phase": "Running"}}
    assert three_way_patch(last, desired, live) == {"metadata": {"labels": {"b": None}}, "spec": {"y": None}}


def test_lists_are_replaced_when_changed_or_drifted_but_defaults_inside_are_not_drift():
    containers = [{"name": "c", "image": "v1"}]
    live = {"spec": {"containers": [{"name": "c", "image": "v1", "imagePullPolicy": "IfNotPresent"}]}}
    assert three_way_patch({"spec": {"containers": containers}}, {"spec": {"containers": containers}}, live) == {}
    changed = [{"name": "c", "image": "v2"}]
    assert three_way_patch({"spec": {"containers": containers}}, {"spec": {"containers": changed}}, live) == {
        "spec": {"containers": changed}}
    # an env var removed from the manifest goes, although the live item still contains the new one
    with_env = [{"name": "c", "image": "v1", "env": [{"name": "A"}]}]
    live_env = {"spec": {"containers": with_env}}
    assert three_way_patch({"spec": {"containers": with_env}}, {"spec": {"containers": containers}},
                           live_env) == {"spec": {"containers": containers}}


# -- apply ------------------------------------------------------------------------------------------

def test_apply_creates_configures_and_leaves_unchanged(cli, tmp_path):
    path = write(tmp_path / "web.yaml", deployment(app="web", tier="front"))
    assert cli("apply", "-f", path)[:2] == (0, "deployment.apps/web created\n")
    live = cli.fake.objects[(DEPLOY.store_prefix(), "default", "web")]
    recorded = json.loads(live["metadata"]["annotations"][LAST_APPLIED])
    assert recorded["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert LAST_APPLIED not in recorded["metadata"]["annotations"]

    assert cli("apply", "-f", path)[:2] == (0, "deployment.apps/web unchanged\n")

    live["metadata"]["labels"]["owner"] = "someone-else"
    live["status"] = {"replicas": 2}
    path = write(tmp_path / "web.yaml", deployment(app="web"))
    assert cli("apply", "-f", path)[:2] == (0, "deployment.apps/web configured\n")
    live = cli.fake.objects[(DEPLOY.store_prefix(), "default", "web")]
    assert live["metadata"]["labels"] == {"app": "web", "owner": "someone-else"}
    assert live["status"] == {"replicas": 2}
    patch = cli.fake.requests[-1]
    assert (patch.method, patch.headers["content-type"]) == ("PATCH", "application/merge-patch+json")


def test_apply_reports_errors_per_object_and_goes_on(cli, tmp_path):
    path = write(tmp_path / "two.yaml",
                 {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "other"}},
                 {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}})
    code, out, err = cli("apply", "-f", path, "-n", "mine")
    assert code == 1
    assert out == "pod/b created\n"
    assert 'the namespace from the provided object "other" does not match the namespace "mine"' in err


# -- create -----------------------------------------------------------------------------------------

def test_create_then_already_exists_reads_like_kubectl(cli, tmp_path):
    path = write(tmp_path / "pod.yaml", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}})
    assert cli("create", "-f", path)[:2] == (0, "pod/x created\n")
    code, out, err = cli("create", "-f", path)
    assert (code, out) == (1, "")
    assert err == f'Error from server (AlreadyExists): error when creating "{path}": pods "x" already exists\n'


def test_create_namespace_by_name(cli):
    assert cli("create", "namespace", "team")[:2] == (0, "namespace/team created\n")
    assert cli("create", "ns", "team")[2] == 'Error from server (AlreadyExists): namespaces "team" already exists\n'


def test_unknown_kind_is_reported(cli, tmp_path):
    path = write(tmp_path / "x.yaml", {"apiVersion": "v9", "kind": "Widget", "metadata": {"name": "w"}})
    code, _, err = cli("create", "-f", path)
    assert code == 1
    assert 'no matches for kind "Widget" in version "v9"' in err


# -- manifests --------------------------------------------------------------------------------------

def test_folder_multi_document_json_and_list(tmp_path):
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: b1}\n---\n"
                                     "apiVersion: v1\nkind: Pod\nmetadata: {name: b2}\n---\n")
    (tmp_path / "a.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a1"}}]}))
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: c}\n")
    loaded = manifests.load([str(tmp_path)])
    assert [(m.source.rsplit("/", 1)[-1], m.obj["metadata"]["name"]) for m in loaded] == [
        ("a.json", "a1"), ("b.yaml", "b1"), ("b.yaml", "b2")]


def test_stdin():
    stdin = io.StringIO("apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n")
    assert manifests.load(["-"], stdin) == [manifests.Manifest("STDIN", {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}})]


@pytest.mark.parametrize(("text", "message"), [
    ("kind: [", "error parsing"),
    ("- 1\n- 2", "not an object"),
    ("kind: Pod\nmetadata: {name: x}", "apiVersion not set"),
    ("apiVersion: v1\nkind: Pod", "resource name may not be empty"),
])
def test_bad_manifests_are_cli_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CliError, match=message):
        manifests.load([str(path)])


def test_missing_path(cli):
    assert cli("apply", "-f", "/nonexistent.yaml")[1:] == ("", 'error: the path "/nonexistent.yaml" does not exist\n')
