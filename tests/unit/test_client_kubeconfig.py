import base64
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
import yaml

from nodeos.client import ApiClient, Connection, load_connection
from nodeos.errors import ConfigError


def write(path: Path, *, current: str = "", clusters=(), users=(), contexts=()) -> Path:
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": n, "cluster": c} for n, c in clusters],
        "users": [{"name": n, "user": u} for n, u in users],
        "contexts": [{"name": n, "context": c} for n, c in contexts],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_no_config_falls_back_to_localhost_8080():
    conn = load_connection()
    assert conn.server == "http://localhost:8080"
    assert conn.namespace == "default"
    assert conn.token is None


def test_home_config_current_context_with_token_and_namespace(tmp_path):
    home = tmp_path / "home" / ".kube"
    home.mkdir(parents=True)
    write(home / "config", current="dev",
          clusters=[("c", {"server": "https://10.0.0.1:6443", "insecure-skip-tls-verify": True})],
          users=[("u", {"token": "s3cret"})],
          contexts=[("dev", {"cluster": "c", "user": "u", "namespace": "team"})])
    conn = load_connection()
    assert conn == Connection("https://10.0.0.1:6443", token="s3cret", verify=False, namespace="team")
    assert "s3cret" not in repr(conn)


def test_kubeconfig_env_merges_first_file_wins(tmp_path, monkeypatch):
    first = write(tmp_path / "a", current="",
                  clusters=[("c", {"server": "http://first:1"})])
    second = write(tmp_path / "b", current="ctx",
                   clusters=[("c", {"server": "http://second:2"})],
                   users=[("u", {"token": "t"})],
                   contexts=[("ctx", {"cluster": "c", "user": "u"})])
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'missing'}:{second}")
    conn = load_connection()
    assert conn.server == "http://first:1"
    assert conn.token == "t"


def test_flags_override_context_server_token_namespace(tmp_path):
    path = write(tmp_path / "k", current="a",
                 clusters=[("ca", {"server": "https://a:1"}), ("cb", {"server": "https://b:2"})],
                 contexts=[("a", {"cluster": "ca"}), ("b", {"cluster": "cb", "namespace": "nb"})])
    assert load_connection(str(path), context="b").server == "https://b:2"
    conn = load_connection(str(path), context="b", server="127.0.0.1:9", token="x", namespace="n",
                           insecure=True)
    assert (conn.server, conn.token, conn.namespace, conn.verify) == ("https://127.0.0.1:9", "x", "n", False)


def test_relative_paths_and_token_file(tmp_path):
    (tmp_path / "ca.crt").write_text("not used here")
    (tmp_path / "token").write_text("from-file\n")
    path = write(tmp_path / "k", current="x",
                 clusters=[("c", {"server": "https://h:1", "certificate-authority": "ca.crt"})],
                 users=[("u", {"tokenFile": "token"})],
                 contexts=[("x", {"cluster": "c", "user": "u"})])
    conn = load_connection(str(path))
    assert conn.verify == str(tmp_path / "ca.crt")
    assert conn.token == "from-file"


def test_inline_data_is_decoded(tmp_path):
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    path = write(tmp_path / "k", current="x",
                 clusters=[("c", {"server": "https://h:1", "certificate-authority-data": b64("CA")})],
                 users=[("u", {"client-certificate-data": b64("CERT"), "client-key-data": b64("KEY")})],
                 contexts=[("x", {"cluster": "c", "user": "u"})])
    conn = load_connection(str(path))
    assert conn.ca_data == b"CA"
    assert conn.cert_data == (b"CERT", b"KEY")
    assert conn.cert is None


@pytest.mark.parametrize("text", ["clusters: [", "- a list", "clusters: 3"])
def test_bad_file_is_a_one_line_config_error_naming_it(tmp_path, text):
    path = tmp_path / "broken"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_connection(str(path))
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_explicit_file_and_unknown_context(tmp_path):
    with pytest.raises(ConfigError, match="nope"):
        load_connection(str(tmp_path / "nope"))
    path = write(tmp_path / "k", current="")
    with pytest.raises(ConfigError, match="context was not found for specified context: zz"):
        load_connection(str(path), context="zz")


def test_missing_certificate_file_names_the_kubeconfig(tmp_path):
    path = write(tmp_path / "k", current="x",
                 clusters=[("c", {"server": "https://h:1", "certificate-authority": "gone.crt"})],
                 contexts=[("x", {"cluster": "c"})])
    with pytest.raises(ConfigError, match=r"gone\.crt") as info:
        load_connection(str(path))
    assert str(path) in str(info.value)


def test_ssl_context_skips_verification_when_insecure():
    ctx = Connection("https://h:1", verify=False).ssl_context()
    assert ctx.verify_mode == ssl.CERT_NONE
    assert not ctx.check_hostname


@pytest.fixture
def self_signed(tmp_path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=t",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_ssl_context_loads_inline_and_file_material(self_signed):
    cert, key = self_signed
    inline = Connection("https://h:1", ca_data=cert.read_bytes(), cert_data=(cert.read_bytes(), key.read_bytes()))
    assert inline.ssl_context().verify_mode == ssl.CERT_REQUIRED
    assert len(inline.ssl_context().get_ca_certs()) == 1  # only the cluster CA is trusted
    from_files = Connection("https://h:1", verify=str(cert), cert=(str(cert), str(key)))
    assert len(from_files.ssl_context().get_ca_certs()) == 1


def test_bad_tls_material_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot load TLS material"):
        ApiClient(Connection("https://h:1", ca_data=b"not a certificate"))
