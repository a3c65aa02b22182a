"""Verifying the four AAuth tokens, in the order of the spec's verification steps.

Every failure is one :class:`TokenError` whose ``code`` names the token type
(``invalid_auth_token``, ``expired_resource_token``, ...), whose ``reason`` names the check,
and whose ``signature_error`` is what it becomes as a Signature-Key failure: ``expired_jwt``
for an expired token, ``unknown_key`` for an unknown ``kid``, ``invalid_jwt`` otherwise
(``issuer_missing`` / ``issuer_mismatch`` pass through from discovery, §Verification step 5).

Each verifier runs three phases: :func:`_precheck` (header, ``dwk``, ``iss`` -- no I/O, so a
malformed ``iss`` is never fetched), the key lookup (the only part the ``averify_*`` twins
await), and a per-type claims phase. ``exp`` has no leeway by default; ``iat`` may be up to
:data:`IAT_SKEW` seconds in the future, absorbing clock skew between issuer and verifier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeGuard

from ..clock import Clock, system_clock
from ..keys import KEY_TYPE_MEMBERS, PRIVATE_MEMBERS, PublicKey
from ..protocol.errors import AAuthError, TokenError, UnknownKeyError
from ..protocol.identifiers import (
    is_agent_identifier,
    is_server_identifier,
    validate_https_url,
)
from ..protocol.mission import is_s256
from ..protocol.r3 import R3Operations, check_r3_uri, parse_r3_operations
from ..protocol.scopes import InvalidScopeError, parse_scope
from ..protocol.wire import WireFormatError
from .issuer_keys import IssuerKeys, RefreshableIssuerKeys
from .jws import JWS_ALGORITHMS, peek, verify_jws
from .types import (
    AGENT_TOKEN_MAX_LIFETIME,
    AUTH_TOKEN_MAX_LIFETIME,
    DWK_ACCESS,
    DWK_AGENT,
    DWK_PERSON,
    DWK_RESOURCE,
    PERSON_TOKEN_MAX_LIFETIME,
    RESOURCE_TOKEN_MAX_LIFETIME,
    TYP_AGENT,
    TYP_AUTH,
    TYP_PERSON,
    TYP_RESOURCE,
    AgentToken,
    AuthToken,
    Interaction,
    PersonToken,
    ResourceToken,
)

#: Discovery failures whose own Signature-Error code is kept (§Verification step 5).
_DISCOVERY_CODES = frozenset({"issuer_missing", "issuer_mismatch"})

#: Seconds an ``iat`` (or ``nbf``) may lie in the future before a token is refused.
IAT_SKEW = 5.0


@dataclass(frozen=True)
class _Kind:
    """What distinguishes one token type's verification."""

    name: str
    typ: str
    dwks: tuple[str, ...]
    invalid: str
    expired: str
    max_lifetime: int

    def fail(
        self, reason: str, detail: str, *, signature_error: str = "invalid_jwt", code: str = ""
    ) -> NoReturn:
        raise TokenError(
            f"{self.name}: {detail}",
            code=code or self.invalid,
            reason=reason,
            signature_error=signature_error,
        )


AGENT = _Kind(
    "agent token",
    TYP_AGENT,
    (DWK_AGENT,),
    "invalid_agent_token",
    "expired_agent_token",
    AGENT_TOKEN_MAX_LIFETIME,
)
# The person token registry has no ``expired_`` code: expiry is invalid_person_token.
PERSON = _Kind(
    "person token",
    TYP_PERSON,
    (DWK_PERSON,),
    "invalid_person_token",
    "invalid_person_token",
    PERSON_TOKEN_MAX_LIFETIME,
)
RESOURCE = _Kind(
    "resource token",
    TYP_RESOURCE,
    (DWK_RESOURCE,),
    "invalid_resource_token",
    "expired_resource_token",
    RESOURCE_TOKEN_MAX_LIFETIME,
)
AUTH = _Kind(
    "auth token",
    TYP_AUTH,
    (DWK_ACCESS, DWK_PERSON),
    "invalid_auth_token",
    "expired_auth_token",
    AUTH_TOKEN_MAX_LIFETIME,
)
KINDS: Mapping[str, _Kind] = {k.typ: k for k in (AGENT, PERSON, RESOURCE, AUTH)}


