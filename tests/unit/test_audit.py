"""The audit log: Events from records, the ASGI middleware around a small app, the writer's file and rotation."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import trio

from nodeos.api.audit import AuditLog, AuditMiddleware, Record, audit_path, audited, event
from nodeos.api.auth import User
from nodeos.config import default_config, parse
from nodeos.errors import ConfigError

ADMIN = User("alice", ("devs", "system:authenticated"))
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def record(method: str, path: str, code: int = 200, **kw) -> Record:
    return Record(audit_id="id-1", method=method, uri=path, path=path, source_ip="10.0.0.9", user_agent="kubectl/v1",
                  received=1_700_000_000.25, code=code, finished=1_700_000_000.5, **kw)


@pytest.mark.parametrize(("method", "path", "verb", "ref"), [
    ("POST", "/api/v1/namespaces/default/pods", "create",
     {"resource": "pods", "namespace": "default", "apiVersion": "v1"}),
    ("PUT", "/apis/apps/v1/namespaces/ns/deployments/web", "update",
     {"resource": "deployments", "namespace": "ns", "name": "web", "apiGroup": "apps", "apiVersion": "v1"}),
    ("PATCH", "/api/v1/nodes/n1/status", "patch",
     {"resource": "nodes", "name": "n1", "apiVersion": "v1", "subresource": "status"}),
    ("DELETE", "/api/v1/namespaces/default/pods/p", "delete",
     {"resource": "pods", "namespace": "default", "name": "p", "apiVersion": "v1"}),
    ("DELETE", "/api/v1/namespaces/default/pods", "deletecollection",
     {"resource": "pods", "namespace": "default", "apiVersion": "v1"}),
    ("POST", "/api/v1/namespaces/default/pods/p/eviction", "create",
     {"resource": "pods", "namespace": "default", "name": "p", "apiVersion": "v1", "subresource": "eviction"}),
    ("POST", "/nodeos/v1/join", "post", None),
])
def test_verb_and_object_ref(method, path, verb, ref):
    ev = event(record(method, path))
    assert ev["verb"] == verb
    assert ev.get("objectRef") == ref


def test_event_has_kubernetes_metadata_fields():
    ev = event(record("DELETE", "/api/v1/namespaces/default/pods/p", 200, username=ADMIN.name, groups=ADMIN.groups))
    assert {k: ev[k] for k in ("kind", "apiVersion", "level", "stage", "auditID", "requestURI")} == {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "stage": "ResponseComplete",
        "auditID": "id-1", "requestURI": "/api/v1/namespaces/default/pods/p"}
    assert ev["user"] == {"username": "alice", "groups": ["devs", "system:authenticated"]}
    assert ev["sourceIPs"] == ["10.0.0.9"] and ev["userAgent"] == "kubectl/v1"
    assert ev["responseStatus"] == {"metadata": {}, "code": 200}
    assert ev["requestReceivedTimestamp"] == "2023-11-14T22:13:20.250000Z"
    assert TIMESTAMP.fullmatch(ev["stageTimestamp"])


def test_a_refusal_names_its_reason_and_an_unknown_user_is_anonymous():
    status = {"kind": "Status", "status": "Failure", "reason": "Unauthorized", "message": "Unauthorized", "code": 401}
    ev = event(record("POST", "/api/v1/namespaces/default/pods", 401, response=[json.dumps(status).encode()]))
    assert ev["user"] == {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
    assert ev["responseStatus"] == {"metadata": {}, "code": 401, "status": "Failure", "message": "Unauthorized",
                                    "reason": "Unauthorized"}


@pytest.mark.parametrize(("response", "request_body", "name"), [
    ([b'{"kind": "Pod", "metadata": ', b'{"name": "web-x7k2p"}}'], [b'{"metadata": {"generateName": "web-"}}'],
     "web-x7k2p"),
    ([b'{"kind": "Status", "reason": "AlreadyExists", "details": {"name": "web", "kind": "pods"}}'], [], "web"),
    ([b'{"kind": "Status", "reason": "Forbidden"}'], [b'{"metadata": {"name": "from-request"}}'], "from-request"),
    ([b"not json"], [b"kind: Pod\nmetadata: {name: yaml}\n"], None),
])
def test_a_create_names_the_object(response, request_body, name):
    code = 201 if b'"Pod"' in response[0] else 409
    ev = event(record("POST", "/api/v1/namespaces/default/pods", code, response=response, request=request_body))
    assert ev["objectRef"].get("name") == name


@pytest.mark.parametrize("body", [
    b"[" * 30_000 + b"]" * 30_000,  # nesting past the recursion limit, within MAX_PARSE
    b'{"metadata": {"name": "big"}, "data": {"k": "' + b"x" * 70_000 + b'"}}',  # past MAX_PARSE: not parsed
    b"\xff\xfe not utf-8",
    b'{"metadata": {"name": 12}}',
])
def test_a_hostile_or_huge_body_gives_no_name_and_no_error(body):
    ev = event(record("POST", "/api/v1/namespaces/default/configmaps", 400, response=[b"{}"], request=[body]))
    assert ev["objectRef"] == {"resource": "configmaps", "namespace": "default", "apiVersion": "v1"}


def test_an_exec_websocket_is_a_create_of_the_subresource():
    ev = event(record("GET", "/api/v1/namespaces/default/pods/p/exec", 101, websocket=True))
    assert ev["verb"] == "create"
    assert ev["objectRef"]["subresource"] == "exec"
    assert ev["responseStatus"]["code"] == 101


def test_audit_path_is_under_the_data_dir_unless_absolute_and_off_when_empty(tmp_path):
    assert audit_path(default_config(node={"data_dir": tmp_path})) == tmp_path / "audit.log"
    assert audit_path(default_config(node={"data_dir": tmp_path}, api={"audit_log": "/var/log/a.log"})) == Path(
        "/var/log/a.log")
    assert audit_path(default_config(node={"data_dir": tmp_path}, api={"audit_log": ""})) is None


@pytest.mark.parametrize(("toml", "message"), [
    ("audit_log = '../x.log'", '[api] audit_log: "../x.log" must not leave its directory: give an absolute '
                                   "path instead"),
    ("audit_log_max_mb = 0", "[api] audit_log_max_mb: 0 must be a positive number of megabytes"),
    ("audit_log_keep = -1", "[api] audit_log_keep: -1 must not be negative"),
    ("audit_log = 3", "[api] audit_log: expected a string, got integer 3"),
])
def test_bad_audit_keys_are_one_line(toml, message):
    with pytest.raises(ConfigError) as info:
        parse(f"[api]\n{toml}\n", "n.toml")
    assert str(info.value) == f"n.toml: {message}"


# --- the middleware ---

class App:
    """An ASGI app that answers with ``status`` (and a Status body), as the user ``user``."""

    def __init__(self, status: int = 200, user: User | None = ADMIN, fail: bool = False) -> None:
        self.status, self.user, self.fail = status, user, fail
        self.calls = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        if scope["type"] == "websocket":
            await receive()
            scope["nodeos.user"] = self.user
            return await send({"type": "websocket.accept"})
        await receive()
        if self.user is not None:
            scope["nodeos.user"] = self.user
        if self.fail:
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": self.status, "headers": [(b"x", b"y")]})
        await send({"type": "http.response.body", "body": b'{"kind": "Pod", "metadata": {"name": "made"}}'})


def http_scope(method: str, path: str, **extra) -> dict:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": [(b"user-agent", b"kubectl/v1.32.0")], "client": ("127.0.0.1", 5555), **extra}


async def call(middleware, scope):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b'{"metadata": {"name": "asked"}}', "more_body": False} \
            if scope["type"] == "http" else {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    await middleware(scope, receive, send)
    return sent


class Collecting(AuditLog):
    """An AuditLog whose records stay in a list, for the middleware's tests."""

    def __init__(self) -> None:
        super().__init__(Path("/nonexistent"), 1, 0)
        self.records: list[Record] = []

    async def record(self, record: Record) -> None:
        self.records.append(record)


