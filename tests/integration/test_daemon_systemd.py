"""A real ``nodeos daemon`` process under a stand-in for systemd: its notify socket and watchdog variables.

READY=1 only once the API serves, watchdog pings, STATUS= lines, STOPPING=1 and exit 0 on SIGTERM;
SIGHUP with a changed valid config and with a broken one; a component stuck in its cleanup past
``[node] stop_timeout_seconds``, which ends the process non-zero within the bound and its grace.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from tests.daemon import Daemon
from tests.notifysocket import NotifySocket
from tests.waiting import poll


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    sock = NotifySocket(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock.path))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a ping every 0.5 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


@pytest.fixture
def node(tmp_path, notify_socket):
    daemon = Daemon(tmp_path / "node", disable=("scheduler",))  # the API and the controller manager
    daemon.launch()
    yield daemon
    daemon.stop()


def test_ready_once_serving_then_pings_and_a_clean_stop(node, notify_socket):
    ready = notify_socket.wait_for("READY", "1")
    assert httpx.get(f"{node.url}/readyz", timeout=2).status_code == 200  # serving by the time of READY=1
    assert ready["STATUS"] == "serving: api, controller-manager"
    pings_from = len(notify_socket.messages)
    notify_socket.wait_for("WATCHDOG", "1")
    time.sleep(1.2)
    notify_socket.receive()
    assert sum("WATCHDOG" in m for m in notify_socket.messages[pings_from:]) >= 2
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(15) == 0
    notify_socket.receive()
    assert {"STOPPING": "1", "STATUS": "stopping (within 30s)"} in notify_socket.messages
    assert "node test-master stopped" in node.log()


def test_sighup_applies_a_valid_change_and_keeps_the_config_on_a_broken_one(node, notify_socket):
    notify_socket.wait_for("READY", "1")
    notify_socket.messages.clear()
    node.config_path.write_text(node.config_path.read_text() + "[controllers]\nnode_grace_seconds = 12\n")
    node.proc.send_signal(signal.SIGHUP)
    notify_socket.wait_for("RELOADING", "1")
    notify_socket.wait_for("READY", "1")
    poll(lambda: "restarting controller-manager" in node.log(), 10, "the reload", node.log)
    assert "SIGHUP: reloaded controllers.node_grace_seconds; restarting controller-manager" in node.log()
    poll(lambda: node.log().count("controller-manager: started") == 2, 15, "the restart", node.log)

    node.config_path.write_text("[node\nrole = 'master'\n")
    node.proc.send_signal(signal.SIGHUP)
    poll(lambda: "keeping the running config" in node.log(), 10, "the refusal", node.log)
    [line] = [line for line in node.log().splitlines() if "keeping the running config" in line]
    assert "ERROR" in line and str(node.config_path) in line
    assert "Traceback" not in node.log()
    assert httpx.get(f"{node.url}/readyz", timeout=2).status_code == 200
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(15) == 0


HANGING = textwrap.dedent("""
    import sys

    import trio

    from nodeos import daemon
    from nodeos.cli.main import main


    async def hanging(config, *, task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):  # a cleanup that never ends, not even when cancelled
                await trio.sleep(3600)


    daemon.ROLES["master"] = (*daemon.ROLES["master"], ("hanging", hanging))
    sys.exit(main(sys.argv[1:]))
""")


def test_a_cleanup_hanging_past_the_bound_ends_the_process_non_zero(tmp_path, notify_socket):
    node = Daemon(tmp_path / "node", extra_config="")
    node.write_config()
    text = node.config_path.read_text().replace("[api]", "stop_timeout_seconds = 1\n[api]")
    node.config_path.write_text(text)
    with node.log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", HANGING, "daemon", "--config", str(node.config_path)],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        notify_socket.wait_for("READY", "1")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 1, node.log()
    assert 1 + 2 - 0.5 < took < 1 + 2 + 3  # the bound, then the grace before the process is ended
    assert "stopping: hanging did not stop within [node] stop_timeout_seconds = 1s" in node.log()
    assert "stopping: hanging still has not stopped, 2s past [node] stop_timeout_seconds; exiting" in node.log()
    notify_socket.receive()
    assert {"STOPPING": "1", "STATUS": "stopping (within 1s)"} in notify_socket.messages
