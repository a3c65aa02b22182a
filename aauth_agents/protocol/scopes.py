"""Scope strings (§Scopes): space-separated RFC 6749 §3.3 scope tokens.

``scope = scope-token *( SP scope-token )`` with ``scope-token = 1*( %x21 / %x23-5B /
%x5D-7E )``: one space between tokens, none at either end, no ``"`` or ``\\``. Identity
scopes (OpenID Connect, plus ``tenant``, ``groups`` and ``roles``) ask for claims about the
person; every other scope is resource-defined.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import ConfigurationError
from .wire import WireFormatError

#: §Scopes: identity scopes from OpenID Connect Core, OpenID Enterprise and RFC 9068.
IDENTITY_SCOPES: frozenset[str] = frozenset(
    {"openid", "profile", "email", "address", "phone", "tenant", "groups", "roles"}
)

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


class InvalidScopeError(WireFormatError):
    """A scope string that is not RFC 6749 syntax (``invalid_scope``)."""

    def __init__(self, detail: str):
        super().__init__("scope", detail, code="invalid_scope")


def is_scope_token(value: object) -> bool:
    """Whether ``value`` is one scope token (§Scopes)."""
    return isinstance(value, str) and _SCOPE_TOKEN.fullmatch(value) is not None


def parse_scope(value: str) -> tuple[str, ...]:
    """The scope tokens of ``value`` in order, duplicates dropped. Empty tokens (leading,
    trailing or doubled spaces) and characters outside scope-token raise
    :class:`InvalidScopeError`."""
    if not isinstance(value, str) or not value:
        raise InvalidScopeError("must be a non-empty string")
    tokens = value.split(" ")  # RFC 6749 §3.3: exactly one SP between scope-tokens
    for token in tokens:
        if not token:
            raise InvalidScopeError("empty scope token (extra space)")
        if not is_scope_token(token):
            raise InvalidScopeError("scope token outside %x21 / %x23-5B / %x5D-7E")
    return tuple(dict.fromkeys(tokens))


def serialize_scope(scopes: Iterable[str]) -> str:
    """Join scope tokens with single spaces, duplicates dropped, order kept."""
    tokens = tuple(dict.fromkeys(scopes))
    if not tokens or not all(is_scope_token(t) for t in tokens):
        raise ConfigurationError(f"not a list of scope tokens: {tokens!r}")
    return " ".join(tokens)


def is_identity_scope(scope: str) -> bool:
    """Whether ``scope`` asks for identity claims (``openid``, ``profile``, ...) rather than
    access."""
    return scope in IDENTITY_SCOPES


def split_scopes(scopes: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(resource_scopes, identity_scopes)``, each in the given order."""
    items = tuple(scopes)
    return (
        tuple(s for s in items if s not in IDENTITY_SCOPES),
        tuple(s for s in items if s in IDENTITY_SCOPES),
    )


__all__ = [
    "IDENTITY_SCOPES",
    "InvalidScopeError",
    "is_identity_scope",
    "is_scope_token",
    "parse_scope",
    "serialize_scope",
    "split_scopes",
]
