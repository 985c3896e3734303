"""The join's server side on a real TLS API server: cluster-info for anyone, bootstrap tokens, POST /nodeos/v1/join.

The server runs in the test's trio run; clients are httpx over real TLS with
the cluster CA; keys and CSRs come from the real ``cryptography``.
"""

from __future__ import annotations

import datetime as dt
import ssl
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from nodeos.api.auth.bootstrap import new_token, token_secret
from nodeos.api.clusterinfo import ca_from_kubeconfig, ca_hash
from nodeos.api.server import serve_api
from nodeos.api.tls import pki_dir
from nodeos.config import default_config
from nodeos.pki import ensure_ca
from tests.daemon import free_port
from tests.etcd_fixtures import etcd_single  # noqa: F401  (fixture)

INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"


def _config(data_dir: Path, port: int, insecure: int, store: dict | None = None):
    return default_config(node={"name": "join-master", "data_dir": data_dir}, store=store or {},
                          api={"listen": f"127.0.0.1:{port}", "tls": True, "insecure_listen": f"127.0.0.1:{insecure}"})


@asynccontextmanager
async def _master(tmp_path: Path, store: dict | None = None):
    port, insecure = free_port(), free_port()
    config = _config(tmp_path, port, insecure, store)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_api, config)
        yield config, f"https://127.0.0.1:{port}", f"http://127.0.0.1:{insecure}"
        nursery.cancel_scope.cancel()


def _csr(name: str = "someone-else", key=None) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


async def _token(admin: str, ttl: dt.timedelta | None = dt.timedelta(hours=1)) -> str:
    token = new_token()
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{admin}/api/v1/namespaces/kube-system/secrets", json=token_secret(token, ttl))
    assert response.status_code == 201, response.text
    return str(token)


async def _join(url: str, ctx: ssl.SSLContext, token: str, name: str = "w1", csr: str | None = None,
                serving: str | None = None):
    from nodeos.cli.join import make_csr

    body = {"nodeName": name, "csr": csr or _csr(), "servingCsr": serving or make_csr(name, "127.0.0.1")[1]}
    if serving == "absent":
        del body["servingCsr"]
    async with httpx.AsyncClient(verify=ctx) as client:
        return await client.post(f"{url}/nodeos/v1/join", json=body, headers={"Authorization": f"Bearer {token}"})


def _ctx(config) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki_dir(config) / "ca.crt"))


async def test_cluster_info_is_readable_anonymously_and_names_the_ca(tmp_path):
    async with _master(tmp_path) as (config, url, _):
        async with httpx.AsyncClient(verify=False) as client:  # the joining host trusts nothing yet
            info = await client.get(url + INFO)
            other = await client.get(url + "/api/v1/namespaces/kube-public/configmaps")
            write = await client.delete(url + INFO)
        assert info.status_code == 200, info.text
        ca, server = ca_from_kubeconfig(info.json()["data"]["kubeconfig"])
        assert ca == (pki_dir(config) / "ca.crt").read_bytes()
        assert server == url
        assert ca_hash(ca).startswith("sha256:") and len(ca_hash(ca)) == 71
        assert (other.status_code, write.status_code) == (401, 401)  # exactly that one object, read only


async def test_a_token_joins_once_and_the_server_names_the_node(tmp_path):
    async with _master(tmp_path) as (config, url, admin):
        token = await _token(admin)
        async with httpx.AsyncClient(verify=_ctx(config)) as client:  # the token is good for the join alone
            secrets = await client.get(f"{url}/api/v1/namespaces/kube-system/secrets",
                                       headers={"Authorization": f"Bearer {token}"})
        assert secrets.status_code == 403, secrets.text
        response = await _join(url, _ctx(config), token)
        assert response.status_code == 200, response.text
        answer = response.json()
        cert = x509.load_pem_x509_certificate(answer["certificate"].encode())
        assert cert.subject.rfc4514_string() == "O=system:nodes,CN=system:node:w1"  # not what the CSR asked
        assert answer["ca"].encode() == (pki_dir(config) / "ca.crt").read_bytes()
        assert answer["servers"][0] == url
        assert answer["cluster"] == {"service_cidr": "10.96.0.0/16", "pod_cidr": "10.244.0.0/16",
                                     "node_cidr_size": 24, "dns_domain": "cluster.local"}
        # the agent port's serving certificate: the node's name and the address its serving CSR listed, and
        # no shared agent token any more (the API server dials agents with its own client certificate)
        serving = x509.load_pem_x509_certificate(answer["servingCertificate"].encode())
        assert serving.subject.rfc4514_string() == "O=system:nodes,CN=system:node:w1"
        sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName) == ["w1"]
        assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        usages = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usages) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
        assert "agentToken" not in answer
        again = await _join(url, _ctx(config), token, "w2")
        assert again.status_code == 401
        async with httpx.AsyncClient() as client:
            secret = (await client.get(f"{admin}/api/v1/namespaces/kube-system/secrets/"
                                       f"bootstrap-token-{token[:6]}")).json()
        assert "token-secret" not in secret["data"] and token[7:] not in str(secret)  # only its hash is kept
        assert secret["data"]["used-by"] == "dzE="  # base64 of w1


