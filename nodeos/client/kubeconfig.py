"""Where the API server is and how to prove who we are: kubeconfig loading.

Files are found and merged the way kubectl does it, so a user's existing
kubeconfig works unchanged:

- ``--kubeconfig FILE`` alone, and it must exist;
- else every file of ``$KUBECONFIG`` (``:``-joined; missing ones skipped),
  merged so that the *first* file to define a cluster, user, context or
  ``current-context`` wins;
- else ``~/.kube/config`` if present;
- with no file at all, kubectl's historical default ``http://localhost:8080``.

Relative paths inside a file are relative to that file's directory. Command
line overrides (``--context``, ``--server``, ``--token``,
``--insecure-skip-tls-verify``, ``--namespace``) are applied last.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nodeos.errors import ConfigError

DEFAULT_SERVER = "http://localhost:8080"


@dataclass(frozen=True)
class Connection:
    """Everything needed to reach one API server as one user.

    ``verify`` is ``False`` (skip TLS verification), ``True`` (system CAs) or
    a CA bundle path; ``cert`` is a (certificate, key) pair of paths. The
    ``*_data`` fields carry the same material inline, as kubeconfig's
    ``*-data`` keys do.
    """

    server: str
    token: str | None = field(default=None, repr=False)
    verify: bool | str = True
    cert: tuple[str, str] | None = None
    namespace: str = "default"
    ca_data: bytes | None = field(default=None, repr=False)
    cert_data: tuple[bytes, bytes] | None = field(default=None, repr=False)

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for this connection (httpx's ``verify=``)."""
        # A cluster's own CA replaces the system ones, as in kubectl: trust only it.
        cafile = self.verify if isinstance(self.verify, str) else None
        cadata = self.ca_data.decode() if self.ca_data else None
        ctx = ssl.create_default_context(cafile=cafile, cadata=cadata)
        if self.verify is False:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert:
            ctx.load_cert_chain(*self.cert)
        elif self.cert_data:
            _load_cert_data(ctx, *self.cert_data)
        return ctx


def _load_cert_data(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl only loads client certificates from files: write them to a private
    # directory for the time of the call.
    with tempfile.TemporaryDirectory(prefix="nodeos-tls-") as tmp:
        paths = []
        for name, data in (("cert.pem", cert), ("key.pem", key)):
            path = os.path.join(tmp, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            paths.append(path)
        ctx.load_cert_chain(paths[0], paths[1])


def load_connection(
    kubeconfig: str | None = None,
    *,
    context: str | None = None,
    server: str | None = None,
    token: str | None = None,
    insecure: bool = False,
    namespace: str | None = None,
) -> Connection:
    """Build a Connection from kubeconfig files and command line overrides."""
    merged = _merge([(p, _read(p)) for p in _config_files(kubeconfig)])
    ctx_name = context or merged["current-context"]
    ctx: dict[str, Any] = {}
    if ctx_name:
        if ctx_name not in merged["contexts"]:
            raise ConfigError(f"context was not found for specified context: {ctx_name}")
        ctx = merged["contexts"][ctx_name]
    cluster = _named(merged["clusters"], ctx.get("cluster"), "cluster")
    user = _named(merged["users"], ctx.get("user"), "user")
    tls = _tls(cluster, user)
    return Connection(
        server=_normalize(server or cluster.get("server") or DEFAULT_SERVER),
        token=token or _token(user),
        verify=False if insecure or cluster.get("insecure-skip-tls-verify") else tls["verify"],
        cert=tls["cert"],
        namespace=namespace or ctx.get("namespace") or "default",
        ca_data=None if insecure else _b64(cluster, "certificate-authority-data"),
        cert_data=tls["cert_data"],
    )


def _config_files(explicit: str | None) -> list[Path]:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"stat {explicit}: no such file or directory")
        return [path]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p and Path(p).expanduser().is_file()]
    default = Path.home() / ".kube" / "config"
    return [default] if default.is_file() else []


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot load kubeconfig: {_one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: cannot load kubeconfig: not a mapping")
    return data


def _merge(files: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """Merge kubeconfig documents; the first file to set a name wins."""
    merged: dict[str, Any] = {"current-context": "", "clusters": {}, "users": {}, "contexts": {}}
    for path, data in files:
        merged["current-context"] = merged["current-context"] or data.get("current-context") or ""
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            entries = data.get(section) or []
            if not isinstance(entries, list):
                raise ConfigError(f"{path}: cannot load kubeconfig: {section} is not a list")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get(inner) or {}, dict):
                    raise ConfigError(f"{path}: cannot load kubeconfig: bad entry in {section}")
                body = {**(entry.get(inner) or {}), "_dir": str(path.parent), "_file": str(path)}
                merged[section].setdefault(str(entry.get("name", "")), body)
    return merged


def _named(entries: dict[str, dict[str, Any]], name: str | None, what: str) -> dict[str, Any]:
    if not name:
        return {}
    if name not in entries:
        raise ConfigError(f"{what} {name!r} not found in kubeconfig")
    return entries[name]


def _tls(cluster: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    verify: bool | str = _path(cluster, "certificate-authority") or True
    cert_path, key_path = _path(user, "client-certificate"), _path(user, "client-key")
    cert_data = _b64(user, "client-certificate-data")
    key_data = _b64(user, "client-key-data")
    if cert_path and key_path and not (cert_data or key_data):
        return {"verify": verify, "cert": (cert_path, key_path), "cert_data": None}
    cert_data = cert_data or _file_bytes(user, cert_path)
    key_data = key_data or _file_bytes(user, key_path)
    pair = (cert_data, key_data) if cert_data and key_data else None
    return {"verify": verify, "cert": None, "cert_data": pair}


def _path(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if not value:
        return None
    path = Path(entry.get("_dir", ".")) / Path(str(value)).expanduser()
    if not path.is_file():
        raise ConfigError(f"{entry.get('_file')}: {key} {path}: no such file")
    return str(path)


def _file_bytes(entry: dict[str, Any], path: str | None) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{entry.get('_file')}: cannot read {path}: {exc.strerror}") from exc


def _b64(entry: dict[str, Any], key: str) -> bytes | None:
    value = entry.get(key)
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{entry.get('_file')}: {key} is not valid base64") from exc


def _token(user: dict[str, Any]) -> str | None:
    if user.get("token"):
        return str(user["token"])
    path = _path(user, "tokenFile")
    data = _file_bytes(user, path)
    return data.decode().strip() if data else None


def _normalize(server: str) -> str:
    if "://" not in server:
        server = f"https://{server}"
    return server.rstrip("/")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
