"""The secure port: TLS from the cluster CA, client certificates and bearer tokens, 401 for the rest.

A real API server in the test's trio run, reached with httpx (a real TLS
client) and the nodeos client; certificates from the real ``cryptography``.
"""

from __future__ import annotations

import json
import ssl
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from nodeos.api.auth.tokens import add_token
from nodeos.api.kinds import resolve
from nodeos.api.server import serve_api, token_path
from nodeos.api.tls import client_certificate, pki_dir
from nodeos.client import ApiClient, Connection
from nodeos.config import default_config
from nodeos.errors import ConfigError
from nodeos.pki import ensure_ca, issue_certificate
from tests.daemon import free_port


def _config(data_dir: Path, port: int, insecure_port: int | None = None):
    api = {"listen": f"127.0.0.1:{port}", "tls": True}
    if insecure_port:
        api["insecure_listen"] = f"127.0.0.1:{insecure_port}"
    return default_config(node={"name": "tls-master", "data_dir": data_dir}, api=api)


@asynccontextmanager
async def _serving(config):
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_api, config)
        yield
        nursery.cancel_scope.cancel()


def _ctx(data_dir: Path, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki_dir_of(data_dir) / "ca.crt"))
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def pki_dir_of(data_dir: Path) -> Path:
    return data_dir / "pki"


async def _get(url: str, ctx: ssl.SSLContext, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx.AsyncClient(verify=ctx) as client:
        return await client.get(url, headers=headers)


async def test_anonymous_reads_health_and_version_only(tmp_path):
    port = free_port()
    async with _serving(_config(tmp_path, port)):
        base, ctx = f"https://127.0.0.1:{port}", _ctx(tmp_path)
        for path in ("/healthz", "/livez", "/readyz", "/readyz/ping", "/version"):
            assert (await _get(base + path, ctx)).status_code == 200, path
        for path in ("/api/v1/namespaces", "/api", "/apis", "/openapi/v2", "/api/v1/namespaces/default/pods"):
            response = await _get(base + path, ctx)
            assert response.status_code == 401, path
            assert response.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                       "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


async def test_tokens_from_the_hashed_file(tmp_path):
    port = free_port()
    config = _config(tmp_path, port)
    tmp_path.mkdir(exist_ok=True)
    # authenticated is not authorized: the policy lets them read (nodeos.api.authz)
    (tmp_path / "policy.toml").write_text('[[bind]]\nrole = "view"\nusers = ["bob"]\ngroups = ["dev"]\n')
    token = add_token(token_path(config), "alice", ("dev",), "u-1")
    assert token not in token_path(config).read_text()  # hashed at rest
    async with _serving(config):
        base, ctx = f"https://127.0.0.1:{port}", _ctx(tmp_path)
        assert (await _get(base + "/api/v1/namespaces", ctx, token)).status_code == 200
        assert (await _get(base + "/api/v1/namespaces", ctx, token + "x")).status_code == 401
        assert (await _get(base + "/api/v1/namespaces", ctx, "not-a-token")).status_code == 401
        async with httpx.AsyncClient(verify=ctx) as client:
            basic = await client.get(base + "/api/v1/namespaces", headers={"Authorization": "Basic YTpi"})
        assert basic.status_code == 401
        # a token added while serving works within the file's re-read interval, no restart
        later = add_token(token_path(config), "bob")
        await trio.sleep(1.1)
        assert (await _get(base + "/api/v1/namespaces", ctx, later)).status_code == 200


async def test_client_certificates_of_the_cluster_ca(tmp_path):
    port = free_port()
    config = _config(tmp_path, port)
    async with _serving(config):
        pair = await trio.to_thread.run_sync(client_certificate, config, "admin", "admin", ("system:masters",))
        async with ApiClient(Connection(server=f"https://127.0.0.1:{port}", verify=str(pki_dir(config) / "ca.crt"),
                                        cert=(str(pair.cert_path), str(pair.key_path)))) as api:
            created = await api.create(resolve("namespaces"), {"metadata": {"name": "tls-made"}})
            assert created["metadata"]["name"] == "tls-made"
        # a serving certificate (serverAuth only) is not a login: OpenSSL refuses its purpose in the handshake
        server_cert = (pki_dir(config) / "apiserver.crt", pki_dir(config) / "apiserver.key")
        with pytest.raises(httpx.HTTPError):
            await _get(f"https://127.0.0.1:{port}/api/v1/namespaces", _ctx(tmp_path, server_cert))


async def test_a_certificate_from_another_ca_fails_the_handshake(tmp_path):
    port = free_port()
    config = _config(tmp_path / "node", port)
    other = ensure_ca(tmp_path / "other")
    pair = issue_certificate(other, tmp_path / "other", "mallory", common_name="admin", usage="client")
    async with _serving(config):
        with pytest.raises(httpx.HTTPError):
            await _get(f"https://127.0.0.1:{port}/api/v1/namespaces",
                       _ctx(tmp_path / "node", (pair.cert_path, pair.key_path)))


async def test_the_insecure_port_stays_plain_and_open(tmp_path):
    port, insecure = free_port(), free_port()
    async with _serving(_config(tmp_path, port, insecure)):
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{insecure}/api/v1/namespaces")
        assert response.status_code == 200
        assert "default" in json.dumps(response.json())


async def test_the_ca_is_reused_and_the_serving_certificate_kept_on_restart(tmp_path):
    config = _config(tmp_path, free_port())
    async with _serving(config):
        pass
    ca, serving = (pki_dir(config) / "ca.crt").read_bytes(), (pki_dir(config) / "apiserver.crt").read_bytes()
    async with _serving(config):
        pass
    assert (pki_dir(config) / "ca.crt").read_bytes() == ca
    assert (pki_dir(config) / "apiserver.crt").read_bytes() == serving


async def test_an_anonymous_exec_websocket_is_refused_with_401(tmp_path):
    port = free_port()
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "v4.channel.k8s.io"}
    async with _serving(_config(tmp_path, port)):
        async with httpx.AsyncClient(verify=_ctx(tmp_path)) as client:
            response = await client.get(f"https://127.0.0.1:{port}/api/v1/namespaces/default/pods/p/exec"
                                        "?command=sh&stdout=true", headers=upgrade)
        assert response.status_code == 401
        assert response.json()["reason"] == "Unauthorized"


def test_the_config_needs_tls_for_a_listen_beyond_loopback(tmp_path):
    with pytest.raises(ConfigError, match=r'\[api\] listen: "0.0.0.0:6443" must be a loopback address'):
        default_config(api={"listen": "0.0.0.0:6443"})
    assert default_config(api={"listen": "0.0.0.0:6443", "tls": True}).api.listen.host == "0.0.0.0"
