"""Interaction codes (§Interaction Code Format).

A code is read by a person and compared by eye, so it is drawn from Crockford base32
(no ``I``, ``L``, ``O``, ``U``), carries at least 40 bits (8 symbols) from ``secrets``, may
be grouped with hyphens for display, and is compared case-insensitively after stripping
hyphens and folding the decode aliases ``I``/``L`` -> ``1`` and ``O`` -> ``0``.

The code correlates a browser with a pending request; it authorizes nothing. Single use,
rate limiting and expiry belong to whoever stores pending interactions.
"""

from __future__ import annotations

import hmac
import secrets

from .errors import ConfigurationError
from .wire import WireFormatError

#: The symbols of interaction codes: Crockford base32, no I, L, O or U (§Interaction Code
#: Format).
CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: The fewest symbols a code may have.
MIN_CODE_LENGTH = 8  # 8 symbols x 5 bits = 40 bits, the specification's floor
#: Symbols per group when a code is shown (``ABCD-EFGH``).
DEFAULT_GROUP = 4

_SYMBOLS = frozenset(CROCKFORD_ALPHABET)
_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0"})


class InvalidInteractionCodeError(WireFormatError):
    """A presented code with characters outside Crockford base32 (``invalid_code``, 410)."""

    def __init__(self, detail: str):
        super().__init__("code", detail, code="invalid_code")


def generate_code(length: int = MIN_CODE_LENGTH, *, group: int | None = DEFAULT_GROUP) -> str:
    """A fresh code of ``length`` symbols, hyphen-grouped every ``group`` symbols for display
    (``group=None`` for none): ``generate_code()`` -> ``"7KQ2-M9XD"``."""
    if isinstance(length, bool) or not isinstance(length, int) or length < MIN_CODE_LENGTH:
        raise ConfigurationError(
            f"an interaction code needs at least {MIN_CODE_LENGTH} symbols (40 bits)"
        )
    raw = "".join(secrets.choice(CROCKFORD_ALPHABET) for _ in range(length))
    return format_code(raw, group=group)


def format_code(code: str, *, group: int | None = DEFAULT_GROUP) -> str:
    """Regroup a code for display; the hyphens carry no value (§Interaction Code Format)."""
    value = normalize_code(code)
    if not group:
        return value
    if group < 1:
        raise ConfigurationError("group must be a positive number of symbols")
    return "-".join(value[i : i + group] for i in range(0, len(value), group))


def normalize_code(user_input: str) -> str:
    """The code's value as typed by a person: outer whitespace and hyphens dropped,
    upper-cased, ``I``/``L`` -> ``1`` and ``O`` -> ``0``. Anything else outside the
    alphabet raises :class:`InvalidInteractionCodeError`."""
    if not isinstance(user_input, str):
        raise InvalidInteractionCodeError("must be a string")
    # ASCII first: str.upper() maps some non-ASCII letters (e.g. U+0131) onto ASCII ones.
    if not user_input.isascii():
        raise InvalidInteractionCodeError("contains non-ASCII characters")
    value = user_input.strip().replace("-", "").upper().translate(_ALIASES)
    if not value:
        raise InvalidInteractionCodeError("is empty")
    if not set(value) <= _SYMBOLS:
        raise InvalidInteractionCodeError("contains characters outside Crockford base32")
    return value


def is_valid_emitted_code(code: str) -> bool:
    """True when a server may emit ``code``: only alphabet symbols and grouping hyphens,
    at least 8 symbols (§Interaction Code Format: servers MUST NOT emit anything else)."""
    if not isinstance(code, str) or not code.isascii():
        return False
    symbols = code.replace("-", "")
    return len(symbols) >= MIN_CODE_LENGTH and set(symbols) <= _SYMBOLS


def codes_match(expected: str, presented: str) -> bool:
    """Constant-time comparison of normalized codes. A presented code that cannot be
    normalized simply does not match; an invalid ``expected`` is a programming error."""
    try:
        want = normalize_code(expected)
    except InvalidInteractionCodeError as exc:
        raise ConfigurationError("the expected interaction code is malformed") from exc
    try:
        got = normalize_code(presented)
    except InvalidInteractionCodeError:
        return False
    return hmac.compare_digest(want.encode("ascii"), got.encode("ascii"))


__all__ = [
    "CROCKFORD_ALPHABET",
    "DEFAULT_GROUP",
    "MIN_CODE_LENGTH",
    "InvalidInteractionCodeError",
    "codes_match",
    "format_code",
    "generate_code",
    "is_valid_emitted_code",
    "normalize_code",
]
