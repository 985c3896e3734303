"""Swagger 2.0 (``/openapi/v2``): JSON for generic clients, a stub protobuf for kubectl."""

from __future__ import annotations

from typing import Any

from nodeos.api.openapi._common import INFO

# kubectl asks with ``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf``,
# but "@" is not legal in a media type: the answer's Content-Type must be this
# spelling, or Go's mime parser rejects the response.
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def openapi_v2_protobuf() -> bytes:
    """A valid but empty ``/openapi/v2`` in gnostic protobuf, for kubectl (``V2_PROTOBUF``).

    kubectl still falls back to v2 client-side validation where the v3
    check cannot succeed: ``kind: List`` manifests are always checked
    client-side, and an unreachable v2 document fails the whole command.
    A document without definitions makes kubectl skip schema checks ("no
    schema for this kind") and the server validates, which is what we want.
    It holds only ``swagger`` (field 1) and ``info`` (field 2: title 1, version 2).
    """
    info = _pb_string(1, INFO["title"]) + _pb_string(2, INFO["version"])
    return _pb_string(1, "2.0") + _pb_field(2, info)


def _pb_field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    return _pb_varint(number << 3 | 2) + _pb_varint(len(payload)) + payload


def _pb_string(number: int, value: str) -> bytes:
    return _pb_field(number, value.encode())


def _pb_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _v2_ref(value: Any) -> Any:
    """Rewrite ``#/components/schemas/`` references to ``#/definitions/``, recursively."""
    if isinstance(value, dict):
        return {k: (v.replace("#/components/schemas/", "#/definitions/") if k == "$ref" else _v2_ref(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_v2_ref(v) for v in value]
    return value


def v2_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A v3 component schema as a v2 definition (only references differ)."""
    return _v2_ref(schema)


def v2_path_item(item: dict[str, Any]) -> dict[str, Any]:
    """A v3 path item as v2: request bodies become a ``body`` parameter plus ``consumes``."""
    out: dict[str, Any] = {}
    for method, op in item.items():
        if method == "parameters":
            out[method] = [_v2_param(p) for p in op]
            continue
        v2op = {k: v for k, v in op.items() if k not in ("requestBody", "responses", "parameters")}
        params = [_v2_param(p) for p in op.get("parameters", [])]
        body = op.get("requestBody")
        if body:
            content = body["content"]
            v2op["consumes"] = list(content)
            schema = next(iter(content.values()))["schema"]
            params.append({"name": "body", "in": "body", "required": body.get("required", False),
                           "schema": _v2_ref(schema)})
        if params:
            v2op["parameters"] = params
        produces: list[str] = []
        responses: dict[str, Any] = {}
        for code, resp in op["responses"].items():
            entry = {"description": resp["description"]}
            for ct, media in resp.get("content", {}).items():
                if ct not in produces:
                    produces.append(ct)
                entry["schema"] = _v2_ref(media["schema"])
            responses[code] = entry
        v2op["produces"] = produces
        v2op["schemes"] = ["https"]
        v2op["responses"] = responses
        out[method] = v2op
    return out


def _v2_param(p: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in p.items() if k != "schema"}
    out["type"] = p.get("schema", {}).get("type", "string")
    out["uniqueItems"] = True
    return out
