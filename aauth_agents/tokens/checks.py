"""The shared steps of AAuth token verification (§Verification), used by every token type.

A token passes three phases: :func:`_precheck` (header, ``dwk``, ``iss`` -- no I/O, so a
malformed ``iss`` is never fetched), the key lookup and signature (:func:`_signed_key`,
:func:`_asigned_key`; §Verification steps 2 and 5, §JWKS Discovery and Caching), and a
claims phase per token type (:mod:`.claims`) built from the claim checks here (``exp``,
``iat``, ``aud``, ``cnf``, ...; §Verification step 3, §Request-Context Binding).

Every failure is one :class:`TokenError` raised by :meth:`_Kind.fail`: see :mod:`.verify`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn, TypeGuard

from ..clock import Clock
from ..keys import KEY_TYPE_MEMBERS, PRIVATE_MEMBERS, PublicKey
from ..protocol.errors import AAuthError, TokenError, UnknownKeyError
from ..protocol.identifiers import is_server_identifier
from ..protocol.mission import is_s256
from ..protocol.scopes import InvalidScopeError, parse_scope
from .issuer_keys import IssuerKeys, RefreshableIssuerKeys
from .jws import JWS_ALGORITHMS, peek, verify_peeked
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
)

#: Discovery failures whose own Signature-Error code is kept (§Verification step 5).
_DISCOVERY_CODES = frozenset({"issuer_missing", "issuer_mismatch"})


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


class _Unverified(NamedTuple):
    """A token whose header, ``dwk`` and ``iss`` passed, before any key is fetched (a
    NamedTuple: built on every verification, and cheaper than a frozen dataclass)."""

    kind: _Kind
    raw: str
    header: dict[str, Any]
    claims: dict[str, Any]
    iss: str
    dwk: str
    kid: str


class _Policy(NamedTuple):
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


def _precheck(
    token: object,
    kind: _Kind,
    *,
    expected_iss: str | None = None,
    peeked: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> _Unverified:
    """Steps 1-2 up to discovery, and step 4 (``iss``) moved ahead of it. ``peeked`` is
    what :func:`peek` already returned for ``token``, if it has been called."""
    header, claims = peek(token, code=kind.invalid) if peeked is None else peeked
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
        verify_peeked(pre.raw, pre.header, key, code=pre.kind.invalid)
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
    return _checked_key(keys, pre, key)


def _checked_key(keys: IssuerKeys, pre: _Unverified, key: PublicKey) -> PublicKey:
    """:func:`_signed_key` once ``key`` has been looked up: the signature under it, and
    the one refresh when it fails."""
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
    return await _achecked_key(keys, pre, key)


async def _achecked_key(keys: IssuerKeys, pre: _Unverified, key: PublicKey) -> PublicKey:
    """:func:`_checked_key` with the refresh awaited."""
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


def _strings(jwk: dict[str, Any], members: tuple[str, ...]) -> bool:
    """Every one of ``members`` is a non-empty string in ``jwk``."""
    for name in members:
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            return False
    return True


def _cnf(pre: _Unverified, signing_key: PublicKey | None) -> PublicKey:
    """§Request-Context Binding step 6: structure first, then key decoding, then binding."""
    kind = pre.kind
    cnf = pre.claims.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(jwk, dict):
        kind.fail("cnf_missing", "cnf.jwk is required")
    kty = jwk.get("kty")
    members = KEY_TYPE_MEMBERS.get(kty, ()) if isinstance(kty, str) and kty else None
    if members is None or not _strings(jwk, members):
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
