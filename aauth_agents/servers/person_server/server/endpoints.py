"""The PS endpoints (§Person Server Metadata), each a thin handler: verify the caller
(:mod:`.verification`), parse the body (:mod:`..requests`), build the request of its kind
and hand it to :meth:`~.decisions.Decisions.decide` -- or answer a poll, a clarification, a
withdrawal, an audit record or a revocation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ....httpsig import HttpRequest
from ....protocol.deferred import CLARIFICATION_RESPONSE, parse_pending_action
from ....protocol.errors import ProtocolError
from ....protocol.mission import validate_s256
from ....protocol.reply import Reply
from ....protocol.wire import WireFormatError
from ....stores import COMPLETED, OPEN, Event, advance
from ....tokens import AgentToken
from .. import events as ev
from ..config import RelayNotice
from ..errors import gone
from ..kinds import kind_of
from ..pending import PendingRequest
from ..policy import (
    APPROVAL,
    AUTH_TOKEN,
    DENY,
    INTERACTION,
    MISSION,
    MISSION_COMPLETION,
    MISSION_UPDATE,
    PERMISSION,
    PERSON_TOKEN,
    QUESTION,
    RELAY,
    Decision,
    ResourceInfo,
    resolve,
)
from ..requests import (
    InteractionRequest,
    RequestParams,
    parse_audit_request,
    parse_auth_token_request,
    parse_interaction_request,
    parse_json_object,
    parse_mission_action,
    parse_mission_proposal,
    parse_permission_request,
    parse_person_token_request,
    parse_prefer_wait,
    parse_revocation_request,
)
from .core import AgentContext
from .decisions import Decisions

#: The request kind of each ``/mission/{s256}`` action, and the member carrying its text.
MISSION_ACTION_KINDS: Mapping[str, tuple[str, str]] = {
    "update": (MISSION_UPDATE, "description"),
    "completion": (MISSION_COMPLETION, "summary"),
}


def _wait(request: HttpRequest) -> int | None:
    return parse_prefer_wait(request.header("prefer"))


def _body(request: HttpRequest) -> dict[str, Any]:
    return parse_json_object(request.body, request.header("content-type"))


class Endpoints(Decisions):
    """``handle_*``: one coroutine per endpoint, request in, :class:`Reply` out."""

    def new_request(
        self,
        kind: str,
        ctx: AgentContext,
        sub: AgentToken | None,
        account: str | None,
        params: RequestParams,
        request: Mapping[str, Any],
        mission_s256: str | None,
        info: ResourceInfo | None,
    ) -> PendingRequest:
        """A request of ``kind`` from the signing agent (for sub-agent ``sub``, if any:
        tokens are then bound to its key, §Parent-Mediated Authorization)."""
        subject = sub.cnf if sub is not None else ctx.key
        return PendingRequest(
            kind=kind,
            agent_iss=ctx.iss,
            agent_id=ctx.agent_id,
            subject_jwk=subject.to_jwk(kid=False),
            requirement="",
            request=dict(request),
            params=params,
            account=account,
            subagent=sub.sub if sub else None,
            subagent_exp=float(sub.exp) if sub else None,
            mission_s256=mission_s256,
            resource=info,
        )

    # -- /person -------------------------------------------------------------------------------

    async def handle_person_token(self, request: HttpRequest) -> Reply:
        """§Person Token Endpoint."""
        ctx = await self.verify_agent(request, replay=False)  # (see Verification._fresh)
        parsed = parse_person_token_request(_body(request))
        if parsed.upstream_token is not None:
            raise ProtocolError(
                "upstream_token (call chaining) is not supported by this PS", code="invalid_request"
            )
        sub = await self.subagent(ctx, parsed.subagent_token)
        if parsed.mission_s256 is not None:
            await self.owned_mission(ctx.iss, ctx.agent_id, parsed.mission_s256)
        await self._resource_rate_limit(ctx.agent_id, parsed.resource)
        account = await self.person_for(ctx.iss, ctx.agent_id)
        info = await self.resource_info(parsed.resource)
        req = self.new_request(
            PERSON_TOKEN,
            ctx,
            sub,
            account,
            parsed.params,
            {"resource": parsed.resource},
            parsed.mission_s256,
            info,
        )
        consented = False
        if account is not None:
            consented = await self.run(
                self.state.consent_covers,
                account,
                ctx.iss,
                ctx.agent_id,
                parsed.resource,
                PERSON_TOKEN,
                parsed.mission_s256,
                (),
            )
            if not consented and parsed.mission_s256 is not None:
                mission = await self.run(self.state.mission, parsed.mission_s256)
                consented = mission is not None and parsed.resource in mission.approved_resources
        if parsed.mission_s256:
            await self.log_mission(
                parsed.mission_s256,
                "person_token_request",
                {
                    "resource": parsed.resource,
                    "subagent": req.subagent,
                    "justification": parsed.params.justification,
                },
            )
        return await self.decide(req, ctx, consented=consented, wait=_wait(request))

    async def _resource_rate_limit(self, agent_id: str, resource: str) -> None:
        limit = self.config.max_resources_per_day
        if limit is None:
            return
        if await self.run(self.state.had_person_token, agent_id, resource):
            return
        count = await self.run(self.state.resources_since, agent_id, self.clock() - 86400)
        if count >= limit:
            raise ProtocolError(
                "too many distinct resources for this agent today", code="slow_down"
            )

    # -- /token --------------------------------------------------------------------------------

    async def handle_auth_token(self, request: HttpRequest) -> Reply:
        """§PS Token Endpoint, three-party (§Agent Token Request, §Resource-Initiated
        Interaction)."""
        ctx = await self.verify_agent(request, replay=False)
        parsed = parse_auth_token_request(_body(request))
        if parsed.upstream_token is not None:
            raise ProtocolError(
                "upstream_token (call chaining) is not supported by this PS", code="invalid_request"
            )
        sub = await self.subagent(ctx, parsed.subagent_token)
        subject = sub.cnf if sub is not None else ctx.key
        account = await self.person_for(ctx.iss, ctx.agent_id)
        rt = await self.verify_resource_token(
            parsed.resource_token, ctx, subject, account, sub.sub if sub else None
        )
        info = await self.resource_info(rt.iss)
        self.check_scopes(rt, info)
        members = await self.token_request_members(rt)
        req = self.new_request(
            AUTH_TOKEN, ctx, sub, account, parsed.params, members, rt.mission_s256, info
        )
        force = False
        if rt.interaction is not None:
            if self.discovery is not None:
                self.discovery.egress.check_url(rt.interaction.url)
            req = req.evolve(
                resource_interaction={
                    "url": rt.interaction.url,
                    "code": rt.interaction.code,
                    "state": "pending",
                }
            )
            force = True
        assert account is not None
        # R3: what an R3 document describes is shown to the person each time (a per-call
        # proposal is one call; consent to a scope is not consent to it).
        consented = "r3" not in members and await self.run(
            self.state.consent_covers,
            account,
            ctx.iss,
            ctx.agent_id,
            rt.iss,
            AUTH_TOKEN,
            rt.mission_s256,
            rt.scopes,
        )
        if rt.mission_s256:
            await self.log_mission(
                rt.mission_s256,
                "auth_token_request",
                {
                    "resource": rt.iss,
                    "scope": rt.scope,
                    "subagent": req.subagent,
                    "justification": parsed.params.justification,
                },
            )
        return await self.decide(
            req, ctx, consented=consented, force_interaction=force, wait=_wait(request)
        )

    # -- /pending/{id} ---------------------------------------------------------------------------

    async def handle_poll(self, request: HttpRequest, pending_id: str) -> Reply:
        """§Polling with GET (``slow_down`` for agents polling too fast)."""
        ctx = await self.verify_agent(request)
        await self.owned_record(pending_id, ctx)
        if not await self.limiter.aallow(pending_id):
            return Reply.error(ProtocolError("poll less often (Retry-After)", code="slow_down"))
        return await self.answer_poll(pending_id, ctx, _wait(request))

    async def handle_pending_post(self, request: HttpRequest, pending_id: str) -> Reply:
        """§Agent Response to Clarification: ``clarification_response`` or
        ``updated_request`` (§Updated Request, handled by the request's kind)."""
        ctx = await self.verify_agent(request)
        body = _body(request)
        record, req = await self.owned_record(pending_id, ctx)
        action, data = parse_pending_action(body)
        if record.state == COMPLETED:
            raise gone()
        if record.state not in OPEN:
            raise ProtocolError("the request has already been decided", code="invalid_request")
        if action == CLARIFICATION_RESPONSE:
            question = req.open_question
            if question is None:
                raise ProtocolError("no clarification question is open", code="invalid_request")
            answered = {
                **question,
                "answer": data[CLARIFICATION_RESPONSE],
                "answered_at": self.clock(),
            }
            new_req = req.evolve(conversation=(*req.conversation[:-1], answered))
            event = ev.CLARIFICATION_ANSWERED
            if req.mission_s256:
                await self.log_mission(
                    req.mission_s256,
                    "clarification",
                    {"question": question["question"], "answer": answered["answer"]},
                )
        else:
            new_req = await kind_of(req.kind).update(self, req, ctx, data)
            event = ev.REQUEST_UPDATED
        stored = await self.run(self.pending.replace, record.evolve(data=new_req.to_json()))
        if stored is None:
            raise ProtocolError("the request changed; poll and retry", code="invalid_request")
        self.notifier.notify(pending_id)
        self.emit(event, agent=req.agent_id, account=req.account, detail={"kind": req.kind})
        return self.pending_reply(stored, new_req)

    async def handle_pending_delete(self, request: HttpRequest, pending_id: str) -> Reply:
        """§Cancel Request: the agent withdraws; the pending URL is then 410."""
        ctx = await self.verify_agent(request)
        for _ in range(10):
            record, req = await self.owned_record(pending_id, ctx)
            if record.state == COMPLETED:
                raise gone()
            withdrawn = advance(
                record, Event.WITHDRAW, code=None, data=req.evolve(withdrawn=True).to_json()
            )
            if await self.run(self.pending.replace, withdrawn) is not None:
                self.notifier.notify(pending_id)
                self.emit(
                    ev.WITHDRAWN, agent=req.agent_id, account=req.account, detail={"kind": req.kind}
                )
                return Reply.empty(204)
        raise ProtocolError("the pending request is changing too fast", code="server_error")

    # -- /mission ------------------------------------------------------------------------------

    async def handle_mission_proposal(self, request: HttpRequest) -> Reply:
        """§Mission Creation."""
        ctx = await self.verify_agent(request)
        proposal = parse_mission_proposal(_body(request))
        account = await self.person_for(ctx.iss, ctx.agent_id)
        req = self.new_request(
            MISSION,
            ctx,
            None,
            account,
            proposal.params,
            {
                "description": proposal.description,
                "tools": list(proposal.tools),
                "resources": list(proposal.resources),
            },
            None,
            None,
        )
        return await self.decide(req, ctx, consented=False, wait=_wait(request))

    async def handle_mission_action(self, request: HttpRequest, s256: str) -> Reply:
        """§Mission Update and §Mission Completion at ``/mission/{s256}``."""
        ctx = await self.verify_agent(request)
        body = _body(request)
        try:
            validate_s256(s256)
        except WireFormatError as exc:
            raise ProtocolError(exc.detail, code="invalid_request") from exc
        action, text = parse_mission_action(body)
        mission = await self.owned_mission(ctx.iss, ctx.agent_id, s256)
        kind, member = MISSION_ACTION_KINDS[action]
        params = RequestParams(capabilities=mission.agent_capabilities)
        req = self.new_request(
            kind, ctx, None, mission.account, params, {"s256": s256, member: text}, s256, None
        )
        await self.log_mission(s256, f"{action}_proposed", {member: text})
        return await self.decide(req, ctx, consented=False, wait=_wait(request))

    # -- /permission, /audit -------------------------------------------------------------------

    async def handle_permission(self, request: HttpRequest) -> Reply:
        """§Permission Endpoint: granted at once for a tool the mission approved."""
        ctx = await self.verify_agent(request)
        parsed = parse_permission_request(_body(request))
        asked = {
            "action": parsed.action,
            "description": parsed.description,
            "parameters": parsed.parameters,
        }
        mission = None
        if parsed.mission_s256 is not None:
            mission = await self.owned_mission(ctx.iss, ctx.agent_id, parsed.mission_s256)
            await self.log_mission(parsed.mission_s256, "permission_request", asked)
            if any(t.get("name") == parsed.action for t in mission.approved_tools):
                await self.log_mission(
                    parsed.mission_s256,
                    "permission_response",
                    {"action": parsed.action, "permission": "granted", "reason": "approved tool"},
                )
                return Reply.json(200, {"permission": "granted"})
        account = await self.person_for(ctx.iss, ctx.agent_id)
        params = RequestParams(capabilities=mission.agent_capabilities if mission else None)
        req = self.new_request(
            PERMISSION,
            ctx,
            None,
            account,
            params,
            asked,
            parsed.mission_s256,
            None,
        )
        return await self.decide(req, ctx, consented=False, wait=_wait(request))

    async def handle_audit(self, request: HttpRequest) -> Reply:
        """§Audit Endpoint: recorded in the mission log, ``201``."""
        ctx = await self.verify_agent(request)
        parsed = parse_audit_request(_body(request))
        mission = await self.owned_mission(ctx.iss, ctx.agent_id, parsed.mission_s256)
        await self.log_mission(mission.s256, "audit", parsed.to_json())
        self.emit(
            ev.AUDIT,
            agent=ctx.agent_id,
            account=mission.account,
            mission=mission.s256,
            detail={"action": parsed.action},
        )
        return Reply.empty(201)

    # -- /interaction --------------------------------------------------------------------------

    async def handle_interaction(self, request: HttpRequest) -> Reply:
        """§Interaction Endpoint: relay an interaction or payment, or ask the person."""
        ctx = await self.verify_agent(request)
        parsed = parse_interaction_request(_body(request))
        mission = None
        if parsed.mission_s256 is not None:
            mission = await self.owned_mission(ctx.iss, ctx.agent_id, parsed.mission_s256)
            await self.log_mission(
                parsed.mission_s256,
                "interaction_request",
                {
                    "type": parsed.type,
                    "description": parsed.description,
                    "url": parsed.url,
                    "question": parsed.question,
                },
            )
        account = await self.person_for(ctx.iss, ctx.agent_id)
        params = RequestParams(capabilities=mission.agent_capabilities if mission else None)
        wait = _wait(request)
        if parsed.type in ("interaction", "payment"):
            return await self._relay(ctx, parsed, account, params, wait)
        return await self._question(ctx, parsed, account, params, wait)

    async def _relay(
        self,
        ctx: AgentContext,
        parsed: InteractionRequest,
        account: str | None,
        params: RequestParams,
        wait: int | None,
    ) -> Reply:
        """§Relaying Through the Person Server: the person is sent the URL and code through
        the PS's ``relay_channel``."""
        channel = self.config.relay_channel
        if channel is None:
            raise ProtocolError(
                "this PS has no channel to reach the person", code="interaction_unavailable"
            )
        req = self.new_request(
            RELAY,
            ctx,
            None,
            account,
            params,
            {
                "type": parsed.type,
                "url": parsed.url,
                "code": parsed.code,
                "description": parsed.description,
            },
            parsed.mission_s256,
            None,
        )
        lifetime = min(
            parsed.max_wait or self.config.pending_lifetime, self.config.pending_lifetime
        )
        record = await self.create_pending(req, ctx, requirement=APPROVAL, lifetime=lifetime)
        notice = RelayNotice(
            pending_id=record.id,
            type=parsed.type,
            agent_id=ctx.agent_id,
            account=account,
            description=parsed.description,
            url=parsed.url,
            code=parsed.code,
        )
        if not await resolve(channel(notice)):
            await self.run(self.pending.delete, record.id)
            raise ProtocolError(
                "the person cannot be reached right now", code="interaction_unavailable"
            )
        if wait:
            return await self.answer_poll(record.id, ctx, wait)
        return self.initial_reply(record)

    async def _question(
        self,
        ctx: AgentContext,
        parsed: InteractionRequest,
        account: str | None,
        params: RequestParams,
        wait: int | None,
    ) -> Reply:
        """§Interaction Request ``type: question``: through the relay channel if the PS has
        one that reaches the person, else an interaction the agent drives."""
        req = self.new_request(
            QUESTION,
            ctx,
            None,
            account,
            params,
            {"question": parsed.question, "description": parsed.description},
            parsed.mission_s256,
            None,
        )
        decision = await resolve(self.policy.decide(self.consent_request(req, False)))
        if isinstance(decision, Decision) and decision.outcome == DENY:
            return await self.denied(req, decision.reason)
        channel = self.config.relay_channel
        if channel is not None:
            record = await self.create_pending(req, ctx, requirement=APPROVAL)
            notice = RelayNotice(
                pending_id=record.id,
                type="question",
                agent_id=ctx.agent_id,
                account=account,
                description=parsed.description,
                question=parsed.question,
            )
            if await resolve(channel(notice)):
                if wait:
                    return await self.answer_poll(record.id, ctx, wait)
                return self.initial_reply(record)
            await self.run(self.pending.delete, record.id)
        if not await self.can_interact(req):
            raise ProtocolError(
                "the PS cannot reach the person and the agent cannot either",
                code="user_unreachable",
            )
        record = await self.create_pending(req, ctx, requirement=INTERACTION)
        return self.initial_reply(record)

    # -- /revoke -------------------------------------------------------------------------------

    async def handle_revocation(self, request: HttpRequest) -> Reply:
        """§Token Revocation: an agent provider revokes an agent token it issued."""
        verified = await self._revocation_verifier.averify(request, self._jwks_uri_resolver)
        caller = str(verified.context)
        iss, jti = parse_revocation_request(_body(request))
        if caller != iss:
            raise ProtocolError(
                "only the issuer of a token may revoke it here", code="access_denied", status=403
            )
        outcome = await self.revoke_agent_token(iss, jti)
        if not outcome.known:
            return Reply.error(
                ProtocolError(
                    "this PS has not seen that token (it is refused from now on)",
                    code="not_found",
                    status=404,
                )
            )
        return Reply.json(
            200,
            {
                "revoked_auth_tokens": len(outcome.report.revoked),
                "notified": len(outcome.report.notified),
            },
        )


__all__ = ["MISSION_ACTION_KINDS", "Endpoints"]
