"""The shared secret with which the API server talks to the node agents' servers.

``kubectl logs`` and ``exec`` reach a pod through the API server, which
forwards them to the agent on the pod's node: the agent's server must only
answer the API server. On a TLS cluster that is done with certificates
(``nodeos.agent.tls``, ``nodeos.api.agents``) and this token is never made.
On a plain-HTTP cluster (tests, loopback) both sides read one bearer token
from ``<data_dir>/agent-token``: that covers an all-in-one node and masters
and workers that share the file; a worker elsewhere needs the master's file
copied to it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from nodeos.errors import ConfigError

__all__ = ["TOKEN_FILE", "agent_token"]

TOKEN_FILE = "agent-token"


def agent_token(data_dir: Path) -> str:
    """The token in ``<data_dir>/agent-token``, created (mode 0600) if missing.

    Creation is atomic and race-free: the token is written to a file of its
    own, then linked into place, which fails if another process (the API
    server and the agent of one node start together) got there first; the
    loser reads the winner's token. Blocking file I/O: call it from a thread
    on the trio loop.
    """
    path = Path(data_dir) / TOKEN_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    token = path.read_text().strip()
    if not token:
        raise ConfigError(f"{path} is empty: remove it to have a new token made")
    return token