async def test_reads_pass_through_unrecorded():
    audit = Collecting()
    app = App()
    for method in ("GET", "HEAD", "OPTIONS"):
        await call(AuditMiddleware(app, audit), http_scope(method, "/api/v1/pods"))
    await call(AuditMiddleware(app, audit), {"type": "websocket", "path": "/api/v1/watch", "headers": []})
    assert app.calls == 4 and audit.records == []


async def test_a_mutation_is_recorded_with_its_user_code_and_audit_id_header():
    audit = Collecting()
    sent = await call(AuditMiddleware(App(201), audit),
                      http_scope("POST", "/api/v1/namespaces/default/pods", query_string=b"dryRun=All"))
    [rec] = audit.records
    assert (rec.username, rec.groups, rec.code, rec.uri) == (
        "alice", ("devs", "system:authenticated"), 201, "/api/v1/namespaces/default/pods?dryRun=All")
    assert (b"audit-id", rec.audit_id.encode()) in sent[0]["headers"] and (b"x", b"y") in sent[0]["headers"]
    assert rec.received <= rec.finished
    assert event(rec)["objectRef"]["name"] == "made"


async def test_a_client_audit_id_is_kept():
    audit = Collecting()
    scope = http_scope("DELETE", "/api/v1/namespaces/default/pods/p")
    scope["headers"].append((b"audit-id", b"from-client"))
    await call(AuditMiddleware(App(), audit), scope)
    assert audit.records[0].audit_id == "from-client"


