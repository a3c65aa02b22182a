"""Session tokens for resource-managed (two-party) access (§AAuth-Access).

The token is opaque to the agent; here it is a JWS the resource signs for itself
(``typ: aa-session+jwt``, ``iss`` = ``aud`` = the resource), bound to the agent's key by
``agent_jkt``. It is useless as a bearer token (§AAuth-Access Security): the verifier accepts
it only on a request signed by that key with ``authorization`` covered, and it can be revoked
by ``(iss, jti)`` like any other token. Compact JWS is a valid ``token68``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from ..keys import PrivateKey, PublicKey
from ..protocol.errors import AAuthError, ProtocolError, TokenError
from ..protocol.scopes import InvalidScopeError, parse_scope
from ..tokens import encode_jws, peek, verify_jws
from .caller import Session

#: The ``typ`` of a resource's session tokens (§AAuth-Access).
TYP_SESSION = "aa-session+jwt"
_CODE = "invalid_session_token"


class SessionTokenError(ProtocolError):
    """A session token that is malformed, forged, for another resource or another key.
    ``expired`` is True when it merely lapsed (the resource then starts a new interaction)."""

    def __init__(self, detail: str, *, expired: bool = False):
        super().__init__(f"session token: {detail}", code="invalid_request", status=400)
        self.expired = expired


def mint_session_token(
    key: PrivateKey,
    *,
    resource: str,
    sub: str,
    agent_jkt: str,
    scopes: Sequence[str],
    now: float,
    lifetime: int,
    account: str | None = None,
    agent: str | None = None,
) -> tuple[str, Session]:
    """A session token for resource-managed access (§AAuth-Access), bound to the agent's key
    thumbprint, and the :class:`Session` it stands for."""
    iat = int(now)
    claims: dict[str, object] = {
        "iss": resource,
        "aud": resource,
        "sub": sub,
        "agent_jkt": agent_jkt,
        "scope": " ".join(scopes),
        "jti": secrets.token_urlsafe(16),
        "iat": iat,
        "exp": iat + lifetime,
    }
    if account is not None:
        claims["account"] = account
    if agent is not None:
        claims["agent"] = agent
    token = encode_jws({"alg": key.alg, "typ": TYP_SESSION, "kid": key.kid}, claims, key)
    session = Session(
        sub=sub,
        scopes=tuple(scopes),
        jti=str(claims["jti"]),
        expires_at=iat + lifetime,
        account=account,
    )
    return token, session


def verify_session_token(
    token: str, *, keys: Sequence[PublicKey], resource: str, agent_jkt: str, now: float
) -> Session:
    """The session ``token`` stands for, or :class:`SessionTokenError`."""
    try:
        header, _ = peek(token, code=_CODE)
    except TokenError as exc:
        raise SessionTokenError("malformed") from exc
    if header.get("typ") != TYP_SESSION:
        raise SessionTokenError("not a session token")
    key = next((k for k in keys if k.kid == header.get("kid")), None)
    if key is None or header.get("alg") != key.alg:
        raise SessionTokenError("not signed by this resource")
    try:
        claims = verify_jws(token, key, code=_CODE)
    except AAuthError as exc:
        raise SessionTokenError("signature does not verify") from exc
    if claims.get("iss") != resource or claims.get("aud") != resource:
        raise SessionTokenError("issued for another resource")
    if claims.get("agent_jkt") != agent_jkt:
        raise SessionTokenError("bound to another agent key")
    exp, sub, jti = claims.get("exp"), claims.get("sub"), claims.get("jti")
    if (
        not isinstance(exp, int)
        or isinstance(exp, bool)
        or not isinstance(sub, str)
        or not sub
        or not isinstance(jti, str)
        or not jti
    ):
        raise SessionTokenError("malformed claims")
    if now >= exp:
        raise SessionTokenError("expired", expired=True)
    scope = claims.get("scope", "")
    try:
        scopes = parse_scope(scope) if scope else ()
    except InvalidScopeError as exc:
        raise SessionTokenError("malformed scope") from exc
    account = claims.get("account")
    return Session(
        sub=sub,
        scopes=scopes,
        jti=jti,
        expires_at=exp,
        account=account if isinstance(account, str) else None,
    )


__all__ = ["TYP_SESSION", "SessionTokenError", "mint_session_token", "verify_session_token"]
