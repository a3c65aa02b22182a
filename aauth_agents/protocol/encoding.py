"""Base64 variants the protocol uses.

JWTs, JWK members, thumbprints and mission ``s256`` values are base64url without padding
(RFC 7515 §2); Structured Field byte sequences (``Signature``, ``Content-Digest``) are standard
base64 with padding (RFC 8941 §3.3.5). Keeping both here stops one leaking into the other.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any


def b64url_encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: str) -> bytes:
    """Strict inverse of :func:`b64url_encode`: no padding, no other alphabet.

    Raises ``ValueError`` on anything else.
    """
    if (
        not isinstance(value, str)
        or len(value) % 4 == 1
        or not value.isascii()
        or "+" in value  # standard base64's own digits and padding: refused here,
        or "/" in value  # accepted below once "-" and "_" are translated to them
        or "=" in value
    ):
        raise ValueError("not unpadded base64url")
    # base64url's own two digits -> standard base64's (RFC 4648 §5); strict mode refuses
    # any other character (no regex pass over a token: this runs on every JWT segment)
    standard = value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4)
    try:
        return binascii.a2b_base64(standard, strict_mode=True)  # type: ignore[call-arg]
    except binascii.Error as exc:
        raise ValueError("not unpadded base64url") from exc


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):  # rare: find the name to report
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"duplicate member {name!r}")
            seen.add(name)
    return members


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: One strict decoder for every parse (``json.loads`` with options builds a new one per call).
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_no_constants)
#: A ``\\uD800``-``\\uDFFF`` escape: the only way a lone surrogate gets into decoded JSON text
#: (UTF-8 cannot carry one). A match may be a false alarm (an escaped backslash before
#: ``uD800``, or a proper pair): :func:`_lone_surrogate` decides.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _lone_surrogate(value: Any) -> bool:
    """Whether a decoded JSON value holds a lone surrogate in a string or a member name (the
    decoder joins a proper pair into one character, so any surrogate left is lone)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


#: The decoder's scanner: ``decode`` is ``scan_once(text, 0)`` plus whitespace and end checks.
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _decode(text: str) -> Any:
    """``_DECODER.decode(text)``: its own first step called directly, without its Python
    wrappers (same values, same errors); anything else through ``decode`` itself."""
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:  # leading whitespace, or no value: decode() tells which
        return _DECODER.decode(text)
    return value if end == len(text) else _DECODER.decode(text)


def loads_json(data: str | bytes) -> Any:
    """Parse received JSON strictly: RFC 8259 only (no ``NaN``/``Infinity``), UTF-8, and no
    duplicate member names -- two parsers of one document must not see two different values
    (an ``issuer``, a ``cnf``) -- nor lone surrogates (``"\\ud800"``: I-JSON, RFC 7493
    §2.1; such text cannot be stored, logged or sent on as UTF-8, so it is refused here, at
    the edge, rather than failing deep in a handler). Raises ``ValueError`` on anything
    else, deep nesting included.
    """
    try:
        if isinstance(data, (bytes, bytearray)):
            text = data.decode("utf-8")  # (strict: UTF-8 never carries a surrogate)
        elif isinstance(data, str):
            text = data
            if _SURROGATE.search(text):
                raise ValueError("JSON text is not valid Unicode (a lone surrogate)")
        else:  # as json.loads
            raise TypeError(f"JSON is text or bytes, not {type(data).__name__}")
        if text.startswith("\ufeff"):  # as json.loads: a byte order mark is not JSON
            raise ValueError("JSON starts with a byte order mark")
        value = _decode(text)
        if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _lone_surrogate(value):
            raise ValueError("a JSON string holds a lone surrogate (\\ud800-\\udfff)")
        return value
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def loads_json_object(data: str | bytes) -> dict[str, Any]:
    """:func:`loads_json` for a document that must be a JSON object (every AAuth body,
    metadata document, JWT segment and mission blob). ``ValueError`` says "not JSON" or
    "not a JSON object"; callers turn it into their own typed error."""
    try:
        value = loads_json(data)
    except (ValueError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError("not JSON") from exc
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value