async def test_racing_joins_with_one_token_exactly_one_wins(tmp_path):
    async with _master(tmp_path) as (config, url, admin):
        token = await _token(admin)
        codes: list[int] = []

        async def join(name: str) -> None:
            codes.append((await _join(url, _ctx(config), token, name)).status_code)

        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(join, f"racer-{i}")
        assert sorted(codes) == [200, 401, 401, 401, 401]


async def test_expired_unknown_and_wrong_tokens_are_401(tmp_path):
    async with _master(tmp_path) as (config, url, admin):
        expired = await _token(admin, dt.timedelta(seconds=-1))
        good = await _token(admin)
        for token in (expired, "abcdef.0123456789abcdef", good[:7] + "0" * 16):
            response = await _join(url, _ctx(config), token)
            assert response.status_code == 401, token
            assert response.json()["reason"] == "Unauthorized"
        assert (await _join(url, _ctx(config), good)).status_code == 200


@pytest.mark.parametrize(("name", "csr", "serving", "message"), [
    ("Bad_Name", None, None, "nodeName \"Bad_Name\": a lowercase RFC 1123 subdomain"),
    ("w1", "not a csr", None, "csr: not a PEM certificate signing request"),
    ("w1", "weak", None, "csr: an RSA key of 1024 bits is too weak"),
    ("w1", None, "absent", "nodeName, csr and servingCsr must be strings"),
    ("w1", None, "not a csr", "servingCsr: not a PEM certificate signing request"),
    ("w1", None, "no address", "servingCsr: it must list the node's address"),
])
async def test_bad_requests_are_one_clear_status_and_keep_the_token(tmp_path, name, csr, serving, message):
    if csr == "weak":
        csr = _csr(key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    if serving == "no address":
        serving = _csr()
    async with _master(tmp_path) as (config, url, admin):
        token = await _token(admin)
        response = await _join(url, _ctx(config), token, name, csr, serving)
        assert response.status_code == 400
        assert message in response.json()["message"]
        assert (await _join(url, _ctx(config), token)).status_code == 200  # the refusal did not spend it


async def test_only_bootstrap_users_may_join(tmp_path):
    async with _master(tmp_path) as (config, url, admin):
        async with httpx.AsyncClient() as client:  # the insecure port's administrator is no bootstrap token
            response = await client.post(f"{admin}/nodeos/v1/join", json={"nodeName": "w1", "csr": _csr()})
        assert response.status_code == 403
        async with httpx.AsyncClient(verify=_ctx(config)) as client:
            anonymous = await client.post(f"{url}/nodeos/v1/join", json={"nodeName": "w1", "csr": _csr()})
        assert anonymous.status_code == 401


async def test_two_masters_on_etcd_share_the_tokens(tmp_path, etcd_single):  # noqa: F811
    """The token's state is in the store: made through one master, spent through the other, once."""
    store = {"backend": "etcd", "etcd_endpoints": etcd_single.endpoints, "etcd_prefix": "/join-two-masters"}
    ensure_ca(tmp_path / "a" / "pki")
    (tmp_path / "b" / "pki").mkdir(parents=True)
    for name in ("ca.crt", "ca.key"):  # one cluster, one CA (nodeos etcd join copies it the same way)
        (tmp_path / "b" / "pki" / name).write_bytes((tmp_path / "a" / "pki" / name).read_bytes())
    async with _master(tmp_path / "a", store) as (config_a, url_a, admin_a), \
            _master(tmp_path / "b", store) as (_, url_b, _):
        ctx = _ctx(config_a)
        token = await _token(admin_a)
        assert (await _join(url_b, ctx, token, "via-b")).status_code == 200
        assert (await _join(url_a, ctx, token, "via-a")).status_code == 401
        racing = await _token(admin_a)
        codes: list[int] = []

        async def join(url: str, name: str) -> None:
            codes.append((await _join(url, ctx, racing, name)).status_code)

        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(join, url_a, f"a-{i}")
                nursery.start_soon(join, url_b, f"b-{i}")
        assert sorted(codes) == [200, 401, 401, 401, 401, 401]


async def test_the_join_trusts_only_the_pinned_ca(tmp_path):
    """nodeos join's second step: a server whose certificate is not from the pinned CA gets no token."""
    from nodeos.cli.join import JoinError, discover, make_csr, request_join

    async with _master(tmp_path / "m") as (config, url, admin):
        pem = (pki_dir(config) / "ca.crt").read_bytes()
        assert await discover(url, ca_hash(pem)) == pem
        other = ensure_ca(tmp_path / "other").cert_path.read_bytes()
        token = await _token(admin)
        with pytest.raises(JoinError, match=r"does not verify with the pinned CA .*certificate verify failed"):
            await request_join(url, other, token, "w1", make_csr("w1")[1], make_csr("w1", "127.0.0.1")[1])
        alias = next((name for name in ("runsc", "localhost.localdomain") if _resolves(name)), None)
        if alias is not None:  # a name of this host that its certificate does not list
            with pytest.raises(JoinError, match=r"does not verify with the pinned CA .*mismatch"):
                await request_join(url.replace("127.0.0.1", alias), pem, token, "w1", make_csr("w1")[1],
                                   make_csr("w1", "127.0.0.1")[1])
        assert (await _join(url, _ctx(config), token)).status_code == 200  # none of that reached the server


def _resolves(name: str) -> bool:
    import socket

    try:
        return socket.gethostbyname(name) == "127.0.0.1"
    except OSError:
        return False
