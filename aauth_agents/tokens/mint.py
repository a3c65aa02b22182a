"""Issuing the four AAuth tokens.

Every token gets the header ``{"alg", "typ", "kid"}`` from the issuer key, a fresh ``jti``
from :mod:`secrets`, ``iat`` from the injected clock, and an ``exp`` that respects the type's
lifetime cap and every bound the spec puts on it (the presented agent token's ``exp``, the
mission's ``expires_at``, §Mission Approval): asking for more than the cap is a
:class:`ConfigurationError`; a bound shortens the lifetime silently; a bound that leaves none
is a :class:`ConfigurationError`.

``cnf.jwk`` carries the public members and ``alg`` (§Signature Algorithms: REQUIRED) and
omits ``kid``: ``cnf`` binds key material, the agent's local key label means nothing to the
recipient, and the thumbprint is the canonical name.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeAlias

from ..clock import Clock, system_clock
from ..keys import PrivateKey, PublicKey
from ..protocol.errors import ConfigurationError
from ..protocol.identifiers import (
    validate_agent_identifier,
    validate_https_url,
    validate_server_identifier,
)
from ..protocol.mission import is_s256
from ..protocol.r3 import R3Operations, check_r3_uri, parse_r3_operations
from ..protocol.scopes import InvalidScopeError, parse_scope, serialize_scope
from ..protocol.wire import WireFormatError
from .jws import encode_jws
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
    Interaction,
    PersonToken,
)

#: A point in time: Unix seconds, an aware datetime, or ISO 8601 text as in a mission blob.
Instant: TypeAlias = int | float | datetime | str

#: Claims the minting functions set themselves; ``extra`` may not supply them.
RESERVED_CLAIMS = frozenset(
    {
        "iss",
        "dwk",
        "sub",
        "aud",
        "jti",
        "iat",
        "exp",
        "nbf",
        "cnf",
        "ps",
        "parent_agent",
        "mission_s256",
        "tenant",
        "scope",
        "account",
        "presented_jti",
        "person_token_jti",
        "agent_jkt",
        "interaction",
        "r3_uri",
        "r3_s256",
        "r3_granted",
        "r3_per_call",
    }
)

DEFAULT_AGENT_TOKEN_LIFETIME = 3600


def _server_id(name: str, value: object) -> str:
    try:
        return validate_server_identifier(value)
    except ValueError as exc:
        raise ConfigurationError(f"{name}: {exc}") from exc


def _agent_id(name: str, value: object) -> str:
    try:
        return validate_agent_identifier(value)
    except ValueError as exc:
        raise ConfigurationError(f"{name}: {exc}") from exc


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty string")
    return value


def _s256(name: str, value: object) -> str:
    if not is_s256(value):
        raise ConfigurationError(f"{name} must be a base64url SHA-256 digest (43 characters)")
    return str(value)


def _scope(value: str | Iterable[str]) -> str:
    try:
        return serialize_scope(parse_scope(value) if isinstance(value, str) else value)
    except (InvalidScopeError, ConfigurationError, TypeError):
        raise ConfigurationError(f"scope has a malformed scope token: {value!r}") from None


def _r3_pin(origin: str, r3_uri: str | None, r3_s256: str | None) -> dict[str, str | None]:
    """R3 §Resource Token Extensions: ``r3_uri`` and ``r3_s256`` both or neither; the URI on
    the resource's origin, the hash a base64url SHA-256."""
    if (r3_uri is None) != (r3_s256 is None):
        raise ConfigurationError("r3_uri and r3_s256 go together (R3)")
    if r3_uri is not None:
        try:
            check_r3_uri(r3_uri, origin)
        except ValueError as exc:
            raise ConfigurationError(f"r3_uri: {exc}") from exc
        _s256("r3_s256", r3_s256)
    return {"r3_uri": r3_uri, "r3_s256": r3_s256}


def _r3_operations(
    name: str, value: R3Operations | Mapping[str, Any] | None
) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        ops = value if isinstance(value, R3Operations) else parse_r3_operations(value, name)
        return parse_r3_operations(ops.to_json(), name).to_json()
    except WireFormatError as exc:
        raise ConfigurationError(exc.detail) from exc


def to_unix(value: Instant) -> float:
    """Unix seconds for ``value``; naive datetimes are refused (ambiguous zone)."""
    if isinstance(value, bool):
        raise ConfigurationError("a time must be a number, datetime or ISO 8601 string")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:  # Python 3.10's fromisoformat does not read a trailing "Z"
            value = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
        except ValueError as exc:
            raise ConfigurationError(f"not an ISO 8601 time: {value!r}") from exc
    if not isinstance(value, datetime):
        raise ConfigurationError("a time must be a number, datetime or ISO 8601 string")
    if value.tzinfo is None:
        raise ConfigurationError("a datetime needs a time zone")
    return value.timestamp()


