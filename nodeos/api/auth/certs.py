"""The user a client certificate stands for: CN is the name, each O a group (Kubernetes' rule).

The TLS handshake has already checked the chain to the cluster CA and the
dates (the listener requires it); here only the subject is read.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nodeos.api.auth.user import User, authenticated


def user_from_certificate(der: bytes) -> User | None:
    """The certificate's user, or None when it names none or is not meant for clients."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    if usages is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        return None  # a serving certificate is not a login
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if not names or not names[0]:
        return None
    groups = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return authenticated(str(names[0]), groups)
