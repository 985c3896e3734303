"""The agent port over TLS: its certificate, whom it answers, and the API server's one way of dialling it.

Real parts: certificates from the cluster CA (``nodeos.pki``), the agent's
real server on loopback (hypercorn behind the TLS listener), and the
``AgentDialer`` with the client certificate a TLS master makes for itself.
"""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from nodeos.agent.server import serve_agent
from nodeos.agent.tls import agent_serving_files, check_client, port_credentials
from nodeos.api.agents import AgentDialer, agent_address, reachable, tls_dialer
from nodeos.api.http.join import check_csr, serving_ips
from nodeos.api.metrics import agents
from nodeos.api.tls import ServingFiles, pki_dir
from nodeos.cli.join import JoinPlan, make_csr, worker_config
from nodeos.config import default_config, parse
from nodeos.credentials import check_credentials
from nodeos.errors import ApiError, ConfigError
from nodeos.pki import ensure_ca, ensure_certificate


def _master(tmp_path, tls=True):
    return default_config(node={"name": "m1", "data_dir": tmp_path / "m1"}, api={"tls": tls})


def _node(name: str, port: int, address: str = "127.0.0.1") -> dict:
    return {"metadata": {"name": name},
            "status": {"addresses": [{"type": "InternalIP", "address": address}],
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _summary() -> dict:
    return {"node": {"nodeName": "w1"}, "pods": []}


def _client_pair(config, name: str, user: str, group: str):
    ca = ensure_ca(pki_dir(config))
    return ensure_certificate(ca, pki_dir(config), name, common_name=user, organizations=(group,), usage="client")


# -- which certificate the agent serves ----------------------------------------------------------------------

def test_a_plain_http_cluster_keeps_the_agent_token(tmp_path):
    assert agent_serving_files(_master(tmp_path, tls=False), "127.0.0.1") is None
    worker = default_config(node={"name": "w1", "role": "worker", "data_dir": tmp_path / "w1"},
                            api={"server": "http://127.0.0.1:8080"})
    assert agent_serving_files(worker, "127.0.0.1") is None


async def test_only_the_plain_port_makes_an_agent_token(tmp_path):
    token, files = await port_credentials(_master(tmp_path), "127.0.0.1")
    assert token is None and files is not None
    assert not (tmp_path / "m1" / "agent-token").exists()
    token, files = await port_credentials(_master(tmp_path / "plain", tls=False), "127.0.0.1")
    assert files is None and token and (tmp_path / "plain" / "m1" / "agent-token").exists()


def test_a_tls_master_issues_its_own_agent_certificate(tmp_path):
    files = agent_serving_files(_master(tmp_path), "192.0.2.7")
    assert files is not None and files.cert_path == tmp_path / "m1" / "pki" / "agent.crt"
    cert = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
    assert cert.subject.rfc4514_string() == "O=system:nodes,CN=system:node:m1"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["m1"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    assert agent_serving_files(_master(tmp_path), "192.0.2.7").cert_path.read_bytes() == files.cert_path.read_bytes()


def test_a_worker_serves_the_files_its_config_names(tmp_path):
    ca = ensure_ca(tmp_path / "pki")
    pair = ensure_certificate(ca, tmp_path / "pki", "agent", common_name="system:node:w1", ips=["127.0.0.1"])
    worker = default_config(node={"name": "w1", "role": "worker", "data_dir": tmp_path / "w1"},
                            api={"server": "https://127.0.0.1:6443", "ca_file": ca.cert_path},
                            agent={"cert_file": pair.cert_path, "key_file": pair.key_path})
    assert agent_serving_files(worker, "127.0.0.1") == ServingFiles(ca.cert_path, pair.cert_path, pair.key_path)
    pair.key_path.unlink()
    with pytest.raises(ConfigError, match=r"^<config>: \[agent\] key_file: .*agent\.key: cannot read: No such file"):
        agent_serving_files(worker, "127.0.0.1")


# -- whom it answers -------------------------------------------------------------------------------------------

def test_only_a_masters_client_certificate_passes(tmp_path):
    config = _master(tmp_path)
    masters = _client_pair(config, "apiserver", "system:nodeos:apiserver", "system:masters")
    node = _client_pair(config, "node", "system:node:w2", "system:nodes")
    serving = agent_serving_files(config, "127.0.0.1")

    def der(path):
        return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)

    check_client(der(masters.cert_path))
    with pytest.raises(ApiError) as refused:
        check_client(der(node.cert_path))
    assert refused.value.code == 403 and 'User "system:node:w2" cannot reach' in refused.value.message
    for missing_or_serving in (None, der(serving.cert_path)):  # a serving certificate is no login
        with pytest.raises(ApiError) as anonymous:
            check_client(missing_or_serving)
        assert anonymous.value.code == 401


# -- the dialer ------------------------------------------------------------------------------------------------

def test_the_dialer_says_scheme_address_and_credential():
    node = _node("w1", 10255, "10.0.0.5")
    plain, secure = AgentDialer(token="t"), AgentDialer(context=ssl.create_default_context())
    assert plain.url(node, "stats/summary") == "http://10.0.0.5:10255/stats/summary"
    assert secure.url(node, "/containerLogs/a/b/c") == "https://10.0.0.5:10255/containerLogs/a/b/c"
    assert plain.headers() == {"Authorization": "Bearer t"} and secure.headers() == {}
    assert AgentDialer(token="t").url(_node("w6", 0, "fd00::5"), "x") == "http://[fd00::5]:10250/x"
    assert agent_address({"metadata": {"name": "n"}, "status": {"addresses": [{"type": "Hostname",
                                                                               "address": "n"}]}}) == ("n", 10250)
    with pytest.raises(ApiError) as unavailable:
        reachable(None)
    assert unavailable.value.code == 503


async def test_the_api_server_reaches_a_tls_agent_and_nothing_else_does(tmp_path, nursery):
    config = _master(tmp_path)
    port = _free_port()
    files = agent_serving_files(config, "127.0.0.1")
    await nursery.start(lambda task_status: serve_agent(None, host="127.0.0.1", port=port, tls=files,
                                                        stats=_summary, task_status=task_status))
    dialer = tls_dialer(config)
    assert (pki_dir(config) / "apiserver-agent-client.crt").exists()
    found = await agents.fetch_summaries([_node("w1", port)], dialer, timeout=2.0)
    assert found["w1"]["node"]["nodeName"] == "w1"
    url = f"https://127.0.0.1:{port}/stats/summary"
    ca = str(pki_dir(config) / "ca.crt")
    node = _client_pair(config, "node", "system:node:w2", "system:nodes")
    node_ctx = ssl.create_default_context(cafile=ca)
    node_ctx.load_cert_chain(str(node.cert_path), str(node.key_path))
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca)) as anonymous, \
            httpx.AsyncClient(verify=node_ctx) as other_node:
        bare = await anonymous.get(url)
        token = await anonymous.get(url, headers={"Authorization": "Bearer anything"})
        forbidden = await other_node.get(url)
    assert (bare.status_code, token.status_code, forbidden.status_code) == (401, 401, 403)
    assert forbidden.json()["reason"] == "Forbidden" and forbidden.json()["kind"] == "Status"
    async with httpx.AsyncClient() as plain:  # no TLS at all: no answer
        with pytest.raises(httpx.HTTPError):
            await plain.get(f"http://127.0.0.1:{port}/stats/summary")


