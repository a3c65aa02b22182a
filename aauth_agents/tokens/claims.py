"""The claims phase of AAuth token verification, one function per token type.

Each runs after :mod:`.checks` has passed the header, ``dwk``, ``iss``, the key and the
signature, and returns the verified token: :func:`_agent` (§Agent Token Verification),
:func:`_person` (§Person Token Verification), :func:`_resource` (§Resource Token
Verification, §Resource Challenge Verification), :func:`_auth` (§Auth Token Verification),
with the R3 claims (R3 §Resource Token Extensions, §Auth Token Extensions).
"""

from __future__ import annotations

from ..keys import PublicKey
from ..protocol.identifiers import (
    is_agent_identifier,
    is_server_identifier,
    validate_https_url,
)
from ..protocol.mission import is_s256
from ..protocol.r3 import R3Operations, check_r3_uri, parse_r3_operations
from ..protocol.wire import WireFormatError
from .checks import (
    _audience,
    _cnf,
    _expect,
    _optional_s256,
    _Policy,
    _required,
    _scopes,
    _show,
    _text,
    _times,
    _Unverified,
)
from .types import (
    DWK_PERSON,
    AgentToken,
    AuthToken,
    Interaction,
    PersonToken,
    ResourceToken,
)


def _check_ps(pre: _Unverified, ps: str | None) -> None:
    """A ``ps`` claim, when present, is a server identifier (§Server Identifiers)."""
    if ps is not None and not is_server_identifier(ps):
        pre.kind.fail("ps", f"ps is not a server identifier: {_show(ps)}")


def _agent(pre: _Unverified, policy: _Policy, signing_key: PublicKey | None) -> AgentToken:
    """§Agent Token Verification steps 2-7."""
    iat, exp = _times(pre, policy)
    cnf = _cnf(pre, signing_key)
    ps = _text(pre, "ps", "ps", required=False)
    _check_ps(pre, ps)
    parent = pre.claims.get("parent_agent")
    if parent is not None and not is_agent_identifier(parent):
        pre.kind.fail("parent_agent", f"parent_agent is not an agent identifier: {_show(parent)}")
    sub = pre.claims.get("sub")
    if not is_agent_identifier(sub):
        pre.kind.fail("sub", f"sub is not an agent identifier: {_show(sub)}")
    return AgentToken._make(
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
    return PersonToken._make(
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
    _check_ps(pre, token_ps)
    _expect(pre, "ps", token_ps, ps)
    sub = _required(pre, "sub", "sub")
    _expect(pre, "sub", sub, person_sub)
    r3_uri, r3_s256 = _r3_pin(pre, pre.iss)
    return ResourceToken._make(
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
    _check_ps(pre, ps)
    if pre.dwk == DWK_PERSON and ps != pre.iss:
        pre.kind.fail("ps", "a PS-issued auth token (dwk aauth-person.json) has ps == iss")
    r3_uri, r3_s256 = _r3_pin(pre, aud)
    granted, per_call = _r3_operations(pre, "r3_granted"), _r3_operations(pre, "r3_per_call")
    if (r3_uri is None) != (granted is None) or (per_call is not None and r3_uri is None):
        pre.kind.fail("r3", "r3_uri, r3_s256 and r3_granted go together")
    return AuthToken._make(
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
