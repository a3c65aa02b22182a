"""What the consent screen shows about one pending request (§User Interaction): the
:class:`InteractionView` and its parts, and :func:`build_view`, which reads them off a pending
record for :class:`~.interactions.Interactions`.

Everything in a view that came from an agent or a resource (justification, descriptions,
questions, answers, names, the R3 document) is raw, untrusted Markdown or text: the UI MUST
sanitize it before rendering (§Untrusted Input).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ...protocol.scopes import IDENTITY_SCOPES
from ...stores import PendingRecord, public_state
from .config import PersonServerConfig
from .kinds import ConsentPage, Terms, kind_of
from .pending import PendingRequest
from .policy import ResourceInfo
from .state import Mission

#: Members of a request that a view shows elsewhere than in ``details`` (or not at all).
_NOT_DETAILS = ("scopes", "presented_jti", "rt_jti", "sub", "r3")


@dataclass(frozen=True)
class ScopeView:
    """A requested scope and its description: the resource's ``scope_descriptions`` for
    resource scopes; ``identity`` scopes ask for claims about the person (§Scopes)."""

    scope: str
    description: str | None
    identity: bool


@dataclass(frozen=True)
class ClarificationView:
    """One round of the clarification chat: the person's question and the agent's answer
    (``None`` while open). ``updated_request`` when the agent answered with a new request."""

    question: str
    answer: str | None
    asked_at: float
    answered_at: float | None = None
    updated_request: bool = False


@dataclass(frozen=True)
class MissionView:
    """The mission a request belongs to (or the one proposed): description as approved,
    tools, resources, state."""

    s256: str | None
    description: str
    tools: tuple[Mapping[str, Any], ...]
    resources: tuple[str, ...]
    state: str
    expires_at: float | None = None


@dataclass(frozen=True)
class R3View:
    """The R3 document an auth token request references (R3, exploratory), as the resource
    describes it: ``summary``, ``detail`` (Markdown), ``implications``, ``data_accessed``,
    ``irreversible``; the ``operations`` (MCP tool names, or each operation as JSON) and,
    for a per-call proposal (``per_call``), the ``parameters`` of that one call. All of it
    is untrusted input from the resource (§Untrusted Input)."""

    uri: str
    s256: str
    per_call: bool
    summary: str | None
    detail: str | None
    implications: str | None
    data_accessed: str | None
    irreversible: str | None
    operations: tuple[str, ...]
    parameters: Mapping[str, Any]

    @classmethod
    def from_request(cls, r3: Mapping[str, Any]) -> R3View:
        display = r3.get("display") or {}
        operations = tuple(
            str(o.get("tool")) if "tool" in o else json.dumps(o) for o in r3.get("operations", ())
        )
        return cls(
            uri=str(r3["uri"]),
            s256=str(r3["s256"]),
            per_call=bool(r3.get("per_call")),
            summary=display.get("summary"),
            detail=display.get("detail"),
            implications=display.get("implications"),
            data_accessed=display.get("data_accessed"),
            irreversible=display.get("irreversible"),
            operations=operations,
            parameters=dict(r3.get("parameters") or {}),
        )


@dataclass(frozen=True)
class InteractionView:
    """What the consent screen shows about one pending request.

    ``id`` is the handle for every later call. ``state`` is ``pending``, ``interacting``,
    ``approved``, ``denied``, ``failed`` or ``completed``. ``kind`` is ``person_token``,
    ``auth_token``, ``mission``, ``mission_update``, ``mission_completion``, ``permission``,
    ``question`` or ``relay``. ``r3`` is the R3 document (a per-call proposal: the one call
    to approve) an auth token request references. ``new_agent`` is True when the agent is
    not bound to anyone yet (a new-agent enrollment, §Agent-Person Binding: show the
    provider's name and logo and the agent-supplied ``platform``/``device``). ``login_hint``
    and ``prompt`` are the agent's OpenID Connect hints (``prompt`` containing ``login``:
    sign the person in again). ``details`` holds the kind's own members (update
    description, completion summary, permission action/parameters, question, relay URL).
    """

    id: str
    kind: str
    state: str
    requirement: str
    agent_id: str
    agent_issuer: str
    provider_name: str | None
    provider_logo: str | None
    subagent: str | None
    platform: str | None
    device: str | None
    login_hint: str | None
    prompt: tuple[str, ...]
    new_agent: bool
    account: str | None
    resource: ResourceInfo | None
    scopes: tuple[ScopeView, ...]
    justification: str | None
    mission: MissionView | None
    details: Mapping[str, Any]
    clarifications: tuple[ClarificationView, ...]
    rounds_left: int
    can_clarify: bool
    question_open: bool
    withdrawn: bool
    expires_at: float
    error: str | None = None
    resource_interaction: Mapping[str, Any] | None = None
    r3: R3View | None = None
    #: How the request's kind presents it (:meth:`~.kinds.RequestKind.describe`).
    consent: ConsentPage | None = None


class ViewHost(Protocol):
    """What :func:`build_view` reads of the person server: its configuration
    (``clarification_rounds``), missions, and whether the agent takes clarification questions
    (§Clarification Chat). :class:`~.interactions.InteractionHost` is one."""

    @property
    def config(self) -> PersonServerConfig: ...

    async def mission(self, s256: str) -> Mission | None: ...
    async def can_clarify(self, req: PendingRequest) -> bool: ...


def terms_of(config: PersonServerConfig) -> Terms:
    """How long what a person approves lasts at this server."""
    return Terms(config.person_token_lifetime, config.auth_token_lifetime, config.mission_lifetime)


def _scope_views(req: PendingRequest) -> tuple[ScopeView, ...]:
    """The requested scopes with the resource's descriptions (§Scopes)."""
    descriptions = req.resource.scope_descriptions if req.resource else {}
    return tuple(
        ScopeView(s, descriptions.get(s), s in IDENTITY_SCOPES)
        for s in req.request.get("scopes", ())
    )


