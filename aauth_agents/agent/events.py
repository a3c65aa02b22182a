"""Events the agent flow reports through ``on_event``: one small frozen object per step.

They describe what happened -- a request sent, a challenge received, a token obtained (its
decoded claims, never the token), a poll scheduled, an interaction or clarification, an
error -- for ``aauth-agents fetch --verbose``, demos and audit logs. ``str(event)`` is a
one-line description. No event carries a token, a session token or a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class FlowEvent:
    """Base of every event; ``kind`` names the step."""

    kind: ClassVar[str] = "event"

    def describe(self) -> str:
        return self.kind

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True)
class RequestSent(FlowEvent):
    """A signed request left the agent. ``credential`` is the token type presented in
    Signature-Key (``agent``, ``person``, ``auth``); ``covered`` the signed components."""

    kind: ClassVar[str] = "request"
    method: str
    url: str
    credential: str
    covered: tuple[str, ...] = ()
    session: bool = False

    def describe(self) -> str:
        extra = " + AAuth session" if self.session else ""
        return f"-> {self.method} {self.url} signed with the {self.credential} token{extra}"


@dataclass(frozen=True)
class ResponseReceived(FlowEvent):
    """A response arrived (status only: no body, no header values)."""

    kind: ClassVar[str] = "response"
    method: str
    url: str
    status: int

    def describe(self) -> str:
        return f"<- {self.status} for {self.method} {self.url}"


@dataclass(frozen=True)
class ChallengeReceived(FlowEvent):
    """An ``AAuth-Requirement`` on a 401 or 202 (its parameters, never the resource token)."""

    kind: ClassVar[str] = "challenge"
    url: str
    status: int
    requirement: str
    params: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        shown = "".join(f"; {k}={v}" for k, v in self.params.items())
        return f"<- {self.status} AAuth-Requirement: requirement={self.requirement}{shown}"


@dataclass(frozen=True)
class TokenObtained(FlowEvent):
    """A person or auth token from the PS (or, ``cached``, reused from the cache)."""

    kind: ClassVar[str] = "token"
    token_type: str
    resource: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    cached: bool = False

    def describe(self) -> str:
        how = "reused" if self.cached else "obtained"
        shown = {
            k: v
            for k, v in self.claims.items()
            if k in ("iss", "sub", "scope", "exp", "mission_s256", "aud")
        }
        return f"{how} {self.token_type} token for {self.resource}: {shown}"


@dataclass(frozen=True)
class MetadataFetched(FlowEvent):
    """A metadata document was fetched, or could not be."""

    kind: ClassVar[str] = "metadata"
    url: str
    ok: bool

    def describe(self) -> str:
        return f"metadata {self.url}: {'ok' if self.ok else 'unavailable'}"


@dataclass(frozen=True)
class Polling(FlowEvent):
    """The agent will poll ``url`` after ``wait`` seconds (``status`` of the last 202)."""

    kind: ClassVar[str] = "polling"
    url: str
    attempt: int
    wait: float
    status: str = "pending"

    def describe(self) -> str:
        return f"poll #{self.attempt} of {self.url} in {self.wait:g}s ({self.status})"


@dataclass(frozen=True)
class Reconnecting(FlowEvent):
    """A poll of ``url`` failed -- the connection (``reason`` names the error, e.g.
    ``ConnectError``) or the server (``HTTP 503``) -- for the ``failures``-th time in a
    row: the agent polls again after ``wait`` seconds (a server restart only delays the
    request; :mod:`~aauth_agents.agent.reconnect`)."""

    kind: ClassVar[str] = "reconnecting"
    url: str
    failures: int
    wait: float
    reason: str = ""

    def describe(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"reconnecting to {self.url} in {self.wait:.3g}s (failure #{self.failures}{why})"


@dataclass(frozen=True)
class InteractionRequired(FlowEvent):
    """The person must visit ``url`` with ``code``; ``relayed`` when the PS took it on.
    ``pending_url`` is the request the agent polls meanwhile."""

    kind: ClassVar[str] = "interaction"
    url: str
    code: str
    relayed: bool = False
    pending_url: str = ""

    def describe(self) -> str:
        where = "relayed through the person server" if self.relayed else "for the person"
        return f"interaction required {where}: {self.url}?code={self.code}"


@dataclass(frozen=True)
class ApprovalPending(FlowEvent):
    """A server holds the request until someone approves it (``requirement=approval``)."""

    kind: ClassVar[str] = "approval"
    url: str

    def describe(self) -> str:
        return f"waiting for approval at {self.url}"


@dataclass(frozen=True)
class ClarificationAsked(FlowEvent):
    """The person asked the agent a question before deciding (§Clarification Chat)."""

    kind: ClassVar[str] = "clarification"
    url: str
    question: str
    options: tuple[str, ...] | None = None
    timeout: int | None = None

    def describe(self) -> str:
        return f"clarification asked: {self.question!r}"


@dataclass(frozen=True)
class ClarificationAnswered(FlowEvent):
    """``action``: ``clarification_response``, ``updated_request`` or ``cancel``."""

    kind: ClassVar[str] = "clarification_answer"
    url: str
    action: str

    def describe(self) -> str:
        return f"clarification answered with {self.action}"


#: :class:`PendingEnded` outcomes by the final status of a pending request.
_OUTCOMES = {403: "denied", 408: "expired", 410: "gone"}


@dataclass(frozen=True)
class PendingEnded(FlowEvent):
    """The agent stopped waiting on the pending request ``url`` (§Deferred Responses).
    ``outcome``: ``approved`` (a 2xx), ``denied``, ``abandoned``, ``expired`` (by the
    server, or the agent's ``max_poll_seconds``), ``gone``, ``cancelled`` (the agent
    withdrew it), or ``failed``; ``status`` is the final HTTP status when there was one."""

    kind: ClassVar[str] = "pending_end"
    url: str
    outcome: str
    status: int | None = None

    @staticmethod
    def outcome_of(status: int, code: str | None = None) -> str:
        """The outcome a final response stands for (``code``: its problem ``error``)."""
        if 200 <= status < 300:
            return "approved"
        if code in ("abandoned", "denied", "expired"):
            return code
        return _OUTCOMES.get(status, "failed")

    def describe(self) -> str:
        shown = f" (HTTP {self.status})" if self.status is not None else ""
        return f"pending request {self.url} ended: {self.outcome}{shown}"


@dataclass(frozen=True)
class SessionUpdated(FlowEvent):
    """A resource sent a (new) ``AAuth-Access`` session token (the value is not reported)."""

    kind: ClassVar[str] = "session"
    resource: str
    replaced: bool = False

    def describe(self) -> str:
        return f"session token {'replaced' if self.replaced else 'received'} from {self.resource}"


@dataclass(frozen=True)
class FlowFailed(FlowEvent):
    """The flow ended with an error (its code and detail; never a token)."""

    kind: ClassVar[str] = "error"
    code: str
    detail: str

    def describe(self) -> str:
        return f"error {self.code}: {self.detail}"


__all__ = [
    "ApprovalPending",
    "ChallengeReceived",
    "ClarificationAnswered",
    "ClarificationAsked",
    "FlowEvent",
    "FlowFailed",
    "InteractionRequired",
    "MetadataFetched",
    "PendingEnded",
    "Polling",
    "Reconnecting",
    "RequestSent",
    "ResponseReceived",
    "SessionUpdated",
    "TokenObtained",
]
