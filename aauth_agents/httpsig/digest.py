"""``Content-Digest`` (RFC 9530 §2): a Dictionary of algorithm -> Byte Sequence digest.

A covered ``content-digest`` is what integrity-protects a body (-11 §Covered Components):
the signature covers the field, and the field must match the bytes received. ``sha-256``
and ``sha-512`` are the algorithms RFC 9530 §5 registers as Active; the deprecated ones
(``md5``, ``sha``, ``unixsum``, ...) are ignored, never trusted.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping

from http_sfv.dictionary import Dictionary
from http_sfv.item import Item

from ..protocol.errors import ConfigurationError, InvalidSignatureError
from .sfv import canonical_bytes_item, parse_dictionary

#: RFC 9530 §5, status Active.
DIGEST_ALGORITHMS: Mapping[str, Callable[[bytes], bytes]] = {
    "sha-256": lambda data: hashlib.sha256(data).digest(),
    "sha-512": lambda data: hashlib.sha512(data).digest(),
}


def content_digest(body: bytes, algorithms: Iterable[str] = ("sha-256",)) -> str:
    """The ``Content-Digest`` value of ``body``, e.g. ``sha-256=:X48E...:``."""
    if algorithms == ("sha-256",):  # the default: one hash, no structured-field machinery
        sha256 = hashlib.sha256(body if type(body) is bytes else bytes(body)).digest()
        encoded = binascii.b2a_base64(sha256, newline=False).decode("ascii")
        return f"sha-256=:{encoded}:"
    field_value = Dictionary()
    for name in algorithms:
        digest = DIGEST_ALGORITHMS.get(name)
        if digest is None:
            raise ConfigurationError(
                f"unsupported digest algorithm {name!r}; use one of {sorted(DIGEST_ALGORITHMS)}"
            )
        field_value[name] = digest(bytes(body))
    if not field_value:
        raise ConfigurationError("at least one digest algorithm is required")
    return str(field_value)


def parse_content_digest(header: str) -> dict[str, bytes]:
    """The supported digests in a ``Content-Digest`` value; unknown algorithms are dropped.

    Raises :class:`InvalidSignatureError` when the value is not a Dictionary or a supported
    algorithm's value is not a Byte Sequence.
    """
    canonical = canonical_bytes_item(header)
    if canonical is not None:
        algorithm, octets = canonical
        return {algorithm: octets} if algorithm in DIGEST_ALGORITHMS else {}
    members = parse_dictionary(header)
    if members is not None:
        fast: dict[str, bytes] = {}
        for name, (value, _params) in members:
            if name in DIGEST_ALGORITHMS:
                if type(value) is not bytes:
                    raise InvalidSignatureError(f"Content-Digest {name} is not a Byte Sequence")
                fast[name] = value
        return fast
    parsed = Dictionary()
    try:
        parsed.parse(header.encode("latin-1"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidSignatureError("Content-Digest is not a structured Dictionary") from exc
    out: dict[str, bytes] = {}
    for name, member in parsed.items():
        if name not in DIGEST_ALGORITHMS:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise InvalidSignatureError(f"Content-Digest {name} is not a Byte Sequence")
        out[name] = member.value
    return out


def verify_content_digest(header: str, body: bytes | None) -> tuple[str, ...]:
    """Check ``body`` against every supported digest in ``header``; return their names.

    Fails with :class:`InvalidSignatureError` when no supported digest is present or any
    supported digest does not match: a verifier never settles for whichever digest happens
    to match.
    """
    digests = parse_content_digest(header)
    if not digests:
        raise InvalidSignatureError("Content-Digest has no sha-256 or sha-512 digest")
    data = body or b""
    for name, expected in digests.items():
        if not hmac.compare_digest(DIGEST_ALGORITHMS[name](data), expected):
            raise InvalidSignatureError("Content-Digest does not match the body")
    return tuple(digests)


__all__ = ["DIGEST_ALGORITHMS", "content_digest", "parse_content_digest", "verify_content_digest"]
