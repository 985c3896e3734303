"""ConfigMap and Secret: key rules, base64 data, stringData folded into data, immutability."""

from __future__ import annotations

from tests.unit.model.samples import check, defaulted, sample


def _messages(causes):
    return [f"{c.field}: {c.message}" for c in causes]


def test_samples_are_valid():
    assert check("ConfigMap", sample("ConfigMap")) == []
    assert check("Secret", sample("Secret")) == []


def test_string_data_is_folded_into_data_and_wins():
    secret = sample("Secret")
    secret["stringData"] = {"password": "s3cret", "user": "admin"}
    secret = defaulted("Secret", secret)
    assert "stringData" not in secret
    assert secret["data"] == {"password": "czNjcmV0", "user": "YWRtaW4="}
    assert secret["type"] == "Opaque"


def test_bad_keys_and_values_are_named():
    config_map = sample("ConfigMap")
    config_map["data"] = {"a/b": "x", "ok": 3}
    config_map["binaryData"] = {"bin": "not base64!"}
    messages = " | ".join(_messages(check("ConfigMap", config_map)))
    assert "data[a/b]" in messages and "a valid config key" in messages
    assert "data[ok]" in messages
    assert "binaryData[bin]" in messages and "must be base64 encoded" in messages
    secret = sample("Secret")
    secret["data"] = {"k": "%%%"}
    assert "must be base64 encoded" in " ".join(_messages(check("Secret", secret)))


def test_a_key_in_data_and_binary_data_is_a_duplicate():
    config_map = sample("ConfigMap")
    config_map["binaryData"] = {"mode": "AA=="}
    assert "duplicate" in " ".join(_messages(check("ConfigMap", config_map)))


def test_type_and_immutable_data_cannot_change():
    old = defaulted("Secret", {**sample("Secret"), "immutable": True})
    new = defaulted("Secret", {**sample("Secret"), "immutable": True, "type": "kubernetes.io/tls"})
    new["data"] = {"password": "b3RoZXI="}
    messages = " | ".join(_messages(check("Secret", new, old)))
    assert "type: Invalid value" in messages and "field is immutable" in messages
    assert "data: Invalid value" in messages
    config_map = {**sample("ConfigMap"), "immutable": True}
    assert check("ConfigMap", dict(config_map, data={"mode": "slow"}), config_map) != []
    assert check("ConfigMap", dict(sample("ConfigMap"), data={"mode": "slow"}), sample("ConfigMap")) == []
