"""``nodeos get`` and the printers behind it."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import pytest
import trio
import yaml

from nodeos.api.kinds import resolve
from nodeos.cli import get, printers
from nodeos.client.testing import FakeApi
from tests.unit.test_cli_main import Cli, pod

PODS, DEPLOY, NODES = resolve("pods"), resolve("deploy"), resolve("nodes")


@pytest.fixture
def cli(monkeypatch, capsys) -> Cli:
    cli = Cli(monkeypatch, capsys)
    cli.fake.put(PODS, pod("web-1", app="web"))
    cli.fake.put(PODS, pod("db-longer-name", app="db"))
    cli.fake.put(PODS, pod("other", "team"))
    return cli


def test_table_is_formatted_like_kubectl():
    printer = printers.TablePrinter(["Name", "Ready", "Status"])
    assert printer.lines([["web-1", "1/1", "Running"], ["db", "0/1", "Pending"]]) == [
        "NAME    READY   STATUS",
        "web-1   1/1     Running",
        "db      0/1     Pending",
    ]
    assert printer.lines([["a-much-longer-one", "1/1", "Running"]]) == ["a-much-longer-one   1/1     Running"]


def test_cells_and_ages():
    assert [printers.cell(v) for v in (None, True, 3.0, ["a", "b"], 7)] == ["<none>", "true", "3", "a,b", "7"]
    assert [printers.human_duration(s) for s in (5, 119, 125, 600, 3 * 3600 + 60, 5 * 3600 + 60, 30 * 3600,
                                                 3 * 86400 + 3600, 30 * 86400, 3 * 365 * 86400)] == [
        "5s", "119s", "2m5s", "10m", "3h1m", "5h1m", "30h", "3d1h", "30d", "3y"]
    now = datetime(2024, 1, 1, 0, 10, tzinfo=UTC)
    assert printers.human_age("2024-01-01T00:00:00Z", now) == "10m"


def test_default_output_is_the_server_table(cli):
    code, out, err = cli("get", "pods")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "NAME"
    assert sorted(lines[1:]) == ["db-longer-name", "web-1"]
    assert "as=Table" in cli.fake.requests[-1].headers["accept"]


def test_wide_adds_priority_one_columns_and_all_namespaces_adds_namespace(cli):
    code, out, _ = cli("get", "po", "-o", "wide", "-A", "-l", "app=web")
    assert code == 0
    header, row = out.splitlines()
    assert header == "NAMESPACE   NAME    RESOURCE VERSION"
    assert row.split()[:2] == ["default", "web-1"]
    assert cli.fake.requests[-1].url.path == "/api/v1/pods"
    assert cli.fake.requests[-1].url.params["labelSelector"] == "app=web"


def test_named_objects_and_type_slash_name(cli):
    assert cli("get", "pods", "web-1")[1].splitlines() == ["NAME", "web-1"]
    assert cli("get", "pod/web-1", "pod/db-longer-name")[1].splitlines() == ["NAME", "web-1", "db-longer-name"]


def test_missing_name_is_reported_but_others_print(cli):
    code, out, err = cli("get", "pods", "web-1", "ghost")
    assert code == 1
    assert out.splitlines() == ["NAME", "web-1"]
    assert err == 'Error from server (NotFound): pods "ghost" not found\n'


def test_nothing_found_goes_to_stderr(cli):
    code, out, err = cli("get", "deployments.apps")
    assert (code, out, err) == (0, "", "No resources found in default namespace.\n")
    assert cli("get", "nodes")[2] == "No resources found\n"


def test_name_yaml_and_json_outputs(cli):
    assert cli("get", "pods", "-o", "name")[1].splitlines() == ["pod/db-longer-name", "pod/web-1"]
    single = yaml.safe_load(cli("get", "pod", "web-1", "-o", "yaml")[1])
    assert (single["kind"], single["metadata"]["name"]) == ("Pod", "web-1")
    many = json.loads(cli("get", "pods", "-o", "json", "-n", "team")[1])
    assert many["kind"] == "List"
    assert [(i["kind"], i["metadata"]["name"]) for i in many["items"]] == [("Pod", "other")]


def watch_args(**overrides) -> argparse.Namespace:
    values = {"type": "pods", "names": [], "output": None, "selector": None, "field_selector": None,
              "all_namespaces": False, "watch": True, "no_headers": False, "namespace": None}
    return argparse.Namespace(**{**values, **overrides})


async def test_watch_prints_rows_as_they_change(capsys, autojump_clock):
    fake = FakeApi()
    fake.put(PODS, pod("a"))
    async with fake.client() as api, trio.open_nursery() as nursery:
        nursery.start_soon(get.run, watch_args(), api)
        await trio.sleep(1)
        fake.put(PODS, pod("bb"))
        fake.remove(PODS, "default", "a")
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert capsys.readouterr().out.splitlines() == ["NAME", "a", "bb", "a"]
    watch = fake.requests[1]
    assert watch.url.params["watch"] == "true"
    assert watch.url.params["resourceVersion"] == "2"  # the list's: nothing missed, nothing twice


async def test_watch_one_name_uses_a_field_selector(capsys, autojump_clock):
    fake = FakeApi()
    fake.put(PODS, pod("a"))
    fake.put(PODS, pod("b"))
    async with fake.client() as api, trio.open_nursery() as nursery:
        nursery.start_soon(get.run, watch_args(names=["a"]), api)
        await trio.sleep(1)
        fake.put(PODS, pod("b", x="1"))
        fake.put(PODS, pod("a", x="1"))
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert capsys.readouterr().out.splitlines() == ["NAME", "a", "a"]
    assert fake.requests[1].url.params["fieldSelector"] == "metadata.name=a"
