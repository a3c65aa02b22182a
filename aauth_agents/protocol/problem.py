"""``application/problem+json`` bodies (§Error Response Format, RFC 9457) and turning a
received error response back into the typed error it stands for.

``error`` is the member receivers key on; ``detail`` is optional prose; ``type``, ``title``,
``status`` and ``instance`` may appear with RFC 9457 meaning but never identify an AAuth
error. For a ``401`` the ``Signature-Error`` header, not the body, decides (§Authentication
Errors).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .encoding import loads_json
from .errors import (
    PROBLEM_JSON,
    AAuthError,
    ConfigurationError,
    ExpiredJWTError,
    InvalidInputError,
    InvalidJWTError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingSignatureError,
    ProtocolError,
    SignatureError,
    UnknownKeyError,
    UnsupportedAlgorithmError,
    UnsupportedSchemeError,
)
from .headers import (
    ACCEPT_SIGNATURE_ALG,
    ACCEPT_SIGNATURE_SCHEME,
    SIGNATURE_ERROR,
    parse_accept_signature_alg,
    parse_accept_signature_scheme,
    parse_signature_error,
)
from .wire import WireFormatError, get_field

#: Members ProtocolError's constructor owns; a body's copies are not passed as extras.
_RESERVED = frozenset({"error", "detail", "status", "code"})

_SIGNATURE_ERROR_CLASSES: Mapping[str, type[SignatureError]] = {
    cls.code: cls
    for cls in (
        MissingSignatureError,
        InvalidInputError,
        InvalidSignatureError,
        UnsupportedSchemeError,
        InvalidKeyError,
        UnsupportedAlgorithmError,
        UnknownKeyError,
        InvalidJWTError,
        ExpiredJWTError,
    )
} | {code: SignatureError for code in ("issuer_missing", "issuer_mismatch")}


class MalformedProblemError(WireFormatError):
    """A problem+json body without a string ``error`` member, or not a JSON object."""

    def __init__(self, detail: str):
        super().__init__("problem+json", detail)


class UnexpectedResponseError(ProtocolError):
    """An error response this library cannot read as AAuth: no usable problem body and,
    for a 401, no usable ``Signature-Error``. ``status`` is the response's."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail, code="unexpected_response", status=status)


class UnrecognizedSignatureError(SignatureError):
    """A well-formed ``Signature-Error`` whose code this library does not know. Surfaced with
    the received code; never retried as if it were understood."""

    def __init__(self, code: str, detail: str = "", *, required_input: Iterable[str] | None = None):
        AAuthError.__init__(self, detail or code, code=code, status=401)
        self.required_input = tuple(required_input) if required_input else None
        self.accept_schemes = None
        self.accept_algs = None


@dataclass(frozen=True)
class Problem:
    """A problem+json body: ``error``, optional ``detail`` and every other member."""

    error: str
    detail: str | None = None
    members: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {**self.members, "error": self.error}
        if self.detail is not None:
            body["detail"] = self.detail
        return body

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json()).encode()


def problem_body(error: str, detail: str | None = None, **members: Any) -> dict[str, Any]:
    """Build a body for a server to send with ``Content-Type: application/problem+json``."""
    if not isinstance(error, str) or not error:
        raise ConfigurationError("a problem body needs an error code")
    return Problem(error, detail, members).to_json()


def _load_json(body: bytes | str | Mapping[str, Any]) -> Any:
    if isinstance(body, Mapping):
        return body
    try:
        return loads_json(body)
    except ValueError as exc:  # bad JSON, bad UTF-8, absurd nesting
        raise MalformedProblemError("not JSON") from exc


def parse_problem(body: bytes | str | Mapping[str, Any]) -> Problem:
    """Parse a problem+json body; :class:`MalformedProblemError` if it has no string
    ``error`` or a non-string ``detail``."""
    data = _load_json(body)
    if not isinstance(data, Mapping):
        raise MalformedProblemError("not a JSON object")
    error, detail = data.get("error"), data.get("detail")
    if not isinstance(error, str) or not error:
        raise MalformedProblemError("error must be a non-empty string")
    if detail is not None and not isinstance(detail, str):
        raise MalformedProblemError("detail must be a string")
    members = {k: v for k, v in data.items() if k not in ("error", "detail")}
    return Problem(error, detail, members)


def _signature_error(headers: list[tuple[str, str]], lines: list[str], detail: str) -> AAuthError:
    try:
        info = parse_signature_error(lines)
    except WireFormatError as exc:
        return UnexpectedResponseError(401, f"unreadable Signature-Error: {exc.detail}")
    cls = _SIGNATURE_ERROR_CLASSES.get(info.code)
    if cls is None:
        return UnrecognizedSignatureError(info.code, detail, required_input=info.required_input)

    def tokens(name: str, parse: Callable[[list[str]], tuple[str, ...]]) -> tuple[str, ...] | None:
        found = get_field(headers, name)
        try:
            return tuple(parse(found)) if found else None
        except WireFormatError:
            return None

    return cls(
        detail,
        code=info.code,
        required_input=info.required_input,
        accept_schemes=tokens(ACCEPT_SIGNATURE_SCHEME, parse_accept_signature_scheme),
        accept_algs=tokens(ACCEPT_SIGNATURE_ALG, parse_accept_signature_alg),
    )


def error_from_response(
    status: int,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes | str | Mapping[str, Any] | None,
) -> AAuthError:
    """The typed error a received error response stands for (to raise, not raised here).

    * ``401`` with ``Signature-Error``: the matching :class:`SignatureError` subclass, with
      ``required_input`` and the ``Accept-Signature-*`` values; the body is only prose.
    * otherwise a problem body: :class:`ProtocolError` with its ``error`` code, the
      response's status and the other members as extras.
    * anything else: :class:`UnexpectedResponseError`.
    """
    if isinstance(status, bool) or not isinstance(status, int) or status < 400:
        raise ConfigurationError(f"not an error status: {status!r}")
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    problem: Problem | None = None
    if body is not None:
        try:
            problem = parse_problem(body)
        except MalformedProblemError:
            problem = None
    detail = (problem.detail or problem.error) if problem else ""
    if status == 401:
        lines = get_field(pairs, SIGNATURE_ERROR)
        if lines:
            return _signature_error(pairs, lines, detail)
    if problem is None:
        return UnexpectedResponseError(status, f"HTTP {status} without an AAuth error body")
    extras = {k: v for k, v in problem.members.items() if k not in _RESERVED}
    return ProtocolError(problem.detail or "", code=problem.error, status=status, **extras)


__all__ = [
    "PROBLEM_JSON",
    "MalformedProblemError",
    "Problem",
    "UnexpectedResponseError",
    "UnrecognizedSignatureError",
    "error_from_response",
    "parse_problem",
    "problem_body",
]