@dataclass(frozen=True)
class _Unverified:
    """A token whose header, ``dwk`` and ``iss`` passed, before any key is fetched."""

    kind: _Kind
    raw: str
    header: dict[str, Any]
    claims: dict[str, Any]
    iss: str
    dwk: str
    kid: str


@dataclass(frozen=True)
class _Policy:
    now: float
    leeway: float
    iat_skew: float
    max_lifetime: int | None


def _policy(
    clock: Clock, leeway: float, iat_skew: float, max_lifetime: int | None = None
) -> _Policy:
    return _Policy(clock(), leeway, iat_skew, max_lifetime)


def _show(value: object) -> str:
    """``repr`` of an untrusted value, cut short for error details."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- phase 1: no I/O ------------------------------------------------------------------------


def _precheck(token: object, kind: _Kind, *, expected_iss: str | None = None) -> _Unverified:
    """Steps 1-2 up to discovery, and step 4 (``iss``) moved ahead of it."""
    header, claims = peek(token, code=kind.invalid)
    assert isinstance(token, str)  # peek refuses anything else
    if header.get("typ") != kind.typ:
        kind.fail("typ", f"typ must be {kind.typ}, not {_show(header.get('typ'))}")
    alg = header.get("alg")
    if alg not in JWS_ALGORITHMS:
        kind.fail("alg", f"alg {_show(alg)} is not allowed; use one of {JWS_ALGORITHMS}")
    if "crit" in header:
        kind.fail("malformed", "no critical JWS extension is supported")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        kind.fail("kid", "the header must name the issuer key with kid")
    dwk = claims.get("dwk")
    if dwk not in kind.dwks:
        kind.fail("dwk", f"dwk must be {' or '.join(kind.dwks)}, not {_show(dwk)}")
    iss = claims.get("iss")
    if not is_server_identifier(iss):
        kind.fail("iss", f"iss is not a server identifier: {_show(iss)}")
    if expected_iss is not None and iss != expected_iss:
        kind.fail("iss", f"iss {_show(iss)} is not {_show(expected_iss)}")
    return _Unverified(kind, token, header, claims, str(iss), str(dwk), kid)


# -- phase 2: the key and the signature (sync or async) --------------------------------------


def _lookup_failed(pre: _Unverified, exc: AAuthError) -> NoReturn:
    if isinstance(exc, UnknownKeyError):
        pre.kind.fail(
            "unknown_key", f"{pre.iss} has no key {_show(pre.kid)}", signature_error="unknown_key"
        )
    # §Verification step 5: metadata failures keep their code; anything else is invalid_jwt.
    code = exc.code if exc.code in _DISCOVERY_CODES else "invalid_jwt"
    pre.kind.fail("discovery", f"cannot obtain {pre.iss}'s key: {exc.detail}", signature_error=code)


def _signature_failure(pre: _Unverified, key: PublicKey) -> TokenError | None:
    """The failure of step 2's signature check under ``key``, if it is one a refreshed
    JWKS could cure (bad signature, or a key of another algorithm under that ``kid``)."""
    try:
        verify_jws(pre.raw, key, code=pre.kind.invalid)
    except TokenError as exc:
        if exc.reason in ("signature", "alg"):
            return exc
        raise
    return None


def _after_refresh(pre: _Unverified, fresh: PublicKey | None, failure: TokenError) -> PublicKey:
    if fresh is None:  # nothing was refetched (once-a-minute floor): the failure stands
        raise failure
    again = _signature_failure(pre, fresh)
    if again is not None:
        raise again
    return fresh


def _signed_key(keys: IssuerKeys, pre: _Unverified) -> PublicKey:
    """Step 2: the issuer's key for ``kid`` and the JWS signature under it. A key that fails
    is refreshed once when ``keys`` can (§JWKS Discovery and Caching: silent re-keying)."""
    try:
        key = keys.get_key(pre.iss, pre.dwk, pre.kid)
    except AAuthError as exc:
        _lookup_failed(pre, exc)
    failure = _signature_failure(pre, key)
    if failure is None:
        return key
    if not isinstance(keys, RefreshableIssuerKeys):
        raise failure
    try:
        fresh = keys.refresh_key(pre.iss, pre.dwk, pre.kid)
    except AAuthError as exc:
        _lookup_failed(pre, exc)
    return _after_refresh(pre, fresh, failure)


async def _asigned_key(keys: IssuerKeys, pre: _Unverified) -> PublicKey:
    """:func:`_signed_key` with the lookups awaited."""
    try:
        key = await keys.aget_key(pre.iss, pre.dwk, pre.kid)
    except AAuthError as exc:
        _lookup_failed(pre, exc)
    failure = _signature_failure(pre, key)
    if failure is None:
        return key
    if not isinstance(keys, RefreshableIssuerKeys):
        raise failure
    try:
        fresh = await keys.arefresh_key(pre.iss, pre.dwk, pre.kid)
    except AAuthError as exc:
        _lookup_failed(pre, exc)
    return _after_refresh(pre, fresh, failure)


# -- phase 3: claims --------------------------------------------------------------------------


def _number(value: object) -> TypeGuard[int | float]:
    """A JSON NumericDate: finite, not a boolean (``1e400`` parses as infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _times(pre: _Unverified, policy: _Policy) -> tuple[int, int]:
    """Step 3 (``exp``, ``iat``; ``nbf`` when present) and the type's lifetime cap;
    returns ``(iat, exp)``."""
    kind, claims = pre.kind, pre.claims
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _number(exp) or not _number(iat):
        kind.fail("claims", "exp and iat are required NumericDates")
    if policy.now >= exp + policy.leeway:
        kind.fail("exp", "the token has expired", code=kind.expired, signature_error="expired_jwt")
    if iat > policy.now + policy.iat_skew:
        kind.fail("iat", "iat is in the future")
    nbf = claims.get("nbf")
    if nbf is not None and (not _number(nbf) or nbf > policy.now + policy.iat_skew):
        kind.fail("nbf", "the token is not valid yet")
    cap = policy.max_lifetime if policy.max_lifetime is not None else kind.max_lifetime
    if exp - iat > cap:
        kind.fail("lifetime", f"lifetime {exp - iat}s exceeds the {cap}s maximum")
    return int(iat), int(exp)


def _text(
    pre: _Unverified, name: str, reason: str = "claims", *, required: bool = True
) -> str | None:
    value = pre.claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        pre.kind.fail(reason, f"{name} must be a non-empty string")
    return value


def _required(pre: _Unverified, name: str, reason: str = "claims") -> str:
    value = _text(pre, name, reason)
    assert value is not None
    return value


def _audience(pre: _Unverified, audience: str | None) -> str:
    aud = pre.claims.get("aud")
    if not isinstance(aud, str) or (audience is not None and aud != audience):
        pre.kind.fail("aud", f"aud {_show(aud)} is not {_show(audience)}")
    return aud


def _cnf(pre: _Unverified, signing_key: PublicKey | None) -> PublicKey:
    """§Request-Context Binding step 6: structure first, then key decoding, then binding."""
    kind = pre.kind
    cnf = pre.claims.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(jwk, dict):
        kind.fail("cnf_missing", "cnf.jwk is required")
    kty = jwk.get("kty")
    members = KEY_TYPE_MEMBERS.get(kty, ()) if isinstance(kty, str) and kty else None
    if members is None or any(not isinstance(jwk.get(m), str) or not jwk[m] for m in members):
        kind.fail("cnf_incomplete", "cnf.jwk lacks kty or the members its key type requires")
    if PRIVATE_MEMBERS.intersection(jwk):
        kind.fail("cnf_invalid", "cnf.jwk contains private key material")
    try:
        key = PublicKey.from_jwk(jwk)
    except (AAuthError, ValueError) as exc:
        kind.fail("cnf_invalid", f"cnf.jwk is not a supported public key: {exc}")
    if signing_key is not None and not signing_key.same_key(key):
        kind.fail("cnf_mismatch", "cnf.jwk is not the key that signed the request")
    return key


def _optional_s256(pre: _Unverified) -> str | None:
    value = pre.claims.get("mission_s256")
    if value is not None and not is_s256(value):
        pre.kind.fail("claims", "mission_s256 must be a base64url SHA-256 digest")
    return value if isinstance(value, str) else None


def _scopes(pre: _Unverified) -> tuple[str, ...]:
    value = pre.claims.get("scope")
    if value is None or value == "":
        return ()
    try:
        return parse_scope(value)
    except InvalidScopeError:
        pre.kind.fail("claims", "scope must be a space-separated string of scope tokens")


def _expect(pre: _Unverified, reason: str, value: str, expected: str | None) -> None:
    if expected is not None and value != expected:
        pre.kind.fail(reason, f"{reason} {_show(value)} is not {_show(expected)}")


def _agent(pre: _Unverified, policy: _Policy, signing_key: PublicKey | None) -> AgentToken:
    """§Agent Token Verification steps 2-7."""
    iat, exp = _times(pre, policy)
    cnf = _cnf(pre, signing_key)
    ps = _text(pre, "ps", "ps", required=False)
    if ps is not None and not is_server_identifier(ps):
        pre.kind.fail("ps", f"ps is not a server identifier: {_show(ps)}")
    parent = pre.claims.get("parent_agent")
    if parent is not None and not is_agent_identifier(parent):
        pre.kind.fail("parent_agent", f"parent_agent is not an agent identifier: {_show(parent)}")
    sub = pre.claims.get("sub")
    if not is_agent_identifier(sub):
        pre.kind.fail("sub", f"sub is not an agent identifier: {_show(sub)}")
    return AgentToken(
        raw=pre.raw,
        header=pre.header,
        claims=pre.claims,
        iss=pre.iss,
        dwk=pre.dwk,
        jti=_required(pre, "jti"),
        iat=iat,
        exp=exp,
        sub=str(sub),
        cnf=cnf,
        ps=ps,
        parent_agent=parent,
    )


def _person(
    pre: _Unverified, policy: _Policy, audience: str, signing_key: PublicKey | None
) -> PersonToken:
    """§Person Token Verification steps 2-6, then the structure's MUST NOTs."""
    iat, exp = _times(pre, policy)
    aud = _audience(pre, audience)
    cnf = _cnf(pre, signing_key)
    forbidden = sorted({"scope", "account"}.intersection(pre.claims))
    if forbidden:
        pre.kind.fail("claims", f"a person token MUST NOT contain {forbidden}")
    return PersonToken(
        raw=pre.raw,
        header=pre.header,
        claims=pre.claims,
        iss=pre.iss,
        dwk=pre.dwk,
        jti=_required(pre, "jti"),
        iat=iat,
        exp=exp,
        aud=aud,
        sub=_required(pre, "sub", "sub"),
        cnf=cnf,
        mission_s256=_optional_s256(pre),
        tenant=_text(pre, "tenant", required=False),
    )


def _interaction(pre: _Unverified) -> Interaction | None:
    value = pre.claims.get("interaction")
    if value is None:
        return None
    url = value.get("url") if isinstance(value, dict) else None
    code = value.get("code") if isinstance(value, dict) else None
    try:
        validate_https_url(url)
    except ValueError:
        pre.kind.fail("claims", "interaction.url must be an https URL")
    if not isinstance(code, str) or not code:
        pre.kind.fail("claims", "interaction.code must be a non-empty string")
    return Interaction(url=str(url), code=code)


def _r3_pin(pre: _Unverified, origin: str) -> tuple[str | None, str | None]:
    """R3 §Resource Token Extensions / §Auth Token Extensions: ``r3_uri`` and ``r3_s256``
    both or neither; the URI https on ``origin`` (the resource), the hash a SHA-256."""
    uri, s256 = pre.claims.get("r3_uri"), pre.claims.get("r3_s256")
    if uri is None and s256 is None:
        return None, None
    if uri is None or s256 is None:
        pre.kind.fail("r3", "r3_uri and r3_s256 go together")
    try:
        check_r3_uri(uri, origin)
    except ValueError as exc:
        pre.kind.fail("r3", str(exc))
    if not is_s256(s256):
        pre.kind.fail("r3", "r3_s256 must be a base64url SHA-256 digest")
    return str(uri), str(s256)


def _r3_operations(pre: _Unverified, name: str) -> R3Operations | None:
    value = pre.claims.get(name)
    if value is None:
        return None
    try:
        return parse_r3_operations(value, name)
    except WireFormatError as exc:
        pre.kind.fail("r3", exc.detail)


def _presented_jti(pre: _Unverified) -> str:
    """``presented_jti`` (-11) or ``person_token_jti`` (deployed); equal when both appear."""
    new = _text(pre, "presented_jti", required=False)
    old = _text(pre, "person_token_jti", required=False)
    if new is not None and old is not None and new != old:
        pre.kind.fail("claims", "presented_jti and person_token_jti disagree")
    value = new or old
    if value is None:
        pre.kind.fail("claims", "presented_jti is required")
    return value


def _resource(
    pre: _Unverified,
    policy: _Policy,
    *,
    audience: str | None,
    agent_jkt: str,
    ps: str | None = None,
    person_sub: str | None = None,
) -> ResourceToken:
    """§Resource Token Verification steps 2-5 (step 6-7 need the PS's records), or with
    ``ps`` / ``person_sub`` the agent's §Resource Challenge Verification."""
    iat, exp = _times(pre, policy)
    aud = _audience(pre, audience)
    jkt = pre.claims.get("agent_jkt")
    if not isinstance(jkt, str) or jkt != agent_jkt:
        pre.kind.fail("agent_jkt", "agent_jkt is not the thumbprint of the signing key")
    token_ps = _required(pre, "ps", "ps")
    if not is_server_identifier(token_ps):
        pre.kind.fail("ps", f"ps is not a server identifier: {_show(token_ps)}")
    _expect(pre, "ps", token_ps, ps)
    sub = _required(pre, "sub", "sub")
    _expect(pre, "sub", sub, person_sub)
    r3_uri, r3_s256 = _r3_pin(pre, pre.iss)
    return ResourceToken(
        raw=pre.raw,
        header=pre.header,
        claims=pre.claims,
        iss=pre.iss,
        dwk=pre.dwk,
        jti=_required(pre, "jti"),
        iat=iat,
        exp=exp,
        aud=aud,
        ps=token_ps,
        sub=sub,
        presented_jti=_presented_jti(pre),
        agent_jkt=jkt,
        scopes=_scopes(pre),
        account=_text(pre, "account", required=False),
        mission_s256=_optional_s256(pre),
        tenant=_text(pre, "tenant", required=False),
        interaction=_interaction(pre),
        r3_uri=r3_uri,
        r3_s256=r3_s256,
    )


def _auth(
    pre: _Unverified,
    policy: _Policy,
    *,
    audience: str,
    signing_key: PublicKey | None,
    person_sub: str | None = None,
) -> AuthToken:
    """§Auth Token Verification: JWT trust (1-4), request-context binding (5-7)."""
    iat, exp = _times(pre, policy)
    aud = _audience(pre, audience)
    cnf = _cnf(pre, signing_key)
    sub = _required(pre, "sub", "sub")
    _expect(pre, "sub", sub, person_sub)
    ps = _required(pre, "ps", "ps")
    if not is_server_identifier(ps):
        pre.kind.fail("ps", f"ps is not a server identifier: {_show(ps)}")
    if pre.dwk == DWK_PERSON and ps != pre.iss:
        pre.kind.fail("ps", "a PS-issued auth token (dwk aauth-person.json) has ps == iss")
    r3_uri, r3_s256 = _r3_pin(pre, aud)
    granted, per_call = _r3_operations(pre, "r3_granted"), _r3_operations(pre, "r3_per_call")
    if (r3_uri is None) != (granted is None) or (per_call is not None and r3_uri is None):
        pre.kind.fail("r3", "r3_uri, r3_s256 and r3_granted go together")
    return AuthToken(
        raw=pre.raw,
        header=pre.header,
        claims=pre.claims,
        iss=pre.iss,
        dwk=pre.dwk,
        jti=_required(pre, "jti"),
        iat=iat,
        exp=exp,
        aud=aud,
        ps=ps,
        sub=sub,
        cnf=cnf,
        scopes=_scopes(pre),
        account=_text(pre, "account", required=False),
        mission_s256=_optional_s256(pre),
        tenant=_text(pre, "tenant", required=False),
        r3_uri=r3_uri,
        r3_s256=r3_s256,
        r3_granted=granted,
        r3_per_call=per_call,
    )


# -- public API -------------------------------------------------------------------------------


def verify_agent_token(
    token: str,
    *,
    keys: IssuerKeys,
    signing_key: PublicKey | None,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
    max_lifetime: int | None = None,
) -> AgentToken:
    """§Agent Token Verification. ``signing_key`` is the key that signed the HTTP request
    (step 5); ``None`` when ``cnf.jwk`` is itself that key (Signature-Key ``scheme=jwt``)."""
    pre = _precheck(token, AGENT)
    _signed_key(keys, pre)
    return _agent(pre, _policy(clock, leeway, iat_skew, max_lifetime), signing_key)


async def averify_agent_token(
    token: str,
    *,
    keys: IssuerKeys,
    signing_key: PublicKey | None,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
    max_lifetime: int | None = None,
) -> AgentToken:
    """Async :func:`verify_agent_token`: only the key lookup is awaited."""
    pre = _precheck(token, AGENT)
    await _asigned_key(keys, pre)
    return _agent(pre, _policy(clock, leeway, iat_skew, max_lifetime), signing_key)


def verify_person_token(
    token: str,
    *,
    keys: IssuerKeys,
    audience: str,
    signing_key: PublicKey | None,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
    max_lifetime: int | None = None,
) -> PersonToken:
    """§Person Token Verification at resource ``audience``."""
    pre = _precheck(token, PERSON)
    _signed_key(keys, pre)
    return _person(pre, _policy(clock, leeway, iat_skew, max_lifetime), audience, signing_key)


async def averify_person_token(
    token: str,
    *,
    keys: IssuerKeys,
    audience: str,
    signing_key: PublicKey | None,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
    max_lifetime: int | None = None,
) -> PersonToken:
    """Async :func:`verify_person_token`."""
    pre = _precheck(token, PERSON)
    await _asigned_key(keys, pre)
    return _person(pre, _policy(clock, leeway, iat_skew, max_lifetime), audience, signing_key)


def verify_resource_token(
    token: str,
    *,
    keys: IssuerKeys,
    audience: str,
    agent_jkt: str,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
    max_lifetime: int | None = None,
) -> ResourceToken:
    """§Resource Token Verification steps 1-5 at the PS or AS ``audience``.

    ``agent_jkt`` is the thumbprint of the key that signed the token request (the
    sub-agent's ``cnf.jwk`` for a parent-mediated request). Steps 6-7 -- resolving
    ``presented_jti`` against issued person tokens, the mission's state -- are the PS's.
    """
    pre = _precheck(token, RESOURCE)
    _signed_key(keys, pre)
    return _resource(
        pre, _policy(clock, leeway, iat_skew, max_lifetime), audience=audience, agent_jkt=agent_jkt
    )


async def averify_resource_token(
    token: str,
    *,
    keys: IssuerKeys,
    audience: str,
    agent_jkt: str,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
    max_lifetime: int | None = None,
) -> ResourceToken:
    """Async :func:`verify_resource_token`."""
    pre = _precheck(token, RESOURCE)
    await _asigned_key(keys, pre)
    return _resource(
        pre, _policy(clock, leeway, iat_skew, max_lifetime), audience=audience, agent_jkt=agent_jkt
    )


def verify_auth_token(
    token: str,
    *,
    keys: IssuerKeys,
    audience: str,
    signing_key: PublicKey | None,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
    max_lifetime: int | None = None,
) -> AuthToken:
    """§Auth Token Verification (JWT trust + request-context binding) at resource
    ``audience``. Matching ``(iss, sub)`` to the resource's records (step 7) is the
    caller's: see :attr:`AuthToken.person`."""
    pre = _precheck(token, AUTH)
    _signed_key(keys, pre)
    return _auth(
        pre,
        _policy(clock, leeway, iat_skew, max_lifetime),
        audience=audience,
        signing_key=signing_key,
    )


async def averify_auth_token(
    token: str,
    *,
    keys: IssuerKeys,
    audience: str,
    signing_key: PublicKey | None,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
    max_lifetime: int | None = None,
) -> AuthToken:
    """Async :func:`verify_auth_token`."""
    pre = _precheck(token, AUTH)
    await _asigned_key(keys, pre)
    return _auth(
        pre,
        _policy(clock, leeway, iat_skew, max_lifetime),
        audience=audience,
        signing_key=signing_key,
    )


# -- the agent's side -------------------------------------------------------------------------


def check_resource_challenge(
    resource_token: str,
    *,
    resource: str,
    agent_key: PublicKey,
    ps: str,
    person_sub: str | None,
    keys: IssuerKeys | None = None,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
) -> ResourceToken:
    """§Resource Challenge Verification: the agent checks a resource token before sending it
    to its PS. ``iss`` must be ``resource`` (checked before any key is fetched), ``agent_jkt``
    the agent's key, ``ps`` its PS, ``sub`` the presented person token's (``person_sub``;
    ``None`` skips). The signature is checked when ``keys`` is given."""
    pre = _precheck(resource_token, RESOURCE, expected_iss=resource)
    if keys is not None:  # a SHOULD on the agent's side
        _signed_key(keys, pre)
    return _resource(
        pre,
        _policy(clock, leeway, iat_skew),
        audience=None,
        agent_jkt=agent_key.thumbprint(),
        ps=ps,
        person_sub=person_sub,
    )


async def acheck_resource_challenge(
    resource_token: str,
    *,
    resource: str,
    agent_key: PublicKey,
    ps: str,
    person_sub: str | None,
    keys: IssuerKeys | None = None,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
) -> ResourceToken:
    """Async :func:`check_resource_challenge`."""
    pre = _precheck(resource_token, RESOURCE, expected_iss=resource)
    if keys is not None:  # a SHOULD on the agent's side
        await _asigned_key(keys, pre)
    return _resource(
        pre,
        _policy(clock, leeway, iat_skew),
        audience=None,
        agent_jkt=agent_key.thumbprint(),
        ps=ps,
        person_sub=person_sub,
    )


def check_auth_token_response(
    auth_token: str,
    *,
    resource_token: ResourceToken,
    resource: str,
    agent_key: PublicKey,
    person_sub: str | None = None,
    keys: IssuerKeys | None = None,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
) -> AuthToken:
    """§Auth Token Response Verification: ``iss`` is the resource token's ``aud`` (checked
    before any key is fetched), ``aud`` is ``resource``, ``cnf`` is ``agent_key``, ``sub`` is
    ``person_sub`` (default: the resource token's ``sub``). The signature (a SHOULD) is
    checked when ``keys`` is given."""
    pre = _precheck(auth_token, AUTH, expected_iss=resource_token.aud)
    if keys is not None:  # a SHOULD on the agent's side
        _signed_key(keys, pre)
    return _auth(
        pre,
        _policy(clock, leeway, iat_skew),
        audience=resource,
        signing_key=agent_key,
        person_sub=person_sub or resource_token.sub,
    )


async def acheck_auth_token_response(
    auth_token: str,
    *,
    resource_token: ResourceToken,
    resource: str,
    agent_key: PublicKey,
    person_sub: str | None = None,
    keys: IssuerKeys | None = None,
    clock: Clock = system_clock,
    leeway: float = 0,
    iat_skew: float = IAT_SKEW,
) -> AuthToken:
    """Async :func:`check_auth_token_response`."""
    pre = _precheck(auth_token, AUTH, expected_iss=resource_token.aud)
    if keys is not None:  # a SHOULD on the agent's side
        await _asigned_key(keys, pre)
    return _auth(
        pre,
        _policy(clock, leeway, iat_skew),
        audience=resource,
        signing_key=agent_key,
        person_sub=person_sub or resource_token.sub,
    )


__all__ = [
    "IAT_SKEW",
    "acheck_auth_token_response",
    "acheck_resource_challenge",
    "averify_agent_token",
    "averify_auth_token",
    "averify_person_token",
    "averify_resource_token",
    "check_auth_token_response",
    "check_resource_challenge",
    "verify_agent_token",
    "verify_auth_token",
    "verify_person_token",
    "verify_resource_token",
]
