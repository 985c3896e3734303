"""A stand-in for systemd's notify socket: a real unix datagram socket that a test reads."""

from __future__ import annotations

import socket
import time
from pathlib import Path


class NotifySocket:
    """Binds ``path`` (as systemd binds its socket) and collects what is sent to it, a message a datagram."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[dict[str, str]] = []

    def close(self) -> None:
        self.sock.close()

    def receive(self, timeout: float = 0.0) -> list[dict[str, str]]:
        """What is queued, waiting up to ``timeout`` seconds for a first message; each message as its fields."""
        received = []
        self.sock.settimeout(timeout)  # 0: non-blocking
        try:
            while True:
                data = self.sock.recv(65536)
                received.append(dict(line.split("=", 1) for line in data.decode().splitlines()))
                self.sock.settimeout(0.0)  # then only what is already queued
        except (BlockingIOError, TimeoutError):
            pass
        self.messages += received
        return received

    def wait_for(self, key: str, value: str | None = None, timeout: float = 30.0) -> dict[str, str]:
        """The first message (already received or arriving within ``timeout``) with ``key`` (= ``value``)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for message in self.messages[seen:]:
                if key in message and (value is None or message[key] == value):
                    return message
            seen = len(self.messages)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key}={value or '*'} within {timeout}s; got {self.messages}")
            self.receive(min(left, 0.5))
