"""Log formats: journald prefixes only when stderr is the journal, JSON one object per line."""

from __future__ import annotations

import json
import logging
import os

import pytest

from nodeos.log import setup_logging


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def log_to(path, fmt: str, level: str = "info") -> list[str]:
    with path.open("w") as stream:
        setup_logging(level, fmt, stream)
        log = logging.getLogger("nodeos.test")
        log.debug("hidden")
        log.warning("disk %s", "full")
        try:
            raise ValueError("bad")
        except ValueError:
            log.exception("failed")
        logging.getLogger().handlers[0].flush()
    return path.read_text().splitlines()


def test_text_has_timestamp_level_and_logger(tmp_path, monkeypatch, restore_logging):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    lines = log_to(tmp_path / "log", "text")
    assert lines[0].endswith(" WARNING nodeos.test: disk full")
    assert lines[0][:4].isdigit()
    assert not any("hidden" in line for line in lines)


def test_journal_prefix_on_every_line_when_stderr_is_the_journal(tmp_path, monkeypatch, restore_logging):
    path = tmp_path / "log"
    path.touch()
    st = os.stat(path)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    lines = log_to(path, "text")
    assert lines[0] == "<4>nodeos.test: disk full"
    assert lines[1] == "<3>nodeos.test: failed"
    assert len(lines) > 3 and all(line.startswith("<3>") for line in lines[1:])  # the traceback too


def test_inherited_journal_stream_of_another_file_is_ignored(tmp_path, monkeypatch, restore_logging):
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    assert not log_to(tmp_path / "log", "text")[0].startswith("<")


def test_json_is_one_object_per_line(tmp_path, restore_logging):
    lines = log_to(tmp_path / "log", "json", level="debug")
    entries = [json.loads(line) for line in lines]
    assert [e["message"] for e in entries] == ["hidden", "disk full", "failed"]
    assert entries[1]["level"] == "warning"
    assert entries[1]["logger"] == "nodeos.test"
    assert "ValueError: bad" in entries[2]["exception"]
