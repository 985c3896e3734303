"""The policy file: its bindings, its one-line errors (file:line and key), and re-reading on change."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import trio

from nodeos.api.auth.user import authenticated
from nodeos.api.authz import Authorizer, Binding, PolicyError, PolicyFile, parse_policy, request_attributes

GOOD = '''# who may do what
[[bind]]
role = "view"
users = ["alice"]
groups = ["dev"]
namespaces = ["team-a"]

[[bind]]
role = "admin"
groups = ["ops"]
'''


def test_bindings():
    assert parse_policy(Path("p.toml"), GOOD) == (
        Binding("view", frozenset({"alice"}), frozenset({"dev"}), frozenset({"team-a"})),
        Binding("admin", frozenset(), frozenset({"ops"}), None))
    assert parse_policy(Path("p.toml"), "# nothing bound yet\n") == ()


@pytest.mark.parametrize(("text", "error"), [
    ('[[bind]]\nrole = "view"\nusers = ["a"\n', "p.toml:3: Unclosed array"),  # TOML's own message
    ('[[bind]]\nrole = view\nusers = ["a"]\n', "p.toml:2: Invalid value"),
    ('[[bind]]\nrole = "viewer"\nusers = ["a"]\n',
     "p.toml:2: bind #1 role: 'viewer' is not a role: one of admin, edit, view"),
    ('[[bind]]\nrole = "view"\nusers = ["a"]\n\n[[bind]]\nusers = ["b"]\n',
     "p.toml:5: bind #2: role is missing: one of admin, edit, view"),
    ('[[bind]]\nrole = "view"\n', "p.toml:1: bind #1: binds no one: give users, groups or both"),
    ('[[bind]]\nrole = "view"\nusers = "alice"\n', "p.toml:3: bind #1 users: must be a list of non-empty strings"),
    ('[[bind]]\nrole = "view"\ngroups = [""]\n', "p.toml:3: bind #1 groups: must be a list of non-empty strings"),
    ('[[bind]]\nrole = "view"\nusers = ["a"]\nnamespaces = []\n',
     "p.toml:4: bind #1 namespaces: is empty: leave it out to bind in every namespace"),
    ('[[bind]]\nrole = "view"\nusers = ["a"]\nuser = ["b"]\n',
     "p.toml:4: bind #1 user: unknown key; a binding has role, users, groups, namespaces"),
    ('[bindings]\nrole = "view"\n', "p.toml:1: unknown key 'bindings': the policy has [[bind]] tables only"),
    ('bind = 3\n', "p.toml:1: bind must be [[bind]] tables"),
])
def test_errors_name_the_file_line_and_key(text, error):
    with pytest.raises(PolicyError) as raised:
        parse_policy(Path("p.toml"), text)
    message = str(raised.value)
    assert message.startswith(error), message
    assert "\n" not in message


def test_the_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "policy.toml"
    policy = PolicyFile(path)
    assert policy.refresh() is False and policy.bindings == ()  # absent: built-ins only
    path.write_text(GOOD)
    assert policy.refresh() is True and len(policy.bindings) == 2
    assert policy.refresh() is False
    path.write_text('[[bind]]\nrole = "nope"\nusers = ["a"]\n')
    with pytest.raises(PolicyError):
        policy.refresh()
    assert len(policy.bindings) == 2  # the last good policy stays
    assert policy.refresh() is False  # and the same broken file is reported once
    path.unlink()
    assert policy.refresh() is True and policy.bindings == ()


def test_an_unreadable_file(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(GOOD)
    os.chmod(path, 0)
    if os.access(path, os.R_OK):
        pytest.skip("root reads any file")
    with pytest.raises(PolicyError, match="cannot read"):
        PolicyFile(path).refresh()


async def test_an_edit_takes_effect_and_a_broken_one_keeps_the_last_good(tmp_path, caplog, autojump_clock):
    path = tmp_path / "policy.toml"

    async def lookup(plural, namespace, name):
        return None

    authorizer = Authorizer(PolicyFile(path), lookup)
    await authorizer.start()
    alice = authenticated("alice", ())
    attrs = request_attributes(alice, "GET", "/api/v1/pods", {})
    assert not (await authorizer.decide(attrs))[0]
    path.write_text('[[bind]]\nrole = "view"\nusers = ["alice"]\n')
    assert not (await authorizer.decide(attrs))[0]  # read at most once a second
    await trio.sleep(1.1)
    assert (await authorizer.decide(attrs))[0]
    path.write_text('[[bind]]\nrole = "view"\nusers = ["alice"\n')
    await trio.sleep(1.1)
    with caplog.at_level(logging.ERROR):
        assert (await authorizer.decide(attrs))[0]
    assert "keeping the policy read before" in caplog.text