def _lifetime(
    clock: Clock, lifetime: int, cap: int, what: str, *bounds: Instant | None
) -> tuple[int, int]:
    """``(iat, exp)``: ``lifetime`` checked against ``cap``, then shortened to every bound."""
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime <= 0:
        raise ConfigurationError(f"{what} lifetime must be a positive number of seconds")
    if lifetime > cap:
        raise ConfigurationError(f"{what} lifetime {lifetime}s exceeds the {cap}s maximum")
    iat = int(clock())
    exp = iat + lifetime
    for bound in bounds:
        if bound is not None:
            exp = min(exp, math.floor(to_unix(bound)))
    if exp <= iat:
        raise ConfigurationError(
            f"{what} would already be expired: the agent token or mission ends first"
        )
    return iat, exp


def _header(key: PrivateKey, typ: str) -> dict[str, Any]:
    if not key.kid:
        raise ConfigurationError("the issuer key needs a kid (published in its JWKS)")
    return {"alg": key.alg, "typ": typ, "kid": key.kid}


def _jti(jti: str | None) -> str:
    return secrets.token_urlsafe(16) if jti is None else _text("jti", jti)


def _cnf(key: PublicKey) -> dict[str, Any]:
    if not isinstance(key, PublicKey):
        raise ConfigurationError("cnf must be a PublicKey")
    return {"jwk": key.to_jwk(kid=False)}


