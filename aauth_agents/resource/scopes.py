"""Deciding whether granted scopes satisfy required ones.

The default is exact matching (§Scopes: scope values are opaque strings the resource
defines). :class:`WildcardScopeMatcher` is the opt-in matcher of the scoped-token seed: a
granted ``*`` satisfies anything and a granted ``prefix:*`` satisfies any ``prefix:...``.

Identity scopes (``email``, ``profile``, ...) are satisfied by the scope value itself or by
the claims it releases: a PS may turn them into claims and leave them out of ``scope``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from ..protocol.errors import ConfigurationError
from ..protocol.scopes import IDENTITY_SCOPES, is_scope_token

#: ``(granted, required) -> satisfied``.
ScopeMatcher = Callable[[Collection[str], str], bool]

#: Claims whose presence shows an identity scope was granted (OpenID Connect Core §5.4,
#: OpenID Enterprise, RFC 9068).
IDENTITY_SCOPE_CLAIMS: Mapping[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "profile": ("name", "given_name", "family_name", "preferred_username", "picture"),
    "email": ("email",),
    "phone": ("phone_number",),
    "address": ("address",),
    "tenant": ("tenant",),
    "groups": ("groups",),
    "roles": ("roles",),
}


def exact_scope_matcher(granted: Collection[str], required: str) -> bool:
    """A required scope is satisfied only by the same scope value."""
    return required in granted


class WildcardScopeMatcher:
    """Opt-in wildcards: ``*`` satisfies every scope; ``p<sep>*`` satisfies every scope that
    starts with ``p<sep>`` (``email:*`` satisfies ``email:read`` and ``email:read:all``, not
    ``emails:read``). Wildcards only widen what is *granted*: a required scope is literal."""

    def __init__(self, separator: str = ":") -> None:
        if not separator or not is_scope_token(separator) or "*" in separator:
            raise ConfigurationError("the wildcard separator must be scope characters, not *")
        self.separator = separator

    def __call__(self, granted: Collection[str], required: str) -> bool:
        if required in granted or "*" in granted:
            return True
        suffix = self.separator + "*"
        for scope in granted:
            if scope.endswith(suffix) and len(scope) > len(suffix):
                prefix = scope[:-1]  # "email:"
                if required.startswith(prefix) and len(required) > len(prefix):
                    return True
        return False


def missing_scopes(
    granted: Collection[str],
    required: Iterable[str],
    matcher: ScopeMatcher = exact_scope_matcher,
    claims: Mapping[str, Any] | None = None,
) -> tuple[str, ...]:
    """The required scopes ``granted`` does not satisfy, in order."""
    missing = []
    for scope in required:
        if matcher(granted, scope):
            continue
        if (
            scope in IDENTITY_SCOPES
            and claims is not None
            and any(
                claims.get(claim) not in (None, "", [], {})
                for claim in IDENTITY_SCOPE_CLAIMS.get(scope, ())
            )
        ):
            continue
        missing.append(scope)
    return tuple(missing)


__all__ = [
    "IDENTITY_SCOPE_CLAIMS",
    "ScopeMatcher",
    "WildcardScopeMatcher",
    "exact_scope_matcher",
    "missing_scopes",
]
