"""Deferred responses at the PS (§Deferred Responses, §Deferred Response State Machine):
creating a pending record with its interaction code (§Interaction Required, §Interaction
Code Format), the ``202`` that points at it (§Pending Response, §Clarification Required),
and polling it (§Polling with GET, ``Prefer: wait``) until the terminal response. Records
change state only through :func:`~aauth_agents.stores.advance`."""

from __future__ import annotations

import asyncio
import math
import secrets
from typing import Any

from ....protocol.deferred import STATUS_INTERACTING, STATUS_PENDING
from ....protocol.errors import AAuthError, ProtocolError
from ....protocol.interaction import generate_code, normalize_code
from ....protocol.reply import Reply
from ....protocol.requirement import Requirement
from ....stores import (
    APPROVED,
    COMPLETED,
    DENIED,
    EXECUTING,
    INTERACTING,
    PENDING,
    Event,
    PendingRecord,
    advance,
)
from .. import events as ev
from ..errors import gone, not_found
from ..interactions import code_interaction_id
from ..pending import PendingRequest
from ..policy import INTERACTION
from .core import AgentContext, log
from .outcomes import Outcomes

#: Seconds between re-reads of a record a long poll waits on: a decision made by another
#: worker process (which cannot wake this one's notifier) is seen within this bound.
REREAD_INTERVAL = 0.5


