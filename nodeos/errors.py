"""The one error hierarchy of nodeos.

    NodeosError
    ├── ConfigError        bad TOML or CLI input; the CLI prints it and exits 2
    ├── StoreError         the store failed (I/O, lost connection)
    │   ├── KeyExists      create of a key that is there
    │   ├── KeyNotFound    update/delete of a key that is not there
    │   ├── RevisionMismatch  compare-and-swap lost
    │   └── Compacted      a watch asked for history the store no longer has
    └── ApiError           anything the API answers with a Status object

Lower layers raise their own exceptions; each boundary translates them into
the most specific one here with ``raise ... from exc``. API errors become
Status objects in exactly one place: ``ApiError.status()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class NodeosError(Exception):
    """Base of every error nodeos raises on purpose."""


class ConfigError(NodeosError):
    """Invalid configuration: one line naming the file and the key."""


class StoreError(NodeosError):
    """The store could not do what was asked."""


class KeyExists(StoreError):
    pass


class KeyNotFound(StoreError):
    pass


class RevisionMismatch(StoreError):
    def __init__(self, key: str, current: int) -> None:
        super().__init__(f"{key}: revision is now {current}")
        self.current = current


class Compacted(StoreError):
    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"revision {requested} is older than the oldest kept ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True)
class Cause:
    """One field-level reason of an Invalid error (Kubernetes' StatusCause)."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class ApiError(NodeosError):
    """An error the API answers as a Kubernetes ``Status`` with ``code``."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    retry_after: int | None = None

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status

    # Constructors for the reasons Kubernetes uses; the message shapes are
    # Kubernetes' own, because kubectl users read them.

    @classmethod
    def not_found(cls, plural: str, name: str, group: str = "") -> ApiError:
        qualified = f"{plural}.{group}" if group else plural
        return cls(404, "NotFound", f'{qualified} "{name}" not found',
                   _details(plural, name, group))

    @classmethod
    def already_exists(cls, plural: str, name: str, group: str = "") -> ApiError:
        qualified = f"{plural}.{group}" if group else plural
        return cls(409, "AlreadyExists", f'{qualified} "{name}" already exists',
                   _details(plural, name, group))

    @classmethod
    def conflict(cls, plural: str, name: str, why: str, group: str = "") -> ApiError:
        qualified = f"{plural}.{group}" if group else plural
        return cls(409, "Conflict", f'Operation cannot be fulfilled on {qualified} "{name}": {why}',
                   _details(plural, name, group))

    @classmethod
    def invalid(cls, kind: str, name: str, causes: list[Cause], group: str = "") -> ApiError:
        qualified = f"{kind}.{group}" if group else kind
        summary = str(causes[0]) if len(causes) == 1 else "[" + ", ".join(map(str, causes)) + "]"
        details = _details(kind, name, group)
        details["causes"] = [c.as_dict() for c in causes]
        return cls(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details)

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)

    @classmethod
    def method_not_allowed(cls, message: str = "") -> ApiError:
        default = "the server does not allow this method on the requested resource"
        return cls(405, "MethodNotAllowed", message or default)

    @classmethod
    def gone(cls, message: str) -> ApiError:
        return cls(410, "Expired", message)

    @classmethod
    def too_large(cls, limit: int) -> ApiError:
        return cls(413, "RequestEntityTooLarge", f"request body is larger than {limit} bytes")

    @classmethod
    def unsupported_media_type(cls, content_type: str) -> ApiError:
        return cls(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}")

    @classmethod
    def forbidden(cls, message: str) -> ApiError:
        return cls(403, "Forbidden", message)

    @classmethod
    def internal(cls, message: str) -> ApiError:
        return cls(500, "InternalError", f"Internal error occurred: {message}")

    @classmethod
    def unavailable(cls, message: str) -> ApiError:
        return cls(503, "ServiceUnavailable", message, retry_after=1)


def _details(kind: str, name: str, group: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    return details
