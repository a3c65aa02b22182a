"""Decisions: the consent policy and remembered consent turn a request into an immediate
answer or a pending one (§Person Server, §Requirement Responses: ``200`` approved,
``403 denied``, ``202`` with ``requirement=interaction`` (§Interaction Required) or
``requirement=approval`` (§Approval Pending)); OpenID Connect ``prompt`` (§Agent Token
Request) and the agent's capabilities (§AAuth-Capabilities Request Header) are honoured.
What an approval then does belongs to the request's kind (:mod:`..kinds`)."""

from __future__ import annotations

from dataclasses import replace

from ....protocol.errors import AAuthError, ConfigurationError, ProtocolError
from ....protocol.reply import Reply
from .. import events as ev
from ..pending import PendingRequest
from ..policy import (
    APPROVAL,
    APPROVE,
    DENY,
    INTERACTION,
    ConsentRequest,
    Decision,
    resolve,
)
from .core import AgentContext, log
from .deferred import Deferred


class Decisions(Deferred):
    """:meth:`decide`, the one path every request the person may have to see goes through."""

    def consent_request(self, req: PendingRequest, consented: bool) -> ConsentRequest:
        """What the policy is asked about ``req`` (:class:`~..policy.ConsentRequest`)."""
        r = req.request
        return ConsentRequest(
            kind=req.kind,
            agent_id=req.agent_id,
            agent_issuer=req.agent_iss,
            account=req.account,
            consented=consented,
            resource=req.resource,
            scopes=tuple(r.get("scopes", ())),
            subagent=req.subagent,
            mission_s256=req.mission_s256,
            justification=req.params.justification,
            description=r.get("description") or r.get("summary") or r.get("question"),
            action=r.get("action"),
            parameters=r.get("parameters"),
            tools=tuple(r.get("tools", ())),
            resources=tuple(r.get("resources", ())),
            capabilities=req.params.capabilities,
            platform=req.params.platform,
            device=req.params.device,
            r3=r.get("r3"),
        )

    async def _capabilities(self, req: PendingRequest) -> tuple[str, ...] | None:
        """The agent's capabilities: sent with the request, else captured with its mission."""
        if req.params.capabilities is not None:
            return req.params.capabilities
        if req.mission_s256:
            mission = await self.run(self.state.mission, req.mission_s256)
            if mission is not None:
                return mission.agent_capabilities
        return None

    async def can_interact(self, req: PendingRequest) -> bool:
        """An agent that declared capabilities without ``interaction`` cannot drive
        ``requirement=interaction``; undeclared capabilities are not a refusal."""
        caps = await self._capabilities(req)
        return caps is None or "interaction" in caps

    async def can_clarify(self, req: PendingRequest) -> bool:
        """§Clarification Chat: only with an agent that declared ``clarification``."""
        caps = await self._capabilities(req)
        return caps is not None and "clarification" in caps

    async def decide(
        self,
        req: PendingRequest,
        ctx: AgentContext,
        *,
        consented: bool,
        wait: int | None,
        force_interaction: bool = False,
    ) -> Reply:
        """Ask the policy (unless ``force_interaction``: the resource asked for an
        interaction) and answer: approved now, denied now, or deferred."""
        prompt = set(req.params.prompt)
        if prompt & {"login", "consent"}:
            consented = False  # the agent asks for the person to be asked again (OIDC prompt)
        consent = self.consent_request(req, consented)
        if force_interaction:
            decision = Decision.interaction()
        else:
            decision = await resolve(self.policy.decide(consent))
            if not isinstance(decision, Decision):
                raise ConfigurationError("a consent policy must return a Decision")
        if decision.outcome == APPROVE:
            reply = await self._approve_now(req, ctx, decision, consented)
            if reply is not None:
                return reply
            log.info("policy approved %s for unbound %s: asking the person", req.kind, req.agent_id)
            decision = Decision.interaction()
        if decision.outcome == DENY:
            self.emit(
                ev.DENIED,
                agent=req.agent_id,
                account=req.account,
                detail={"kind": req.kind, "by": "policy"},
            )
            return await self.denied(req, decision.reason)
        if "none" in prompt and decision.outcome in (INTERACTION, APPROVAL):
            raise ProtocolError(
                "the person would have to be asked and prompt is none", code="user_unreachable"
            )
        if decision.outcome == INTERACTION:
            if not await self.can_interact(req):
                raise ProtocolError(
                    "the person must decide and the agent cannot drive an interaction",
                    code="user_unreachable",
                )
            record = await self.create_pending(req, ctx, requirement=INTERACTION)
            return self.initial_reply(record)
        assert decision.outcome == APPROVAL
        record = await self.create_pending(req, ctx, requirement=APPROVAL)
        if decision.decide is not None:
            self._schedule(record.id, replace(consent, pending_id=record.id), decision)
        if wait:
            return await self.answer_poll(record.id, ctx, wait)
        return self.initial_reply(record)

    async def _approve_now(
        self, req: PendingRequest, ctx: AgentContext, decision: Decision, consented: bool
    ) -> Reply | None:
        """The policy approved: apply and complete at once for the person it names (or the
        agent's), binding an unbound agent; ``None`` when there is no such person."""
        account = decision.account or req.account or await self.default_account()
        if account is None:
            return None
        known = await self.account(account)
        if known is None:
            raise ConfigurationError(f"the policy named an unknown account {account!r}")
        if req.account != known.username:
            await self.bind(req.agent_iss, req.agent_id, known.username, "policy")
            req = req.evolve(account=known.username)
        result = await self.apply(req, known.username, decision, remember=not consented)
        self.emit(
            ev.APPROVED,
            agent=req.agent_id,
            account=known.username,
            detail={"kind": req.kind, "by": "policy"},
        )
        return await self.complete(req, result, ctx)

    def _schedule(self, pending_id: str, consent: ConsentRequest, decision: Decision) -> None:
        """§Approval Pending: run the policy's decider in the background; its answer is
        applied as the person's would be."""
        decide = decision.decide
        assert decide is not None

        async def run() -> None:
            try:
                outcome = await resolve(decide(consent))
            except Exception:
                log.exception("approval decider failed for %s", pending_id)
                return
            if outcome is None:
                return
            try:
                if isinstance(outcome, Decision) and outcome.outcome == APPROVE:
                    await self.interactions.approve(
                        pending_id, outcome.account, scopes=outcome.scopes
                    )
                elif isinstance(outcome, Decision) and outcome.outcome == DENY:
                    await self.interactions.deny(pending_id, outcome.reason)
                else:
                    log.warning("an approval decider answers approve, deny or None")
            except AAuthError as exc:
                log.warning("approval of %s not applied: %s", pending_id, exc.detail)

        self._spawn(run())


__all__ = ["Decisions"]
