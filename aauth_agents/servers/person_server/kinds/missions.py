"""The mission request kinds: a proposal (§Mission Creation, §Mission Approval), an update
(§Mission Update) and a completion (§Mission Completion)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ....protocol.mission import build_mission_blob, mission_approval_response, mission_s256
from ....protocol.reply import Reply
from .. import events as ev
from ..errors import InteractionError
from ..formats import compact, iso8601
from ..pending import PendingRequest
from ..policy import MISSION, MISSION_COMPLETION, MISSION_UPDATE, Decision
from ..state import ACTIVE, Mission
from .base import MISSION_EDITS, Edits, RequestKind, Terms, Wants, duration_words

if TYPE_CHECKING:
    from ..server.core import AgentContext
    from ..server.issuance import Issuance


#: Seconds ``approved_at`` may be moved on to make an ``s256`` unique (see :func:`_create`).
_MAX_SHIFTS = 5


def _same_owner(existing: Mission, mission: Mission) -> bool:
    return (existing.agent_iss, existing.agent_id, existing.account) == (
        mission.agent_iss,
        mission.agent_id,
        mission.account,
    )


def _blob_fields(
    ps: Issuance, req: PendingRequest, overrides: Mapping[str, Any], expires_at: Any
) -> dict[str, Any]:
    """The approved mission's blob members but ``approved_at`` (§Mission Approval): the
    proposal with the person's edits."""
    r = req.request
    tools = overrides.get("tools")
    resources = overrides.get("resources")
    return {
        "approver": ps.issuer,
        "agent": req.agent_id,
        "description": str(overrides.get("description") or r["description"]),
        "expires_at": None if expires_at is None else iso8601(float(expires_at)),
        "approved_tools": list(tools if tools is not None else r.get("tools", ())) or None,
        "approved_resources": list(resources if resources is not None else r.get("resources", ()))
        or None,
    }


async def _create(ps: Issuance, mission: Mission) -> Mission | None:
    """Store ``mission``; ``None`` when it was stored, else the mission that already has its
    ``s256`` (checked first, and again after a failed insert: another worker may have
    stored the same proposal meanwhile). The blob names its agent and its approval time
    (§Mission Approval: ``approved_at`` "ensures the s256 is globally unique"), so only the
    same agent can meet its own mission here; should an owner differ all the same (another
    provider's agent of that name, another person), :meth:`MissionKind.apply` moves
    ``approved_at`` on by a second -- a mission belongs to one agent and one person
    (§Why a Mission Belongs to an Agent)."""
    existing = await ps.run(ps.state.mission, mission.s256)
    if existing is not None:
        return existing
    try:
        await ps.run(ps.state.create_mission, mission)
    except Exception:  # (a unique violation, whatever the database calls it)
        existing = await ps.run(ps.state.mission, mission.s256)
        if existing is None:
            raise
        return existing
    return None


