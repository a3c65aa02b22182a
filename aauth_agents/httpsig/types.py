"""Types shared by the signing and verifying halves of the RFC 9421 profile and by the
token layer that resolves ``scheme=jwt`` keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..keys import PublicKey

#: Signature-Key schemes (Signature-Key §Schemes). AAuth requests use ``jwt`` only
#: (§Keying Material); the others are parsed so that they can be rejected precisely.
SCHEME_JWT = "jwt"
#: Signature-Key ``hwk``: a bare public key in the header.
SCHEME_HWK = "hwk"
#: Signature-Key ``jwks_uri``: a key named by its issuer's JWKS.
SCHEME_JWKS_URI = "jwks_uri"
#: Signature-Key ``jkt-jwt``: a JWT naming the key by thumbprint.
SCHEME_JKT_JWT = "jkt-jwt"


@dataclass(frozen=True, init=False)
class SignatureKey:
    """One member of the ``Signature-Key`` dictionary: a scheme and its parameters.

    ``params`` holds the member's parameters as parsed (``jwt`` for ``jwt`` / ``jkt-jwt``;
    ``kty``, ``crv``, ``x``, ``y``, ``alg`` for ``hwk``; ``id``, ``dwk``, ``kid`` for
    ``jwks_uri``).
    """

    scheme: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, scheme: str, params: Mapping[str, Any] | None = None) -> None:
        # The generated __init__ of a frozen dataclass sets each field through
        # object.__setattr__; a verifier parses one Signature-Key per request.
        self.__dict__.update(scheme=scheme, params={} if params is None else params)

    @property
    def jwt(self) -> str | None:
        value = self.params.get("jwt")
        return value if isinstance(value, str) else None

    @classmethod
    def from_jwt(cls, token: str) -> SignatureKey:
        """``scheme=jwt``: the key is the token's ``cnf.jwk`` (the AAuth scheme)."""
        return cls(SCHEME_JWT, {"jwt": token})

    @classmethod
    def from_jkt_jwt(cls, token: str) -> SignatureKey:
        """``scheme=jkt-jwt``: a self-issued key delegation JWT."""
        return cls(SCHEME_JKT_JWT, {"jwt": token})

    @classmethod
    def from_public_key(cls, key: PublicKey) -> SignatureKey:
        """``scheme=hwk``: the public key inline, with ``alg`` and without ``kid``."""
        members = ("kty", "crv", "x", "y", "alg")
        return cls(SCHEME_HWK, {m: str(key.jwk[m]) for m in members if m in key.jwk})

    @classmethod
    def from_jwks_uri(cls, *, id: str, dwk: str, kid: str) -> SignatureKey:
        """``scheme=jwks_uri``: key ``kid`` in the JWKS of ``{id}/.well-known/{dwk}``."""
        return cls(SCHEME_JWKS_URI, {"id": id, "dwk": dwk, "kid": kid})


@dataclass(frozen=True, init=False)
class KeyResolution:
    """What a key resolver returns for a Signature-Key member (§Verification step 5).

    ``jwk`` is the public key the request must be signed with (for ``scheme=jwt`` the
    token's ``cnf.jwk``); the verifier then applies step 6 (algorithm determination) to it.
    ``context`` is passed through untouched on the verification result -- for ``jwt`` the
    verified token, so the caller learns who signed. ``key``, when the resolver already
    holds ``jwk`` loaded (a token's ``cnf``), spares the verifier loading it again; it must
    be ``jwk``'s key, and step 6 still applies to it.
    """

    jwk: Mapping[str, Any]
    context: Any = None
    key: PublicKey | None = field(default=None, compare=False, repr=False)

    def __init__(
        self, jwk: Mapping[str, Any], context: Any = None, key: PublicKey | None = None
    ) -> None:
        # Not the generated __init__ of a frozen dataclass (one object.__setattr__ per
        # field): a resolver returns one per request.
        self.__dict__.update(jwk=jwk, context=context, key=key)


#: Resolves the key of a Signature-Key member that is not self-contained; raises an
#: :class:`~aauth_agents.protocol.errors.AAuthError` when it cannot.
KeyResolver = Callable[[SignatureKey], KeyResolution]
#: The async twin of :data:`KeyResolver`.
AsyncKeyResolver = Callable[[SignatureKey], Awaitable[KeyResolution]]
#: A :data:`KeyResolver` or an :data:`AsyncKeyResolver`.
AnyKeyResolver = KeyResolver | AsyncKeyResolver
