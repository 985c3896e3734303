"""``nodeos events``: rows, order and filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nodeos.cli.common import CliError
from nodeos.cli.events import field_selector, keep, last_seen, row


def event(name, seen=None, kind="Normal", **extra):
    return {"metadata": {"name": name, "namespace": "shop", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "type": kind, "reason": "Scheduled", "message": " Assigned \n",
            "involvedObject": {"kind": "Pod", "name": "web-1"}, **({"lastTimestamp": seen} if seen else {}), **extra}


def test_last_seen_falls_back_as_kubectl_does():
    assert last_seen(event("a", "2024-05-01T00:00:00Z")) == "2024-05-01T00:00:00Z"
    assert last_seen(event("b", eventTime="2024-04-01T00:00:00.000000Z")) == "2024-04-01T00:00:00.000000Z"
    assert last_seen(event("c")) == "2024-01-01T00:00:00Z"


def test_a_row():
    seen = (datetime.now(UTC) - timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert row(event("a", seen), False) == ["90s", "Normal", "Scheduled", "pod/web-1", "Assigned"]
    assert row(event("a", seen), True)[0] == "shop"


def test_types_filter():
    assert keep(event("a", kind="Warning"), "Normal, Warning")
    assert not keep(event("a"), "Warning")
    assert keep(event("a"), None)


def test_for_an_object():
    assert field_selector("pod/web") == "involvedObject.kind=Pod,involvedObject.name=web"
    assert field_selector("deploy/web") == "involvedObject.kind=Deployment,involvedObject.name=web"
    assert field_selector(None) is None
    with pytest.raises(CliError):
        field_selector("nothing/web")