async def test_a_request_refused_before_authentication_is_anonymous():
    audit = Collecting()
    await call(AuditMiddleware(App(401, user=None), audit), http_scope("PUT", "/api/v1/nodes/n1"))
    assert (audit.records[0].username, audit.records[0].code) == ("system:anonymous", 401)


async def test_a_failing_app_is_recorded_as_500_and_still_raises():
    audit = Collecting()
    with pytest.raises(RuntimeError):
        await call(AuditMiddleware(App(fail=True), audit), http_scope("PATCH", "/api/v1/nodes/n1"))
    assert audit.records[0].code == 500


async def test_an_exec_websocket_is_recorded_once_accepted():
    audit = Collecting()
    await call(AuditMiddleware(App(), audit),
               {"type": "websocket", "path": "/api/v1/namespaces/default/pods/p/exec", "headers": [],
                "query_string": b"command=sh", "client": ("127.0.0.1", 1)})
    [rec] = audit.records
    assert (rec.websocket, rec.code, rec.uri) == (True, 101, "/api/v1/namespaces/default/pods/p/exec?command=sh")


def test_audited_is_the_app_itself_without_a_log():
    app = App()
    assert audited(app, None) is app
    assert isinstance(audited(app, Collecting()), AuditMiddleware)


# --- the writer ---

def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_the_writer_appends_batches_as_json_lines(tmp_path):
    path = tmp_path / "audit.log"
    audit = AuditLog(path, 1 << 20, 3)
    async with trio.open_nursery() as nursery:
        await nursery.start(audit.run)
        for i in range(50):
            await audit.record(record("DELETE", f"/api/v1/namespaces/default/pods/p{i}"))
        with trio.fail_after(5):
            while not path.exists() or len(path.read_text().splitlines()) < 50:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert [e["objectRef"]["name"] for e in lines(path)] == [f"p{i}" for i in range(50)]
    assert path.stat().st_mode & 0o777 == 0o600


async def test_what_is_queued_when_stopping_is_written(tmp_path):
    path = tmp_path / "audit.log"
    audit = AuditLog(path, 1 << 20, 3)
    async with trio.open_nursery() as nursery:
        await nursery.start(audit.run)
        for i in range(10):
            audit._send.send_nowait(record("DELETE", f"/api/v1/nodes/n{i}"))
        nursery.cancel_scope.cancel()  # before the writer took any of them
    assert len(lines(path)) == 10


def test_rotation_keeps_the_newest_old_files(tmp_path):
    path = tmp_path / "audit.log"
    audit = AuditLog(path, 1000, 2)
    batches = [[record("DELETE", f"/api/v1/nodes/b{b}-{i}") for i in range(3)] for b in range(5)]
    for batch in batches:  # ~ 500 bytes a line: each batch of 3 passes the bound, so each rotates
        audit.write(batch)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.log", "audit.log.1", "audit.log.2"]
    assert lines(path)[0]["objectRef"]["name"] == "b4-0"
    assert lines(tmp_path / "audit.log.1")[0]["objectRef"]["name"] == "b3-0"
    assert lines(tmp_path / "audit.log.2")[0]["objectRef"]["name"] == "b2-0"


