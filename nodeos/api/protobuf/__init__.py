"""Decoding of Kubernetes protobuf request bodies.

kubectl's imperative generators (``create namespace|deployment|service``,
``debug``, ``drain``) send their objects as ``application/vnd.kubernetes.protobuf``
rather than JSON. nodeos decodes those bodies into the same dicts a JSON body
would give, so the rest of the API server never sees the difference.
Responses stay JSON: kubectl accepts both.
"""

from nodeos.api.protobuf.decode import decode_object

__all__ = ["decode_object"]
