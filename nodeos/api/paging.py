"""``continue`` tokens for paged lists: opaque to clients, checked on the way in."""

from __future__ import annotations

import base64
import binascii
import json

from nodeos.errors import ApiError


def encode_continue(key: str, revision: int) -> str:
    raw = json.dumps({"k": key, "rv": revision}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_continue(token: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        key = data["k"]
        if not isinstance(key, str):
            raise TypeError(key)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError.bad_request("continue key is not valid: the token is malformed") from None
    return key
