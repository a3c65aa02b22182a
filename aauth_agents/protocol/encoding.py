"""Base64 variants the protocol uses.

JWTs, JWK members, thumbprints and mission ``s256`` values are base64url without padding
(RFC 7515 §2); Structured Field byte sequences (``Signature``, ``Content-Digest``) are standard
base64 with padding (RFC 8941 §3.3.5). Keeping both here stops one leaking into the other.
"""

from __future__ import annotations

import base64
import binascii
import re

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def b64url_encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: str) -> bytes:
    """Strict inverse of :func:`b64url_encode`: no padding, no other alphabet.

    Raises ``ValueError`` on anything else.
    """
    if not isinstance(value, str) or not _B64URL.match(value) or len(value) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - regex filters these
        raise ValueError("not unpadded base64url") from exc
