"""``nodeos exec``: the WebSocket URL it opens and the exit code it leaves with."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from nodeos.agent import remotecommand as rc
from nodeos.cli.common import CliError
from nodeos.cli.execute import exec_url, exit_code, split_command
from nodeos.cli.main import build_parser, main
from nodeos.client import ApiClient, Connection


async def url(server: str, **flags) -> str:
    async with ApiClient(Connection(server=server, namespace="shop")) as api:
        return exec_url(api, "web", ["sh", "-c", "echo hi"], **flags)


async def test_the_url_is_the_exec_subresource_as_kubectl_asks_it():
    parts = urlsplit(await url("http://127.0.0.1:8080", container="app", stdin=True, tty=False))
    assert (parts.scheme, parts.netloc, parts.path) == ("ws", "127.0.0.1:8080", "/api/v1/namespaces/shop/pods/web/exec")
    assert parse_qsl(parts.query) == [("command", "sh"), ("command", "-c"), ("command", "echo hi"),
                                      ("stdout", "true"), ("stderr", "true"), ("stdin", "true"), ("container", "app")]


async def test_a_tty_has_no_stderr_and_https_is_wss():
    parts = urlsplit(await url("https://master:6443/", container=None, stdin=True, tty=True))
    assert parts.scheme == "wss" and parts.netloc == "master:6443"
    assert dict(parse_qsl(parts.query)) == {"command": "echo hi", "stdout": "true", "stderr": "false",
                                            "stdin": "true", "tty": "true"}


@pytest.mark.parametrize("code", [0, 1, 3, 127])
def test_exit_codes_come_from_the_agents_status(code):
    import json

    status = json.loads(rc.exit_status(code)[1:])  # what the agent sends last
    assert exit_code(status) == code


def test_a_failure_without_an_exit_code_is_an_error():
    import json

    status = json.loads(rc.failure('container "x" not found', "NotFound", 404)[1:])
    with pytest.raises(CliError, match='container "x" not found'):
        exit_code(status)


@pytest.mark.parametrize(("argv", "command", "flags"), [
    (["web", "-c", "app", "-i", "--", "ls", "-la", "--", "x"], ["ls", "-la", "--", "x"], ("app", True, False)),
    (["-i", "-n", "x", "web", "-t", "--", "sh", "-c", "a -b"], ["sh", "-c", "a -b"], (None, True, True)),
    (["-c", "app", "web", "--", "ls"], ["ls"], ("app", False, False)),
    (["web", "ls"], ["ls"], (None, False, False)),
])
def test_flags_before_and_after_the_pod(argv, command, flags):
    args = build_parser().parse_args(["exec", *argv])
    assert split_command(args) == command
    assert (args.container, args.stdin, args.tty) == flags


@pytest.mark.parametrize(("argv", "error"), [
    (["web", "--server", "http://127.0.0.1:1"], "error: unknown flag --server: put the command after --"),
    (["web", "-c", "x", "--"], "error: you must specify at least one command for the container"),
    (["web"], "error: you must specify at least one command for the container"),
])
def test_bad_commands(capsys, argv, error):
    assert main(["exec", *argv]) == 1
    assert capsys.readouterr().err.startswith(error)


def test_an_unreachable_server_is_one_line(capsys):
    assert main(["exec", "web", "-s", "http://127.0.0.1:1", "--", "true"]) == 1
    assert capsys.readouterr().err == ("The connection to the server 127.0.0.1:1 was refused - "
                                       "did you specify the right host or port?\n")
