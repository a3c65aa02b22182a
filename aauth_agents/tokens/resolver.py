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
from typing import Any, NamedTuple, TypeAlias

from ..clock import Clock, system_clock
from ..httpsig.types import SCHEME_JWT, KeyResolution, SignatureKey
from ..keys import KEY_TYPE_MEMBERS, PRIVATE_MEMBERS, PublicKey
from ..protocol.encoding import b64url_decode, loads_json_object
from ..protocol.errors import (
    AAuthError,
    ConfigurationError,
    TokenError,
    UnsupportedSchemeError,
)
from ..protocol.identifiers import is_agent_identifier, is_server_identifier
from .checks import (
    AGENT,
    KINDS,
    _achecked_key,
    _asigned_key,
    _checked_key,
    _Kind,
    _lookup_failed,
    _Policy,
    _policy,
    _precheck,
    _show,
    _signed_key,
    _strings,
    _Unverified,
)
from .claims import _agent, _auth, _person
from .issuer_keys import IssuerKeys
from .jws import _DIGITS, _UNUSED_BITS, JWS_ALGORITHMS, MAX_TOKEN_LENGTH, peek
from .types import (
    DWK_AGENT,
    TYP_AGENT,
    TYP_AUTH,
    TYP_PERSON,
    AgentToken,
    AuthToken,
    PersonToken,
)
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


# -- the fast path: a well-formed agent token ------------------------------------------------
#
# One pass over an agent token (§Agent Token Verification) that makes every check of the
# full path -- :func:`~.jws.peek`, :func:`~.checks._precheck`, :func:`~.claims._agent` --
# on a token where each passes in the ordinary way, and answers ``None`` (the full path then
# runs, and raises its own errors) for anything else, unusual but valid cases included
# (``nbf``, float times, an unknown header member type). No I/O before every check has
# passed: the key lookup and the signature come last, with the full path's errors.

#: Agent-token JOSE headers by their exact segment: ``(header, alg, kid)``, stored only for
#: a segment passing every header check of the full path (canonical base64url JSON object
#: of plain members; ``typ``, ``alg``, no ``crit``, a ``kid``, no ``b64: false``). A
#: function of the segment alone (RFC 7515 §7.1); bounded, cleared when full.
_AGENT_HEADERS: dict[str, tuple[dict[str, Any], str, str]] = {}
_AGENT_HEADERS_MAX = 256


def _canonical_segment(segment: str) -> bool:
    """:func:`~.jws._canonical` as an answer, for a segment that decoded: no stray bits."""
    mask = _UNUSED_BITS.get(len(segment) % 4)
    return mask is None or not _DIGITS.index(segment[-1]) & mask


def _agent_header(segment: str) -> tuple[dict[str, Any], str, str] | None:
    known = _AGENT_HEADERS.get(segment)
    if known is not None or len(segment) > 512:
        return known
    try:
        header = loads_json_object(b64url_decode(segment))
    except ValueError:
        return None
    alg, kid = header.get("alg"), header.get("kid")
    if (
        header.get("typ") != TYP_AGENT
        or alg not in JWS_ALGORITHMS
        or "crit" in header
        or header.get("b64", True) is False
        or type(kid) is not str
        or not kid
        or not _canonical_segment(segment)
        or not all(type(v) in (str, int, float, bool) for v in header.values())
    ):
        return None
    if len(_AGENT_HEADERS) >= _AGENT_HEADERS_MAX:
        _AGENT_HEADERS.clear()
    known = _AGENT_HEADERS[segment] = (header, str(alg), kid)
    return known


def _agent_times(claims: dict[str, Any], now: float, leeway: float, skew: float) -> bool:
    """:func:`~.checks._times` passes, for integer ``exp`` and ``iat`` and no ``nbf``."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if type(exp) is not int or type(iat) is not int or "nbf" in claims:
        return False
    try:
        return now < exp + leeway and iat <= now + skew and exp - iat <= AGENT.max_lifetime
    except OverflowError:  # an integer beyond any float: the full path says what it says
        return False


def _agent_cnf(claims: dict[str, Any]) -> PublicKey | None:
    """:func:`~.checks._cnf` passes (no request key to bind: ``scheme=jwt``)."""
    cnf = claims.get("cnf")
    jwk = cnf.get("jwk") if type(cnf) is dict else None
    if type(jwk) is not dict:
        return None
    kty = jwk.get("kty")
    members = KEY_TYPE_MEMBERS.get(kty) if type(kty) is str else None
    if not members or not _strings(jwk, members) or not PRIVATE_MEMBERS.isdisjoint(jwk):
        return None
    try:
        return PublicKey.from_jwk(jwk)
    except (AAuthError, ValueError):
        return None


def _agent_names(claims: dict[str, Any]) -> bool:
    """``iss``, ``ps``, ``parent_agent``, ``sub`` and ``jti`` pass the full path's checks."""
    ps, jti = claims.get("ps"), claims.get("jti")
    parent = claims.get("parent_agent")
    return (
        is_server_identifier(claims.get("iss"))
        and (ps is None or (type(ps) is str and is_server_identifier(ps)))
        and (parent is None or is_agent_identifier(parent))
        and is_agent_identifier(claims.get("sub"))
        and type(jti) is str
        and jti != ""
    )


