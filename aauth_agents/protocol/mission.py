"""Mission blobs and their identifier (§Mission Approval, §Mission Identifier).

The PS persists the approved mission as bytes -- the *mission blob*, a JSON object -- and
names it by ``s256 = base64url(SHA-256(blob))`` without padding. The approval response
carries the blob base64url-encoded as ``mission`` beside its ``s256``; an agent checks the
two agree before first use. The digest is over the bytes as sent: never re-serialize a
decoded blob to recompute it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .encoding import b64url_decode, b64url_encode, loads_json_object
from .errors import ConfigurationError
from .identifiers import validate_agent_identifier, validate_https_url
from .wire import WireFormatError

_S256 = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")  # 32 bytes: last char has 2 zero bits

#: §Mission Approval: members every mission blob MUST include.
REQUIRED_BLOB_MEMBERS = ("approver", "agent", "approved_at", "description")


class InvalidMissionError(WireFormatError):
    """A malformed ``s256``, ``mission`` or approval response (``invalid_request``)."""

    def __init__(self, detail: str):
        super().__init__("mission", detail)


class MissionMismatchError(InvalidMissionError):
    """``s256`` is not the digest of the blob ``mission`` decodes to."""


def mission_s256(blob: bytes) -> str:
    """The mission identifier of ``blob``: unpadded base64url of its SHA-256 digest."""
    if not isinstance(blob, bytes | bytearray):
        raise ConfigurationError("the mission blob is bytes, hashed exactly as persisted")
    return b64url_encode(hashlib.sha256(blob).digest())


def is_s256(value: object) -> bool:
    """True for the form of an ``s256``: 43 base64url characters encoding 32 bytes."""
    return isinstance(value, str) and _S256.fullmatch(value) is not None


def validate_s256(value: object) -> str:
    """Return ``value`` if it has the form of an ``s256`` (e.g. a ``{mission_s256}`` path
    segment, §Mission Endpoint Errors), else raise :class:`InvalidMissionError`."""
    if not is_s256(value):
        raise InvalidMissionError("s256 must be 43 base64url characters (a SHA-256 digest)")
    assert isinstance(value, str)
    return value


def encode_mission(blob: bytes) -> str:
    """The approval response's ``mission`` member for ``blob``."""
    if not isinstance(blob, bytes | bytearray):
        raise ConfigurationError("the mission blob is bytes")
    return b64url_encode(bytes(blob))


def _decode(value: object) -> tuple[bytes, dict[str, Any]]:
    if not isinstance(value, str):
        raise InvalidMissionError("mission must be a base64url string")
    try:
        blob = b64url_decode(value)
    except ValueError as exc:
        raise InvalidMissionError("mission is not unpadded base64url") from exc
    try:
        return blob, loads_json_object(blob)
    except ValueError as exc:
        raise InvalidMissionError(f"mission blob is {exc}") from exc


def decode_mission(value: str) -> dict[str, Any]:
    """Decode a ``mission`` member to the blob's JSON object."""
    return _decode(value)[1]


def validate_mission_blob(blob: Mapping[str, Any]) -> Mapping[str, Any]:
    """§Mission Approval: ``approver`` (https), ``agent`` (agent identifier),
    ``approved_at`` and ``description`` (strings) are required; other members are kept."""
    for name in REQUIRED_BLOB_MEMBERS:
        if not isinstance(blob.get(name), str):
            raise InvalidMissionError(f"mission blob lacks a string {name!r}")
    try:
        validate_https_url(blob["approver"])
        validate_agent_identifier(blob["agent"])
    except ValueError as exc:
        raise InvalidMissionError(str(exc)) from exc
    return blob


def verify_mission_approval(response: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Check a mission approval response: ``s256`` well formed and equal to the digest of
    the bytes ``mission`` decodes to, and the blob carrying its required members.
    Returns ``(blob, s256)``; :class:`MissionMismatchError` when the digest differs."""
    if not isinstance(response, Mapping):
        raise InvalidMissionError("approval response is not a JSON object")
    s256 = validate_s256(response.get("s256"))
    blob_bytes, blob = _decode(response.get("mission"))
    if not hmac.compare_digest(mission_s256(blob_bytes), s256):
        raise MissionMismatchError("s256 does not match the mission blob")
    validate_mission_blob(blob)
    return blob, s256


def build_mission_blob(
    *,
    approver: str,
    agent: str,
    approved_at: str,
    description: str,
    expires_at: str | None = None,
    approved_tools: Iterable[Mapping[str, str]] | None = None,
    approved_resources: Iterable[str] | None = None,
    **extra: Any,
) -> bytes:
    """The bytes a PS persists for an approved mission (compact UTF-8 JSON)."""
    blob: dict[str, Any] = {
        "approver": approver,
        "agent": agent,
        "approved_at": approved_at,
        "description": description,
    }
    if expires_at is not None:
        blob["expires_at"] = expires_at
    if approved_tools is not None:
        blob["approved_tools"] = [dict(t) for t in approved_tools]
    if approved_resources is not None:
        blob["approved_resources"] = list(approved_resources)
    blob.update(extra)
    try:
        validate_mission_blob(blob)
    except InvalidMissionError as exc:
        raise ConfigurationError(exc.detail) from exc
    return json.dumps(blob, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def mission_approval_response(
    blob: bytes,
    *,
    capabilities: Iterable[str] | None = None,
    person_tokens: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """§Mission Approval: the ``200`` body -- ``s256``, ``mission`` and optional extras."""
    body: dict[str, Any] = {"s256": mission_s256(blob), "mission": encode_mission(blob)}
    if capabilities is not None:
        body["capabilities"] = list(capabilities)
    if person_tokens is not None:
        body["person_tokens"] = dict(person_tokens)
    return body


__all__ = [
    "REQUIRED_BLOB_MEMBERS",
    "InvalidMissionError",
    "MissionMismatchError",
    "build_mission_blob",
    "decode_mission",
    "encode_mission",
    "is_s256",
    "mission_approval_response",
    "mission_s256",
    "validate_mission_blob",
    "validate_s256",
    "verify_mission_approval",
]
