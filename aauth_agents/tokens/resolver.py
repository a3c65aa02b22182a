"""Signature-Key ``scheme=jwt`` resolution for the HTTP signature verifier.

§Keying Material / §Verification step 5: under ``scheme=jwt`` the request's signing key is the
presented token's ``cnf.jwk``, which the verifier does not hold until the token itself has been
verified. The resolver verifies the token (with ``signing_key=None``: ``cnf`` is by construction
the key the request must be signed with), and hands the verifier ``cnf.jwk`` plus the verified
token as context. It dispatches on the header ``typ``; a ``typ`` not in ``accept`` is refused,
which is how a resource that needs an auth token refuses a person token
(§Person Token Is Not Authorization).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeAlias

from ..clock import Clock, system_clock
from ..httpsig.types import SCHEME_JWT, KeyResolution, SignatureKey
from ..protocol.errors import ConfigurationError, TokenError, UnsupportedSchemeError
from .checks import (
    KINDS,
    _asigned_key,
    _Kind,
    _Policy,
    _policy,
    _precheck,
    _show,
    _signed_key,
    _Unverified,
)
from .claims import _agent, _auth, _person
from .issuer_keys import IssuerKeys
from .jws import peek
from .types import TYP_AGENT, TYP_AUTH, TYP_PERSON, AgentToken, AuthToken, PersonToken
from .verify import IAT_SKEW

#: A token an agent presents in ``Signature-Key`` (a resource token never is).
PresentedToken: TypeAlias = AgentToken | PersonToken | AuthToken

#: Token types a request may be signed under (resource tokens carry no ``cnf``).
PRESENTABLE = (TYP_AGENT, TYP_PERSON, TYP_AUTH)

#: The claims phase of each token a request may present, given the recipient's audience
#: (checked present for person and auth tokens when the resolver is built).
_CLAIMS: Mapping[str, Callable[[_Unverified, _Policy, str], PresentedToken]] = {
    TYP_AGENT: lambda pre, policy, audience: _agent(pre, policy, None),
    TYP_PERSON: lambda pre, policy, audience: _person(pre, policy, audience, None),
    TYP_AUTH: lambda pre, policy, audience: _auth(pre, policy, audience=audience, signing_key=None),
}


class _Resolver:
    """Shared by the sync and async resolvers: everything except the key lookup."""

    def __init__(
        self,
        keys: IssuerKeys,
        audience: str | None,
        accept: Iterable[str],
        clock: Clock,
        leeway: float,
        iat_skew: float,
    ) -> None:
        self.accept = tuple(accept)
        if not self.accept or any(typ not in PRESENTABLE for typ in self.accept):
            raise ConfigurationError(f"accept must be a non-empty subset of {PRESENTABLE}")
        if audience is None and (TYP_PERSON in self.accept or TYP_AUTH in self.accept):
            raise ConfigurationError("person and auth tokens need the recipient's audience")
        self.keys, self.audience, self.clock = keys, audience, clock
        self.leeway, self.iat_skew = leeway, iat_skew
        #: The code of a token that is not even well formed: the one accepted type's, or
        #: ``invalid_request`` when several are accepted.
        self.code = KINDS[self.accept[0]].invalid if len(self.accept) == 1 else "invalid_request"

    def precheck(self, signature_key: SignatureKey) -> _Unverified:
        if signature_key.scheme != SCHEME_JWT:
            raise UnsupportedSchemeError(
                f"scheme {signature_key.scheme!r} is not accepted", accept_schemes=[SCHEME_JWT]
            )
        token = signature_key.jwt
        header, claims = peek(token, code=self.code)
        typ = header.get("typ")
        if typ not in self.accept:
            raise TokenError(
                f"a {_show(typ)} token is not accepted here; need {self.accept}",
                code=self.code,
                reason="typ",
            )
        kind: _Kind = KINDS[str(typ)]
        return _precheck(token, kind, peeked=(header, claims))

    def finish(self, pre: _Unverified) -> KeyResolution:
        policy = _policy(self.clock, self.leeway, self.iat_skew)
        token = _CLAIMS[pre.kind.typ](pre, policy, self.audience or "")
        return KeyResolution(token.cnf.to_jwk(), token, token.cnf)


def token_key_resolver(
    *,
    keys: IssuerKeys,
    audience: str | None,
    accept: Iterable[str] = PRESENTABLE,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
) -> Callable[[SignatureKey], KeyResolution]:
    """A Signature-Key resolver for ``scheme=jwt``: verifies the presented agent, person or
    auth token (those in ``accept``) and returns its ``cnf.jwk`` with the verified token as
    ``context``. ``audience`` is the recipient's identifier (needed for person and auth
    tokens). Raises :class:`TokenError`; the verifier renders it as a Signature-Error."""
    resolver = _Resolver(keys, audience, accept, clock, leeway, iat_skew)

    def resolve(signature_key: SignatureKey) -> KeyResolution:
        pre = resolver.precheck(signature_key)
        _signed_key(resolver.keys, pre)
        return resolver.finish(pre)

    return resolve


def async_token_key_resolver(
    *,
    keys: IssuerKeys,
    audience: str | None,
    accept: Iterable[str] = PRESENTABLE,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
) -> Callable[[SignatureKey], Awaitable[KeyResolution]]:
    """Async :func:`token_key_resolver`: the key lookup is awaited."""
    resolver = _Resolver(keys, audience, accept, clock, leeway, iat_skew)

    async def resolve(signature_key: SignatureKey) -> KeyResolution:
        pre = resolver.precheck(signature_key)
        await _asigned_key(resolver.keys, pre)
        return resolver.finish(pre)

    return resolve


__all__ = ["PRESENTABLE", "PresentedToken", "async_token_key_resolver", "token_key_resolver"]