class MissionKind(RequestKind):
    """§Mission Creation: a proposed mission, which the person may edit before approving
    (description, tools and resources among those proposed, expiry)."""

    name = MISSION
    lists_details = False
    title = "A new mission"
    editable = frozenset(MISSION_EDITS)
    shown = (("description", "Mission"), ("tools", "Tools"), ("resources", "Resources"))

    async def apply(
        self,
        ps: Issuance,
        req: PendingRequest,
        account: str,
        decision: Decision | None,
        overrides: Mapping[str, Any],
        *,
        remember: bool,
    ) -> dict[str, Any]:
        """§Mission Approval: the mission as approved, created and logged -- or, when this
        agent already has the very same mission (the same proposal approved within the
        same second: the same blob, so the same ``s256``), that mission, unchanged: a
        proposal sent twice is answered twice with one mission."""
        r = req.request
        now = ps.clock()
        expires_at = overrides.get("expires_at")
        if expires_at is None and ps.config.mission_lifetime is not None:
            expires_at = now + ps.config.mission_lifetime
        fields = _blob_fields(ps, req, overrides, expires_at)
        caps = ("interaction",) if ps.config.relay_channel is not None else ()
        for shift in range(_MAX_SHIFTS):
            blob = build_mission_blob(approved_at=iso8601(now + shift), **fields)
            mission = Mission(
                s256=mission_s256(blob),
                agent_iss=req.agent_iss,
                agent_id=req.agent_id,
                account=account,
                blob=blob,
                state=ACTIVE,
                termination_reason=None,
                expires_at=None if expires_at is None else float(int(float(expires_at))),
                capabilities=caps,
                agent_capabilities=req.params.capabilities,
                created_at=now,
            )
            existing = await _create(ps, mission)
            if existing is None:
                break
            if _same_owner(existing, mission):
                return {"s256": existing.s256}  # (approved and logged the first time)
        else:  # pragma: no cover - needs _MAX_SHIFTS owners of one agent identifier
            raise InteractionError("could not record the mission", code="server_error")
        await ps.log_mission(
            mission.s256,
            "approved",
            {
                "proposal": dict(r),
                "justification": req.params.justification,
                "clarifications": [dict(c) for c in req.conversation],
            },
        )
        ps.emit(ev.MISSION_APPROVED, agent=req.agent_id, account=account, mission=mission.s256)
        return {"s256": mission.s256}

    async def complete(
        self, ps: Issuance, req: PendingRequest, result: Mapping[str, Any], ctx: AgentContext
    ) -> Reply:
        """§Mission Approval: blob, ``s256``, capabilities and a person token for each
        approved resource."""
        s256 = str(result["s256"])
        mission = await ps.owned_mission(req.agent_iss, req.agent_id, s256)
        tokens: dict[str, str] = {}
        for resource in mission.approved_resources:
            token, _ = await ps.issue_person_token(
                req, mission.account, resource, ctx, mission=s256
            )
            tokens[resource] = token
        body = mission_approval_response(
            mission.blob,
            capabilities=list(mission.capabilities) or None,
            person_tokens=tokens or None,
        )
        return Reply.json(200, body)

    def edit(self, req: PendingRequest, edits: Edits, now: float) -> dict[str, Any]:
        """§Mission Creation: tools and resources are limited to those proposed."""
        out: dict[str, Any] = {}
        if edits.description is not None:
            if not isinstance(edits.description, str) or not edits.description:
                raise InteractionError("a description is Markdown text", code="invalid_request")
            out["description"] = edits.description
        if edits.tools is not None:
            proposed = {t["name"]: t for t in req.request.get("tools", ())}
            out["tools"] = [proposed[t["name"]] for t in edits.tools if t.get("name") in proposed]
        if edits.resources is not None:
            proposed_resources = set(req.request.get("resources", ()))
            out["resources"] = [r for r in edits.resources if r in proposed_resources]
        if edits.expires_at is not None:
            if edits.expires_at <= now:
                raise InteractionError("expires_at is in the past", code="invalid_request")
            out["expires_at"] = float(edits.expires_at)
        return out

    def proposed_mission(
        self, req: PendingRequest
    ) -> tuple[str, tuple[Mapping[str, Any], ...], tuple[str, ...]]:
        r = req.request
        return (
            str(r.get("description", "")),
            tuple(r.get("tools", ())),
            tuple(r.get("resources", ())),
        )

    def summary(self, req: PendingRequest) -> tuple[str, ...]:
        return ("The agent proposes a mission to work on for you.",)

    def wants(self, req: PendingRequest) -> Wants:
        return Wants("wants to start a mission for you")

    def allows(self, req: PendingRequest, terms: Terms) -> tuple[str, ...]:
        until = (
            f"for up to {duration_words(terms.mission)}"
            if terms.mission is not None
            else "until it reports the mission done"
        )
        return (
            f"Approving lets the agent work on this mission {until}, with the tools and "
            "sites listed.",
            "You can end the mission from your dashboard at any time.",
        )


class MissionUpdateKind(RequestKind):
    """§Mission Update: a new description appended to the mission log once approved."""

    name = MISSION_UPDATE
    title = "A mission update"
    shown = (("description", "Update"),)

    async def apply(
        self,
        ps: Issuance,
        req: PendingRequest,
        account: str,
        decision: Decision | None,
        overrides: Mapping[str, Any],
        *,
        remember: bool,
    ) -> dict[str, Any]:
        r = req.request
        now = ps.clock()
        entry = compact({"type": "update", "description": r["description"], "at": iso8601(now)})
        digest = mission_s256(entry)
        await ps.run(ps.state.append_log, r["s256"], "update", entry, now, digest)
        ps.emit(ev.MISSION_UPDATED, agent=req.agent_id, account=account, mission=r["s256"])
        return {"s256": digest}

    async def complete(
        self, ps: Issuance, req: PendingRequest, result: Mapping[str, Any], ctx: AgentContext
    ) -> Reply:
        return Reply.json(200, {"s256": result["s256"]})

    def summary(self, req: PendingRequest) -> tuple[str, ...]:
        return ("The agent asks to change its mission.",)

    def wants(self, req: PendingRequest) -> Wants:
        return Wants("wants to change its mission")

    def allows(self, req: PendingRequest, terms: Terms) -> tuple[str, ...]:
        return ("Approving adds this change to the mission; the agent goes on with it.",)


class MissionCompletionKind(RequestKind):
    """§Mission Completion: the agent reports the mission done; approved, it ends."""

    name = MISSION_COMPLETION
    title = "A mission completed"
    shown = (("summary", "Summary"),)

    async def apply(
        self,
        ps: Issuance,
        req: PendingRequest,
        account: str,
        decision: Decision | None,
        overrides: Mapping[str, Any],
        *,
        remember: bool,
    ) -> dict[str, Any]:
        r = req.request
        await ps.log_mission(r["s256"], "completion", {"summary": r["summary"]})
        await ps.terminate_mission(r["s256"], "completed")
        return {}

    async def complete(
        self, ps: Issuance, req: PendingRequest, result: Mapping[str, Any], ctx: AgentContext
    ) -> Reply:
        return Reply.json(200, {"mission_status": "terminated", "termination_reason": "completed"})

    def summary(self, req: PendingRequest) -> tuple[str, ...]:
        return ("The agent reports its mission complete.",)

    def wants(self, req: PendingRequest) -> Wants:
        return Wants("says its mission is done")

    def allows(self, req: PendingRequest, terms: Terms) -> tuple[str, ...]:
        return ("Approving ends the mission: the agent can no longer act under it.",)


__all__ = ["MissionCompletionKind", "MissionKind", "MissionUpdateKind"]
