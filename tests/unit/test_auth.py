"""Authentication: the token file, client certificate subjects, and the authenticator's decisions."""

from __future__ import annotations

import pytest

from nodeos.api.auth import ANONYMOUS, Authenticator, TokenFile, TokenFileError, hash_token, user_from_certificate
from nodeos.api.auth.authenticator import PEER_CERT
from nodeos.api.auth.tokens import add_token, parse_tokens
from nodeos.errors import ApiError
from nodeos.pki import ensure_ca, issue_certificate

HASH = hash_token("s3cret")


def test_a_token_line_gives_user_uid_and_groups(tmp_path):
    users = parse_tokens(tmp_path / "tokens", f'# comment\n\n{HASH},alice,u-1,"dev,ops"\n{hash_token("b")},bob\n')
    assert users[HASH].name == "alice" and users[HASH].uid == "u-1"
    assert users[HASH].groups == ("dev", "ops", "system:authenticated")
    assert users[hash_token("b")].groups == ("system:authenticated",)


@pytest.mark.parametrize(("line", "message"), [
    ("s3cret,alice", "must be stored as sha256:<64 hex digits>, not in clear"),
    ("sha256:abc,alice", "must be stored as sha256:<64 hex digits>"),
    (f"{HASH}", "expected sha256:HASH,user"),
    (f"{HASH}, ", "the user name is empty"),
    (f'{HASH},a,b,"c",d', "expected sha256:HASH,user"),
])
def test_a_bad_token_line_is_one_error_naming_file_and_line(tmp_path, line, message):
    with pytest.raises(TokenFileError) as error:
        parse_tokens(tmp_path / "tokens", f"# first\n{line}\n")
    assert str(error.value).startswith(f"{tmp_path / 'tokens'}:2: ")
    assert message in str(error.value)


def test_add_token_stores_only_the_hash_and_is_private(tmp_path):
    path = tmp_path / "tokens"
    token = add_token(path, "robot", ("ci",))
    assert token not in path.read_text() and hash_token(token) in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    file = TokenFile(path)
    file.refresh()
    assert file.user(token).name == "robot"
    assert file.user(token + "x") is None
    with pytest.raises(TokenFileError):
        add_token(path, 'evil,"name')


def test_the_token_file_is_reread_when_it_changes_and_absent_means_none(tmp_path):
    path = tmp_path / "tokens"
    file = TokenFile(path)
    file.refresh()
    assert file.user("anything") is None
    token = add_token(path, "late")
    file.refresh()
    assert file.user(token).name == "late"
    path.unlink()
    file.refresh()
    assert file.user(token) is None


def _cert_der(tmp_path, usage="client", organizations=("dev", "system:masters"), common_name="carol") -> bytes:
    ca = ensure_ca(tmp_path / "ca")
    pair = issue_certificate(ca, tmp_path / "ca", "c", common_name=common_name, usage=usage,
                             organizations=organizations)
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    return x509.load_pem_x509_certificate(pair.cert_path.read_bytes()).public_bytes(Encoding.DER)


def test_a_client_certificate_is_cn_user_and_o_groups(tmp_path):
    user = user_from_certificate(_cert_der(tmp_path))
    assert user.name == "carol"
    assert user.groups == ("dev", "system:masters", "system:authenticated")


def test_a_serving_certificate_or_garbage_is_no_user(tmp_path):
    assert user_from_certificate(_cert_der(tmp_path, usage="server")) is None
    assert user_from_certificate(b"not DER") is None


def _scope(path="/api/v1/pods", token=None, der=None, scheme="Bearer"):
    headers = [(b"authorization", f"{scheme} {token}".encode())] if token is not None else []
    return {"type": "http", "path": path, "headers": headers, "state": {PEER_CERT: der}}


@pytest.fixture
async def authenticator(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f'{HASH},alice,u-1,"dev"\n')
    auth = Authenticator(TokenFile(path))
    await auth.start()
    return auth


async def test_anonymous_only_for_health_and_version(authenticator):
    for path in ("/healthz", "/livez/", "/readyz/etcd", "/version"):
        assert await authenticator.authenticate(_scope(path)) == ANONYMOUS
    for path in ("/api", "/apis/apps/v1", "/api/v1/namespaces", "/versions", "/healthzx"):
        with pytest.raises(ApiError) as error:
            await authenticator.authenticate(_scope(path))
        assert error.value.code == 401 and error.value.reason == "Unauthorized"


async def test_a_token_authenticates_and_a_wrong_one_is_401_even_on_health(authenticator):
    assert (await authenticator.authenticate(_scope(token="s3cret"))).name == "alice"
    for scope in (_scope(token="wrong"), _scope("/healthz", token="wrong"), _scope(token="s3cret", scheme="Basic")):
        with pytest.raises(ApiError) as error:
            await authenticator.authenticate(scope)
        assert error.value.code == 401


async def test_the_client_certificate_wins_over_a_token(authenticator, tmp_path):
    user = await authenticator.authenticate(_scope(token="wrong", der=_cert_der(tmp_path)))
    assert user.name == "carol"


async def test_the_app_puts_the_user_on_the_scope_for_authorization(authenticator, tmp_path):
    from nodeos.api.auth import INSECURE_USER
    from nodeos.api.http import ApiApp

    app = ApiApp(None, None, authenticator)  # /healthz needs no registry
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    secure = {**_scope("/healthz", der=_cert_der(tmp_path)), "method": "GET", "query_string": b""}
    await app(secure, receive, send)
    assert secure["nodeos.user"].name == "carol" and sent[0]["status"] == 200
    plain = {"type": "http", "path": "/healthz", "headers": [], "method": "GET", "query_string": b"", "state": {}}
    await app(plain, receive, send)
    assert plain["nodeos.user"] == INSECURE_USER
