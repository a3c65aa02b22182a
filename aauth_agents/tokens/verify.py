"""Verifying the four AAuth tokens, in the order of the spec's verification steps.

Every failure is one :class:`TokenError` whose ``code`` names the token type
(``invalid_auth_token``, ``expired_resource_token``, ...), whose ``reason`` names the check,
and whose ``signature_error`` is what it becomes as a Signature-Key failure: ``expired_jwt``
for an expired token, ``unknown_key`` for an unknown ``kid``, ``invalid_jwt`` otherwise
(``issuer_missing`` / ``issuer_mismatch`` pass through from discovery, §Verification step 5).

Each verifier runs three phases: :func:`~.checks._precheck` (header, ``dwk``, ``iss`` -- no
I/O, so a malformed ``iss`` is never fetched), the key lookup (the only part the ``averify_*``
twins await; both in :mod:`.checks`), and a per-type claims phase (:mod:`.claims`). ``exp``
has no leeway by default; ``iat`` may be up to :data:`IAT_SKEW` seconds in the future,
absorbing clock skew between issuer and verifier.
"""

from __future__ import annotations

from ..clock import Clock, system_clock
from ..keys import PublicKey
from .checks import AGENT, AUTH, PERSON, RESOURCE, _asigned_key, _policy, _precheck, _signed_key
from .claims import _agent, _auth, _person, _resource
from .issuer_keys import IssuerKeys
from .types import AgentToken, AuthToken, PersonToken, ResourceToken

#: Seconds an ``iat`` (or ``nbf``) may lie in the future before a token is refused.
IAT_SKEW = 5.0


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
