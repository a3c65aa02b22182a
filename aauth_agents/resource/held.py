"""A held invocation: the request a 202 keeps until it may run (§Deferred Delivery,
§Approval Pending), and the response it produced, both as JSON for a pending record."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected base64 text")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not base64") from exc


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _pairs(value: object, what: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value
    ):
        raise ValueError(f"{what} must be a list of [name, value] pairs")
    return tuple((p[0], p[1]) for p in value)


@dataclass(frozen=True)
class HeldRequest:
    """The parts of an HTTP request needed to run it again later, as received: ``raw_path``
    and ``query_string`` as on the wire (latin-1 text), header lines in order."""

    method: str
    path: str
    raw_path: str
    query_string: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    root_path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "raw_path": self.raw_path,
            "query_string": self.query_string,
            "headers": [list(h) for h in self.headers],
            "body": _b64(self.body),
            "root_path": self.root_path,
        }

    @classmethod
    def from_json(cls, data: object) -> HeldRequest:
        """Parse :meth:`to_json` output; ``ValueError`` for anything else."""
        if not isinstance(data, Mapping):
            raise ValueError("a held request is a JSON object")
        method = _text(data, "method")
        if not method or not set(method) <= _TOKEN_CHARS:
            raise ValueError("method must be an HTTP token")
        path = _text(data, "path")
        if not path.startswith("/"):
            raise ValueError("path must be absolute")
        return cls(
            method=method,
            path=path,
            raw_path=_text(data, "raw_path"),
            query_string=_text(data, "query_string"),
            headers=_pairs(data.get("headers"), "headers"),
            body=_unb64(data.get("body")),
            root_path=_text(data, "root_path"),
        )


@dataclass(frozen=True)
class HeldResult:
    """The response a held invocation produced."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "headers": [list(h) for h in self.headers],
            "body": _b64(self.body),
        }

    @classmethod
    def from_json(cls, data: object) -> HeldResult:
        if not isinstance(data, Mapping):
            raise ValueError("a held result is a JSON object")
        status = data.get("status")
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        return cls(
            status=status,
            headers=_pairs(data.get("headers"), "headers"),
            body=_unb64(data.get("body")),
        )


def header_pairs(headers: Sequence[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    """ASGI header pairs as text (latin-1, the bytes' own code points)."""
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers)


__all__ = ["HeldRequest", "HeldResult", "header_pairs"]