class _Fast(NamedTuple):
    """A token that passed every check but the key lookup and the signature."""

    token: AgentToken
    claims: dict[str, Any]
    alg: str
    kid: str
    signing_input: bytes
    signature: bytes


def _fast_agent(token: object, now: float, leeway: float, skew: float) -> _Fast | None:
    """The agent token ``token`` if it passes every check but the signature, else ``None``."""
    if type(token) is not str or len(token) > MAX_TOKEN_LENGTH:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header_b64, payload_b64, signature_b64 = parts
    known = _agent_header(header_b64)
    if known is None:
        return None
    try:
        claims = loads_json_object(b64url_decode(payload_b64))
        signature = b64url_decode(signature_b64)
    except ValueError:
        return None
    if (
        not _canonical_segment(payload_b64)
        or not _canonical_segment(signature_b64)
        or claims.get("dwk") != DWK_AGENT
        or not _agent_times(claims, now, leeway, skew)
        or not _agent_names(claims)
    ):
        return None
    cnf = _agent_cnf(claims)
    if cnf is None:
        return None
    header, alg, kid = known
    iat, exp = claims["iat"], claims["exp"]
    agent = AgentToken._make(
        raw=token,
        header=dict(header),
        claims=claims,
        iss=claims["iss"],
        dwk=DWK_AGENT,
        jti=claims["jti"],
        iat=iat,
        exp=exp,
        sub=claims["sub"],
        cnf=cnf,
        ps=claims.get("ps"),
        parent_agent=claims.get("parent_agent"),
    )
    signing_input = token[: len(header_b64) + len(payload_b64) + 1].encode("ascii")
    return _Fast(agent, claims, alg, kid, signing_input, signature)


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

    def fast(self, signature_key: SignatureKey) -> _Fast | None:
        """:func:`_fast_agent` for a ``scheme=jwt`` key, when agent tokens are accepted."""
        if signature_key.scheme != SCHEME_JWT or TYP_AGENT not in self.accept:
            return None
        return _fast_agent(
            signature_key.params.get("jwt"), self.clock(), self.leeway, self.iat_skew
        )

    def unverified(self, fast: _Fast) -> _Unverified:
        """What :meth:`precheck` returns for the token ``fast`` checked."""
        token = fast.token
        return _Unverified(
            AGENT, token.raw, dict(token.header), fast.claims, token.iss, token.dwk, fast.kid
        )

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
        fast = resolver.fast(signature_key)
        if fast is not None:
            token = fast.token
            try:
                key = resolver.keys.get_key(token.iss, DWK_AGENT, fast.kid)
            except AAuthError as exc:
                _lookup_failed(resolver.unverified(fast), exc)
            if key.alg != fast.alg or not key.verify(fast.signature, fast.signing_input):
                _checked_key(resolver.keys, resolver.unverified(fast), key)
            return KeyResolution(token.cnf.to_jwk(), token, token.cnf)
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
        fast = resolver.fast(signature_key)
        if fast is not None:
            token = fast.token
            try:
                key = await resolver.keys.aget_key(token.iss, DWK_AGENT, fast.kid)
            except AAuthError as exc:
                _lookup_failed(resolver.unverified(fast), exc)
            if key.alg != fast.alg or not key.verify(fast.signature, fast.signing_input):
                await _achecked_key(resolver.keys, resolver.unverified(fast), key)
            return KeyResolution(token.cnf.to_jwk(), token, token.cnf)
        pre = resolver.precheck(signature_key)
        await _asigned_key(resolver.keys, pre)
        return resolver.finish(pre)

    return resolve


__all__ = ["PRESENTABLE", "PresentedToken", "async_token_key_resolver", "token_key_resolver"]
