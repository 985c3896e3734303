"""ConfigMaps and Secrets with the real kubectl: its generators (protobuf bodies), get's columns, apply's stringData."""

from __future__ import annotations

import base64


def test_secrets_and_configmaps(kubectl):
    kubectl("create", "namespace", "config-kinds")
    ns = ("-n", "config-kinds")
    kubectl(*ns, "create", "secret", "generic", "db", "--from-literal=user=admin", "--from-literal=password=s3cret")
    kubectl(*ns, "create", "configmap", "settings", "--from-literal=mode=fast")
    kubectl(*ns, "apply", "-f", "-", input="apiVersion: v1\nkind: Secret\nmetadata: {name: applied}\n"
                                          "type: kubernetes.io/basic-auth\nstringData: {username: bob}\n")
    secrets = kubectl(*ns, "get", "secrets").stdout.split("\n")
    assert secrets[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert any(line.split()[:3] == ["db", "Opaque", "2"] for line in secrets)
    assert any(line.split()[:3] == ["applied", "kubernetes.io/basic-auth", "1"] for line in secrets)
    value = kubectl(*ns, "get", "secret", "db", "-o", "jsonpath={.data.password}").stdout
    assert base64.b64decode(value) == b"s3cret"
    assert kubectl(*ns, "get", "cm", "settings", "-o", "jsonpath={.data.mode}").stdout == "fast"
    bad = kubectl(*ns, "create", "configmap", "bad", "--from-literal=a/b=x", check=False)
    assert bad.returncode == 1 and "a valid config key must consist of alphanumeric characters" in bad.stderr
    kubectl(*ns, "delete", "secret", "db")
    assert "db" not in kubectl(*ns, "get", "secrets", "-o", "name").stdout