def _merge(claims: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    if extra:
        clash = sorted(RESERVED_CLAIMS.intersection(extra))
        if clash:
            raise ConfigurationError(f"extra may not set protocol claims: {clash}")
        claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def mint_agent_token(
    issuer_key: PrivateKey,
    *,
    iss: str,
    sub: str,
    cnf: PublicKey,
    lifetime: int = DEFAULT_AGENT_TOKEN_LIFETIME,
    ps: str | None = None,
    parent_agent: str | None = None,
    jti: str | None = None,
    clock: Clock = system_clock,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """An ``aa-agent+jwt`` binding ``cnf`` to agent ``sub`` (§Agent Token Structure).

    Issued by the agent provider ``iss``; ``lifetime`` at most 24 h; ``ps`` names the agent's
    person server, ``parent_agent`` marks a sub-agent (§Sub-Agents).
    """
    iat, exp = _lifetime(clock, lifetime, AGENT_TOKEN_MAX_LIFETIME, "agent token")
    claims = {
        "iss": _server_id("iss", iss),
        "dwk": DWK_AGENT,
        "sub": _agent_id("sub", sub),
        "jti": _jti(jti),
        "cnf": _cnf(cnf),
        "iat": iat,
        "exp": exp,
        "ps": None if ps is None else _server_id("ps", ps),
        "parent_agent": None if parent_agent is None else _agent_id("parent_agent", parent_agent),
    }
    return encode_jws(_header(issuer_key, TYP_AGENT), _merge(claims, extra), issuer_key)


def mint_person_token(
    issuer_key: PrivateKey,
    *,
    iss: str,
    aud: str,
    sub: str,
    cnf: PublicKey,
    not_after: Instant,
    mission_s256: str | None = None,
    mission_expires_at: Instant | None = None,
    tenant: str | None = None,
    lifetime: int = PERSON_TOKEN_MAX_LIFETIME,
    jti: str | None = None,
    clock: Clock = system_clock,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """An ``aa-person+jwt`` naming person ``sub`` to resource ``aud`` (§Person Token Structure).

    At most 1 h, never past ``not_after`` (the ``exp`` of the agent token presented with the
    request) nor ``mission_expires_at``. A person token carries no authority, so ``scope``
    and ``account`` are refused in ``extra``. The PS must retain ``jti``, ``ps``, ``sub``,
    ``mission_s256``, ``tenant`` and ``exp`` (§Person Token Endpoint); pass ``jti`` to know it.
    """
    if extra and {"scope", "account"}.intersection(extra):
        raise ConfigurationError("a person token MUST NOT contain scope or account")
    iat, exp = _lifetime(
        clock, lifetime, PERSON_TOKEN_MAX_LIFETIME, "person token", not_after, mission_expires_at
    )
    claims = {
        "iss": _server_id("iss", iss),
        "dwk": DWK_PERSON,
        "aud": _server_id("aud", aud),
        "sub": _text("sub", sub),
        "cnf": _cnf(cnf),
        "jti": _jti(jti),
        "iat": iat,
        "exp": exp,
        "mission_s256": None if mission_s256 is None else _s256("mission_s256", mission_s256),
        "tenant": None if tenant is None else _text("tenant", tenant),
    }
    return encode_jws(_header(issuer_key, TYP_PERSON), _merge(claims, extra), issuer_key)


def _from_person(
    name: str, given: str | None, recorded: str | None, person: PersonToken | None
) -> str | None:
    """A claim copied from the verified person token; an explicit value must agree."""
    if person is None:
        return given
    if given is not None and given != recorded:
        raise ConfigurationError(f"{name} disagrees with the person token it is copied from")
    return recorded


def _interaction(value: Interaction | Mapping[str, Any] | None) -> dict[str, str] | None:
    if value is None:
        return None
    url, code = (
        (value.url, value.code)
        if isinstance(value, Interaction)
        else (value.get("url"), value.get("code"))
    )
    try:
        validate_https_url(url)
    except ValueError as exc:
        raise ConfigurationError(f"interaction.url: {exc}") from exc
    return {"url": str(url), "code": _text("interaction.code", code)}


def _person_fields(
    iss: str,
    person: PersonToken | None,
    ps: str | None,
    sub: str | None,
    presented_jti: str | None,
    mission_s256: str | None,
    tenant: str | None,
) -> tuple[str | None, str | None, str | None, str | None, str | None]:
    """A resource token's ``ps``, ``sub``, ``presented_jti``, ``mission_s256`` and ``tenant``:
    copied from the verified ``person`` token (which must be for resource ``iss``), or as
    given when there is none."""
    if person is not None and person.aud != iss:
        raise ConfigurationError("the person token was not issued for this resource")
    ps = _from_person("ps", ps, person.iss if person else None, person)
    sub = _from_person("sub", sub, person.sub if person else None, person)
    presented_jti = _from_person(
        "presented_jti", presented_jti, person.jti if person else None, person
    )
    mission_s256 = _from_person(
        "mission_s256", mission_s256, person.mission_s256 if person else None, person
    )
    tenant = _from_person("tenant", tenant, person.tenant if person else None, person)
    return ps, sub, presented_jti, mission_s256, tenant


def _parties(
    iss: str, dwk: str, aud: str, jti: str | None, ps: str | None, sub: str | None
) -> dict[str, Any]:
    """The claims a resource or auth token opens with: its issuer, the metadata document
    that holds the issuer's keys, its audience, its ``jti`` and the person (``ps``, ``sub``)."""
    return {
        "iss": _server_id("iss", iss),
        "dwk": dwk,
        "aud": _server_id("aud", aud),
        "jti": _jti(jti),
        "ps": _server_id("ps", ps),
        "sub": _text("sub", sub),
    }


def _grant_claims(
    account: str | None, mission_s256: str | None, tenant: str | None
) -> dict[str, Any]:
    """``account``, ``mission_s256`` and ``tenant`` of a resource or auth token (``None``
    when absent)."""
    return {
        "account": None if account is None else _text("account", account),
        "mission_s256": None if mission_s256 is None else _s256("mission_s256", mission_s256),
        "tenant": None if tenant is None else _text("tenant", tenant),
    }


def _auth_ps_dwk(iss: str, ps: str, dwk: str | None) -> tuple[str, str]:
    """An auth token's ``ps`` and ``dwk``: ``aauth-person.json`` when the PS issues it
    (``iss == ps``), else ``aauth-access.json``; a PS-issued token has ``ps == iss``."""
    ps = _server_id("ps", ps)
    dwk = dwk or (DWK_PERSON if iss == ps else DWK_ACCESS)
    if dwk not in (DWK_PERSON, DWK_ACCESS):
        raise ConfigurationError(f"an auth token's dwk is {DWK_PERSON} or {DWK_ACCESS}")
    if dwk == DWK_PERSON and iss != ps:
        raise ConfigurationError("a PS-issued auth token has ps equal to iss")
    return ps, dwk


def mint_resource_token(
    issuer_key: PrivateKey,
    *,
    iss: str,
    aud: str,
    agent_jkt: str,
    scope: str | Iterable[str],
    person: PersonToken | None = None,
    ps: str | None = None,
    sub: str | None = None,
    presented_jti: str | None = None,
    mission_s256: str | None = None,
    tenant: str | None = None,
    account: str | None = None,
    interaction: Interaction | Mapping[str, Any] | None = None,
    mission_expires_at: Instant | None = None,
    r3_uri: str | None = None,
    r3_s256: str | None = None,
    lifetime: int = RESOURCE_TOKEN_MAX_LIFETIME,
    jti: str | None = None,
    clock: Clock = system_clock,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """An ``aa-resource+jwt`` from resource ``iss`` to the PS or AS ``aud``
    (§Resource Token Structure).

    ``r3_uri`` / ``r3_s256`` (R3 §Resource Token Extensions, both or neither) reference the
    R3 document or per-call proposal the request is drawn from: an https URL on ``iss``'s
    origin and the SHA-256 of the document's bytes.

    Pass the verified ``person`` token (or the resource's record of it) and ``ps``, ``sub``,
    ``presented_jti``, ``mission_s256`` and ``tenant`` are copied from it, so the mission
    cannot be dropped by mistake. The person token's ``jti`` is written as both
    ``presented_jti`` (-11) and ``person_token_jti`` (deployed reference, mockin 2.0).
    At most 5 min, never past ``mission_expires_at``.
    """
    ps, sub, presented_jti, mission_s256, tenant = _person_fields(
        iss, person, ps, sub, presented_jti, mission_s256, tenant
    )
    if not is_s256(agent_jkt):
        raise ConfigurationError("agent_jkt must be an RFC 7638 SHA-256 thumbprint")
    iat, exp = _lifetime(
        clock, lifetime, RESOURCE_TOKEN_MAX_LIFETIME, "resource token", mission_expires_at
    )
    person_jti = _text("presented_jti", presented_jti)
    claims = {
        **_parties(iss, DWK_RESOURCE, aud, jti, ps, sub),
        "presented_jti": person_jti,
        "person_token_jti": person_jti,
        "agent_jkt": agent_jkt,
        "iat": iat,
        "exp": exp,
        "scope": _scope(scope),
        **_grant_claims(account, mission_s256, tenant),
        "interaction": _interaction(interaction),
        **_r3_pin(str(iss), r3_uri, r3_s256),
    }
    return encode_jws(_header(issuer_key, TYP_RESOURCE), _merge(claims, extra), issuer_key)


def mint_auth_token(
    issuer_key: PrivateKey,
    *,
    iss: str,
    aud: str,
    ps: str,
    sub: str,
    cnf: PublicKey,
    scope: str | Iterable[str] | None = None,
    account: str | None = None,
    mission_s256: str | None = None,
    mission_expires_at: Instant | None = None,
    tenant: str | None = None,
    not_after: Instant | None = None,
    dwk: str | None = None,
    r3_uri: str | None = None,
    r3_s256: str | None = None,
    r3_granted: R3Operations | Mapping[str, Any] | None = None,
    r3_per_call: R3Operations | Mapping[str, Any] | None = None,
    lifetime: int = AUTH_TOKEN_MAX_LIFETIME,
    jti: str | None = None,
    clock: Clock = system_clock,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """An ``aa-auth+jwt`` authorizing the ``cnf`` key at resource ``aud`` (§Auth Token
    Structure).

    ``dwk`` defaults to ``aauth-person.json`` when the PS issues it (``iss == ps``,
    three-party) and ``aauth-access.json`` otherwise; a server acting as both PS and AS
    (§PS-AS Collapse) passes ``dwk=DWK_ACCESS``. At most 1 h, never past ``not_after`` (the
    agent token's ``exp``) nor ``mission_expires_at``. OpenID Connect identity claims go in
    ``extra``.

    R3 §Auth Token Extensions: ``r3_uri`` / ``r3_s256`` pin the document approved (on
    ``aud``'s origin), ``r3_granted`` (REQUIRED with them) and ``r3_per_call`` list operations
    as ``{"vocabulary", "operations"}``; neither grant without the pin.
    """
    iss, aud = _server_id("iss", iss), _server_id("aud", aud)
    if (r3_granted is None) != (r3_uri is None) or (r3_per_call is not None and r3_uri is None):
        raise ConfigurationError("r3_uri, r3_s256 and r3_granted go together (R3)")
    ps, dwk = _auth_ps_dwk(iss, ps, dwk)
    iat, exp = _lifetime(
        clock, lifetime, AUTH_TOKEN_MAX_LIFETIME, "auth token", not_after, mission_expires_at
    )
    claims = {
        **_parties(iss, dwk, aud, jti, ps, sub),
        "cnf": _cnf(cnf),
        "iat": iat,
        "exp": exp,
        "scope": None if scope is None else _scope(scope),
        **_grant_claims(account, mission_s256, tenant),
        **_r3_pin(aud, r3_uri, r3_s256),
        "r3_granted": _r3_operations("r3_granted", r3_granted),
        "r3_per_call": _r3_operations("r3_per_call", r3_per_call),
    }
    return encode_jws(_header(issuer_key, TYP_AUTH), _merge(claims, extra), issuer_key)


__all__ = [
    "RESERVED_CLAIMS",
    "Instant",
    "mint_agent_token",
    "mint_auth_token",
    "mint_person_token",
    "mint_resource_token",
    "to_unix",
]
