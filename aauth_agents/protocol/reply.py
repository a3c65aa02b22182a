"""An HTTP answer as a value: what the resource and the person server decide to send, before
any framework sees it (the ASGI middleware and the Starlette apps only copy it out).

Protocol answers are never cached (``Cache-Control: no-store``, §Token Endpoint and
RFC 9110 §15.5.2 for the 401s): every constructor adds it unless ``cache`` says otherwise
(metadata documents and JWKS, which clients may cache).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import AAuthError
from .problem import PROBLEM_JSON, problem_body

Headers = tuple[tuple[str, str], ...]
JSON = "application/json"
NO_STORE = ("Cache-Control", "no-store")


@dataclass(frozen=True)
class Reply:
    """``status``, ``headers`` (name/value pairs, repeats allowed, no Content-Length) and
    ``body``."""

    status: int
    headers: Headers = ()
    body: bytes = b""

    @classmethod
    def json(
        cls,
        status: int,
        data: Any,
        headers: Iterable[tuple[str, str]] = (),
        *,
        cache: str | None = "no-store",
    ) -> Reply:
        """A JSON document (compact); ``cache`` is its ``Cache-Control``, ``None`` for none."""
        fixed = (("Content-Type", JSON),) + ((("Cache-Control", cache),) if cache else ())
        body = json.dumps(data, separators=(",", ":")).encode()
        return cls(status, _merge(fixed, headers), body)

    @classmethod
    def error(cls, error: AAuthError) -> Reply:
        """The error's own status, headers (``Signature-Error``, ``AAuth-Requirement``...) and
        problem+json body."""
        status, headers, body = error.to_response()
        return cls(status, _merge((NO_STORE,), headers.items()), body)

    @classmethod
    def problem(
        cls, status: int, error: str, detail: str, headers: Iterable[tuple[str, str]] = ()
    ) -> Reply:
        body = json.dumps(problem_body(error, detail)).encode()
        return cls(status, _merge((("Content-Type", PROBLEM_JSON), NO_STORE), headers), body)

    @classmethod
    def empty(cls, status: int, headers: Iterable[tuple[str, str]] = ()) -> Reply:
        return cls(status, _merge((NO_STORE,), headers))

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def _merge(fixed: Headers, extra: Iterable[tuple[str, str]]) -> Headers:
    """``fixed`` then ``extra``; a name given in ``extra`` replaces the fixed one."""
    extra = tuple(extra)
    named = {k.lower() for k, _ in extra}
    return tuple(pair for pair in fixed if pair[0].lower() not in named) + extra


__all__ = ["JSON", "NO_STORE", "Headers", "Reply"]
