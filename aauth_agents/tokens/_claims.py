"""Claim value shapes shared by minting (ConfigurationError) and verifying (TokenError)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..protocol.encoding import b64url_decode

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), joined by single spaces.
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")

#: Members RFC 7638 (and §Request-Context Binding step 6) require for each ``kty``.
KTY_MEMBERS: dict[str, tuple[str, ...]] = {
    "OKP": ("crv", "x"),
    "EC": ("crv", "x", "y"),
    "RSA": ("n", "e"),
}

#: Private JWK members: a ``cnf.jwk`` carrying one is a leaked key, never a binding.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def is_sha256_b64url(value: object) -> bool:
    """A base64url SHA-256 digest (``mission_s256``, ``agent_jkt``): 43 chars, 32 bytes."""
    if not isinstance(value, str) or len(value) != 43:
        return False
    try:
        return len(b64url_decode(value)) == 32
    except ValueError:
        return False


def parse_scope(value: object) -> tuple[str, ...] | None:
    """The scope tokens of a space-separated ``scope`` string; ``None`` if malformed."""
    if not isinstance(value, str):
        return None
    if value == "":
        return ()
    tokens = tuple(value.split(" "))
    if not all(_SCOPE_TOKEN.match(token) for token in tokens):
        return None
    return tokens


def format_scope(scope: str | Iterable[str]) -> str | None:
    """A ``scope`` claim from a string or an iterable of tokens, duplicates dropped;
    ``None`` if any token is malformed."""
    tokens = parse_scope(scope) if isinstance(scope, str) else tuple(scope)
    if tokens is None or not all(isinstance(t, str) and _SCOPE_TOKEN.match(t) for t in tokens):
        return None
    return " ".join(dict.fromkeys(tokens))
