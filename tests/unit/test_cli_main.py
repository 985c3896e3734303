"""The CLI's front: flags, exit codes, and how expected errors read."""

from __future__ import annotations

import httpx
import pytest

from nodeos.api.kinds import resolve
from nodeos.cli import common
from nodeos.cli.main import build_parser, main
from nodeos.client import ApiClient, Connection
from nodeos.client.testing import FakeApi

PODS = resolve("pods")


class Cli:
    """Runs ``main`` against a FakeApi and captures what it prints."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self.fake = FakeApi()
        self.capsys = capsys
        self.seen_args = []

        def open_client(args):
            self.seen_args.append(args)
            conn = Connection("http://fake.test", namespace=args.namespace or "default")
            return ApiClient(conn, transport=self.fake.transport)

        monkeypatch.setattr(common, "open_client", open_client)

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(list(argv))
        out = self.capsys.readouterr()
        return code, out.out, out.err


@pytest.fixture
def cli(monkeypatch, capsys) -> Cli:
    return Cli(monkeypatch, capsys)


def pod(name: str, ns: str = "default", **labels: str) -> dict:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def test_usage_errors_exit_2(cli):
    assert cli()[0] == 2
    assert cli("frobnicate")[0] == 2
    code, _, err = cli("get", "pods", "--bogus")
    assert code == 2
    assert "unrecognized arguments: --bogus" in err
    assert cli("--help")[0] == 0


def test_daemon_verbs_are_registered():
    choices = build_parser()._subparsers._group_actions[0].choices
    assert {"get", "describe", "apply", "create", "delete", "daemon"} <= set(choices)


def test_global_flags_before_or_after_the_verb(cli):
    cli.fake.put(PODS, pod("a", "team"))
    for argv in (["-n", "team", "get", "pods"], ["get", "pods", "-n", "team"]):
        code, out, _ = cli(*argv)
        assert code == 0
        assert "a" in out
    assert cli.fake.requests[-1].url.path == "/api/v1/namespaces/team/pods"
    cli("--context", "x", "get", "pods", "-s", "http://h:1")
    assert (cli.seen_args[-1].context, cli.seen_args[-1].server) == ("x", "http://h:1")


def test_unknown_type_is_a_one_line_error(cli):
    code, out, err = cli("get", "frobs")
    assert (code, out, err) == (1, "", 'error: the server doesn\'t have a resource type "frobs"\n')


def test_not_found_reads_like_kubectl(cli):
    code, _, err = cli("describe", "pod", "ghost")
    assert code == 1
    assert err == 'Error from server (NotFound): pods "ghost" not found\n'


def test_connection_refused_reads_like_kubectl(monkeypatch, capsys):
    def refuse(request):
        raise httpx.ConnectError("all attempts to connect to 127.0.0.1:6443 failed") from ConnectionRefusedError(
            111, "Connection refused")

    monkeypatch.setattr(common, "open_client", lambda args: ApiClient(
        Connection("https://127.0.0.1:6443"), transport=httpx.MockTransport(refuse)))
    assert main(["get", "pods"]) == 1
    assert capsys.readouterr().err == ("The connection to the server 127.0.0.1:6443 was refused - "
                                       "did you specify the right host or port?\n")


def test_bad_kubeconfig_exits_2_naming_the_file(tmp_path, capsys):
    path = tmp_path / "kubeconfig"
    path.write_text("clusters: [")
    assert main(["--kubeconfig", str(path), "get", "pods"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: cannot load kubeconfig")
    assert err.count("\n") == 1