class Deferred(Outcomes):
    """Pending records: create, answer ``202``, poll, settle."""

    async def create_pending(
        self,
        req: PendingRequest,
        ctx: AgentContext,
        *,
        requirement: str,
        lifetime: float | None = None,
    ) -> PendingRecord:
        """A new pending record for ``req`` waiting under ``requirement`` (``interaction``:
        with a fresh interaction URL and code; ``approval``: without)."""
        now = self.clock()
        provider = await self.provider_metadata(req.agent_iss)
        name, logo = (provider.name, provider.logo_uri) if provider else (None, None)
        binding = await self.run(self.state.binding, req.agent_iss, req.agent_id)
        req = req.evolve(
            requirement=requirement,
            provider_name=name,
            provider_logo=logo,
            new_agent=binding is None,
        )
        # The person it waits for (their dashboard lists it): the one the agent is bound to,
        # else the PS's ``default_person``; for a new agent of a PS without one, whoever
        # opens the link and signs in claims it (Interactions.mark_interacting).
        owner = (binding.account if binding else req.account) or await self.default_account()
        life = lifetime if lifetime is not None else self.config.pending_lifetime
        for _ in range(8):
            interaction_id = code = None
            evolved = req
            if requirement == INTERACTION:
                interaction_id, code, evolved = self._interaction(req)
            record = PendingRecord.open(
                secrets.token_urlsafe(24),
                req.kind,
                ctx.jkt,
                now,
                life,
                interaction_id=interaction_id,
                code=code,
                data=evolved.to_json(),
                owner=owner,
            )
            try:
                await self.run(self.pending.create, record)
            except KeyError:
                if interaction_id is None:
                    raise
                continue  # the code is taken: draw another
            req = evolved
            break
        else:
            raise ProtocolError("no unused interaction code was found", code="server_error")
        self.emit(
            ev.PENDING,
            agent=req.agent_id,
            account=req.account,
            resource=req.resource.identifier if req.resource else None,
            mission=req.mission_s256,
            detail={"kind": req.kind, "requirement": requirement, "pending": record.id},
        )
        return record

    def _interaction(self, req: PendingRequest) -> tuple[str, str, PendingRequest]:
        """A fresh interaction: ``(interaction_id, code, req with URL and display code)``
        (§Interaction Required, §Interaction Code Format)."""
        display = generate_code(8)
        code = normalize_code(display)
        if self.config.code_only_interaction:
            # One URL for all; the code finds the interaction, so it must be unique:
            # the store refuses a second record with the same interaction id.
            interaction_id = code_interaction_id(code)
            url = self.config.url("interact")
        else:
            interaction_id = secrets.token_urlsafe(16)
            url = self.config.url("interact", interaction_id)
        return interaction_id, code, req.evolve(interaction_url=url, display_code=display)

    def pending_reply(
        self, record: PendingRecord, req: PendingRequest, *, initial: bool = False
    ) -> Reply:
        """The ``202`` for a pending request (§Pending Response)."""
        headers = {
            "Location": self.config.url("pending", record.id),
            "Retry-After": "0" if initial else str(self.config.retry_after),
        }
        status = STATUS_INTERACTING if record.state == INTERACTING else STATUS_PENDING
        body: dict[str, Any] = {"status": status}
        question = req.open_question
        if question is not None:
            headers.update(Requirement.clarification().headers())
            body["clarification"] = question["question"]
            # Whole seconds left (§Clarification Required), rounded up: a request that is
            # still pending never reports 0, and a fresh one reports its full lifetime.
            body["timeout"] = max(0, math.ceil(record.expires_at - self.clock()))
            if question.get("options"):
                body["options"] = list(question["options"])
        elif req.requirement == INTERACTION and req.interaction_url and req.display_code:
            headers.update(Requirement.interaction(req.interaction_url, req.display_code).headers())
        else:
            headers.update(Requirement.approval().headers())
        return Reply.json(202, body, headers.items())

    def initial_reply(self, record: PendingRecord) -> Reply:
        """The first ``202`` of a request just deferred (``Retry-After: 0``)."""
        return self.pending_reply(record, PendingRequest.from_json(record.data), initial=True)

    # -- polling -------------------------------------------------------------------------------

    async def owned_record(
        self, pending_id: str, ctx: AgentContext
    ) -> tuple[PendingRecord, PendingRequest]:
        """The pending record if this agent (same identity and key) made it; otherwise the
        same 404 as for an unknown id (§Pending URL Security: verify on every poll)."""
        record = await self.run(self.pending.get, pending_id)
        if record is None:
            raise not_found()
        req = PendingRequest.from_json(record.data)
        if record.agent_jkt != ctx.jkt or req.agent_id != ctx.agent_id or req.agent_iss != ctx.iss:
            raise not_found()
        return record, req

    async def answer_poll(self, pending_id: str, ctx: AgentContext, wait: int | None) -> Reply:
        """``GET`` on a pending URL: the terminal response once decided, else ``202`` --
        after waiting up to ``wait`` seconds (``Prefer: wait``) for a change."""
        loop = asyncio.get_running_loop()
        budget = min(wait or 0, self.config.max_wait)
        deadline = loop.time() + budget
        while True:
            entry = self.notifier.register(pending_id)
            try:
                record, req = await self.owned_record(pending_id, ctx)
                reply = await self._settle(record, req, ctx)
                if reply is not None:
                    return reply
                remaining = deadline - loop.time()
                if remaining <= 0 or req.open_question is not None:
                    # A question for the agent is news: it answers without waiting it out.
                    return self.pending_reply(record, req)
                # Re-read now and then: another worker process may change the record.
                await self.notifier.wait(entry, min(remaining, REREAD_INTERVAL))
            finally:
                self.notifier.unregister(pending_id, entry)

    async def _settle(
        self, record: PendingRecord, req: PendingRequest, ctx: AgentContext
    ) -> Reply | None:
        """The terminal response of a decided record (moving it to ``completed``), or
        ``None`` while it is still pending (§Deferred Response State Machine)."""
        for _ in range(10):
            if record.state == COMPLETED:
                raise gone()
            now = self.clock()
            if record.state in (PENDING, INTERACTING, EXECUTING):
                if now < record.expires_at:
                    return None
                expired = advance(
                    record, Event.FAIL, code=None, data=req.evolve(error="expired").to_json()
                )
                if await self.run(self.pending.replace, expired) is not None:
                    self.emit(
                        ev.EXPIRED,
                        agent=req.agent_id,
                        account=req.account,
                        detail={"kind": req.kind},
                    )
            else:
                done = await self.run(
                    self.pending.replace, advance(record, Event.DELIVER, code=None)
                )
                if done is not None:
                    self.notifier.notify(record.id)
                    await self.limiter.aforget(record.id)
                    return await self._terminal(record, req, ctx)
            latest = await self.run(self.pending.get, record.id)
            if latest is None:
                raise not_found()
            record, req = latest, PendingRequest.from_json(latest.data)
        raise ProtocolError("the pending request is changing too fast", code="server_error")

    async def _terminal(
        self, record: PendingRecord, req: PendingRequest, ctx: AgentContext
    ) -> Reply:
        """§Polling Error Codes: approved, denied, or failed (``abandoned``, ``expired``,
        ``invalid_code``, ...)."""
        if record.state == APPROVED:
            try:
                return await self.complete(req, req.result or {}, ctx)
            except AAuthError:
                raise
            except Exception as exc:
                log.exception("completing %s failed", record.id)
                raise ProtocolError(
                    "the request could not be completed", code="server_error"
                ) from exc
        if record.state == DENIED:
            return await self.denied(req, req.reason, logged=True)
        code = req.error or "server_error"
        details = {
            "abandoned": "the person left the interaction without deciding",
            "expired": "the request timed out",
            "invalid_code": "the interaction failed: too many wrong codes",
        }
        return Reply.error(ProtocolError(req.reason or details.get(code, code), code=code))


__all__ = ["Deferred"]
