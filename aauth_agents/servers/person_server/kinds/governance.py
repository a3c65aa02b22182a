"""The request kinds of the PS governance endpoints (§PS Governance Endpoints): a permission
(§Permission Endpoint), a question for the person and a relayed interaction or payment
(§Interaction Endpoint)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ....protocol.errors import ProtocolError
from ....protocol.reply import Reply
from ..errors import InteractionError
from ..pending import PendingRequest
from ..policy import PERMISSION, QUESTION, RELAY, Decision
from .base import Edits, MissionLog, RequestKind, Terms, Wants

if TYPE_CHECKING:
    from ..server.core import AgentContext
    from ..server.issuance import Issuance


class PermissionKind(RequestKind):
    """§Permission Endpoint: may the agent take ``action``? Granted or denied in the body
    (``200`` either way, §Permission Response), both logged with the mission."""

    name = PERMISSION
    title = "Permission for an action"
    shown = (("action", "Action"), ("description", "Description"), ("parameters", "Parameters"))

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
        if req.mission_s256:
            await ps.log_mission(
                req.mission_s256,
                "permission_response",
                {"action": req.request.get("action"), "permission": "granted"},
            )
        return {"permission": "granted"}

    async def complete(
        self, ps: Issuance, req: PendingRequest, result: Mapping[str, Any], ctx: AgentContext
    ) -> Reply:
        return Reply.json(200, {"permission": "granted"})

    def refusal(self, req: PendingRequest, reason: str | None) -> Reply:
        """§Permission Response: ``permission: denied``, with the reason if any."""
        body: dict[str, Any] = {"permission": "denied"}
        if reason:
            body["reason"] = reason
        return Reply.json(200, body)

    async def record_denial(self, ps: MissionLog, req: PendingRequest, reason: str | None) -> None:
        if req.mission_s256:
            await ps.log_mission(
                req.mission_s256,
                "permission_response",
                {"action": req.request.get("action"), "permission": "denied", "reason": reason},
            )

    def summary(self, req: PendingRequest) -> tuple[str, ...]:
        return (f"The agent asks permission to {req.request.get('action')}.",)

    def wants(self, req: PendingRequest) -> Wants:
        return Wants("asks permission to", str(req.request.get("action") or "act"))

    def allows(self, req: PendingRequest, terms: Terms) -> tuple[str, ...]:
        return ("Approving lets the agent do this, this time. Your answer is kept in the log.",)


class QuestionKind(RequestKind):
    """§Interaction Request ``type: question``: the person answers; approving needs the
    answer."""

    name = QUESTION
    title = "A question from the agent"
    editable = frozenset({"answer"})
    approve_label = "Send answer"
    deny_label = "Don't answer"
    shown = (("question", "Question"), ("description", "Description"))

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
        answer = overrides.get("answer")
        if not isinstance(answer, str) or not answer:
            raise ProtocolError("a question is approved with an answer", code="invalid_request")
        if req.mission_s256:
            await ps.log_mission(
                req.mission_s256,
                "question_answer",
                {"question": req.request.get("question"), "answer": answer},
            )
        return {"answer": answer}

    async def complete(
        self, ps: Issuance, req: PendingRequest, result: Mapping[str, Any], ctx: AgentContext
    ) -> Reply:
        """§Interaction Response: the person's answer."""
        return Reply.json(200, {"answer": result["answer"]})

    def edit(self, req: PendingRequest, edits: Edits, now: float) -> dict[str, Any]:
        if not isinstance(edits.answer, str) or not edits.answer:
            raise InteractionError("a question is approved with an answer", code="invalid_request")
        return {"answer": edits.answer}

    def summary(self, req: PendingRequest) -> tuple[str, ...]:
        return ("The agent has a question for you.",)

    def wants(self, req: PendingRequest) -> Wants:
        return Wants("has a question for you")

    def allows(self, req: PendingRequest, terms: Terms) -> tuple[str, ...]:
        return ("Your answer goes to the agent and nowhere else.",)


class RelayKind(RequestKind):
    """§Interaction Request ``type: interaction`` / ``payment`` (§Relaying Through the
    Person Server): resolved once the person engaged with the relayed URL; the resource's
    own pending URL stays authoritative for completion (§Interaction Response)."""

    name = RELAY
    title = "An interaction to complete"
    shown = (("description", "Description"), ("url", "Where"))
    relayed = True
    approve_label = "I'll do it"

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
        return {"status": "engaged"}

    async def complete(
        self, ps: Issuance, req: PendingRequest, result: Mapping[str, Any], ctx: AgentContext
    ) -> Reply:
        return Reply.json(200, {"status": result.get("status", "engaged")})

    def summary(self, req: PendingRequest) -> tuple[str, ...]:
        return (f"The agent needs you to complete a {req.request.get('type')}.",)

    def wants(self, req: PendingRequest) -> Wants:
        what = "a payment" if req.request.get("type") == "payment" else "a step"
        return Wants(f"needs you to complete {what} at another site")

    def allows(self, req: PendingRequest, terms: Terms) -> tuple[str, ...]:
        return ("Nothing is paid or shared from here: you finish it at the site named below.",)


__all__ = ["PermissionKind", "QuestionKind", "RelayKind"]
