"""The pure parts of logs and exec: Podman's stream framing, the channel protocol, the agent token,
and the API server's rules for which container a request is about."""

from __future__ import annotations

import json
import stat
import threading

import pytest

from nodeos.agent import remotecommand as rc
from nodeos.agent.podman.frames import Demultiplexer, kubelet_timestamp
from nodeos.agent.token import agent_token
from nodeos.api.http.podrules import log_problem, pick_container
from nodeos.errors import ApiError, ConfigError


def frame(stream: int, payload: bytes) -> bytes:
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


def test_demultiplexer_reassembles_frames_split_anywhere():
    data = frame(1, b"out\n") + frame(2, b"err\n") + frame(3, b"engine\n") + frame(1, b"")
    for cut in range(len(data) + 1):
        demux = Demultiplexer()
        frames = demux.feed(data[:cut]) + demux.feed(data[cut:])
        assert frames == [(1, b"out\n"), (2, b"err\n"), (2, b"engine\n"), (1, b"")]
        assert demux.pending == 0
    demux = Demultiplexer()
    assert demux.feed(frame(1, b"abcdef")[:10]) == [] and demux.pending == 10


def test_timestamps_are_rewritten_as_the_kubelet_writes_them():
    assert kubelet_timestamp(b"2024-05-01T10:00:00Z hello\n") == b"2024-05-01T10:00:00.000000000Z hello\n"
    assert kubelet_timestamp(b"2024-05-01T12:00:00+02:00 hi") == b"2024-05-01T10:00:00.000000000Z hi"
    assert kubelet_timestamp(b"2024-05-01T10:00:00.5Z x") == b"2024-05-01T10:00:00.500000000Z x"
    assert kubelet_timestamp(b"not a time at all") == b"not a time at all"
    assert kubelet_timestamp(b"nospace") == b"nospace"


def test_channel_protocol():
    assert rc.choose_protocol(["v5.channel.k8s.io", "v4.channel.k8s.io"]) == "v5.channel.k8s.io"
    assert rc.choose_protocol(["channel.k8s.io", "v4.channel.k8s.io"]) == "v4.channel.k8s.io"
    assert rc.choose_protocol(["base64.channel.k8s.io"]) is None
    assert rc.exit_status(0)[:1] == b"\x03"
    assert json.loads(rc.exit_status(0)[1:])["status"] == "Success"
    failed = json.loads(rc.exit_status(7)[1:])
    assert (failed["status"], failed["reason"]) == ("Failure", "NonZeroExitCode")
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]
    assert rc.resize_of(b'{"Width":80,"Height":24}') == (80, 24)
    assert rc.resize_of(b'{"Width":0,"Height":24}') is None
    assert rc.resize_of(b"junk") is None


def test_agent_token_is_made_once_private_and_shared(tmp_path):
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(agent_token(tmp_path / "data"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1 and len(tokens[0]) >= 40
    path = tmp_path / "data" / "agent-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["agent-token"]
    assert agent_token(tmp_path / "data") == tokens[0]
    path.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        agent_token(tmp_path / "data")


def pod(containers=("a",), init=(), statuses=()) -> dict:
    return {"metadata": {"name": "p"},
            "spec": {"containers": [{"name": c} for c in containers],
                     "initContainers": [{"name": c} for c in init]},
            "status": {"containerStatuses": list(statuses)}}


def bad_request(call) -> str:
    with pytest.raises(ApiError) as raised:
        call()
    assert raised.value.code == 400
    return raised.value.message


def test_which_container():
    assert pick_container(pod(), None) == "a"
    assert pick_container(pod(("a", "b"), init=("i",)), "i") == "i"
    assert bad_request(lambda: pick_container(pod(("a", "b"), init=("i",)), None)) == \
        "a container name must be specified for pod p, choose one of: [i a b]"
    assert bad_request(lambda: pick_container(pod(), "z")) == "container z is not valid for pod p"


def test_why_a_container_has_no_log():
    def status(state, last=None):
        return pod(statuses=[{"name": "a", "state": state, "lastState": last or {}}])

    running = status({"running": {}})
    crashed = status({"waiting": {"reason": "CrashLoopBackOff"}}, {"terminated": {"containerID": "podman://x"}})
    assert log_problem(running, "a", previous=False) is None
    assert log_problem(pod(), "a", previous=False) is None  # no status yet: the agent decides
    assert log_problem(crashed, "a", previous=False) is None  # its last run's log
    assert log_problem(crashed, "a", previous=True) is None
    assert log_problem(running, "a", previous=True) == 'previous terminated container "a" in pod "p" not found'
    assert log_problem(status({"waiting": {"reason": "ContainerCreating"}}), "a", previous=False) == \
        'container "a" in pod "p" is waiting to start: ContainerCreating'
    assert log_problem(status({"waiting": {"reason": "ImagePullBackOff"}}), "a", previous=False) == \
        'container "a" in pod "p" is waiting to start: trying and failing to pull image'