async def _mission_view(host: ViewHost, req: PendingRequest) -> MissionView | None:
    """The mission the request proposes (as the request's kind reads it), else the one it
    belongs to (§Missions)."""
    proposed = kind_of(req.kind).proposed_mission(req)
    if proposed is not None:
        return MissionView(None, *proposed, "proposed")
    if not req.mission_s256:
        return None
    mission = await host.mission(req.mission_s256)
    if mission is None:
        return None
    return MissionView(
        mission.s256,
        mission.description,
        mission.approved_tools,
        mission.approved_resources,
        mission.state,
        mission.expires_at,
    )


def _clarifications(req: PendingRequest) -> tuple[ClarificationView, ...]:
    """The clarification chat so far (§Clarification Chat)."""
    return tuple(
        ClarificationView(
            str(c.get("question", "")),
            c.get("answer"),
            float(c.get("asked_at", 0)),
            c.get("answered_at"),
            bool(c.get("updated_request")),
        )
        for c in req.conversation
    )


def _resource_interaction(req: PendingRequest) -> Mapping[str, Any] | None:
    """The resource-initiated interaction (§Resource-Initiated Interaction), without the
    nonce of its PS callback."""
    if req.resource_interaction is None:
        return None
    return {k: v for k, v in req.resource_interaction.items() if k != "nonce"}


async def build_view(host: ViewHost, record: PendingRecord, req: PendingRequest) -> InteractionView:
    """The :class:`InteractionView` of the pending ``record`` holding the request ``req``."""
    mission_view = await _mission_view(host, req)
    details = {k: v for k, v in req.request.items() if k not in _NOT_DETAILS}
    r3 = req.request.get("r3")
    limit = host.config.clarification_rounds
    return InteractionView(
        id=record.id,
        kind=req.kind,
        state=public_state(record.state),
        requirement=req.requirement,
        agent_id=req.agent_id,
        agent_issuer=req.agent_iss,
        provider_name=req.provider_name,
        provider_logo=req.provider_logo,
        subagent=req.subagent,
        platform=req.params.platform,
        device=req.params.device,
        login_hint=req.params.login_hint,
        prompt=req.params.prompt,
        new_agent=req.new_agent,
        account=req.account,
        resource=req.resource,
        scopes=_scope_views(req),
        justification=req.params.justification,
        mission=mission_view,
        details=details,
        clarifications=_clarifications(req),
        rounds_left=max(0, limit - req.rounds),
        can_clarify=await host.can_clarify(req),
        question_open=req.open_question is not None,
        withdrawn=req.withdrawn,
        expires_at=record.expires_at,
        error=req.error,
        resource_interaction=_resource_interaction(req),
        r3=R3View.from_request(r3) if isinstance(r3, Mapping) else None,
        consent=kind_of(req.kind).describe(req, terms_of(host.config)),
    )


__all__ = [
    "ClarificationView",
    "InteractionView",
    "MissionView",
    "R3View",
    "ScopeView",
    "ViewHost",
    "build_view",
    "terms_of",
]
