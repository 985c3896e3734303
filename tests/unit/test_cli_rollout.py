"""``nodeos rollout``: kubectl's status messages from a Deployment's status, and the progress display."""

from __future__ import annotations

import argparse
import io

import pytest

from nodeos.cli.common import CliError
from nodeos.cli.progress import Progress, bar
from nodeos.cli.rollout import deployment_name, status_message


def deployment(wanted=3, generation=2, observed=2, **status):
    return {"metadata": {"name": "web", "generation": generation}, "spec": {"replicas": wanted},
            "status": {"observedGeneration": observed, **status}}


@pytest.mark.parametrize(("obj", "message", "complete"), [
    (deployment(observed=1), "Waiting for deployment spec update to be observed...", False),
    (deployment(updatedReplicas=1, replicas=3),
     'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...', False),
    (deployment(updatedReplicas=3, replicas=4),
     'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...', False),
    (deployment(updatedReplicas=3, replicas=3, availableReplicas=2),
     'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...', False),
    (deployment(updatedReplicas=3, replicas=3, availableReplicas=3), 'deployment "web" successfully rolled out', True),
    (deployment(wanted=0), 'deployment "web" successfully rolled out', True),
])
def test_status_messages_are_kubectls(obj, message, complete):
    assert status_message(obj) == (message, complete)


def test_a_rollout_past_its_deadline_is_an_error():
    stuck = deployment(updatedReplicas=1, conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}])
    with pytest.raises(CliError, match='deployment "web" exceeded its progress deadline'):
        status_message(stuck)


@pytest.mark.parametrize(("target", "name", "expected"), [
    ("deploy/web", None, "web"), ("deployment", "web", "web"), ("deployments.apps/api", None, "api")])
def test_deployment_names(target, name, expected):
    assert deployment_name(argparse.Namespace(target=target, name=name)) == expected


@pytest.mark.parametrize(("target", "error"), [
    ("svc/web", "only deployments have rollouts"), ("deploy", "required resource not specified"),
    ("nothing/web", 'the server doesn\'t have a resource type "nothing"')])
def test_bad_targets(target, error):
    with pytest.raises(CliError, match=error):
        deployment_name(argparse.Namespace(target=target, name=None))


def test_bar():
    assert bar(0, 4) == "[....................] 0/4"
    assert bar(2, 4, width=4) == "[##..] 2/4"
    assert bar(9, 4, width=4) == "[####] 4/4"
    assert bar(0, 0, width=2) == "[##] 0/0"


def test_progress_off_a_terminal_prints_each_new_message_once():
    out = io.StringIO()
    progress = Progress(out, tty=False)
    for message in ("a", "a", "b", "b"):
        progress.update(message, 1, 3)
    progress.done("ok")
    assert out.getvalue() == "a\nb\nok\n"


def test_progress_on_a_terminal_rewrites_one_line():
    out = io.StringIO()
    progress = Progress(out, tty=True)
    progress.update("waiting for pods", 1, 2)
    progress.update("wait")
    progress.done("done")
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, ended only by the final message
    first, second, last = text.split("\r")[1:]
    assert first == "[##########..........] 1/2 waiting for pods"
    assert second.rstrip() in ("/ wait", "- wait", "| wait", "\\ wait")  # a spinner without a count
    assert len(second) == len(first)  # padded over the longer line before it
    assert last == "done  \n"


def test_a_failed_wait_leaves_no_half_line_on_a_terminal():
    out = io.StringIO()
    with Progress(out, tty=True) as progress:
        progress.update("waiting", 0, 2)
    assert out.getvalue().endswith("waiting\n")
    quiet = io.StringIO()
    with Progress(quiet, tty=True) as progress:
        progress.done("done")
    assert quiet.getvalue() == "\rdone\n"  # nothing added after a final message
