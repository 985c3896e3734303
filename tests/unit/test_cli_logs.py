"""``nodeos logs``: its arguments as the API's log query."""

from __future__ import annotations

import argparse

import pytest

from nodeos.cli.common import CliError
from nodeos.cli.logs import duration, log_params, pod_name
from nodeos.cli.main import build_parser


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2h", 7200), ("0s", 1)])
def test_durations(text, seconds):
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "5x", "5m3", "-5m", "1.5h", "5m 3s"])
def test_bad_durations(text):
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        duration(text)


def test_pod_names():
    assert pod_name("web") == "web"
    assert pod_name("pod/web") == "web"
    assert pod_name("po/web") == "web"
    with pytest.raises(CliError, match="reads pods only"):
        pod_name("deploy/web")


def test_flags_become_the_log_query():
    args = build_parser().parse_args(["logs", "web", "-c", "app", "-f", "--since", "5m", "--tail", "10",
                                      "--timestamps"])
    assert log_params(args) == {"container": "app", "follow": True, "sinceSeconds": 300, "tailLines": 10,
                                "previous": None, "timestamps": True}
    plain = build_parser().parse_args(["logs", "web"])
    assert {k for k, v in log_params(plain).items() if v is not None} == set()


def test_a_bad_since_is_a_usage_error(capsys):
    from nodeos.cli.main import main

    assert main(["logs", "web", "--since", "soon"]) == 2
    assert "invalid duration 'soon'" in capsys.readouterr().err
