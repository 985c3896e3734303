"""``nodeos version``: the client's version needs no server."""

from __future__ import annotations

import json

from nodeos import __version__
from nodeos.cli.main import main


def test_client_only(capsys):
    assert main(["version", "--client", "-s", "http://127.0.0.1:1"]) == 0
    assert capsys.readouterr().out == f"Client Version: v1.32.0-nodeos.{__version__}\n"


def test_client_only_as_json(capsys):
    assert main(["version", "--client", "-o", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["clientVersion"]["nodeosVersion"] == __version__ and "serverVersion" not in document


def test_an_unreachable_server_comes_after_the_client_version(capsys):
    assert main(["version", "-s", "http://127.0.0.1:1"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("Client Version: ")
    assert err == "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n"