def test_rotation_without_old_files_starts_over(tmp_path):
    path = tmp_path / "audit.log"
    audit = AuditLog(path, 100, 0)
    audit.write([record("DELETE", "/api/v1/nodes/first")])
    audit.write([record("DELETE", "/api/v1/nodes/second")])
    assert [p.name for p in tmp_path.iterdir()] == ["audit.log"]
    assert [e["objectRef"]["name"] for e in lines(path)] == ["second"]


def test_rotation_goes_on_from_an_existing_file(tmp_path):
    path = tmp_path / "audit.log"
    path.write_text("x" * 900 + "\n")
    AuditLog(path, 1000, 1).write([record("DELETE", "/api/v1/nodes/n")])
    assert (tmp_path / "audit.log.1").read_text() == "x" * 900 + "\n"


async def test_a_write_error_is_logged_once_and_serving_goes_on(tmp_path, caplog):
    blocker = tmp_path / "dir"
    blocker.write_text("a file where the log's directory should be")
    path = blocker / "audit.log"
    audit = AuditLog(path, 1 << 20, 3)
    caplog.set_level(logging.WARNING, "nodeos.api.audit")
    async with trio.open_nursery() as nursery:
        await nursery.start(audit.run)
        for i in range(5):
            await audit.record(record("DELETE", f"/api/v1/nodes/lost{i}"))
            await trio.sleep(0.05)  # a batch each
        await trio.sleep(0.1)  # the last one written (and lost) too
        blocker.unlink()
        blocker.mkdir()
        await audit.record(record("DELETE", "/api/v1/nodes/kept"))
        with trio.fail_after(5):
            while not path.exists():
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [f"audit log {path}: cannot write: Not a directory; serving on, losing audit lines until "
                        "it works", f"audit log {path}: writing again"]
    assert [e["objectRef"]["name"] for e in lines(path)] == ["kept"]


async def test_a_record_that_cannot_be_formatted_is_left_out_and_the_writer_goes_on(tmp_path, caplog, monkeypatch):
    import nodeos.api.audit as audit_module

    real = audit_module.event

    def failing(rec):
        if rec.path.endswith("/bad"):
            raise RuntimeError("a bug")
        return real(rec)

    monkeypatch.setattr(audit_module, "event", failing)
    path = tmp_path / "audit.log"
    audit = AuditLog(path, 1 << 20, 3)
    async with trio.open_nursery() as nursery:
        await nursery.start(audit.run)
        for name in ("before", "bad", "after"):
            await audit.record(record("DELETE", f"/api/v1/nodes/{name}"))
        with trio.fail_after(5):
            while not path.exists() or len(path.read_text().splitlines()) < 2:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert [e["objectRef"]["name"] for e in lines(path)] == ["before", "after"]
    assert "cannot format the record of DELETE /api/v1/nodes/bad" in caplog.text


def test_a_line_cut_by_a_kill_is_ended_before_the_next(tmp_path):
    path = tmp_path / "audit.log"
    path.write_bytes(b'{"kind":"Event"}\n{"kind":"Ev')
    AuditLog(path, 1 << 20, 3).write([record("DELETE", "/api/v1/nodes/next")])
    whole, cut, last = path.read_text().splitlines()
    assert (whole, cut) == ('{"kind":"Event"}', '{"kind":"Ev')
    assert json.loads(last)["objectRef"]["name"] == "next"


def test_a_log_moved_or_removed_meanwhile_is_opened_anew(tmp_path):
    path = tmp_path / "audit.log"
    audit = AuditLog(path, 1 << 20, 3)
    audit.write([record("DELETE", "/api/v1/nodes/one")])
    path.rename(tmp_path / "audit.log.old")  # logrotate's way
    audit.write([record("DELETE", "/api/v1/nodes/two")])
    path.unlink()  # an operator's
    audit.write([record("DELETE", "/api/v1/nodes/three")])
    assert [e["objectRef"]["name"] for e in lines(tmp_path / "audit.log.old")] == ["one"]
    assert [e["objectRef"]["name"] for e in lines(path)] == ["three"]