async def test_the_dialer_checks_the_agents_certificate(tmp_path, nursery):
    config = _master(tmp_path)
    port, foreign_port = _free_port(), _free_port()
    files = agent_serving_files(config, "127.0.0.2")  # names another address than the one dialled
    foreign_ca = ensure_ca(tmp_path / "foreign")
    foreign = ensure_certificate(foreign_ca, tmp_path / "foreign", "agent", common_name="x", ips=["127.0.0.1"])
    foreign_files = ServingFiles(foreign_ca.cert_path, foreign.cert_path, foreign.key_path)
    for p, f in ((port, files), (foreign_port, foreign_files)):
        await nursery.start(lambda task_status, p=p, f=f: serve_agent(None, host="127.0.0.1", port=p, tls=f,
                                                                      stats=_summary, task_status=task_status))
    dialer = tls_dialer(config)
    found = await agents.fetch_summaries([_node("wrong-name", port), _node("foreign-ca", foreign_port)], dialer,
                                         timeout=2.0)
    assert found == {}
    with pytest.raises(trio.BrokenResourceError) as refused:  # the WebSocket path: the handshake itself fails
        await dialer.open_stream("127.0.0.1", port)
    assert "IP address mismatch" in str(refused.value.__cause__)


# -- the config keys, and what the join writes -------------------------------------------------------------------

def test_agent_keys_are_checked_before_the_daemon_starts(tmp_path):
    with pytest.raises(ConfigError, match=r"\[agent\] key_file: required with cert_file"):
        default_config(agent={"cert_file": "/x/agent.crt"})
    ca = ensure_ca(tmp_path / "pki")
    pair = ensure_certificate(ca, tmp_path / "pki", "agent", common_name="system:node:w1", ips=["127.0.0.1"])
    other = ensure_certificate(ca, tmp_path / "pki", "other", common_name="x")
    api = {"servers": ["https://10.0.0.1:6443"], "ca_file": str(ca.cert_path)}
    check_credentials(default_config(node={"role": "worker"}, api=api,
                                     agent={"cert_file": pair.cert_path, "key_file": pair.key_path}))
    missing = default_config(node={"role": "worker"}, api=api,
                             agent={"cert_file": pair.cert_path, "key_file": tmp_path / "gone.key"})
    with pytest.raises(ConfigError, match=r"^<config>: \[agent\] key_file: .*gone\.key: cannot read: No such file"):
        check_credentials(missing)
    crossed = default_config(node={"role": "worker"}, api=api,
                             agent={"cert_file": pair.cert_path, "key_file": other.key_path})
    with pytest.raises(ConfigError, match=r"\[agent\] cert_file: .* not a usable certificate and key"):
        check_credentials(crossed)


def test_the_join_writes_the_agents_files_and_address(tmp_path):
    plan = JoinPlan("https://10.0.0.1:6443", "t", "h", "w1", tmp_path / "nodeos.toml", tmp_path / "data", None, True,
                    False, "192.0.2.5")
    answer = {"cluster": {"service_cidr": "10.96.0.0/16", "pod_cidr": "10.244.0.0/16", "node_cidr_size": 24,
                          "dns_domain": "cluster.local"}}
    config = parse(worker_config(plan, answer, ["https://10.0.0.1:6443"]), "test")
    assert config.agent.address == "192.0.2.5"
    assert (config.agent.cert_file, config.agent.key_file) == (tmp_path / "data" / "pki" / "agent.crt",
                                                               tmp_path / "data" / "pki" / "agent.key")


def test_the_serving_csr_names_the_node_and_its_address():
    _, pem = make_csr("w1", "192.0.2.5")
    csr = check_csr(pem, "w1", "servingCsr")
    assert serving_ips(csr) == ["192.0.2.5"]
    with pytest.raises(ApiError, match="servingCsr: it must list the node's address"):
        serving_ips(check_csr(make_csr("w1")[1], "w1", "servingCsr"))
    with pytest.raises(ApiError, match="servingCsr: not a PEM certificate signing request"):
        check_csr("junk", "w1", "servingCsr")
