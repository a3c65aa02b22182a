"""Who is calling: the typed result of verifying a request at a resource.

A handler reads it from ``request.state.aauth`` (Starlette, FastAPI) or, anywhere below the
middleware (an MCP tool, a helper several calls deep), from :func:`current_caller`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeAlias

from ..httpsig import VerifiedSignature
from ..tokens import AgentToken, AuthToken, PersonToken

#: Which token signed the request (§Keying Material): agent, person or auth token.
TokenKind: TypeAlias = Literal["agent", "person", "auth"]
AGENT: TokenKind = "agent"
PERSON: TokenKind = "person"
AUTH: TokenKind = "auth"


@dataclass(frozen=True)
class _Presented:
    """What the kind of token in ``Signature-Key`` says of the caller."""

    agent_token: bool = False  # the agent's own token: ``issuer`` is its agent provider
    person_token: bool = False  # a person token: the PS vouches for the person, grants nothing


_PRESENTED: Mapping[str, _Presented] = {
    AGENT: _Presented(agent_token=True),
    PERSON: _Presented(person_token=True),
    AUTH: _Presented(),
}
_NOTHING = _Presented()


@dataclass(frozen=True)
class Session:
    """A resource-managed (two-party) session presented as ``Authorization: AAuth <token>``
    (§AAuth-Access): the person the resource's own flow established, and what they granted."""

    sub: str
    scopes: tuple[str, ...]
    jti: str
    expires_at: int
    account: str | None = None


@dataclass(frozen=True)
class Caller:
    """A verified caller.

    * ``kind`` -- the token in ``Signature-Key`` (``agent``, ``person`` or ``auth``);
      ``token`` is that verified token and ``thumbprint`` the RFC 7638 thumbprint of the key
      that signed the request (its ``cnf``).
    * ``agent`` -- the agent identifier when the request told it (agent tokens only: person
      and auth tokens carry no agent identifier, §Auth Token Structure); ``parent_agent``
      for sub-agents; ``agent_ps`` the agent token's ``ps`` claim.
    * ``person`` -- ``(iss, sub)``, the person's identifier at this resource (§Person Token
      Verification: never ``sub`` alone). For a session it is ``(resource, sub)``.
    * ``scopes`` -- what an auth token (or session) grants; empty otherwise.
    * ``mission_s256``, ``tenant``, ``account`` -- as the token carries them.
    """

    kind: TokenKind
    thumbprint: str
    issuer: str
    jti: str
    expires_at: int
    agent: str | None = None
    parent_agent: str | None = None
    agent_ps: str | None = None
    person: tuple[str, str] | None = None
    scopes: tuple[str, ...] = ()
    mission_s256: str | None = None
    tenant: str | None = None
    account: str | None = None
    session: Session | None = None
    token: AgentToken | PersonToken | AuthToken | None = field(
        default=None, repr=False, compare=False
    )
    signature: VerifiedSignature | None = field(default=None, repr=False, compare=False)

    @property
    def presents_person_token(self) -> bool:
        """Signed under a person token (neither the agent's own token nor an auth token)."""
        return _PRESENTED.get(self.kind, _NOTHING).person_token

    @property
    def presents_agent_token(self) -> bool:
        """Signed under the agent's own token: ``issuer`` is its agent provider."""
        return _PRESENTED.get(self.kind, _NOTHING).agent_token

    @property
    def label(self) -> str:
        """A loggable name: the agent, else the person, else the key thumbprint."""
        if self.agent:
            return self.agent
        if self.person:
            return f"{self.person[0]}#{self.person[1]}"
        return f"jkt:{self.thumbprint}"

    def with_signature(self, signature: VerifiedSignature) -> Caller:
        """This caller for one more request signed under the same token and key: a copy of
        the fields (no re-validation of a frozen dataclass's sixteen), ``signature`` new."""
        clone = object.__new__(Caller)
        fields = clone.__dict__
        fields.update(self.__dict__)
        fields["signature"] = signature
        return clone

    def with_session(self, session: Session, resource: str) -> Caller:
        return replace(
            self,
            session=session,
            person=(resource, session.sub),
            scopes=session.scopes,
            account=session.account,
        )

    @classmethod
    def from_token(
        cls,
        token: AgentToken | PersonToken | AuthToken,
        thumbprint: str,
        signature: VerifiedSignature | None = None,
    ) -> Caller:
        common: dict[str, Any] = {
            "thumbprint": thumbprint,
            "issuer": token.iss,
            "jti": token.jti,
            "expires_at": token.exp,
            "token": token,
            "signature": signature,
        }
        if isinstance(token, AgentToken):
            return cls(
                kind=AGENT,
                agent=token.sub,
                parent_agent=token.parent_agent,
                agent_ps=token.ps,
                **common,
            )
        if isinstance(token, PersonToken):
            return cls(
                kind=PERSON,
                person=token.person,
                mission_s256=token.mission_s256,
                tenant=token.tenant,
                **common,
            )
        return cls(
            kind=AUTH,
            person=token.person,
            scopes=token.scopes,
            mission_s256=token.mission_s256,
            tenant=token.tenant,
            account=token.account,
            **common,
        )


_CURRENT: ContextVar[Caller | None] = ContextVar("aauth_caller", default=None)


def current_caller() -> Caller | None:
    """The caller of the request being handled, or ``None`` outside a protected request."""
    return _CURRENT.get()


def require_caller() -> Caller:
    """:func:`current_caller`, raising ``LookupError`` outside a protected request."""
    caller = _CURRENT.get()
    if caller is None:
        raise LookupError("no AAuth caller: not inside a request the middleware verified")
    return caller


__all__ = [
    "AGENT",
    "AUTH",
    "PERSON",
    "Caller",
    "Session",
    "TokenKind",
    "current_caller",
    "require_caller",
]
