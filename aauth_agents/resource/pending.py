"""Pending records of the resource (§Deferred Responses): holding a request with a 202,
answering polls of its pending URL, executing the held invocation once (§Deferred Delivery)
and keeping its result, and completing a per-call tool's held call with the auth token that
approves it (R3 §Per-Call Proposals).

A record changes state only through :func:`~aauth_agents.stores.advance` (the transition
table in :mod:`aauth_agents.stores.states`); stores replace it by compare-and-set, so a
poll that loses a race answers 202 and the winner executes.

:class:`PendingRecords` belongs to one :class:`~aauth_agents.resource.AAuthResource` and
uses its shared steps (challenges, resource tokens, replay, remembering tokens). What sets
one kind of record apart from another (interaction, approval, auth-token, per-call) lives
in :mod:`~aauth_agents.resource.pending_kinds`.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..httpsig import HttpRequest
from ..protocol.deferred import STATUS_INTERACTING, STATUS_PENDING
from ..protocol.errors import AAuthError, ProtocolError
from ..protocol.r3 import parameters_match, parse_r3_document
from ..protocol.reply import NO_STORE as _NO_STORE
from ..protocol.reply import Reply
from ..protocol.requirement import Requirement
from ..protocol.wire import WireFormatError
from ..stores import (
    APPROVED,
    COMPLETED,
    DENIED,
    EXECUTING,
    FAILED,
    INTERACTING,
    LIVE,
    OPEN,
    PENDING,
    Event,
    PendingRecord,
    advance,
)
from ..tokens import AuthToken
from . import events as ev
from .caller import Caller
from .held import HeldRequest, HeldResult
from .outcomes import Execute, Outcome
from .pending_kinds import (
    INTERACTION,
    KIND_APPROVAL,
    KIND_AUTH_TOKEN,
    KIND_INTERACTION,
    KIND_PER_CALL,
    TOKEN_KINDS,
    PendingKind,
    TokenCompleted,
    pending_kind,
)
from .percall import read_mcp_call
from .scopes import missing_scopes

if TYPE_CHECKING:
    from .server import AAuthResource


class PendingRecords:
    """The pending records of ``resource``: create (:meth:`pend`), decide (:meth:`resolve`,
    :meth:`reject`, :meth:`expire`), poll (:meth:`poll`), complete (:meth:`complete`)."""

    def __init__(self, resource: AAuthResource) -> None:
        self.resource = resource
        self.config = resource.config
        self.stores = resource.stores
        self.clock = resource.clock
        self.events = resource.events

    # -- URLs ------------------------------------------------------------------------------

    def pending_url(self, record_id: str) -> str:
        return self.config.url(f"{self.config.paths.pending}/{record_id}")

    def interaction_url(self, interaction_id: str) -> str:
        return self.config.url(f"{self.config.paths.interaction}/{interaction_id}")

    def r3_url(self, record_id: str) -> str:
        """The ``r3_uri`` of the proposal held with pending record ``record_id``."""
        return self.config.url(f"{self.config.paths.r3}/{record_id}")

    def proposal_id(self, token: AuthToken) -> str | None:
        """The pending record whose proposal ``token`` pins, when it pins one of ours."""
        uri = token.r3_uri
        if uri is None:  # the common case: no proposal pinned
            return None
        prefix = self.config.url(self.config.paths.r3 + "/")
        if not uri.startswith(prefix):
            return None
        record_id = uri[len(prefix) :]
        return record_id if record_id and "/" not in record_id else None

    # -- holding a request -------------------------------------------------------------------

    async def pend_interaction(
        self,
        caller: Caller,
        scopes: Sequence[str],
        held: HeldRequest | None,
        extra: Mapping[str, Any] | None = None,
    ) -> Reply:
        return await self.pend(
            INTERACTION,
            caller,
            scopes,
            held,
            None,
            self.config.interaction_retry_after,
            extra=extra,
        )

    async def pend(
        self,
        kind: PendingKind,
        caller: Caller,
        scopes: Sequence[str],
        held: HeldRequest | None,
        requirement: Requirement | None,
        retry_after: int,
        *,
        extra: Mapping[str, Any] | None = None,
        record_id: str | None = None,
    ) -> Reply:
        """Create a pending record of ``kind`` holding ``held``; the 202 announcing it
        (``requirement``, unless the kind announces itself)."""
        now = self.clock()
        record_id = record_id or secrets.token_urlsafe(24)
        requirement, interaction_id, code = kind.announcement(self, requirement)
        data = {
            "held": held.to_json() if held else None,
            "scopes": list(scopes),
            "requirement": requirement.header_value(),
            "retry_after": retry_after,
            "agent": caller.agent,
            **(extra or {}),
        }
        record = PendingRecord.open(
            record_id,
            kind.name,
            caller.thumbprint,
            now,
            self.config.pending_lifetime,
            interaction_id=interaction_id,
            code=code,
            data=data,
        )
        await self.stores.pending.acreate(record)
        self.events.emit(
            ev.PENDING,
            kind.name,
            pending=record_id,
            caller=caller.label,
            scope=" ".join(scopes) or None,
        )
        return self.reply(record)

    def reply(self, record: PendingRecord, status: str | None = None) -> Reply:
        """The 202 for ``record``: its pending URL, ``Retry-After`` and requirement."""
        headers = [
            ("Location", self.pending_url(record.id)),
            ("Retry-After", str(record.data.get("retry_after", 0))),
            _NO_STORE,
            ("AAuth-Requirement", str(record.data["requirement"])),
        ]
        state = status or (STATUS_INTERACTING if record.state == INTERACTING else STATUS_PENDING)
        return Reply.json(202, {"status": state}, headers)

    # -- decisions ---------------------------------------------------------------------------

    async def resolve(
        self, record_id: str, *, subject: str | None = None, scopes: Sequence[str] | None = None
    ) -> bool:
        """Approve a pending record (an approver's decision, or the person's at the
        resource's own page). An interaction record needs the authenticated ``subject``.
        False when there is nothing pending to resolve."""
        record = await self.stores.pending.aget(record_id)
        if record is None or record.state not in OPEN:
            return False
        kind = pending_kind(record.kind)
        if kind.token_completed:
            return False
        kind.check_approval(subject)
        data = dict(record.data, subject=subject)
        if scopes is not None:
            data["scopes"] = list(scopes)
        done = await self.stores.pending.areplace(advance(record, Event.APPROVE, data=data))
        if done is not None:
            self.events.emit(ev.RESOLVED, record.kind, pending=record_id, subject=subject)
        return done is not None

    async def reject(self, record_id: str) -> bool:
        """Deny a pending record: its next poll answers ``403 denied``."""
        record = await self.stores.pending.aget(record_id)
        if record is None or record.state not in OPEN:
            return False
        done = await self.stores.pending.areplace(advance(record, Event.DENY))
        if done is not None:
            self.events.emit(ev.REJECTED, record.kind, pending=record_id)
        return done is not None

    async def expire(self, record_id: str) -> bool:
        """End a pending record now: its next poll answers ``408 expired``."""
        record = await self.stores.pending.aget(record_id)
        if record is None or record.state not in (PENDING, INTERACTING, APPROVED):
            return False
        now = self.clock()
        done = await self.stores.pending.areplace(record.evolve(expires_at=now))
        return done is not None

    async def complete(self, execute: Execute, result: HeldResult) -> None:
        """Store the response of a held invocation (§Deferred Delivery: kept until the auth
        token's ``exp``, to answer a repeated presentation without executing again)."""
        record = await self.stores.pending.aget(execute.record.id)
        if record is None or record.state != EXECUTING:
            return
        retain = float(record.data.get("retain_until", 0))
        data = dict(record.data, result=result.to_json(), held=None)
        await self.stores.pending.areplace(
            advance(record, Event.DELIVER, data=data, purge_at=max(record.purge_at, retain))
        )
        self.events.emit(ev.COMPLETED, record.kind, pending=record.id, status=result.status)

    # -- polling a pending URL ---------------------------------------------------------------

    async def poll(self, request: HttpRequest, record_id: str) -> Reply | Execute:
        """GET on a pending URL (§Deferred Responses, §Pending URL Security)."""
        if request.method.upper() not in ("GET", "HEAD"):
            return Reply.problem(
                405, "invalid_request", "poll a pending URL with GET", [("Allow", "GET")]
            )
        record = await self.stores.pending.aget(record_id)
        not_found = Reply.problem(404, "not_found", "no such pending request")
        if record is None:
            return not_found
        try:
            caller = await self.resource.verifier.averify(request)
        except AAuthError as exc:
            return Reply.error(exc)
        if not hmac.compare_digest(caller.thumbprint, record.agent_jkt):
            self.events.emit(ev.DENIED, "pending_wrong_key", pending=record_id, caller=caller.label)
            return not_found  # indistinguishable from an unknown pending URL
        now = self.clock()
        ended = await self._ended(caller, record, now)
        if ended is not None:
            return ended
        if record.state == EXECUTING:
            return self.reply(record)
        if pending_kind(record.kind).token_completed:
            return await self.deferred(caller, record, now)
        if record.state != APPROVED:
            return self.reply(record)
        return await self._finish_approved(caller, record, now)

    async def _ended(self, caller: Caller, record: PendingRecord, now: float) -> Reply | None:
        """The answer for a record that is over (completed, failed, denied, expired), or
        ``None`` while it is alive."""
        gone = Reply.problem(410, "invalid_code", "this pending request is finished")
        if record.state == COMPLETED:
            stored = record.data.get("result")
            if (
                pending_kind(record.kind).token_completed
                and stored is not None
                and [caller.issuer, caller.jti] == record.data.get("completed_by")
            ):
                result = HeldResult.from_json(stored)
                return Reply(result.status, result.headers, result.body)
            return gone
        if record.state == FAILED:
            return gone
        if record.state == DENIED:
            if await self.stores.pending.areplace(advance(record, Event.DELIVER)) is None:
                return gone
            return Reply.error(ProtocolError("the request was denied", code="denied"))
        if record.state in LIVE and now >= record.expires_at:
            if await self.stores.pending.areplace(advance(record, Event.FAIL)) is None:
                return gone
            self.events.emit(ev.EXPIRED, record.kind, pending=record.id)
            return Reply.error(ProtocolError("the pending request expired", code="expired"))
        return None

    async def deferred(self, caller: Caller, record: PendingRecord, now: float) -> Reply | Execute:
        """A poll of a record waiting for an auth token (deferred auth-token, per-call): the
        held invocation runs when the token presented covers it (§Deferred Delivery)."""
        data = record.data
        token = caller.token
        if not isinstance(token, AuthToken):
            return self.reply(await self._renewed(caller, record, now))
        if (token.ps, token.sub) != (
            data.get("ps"),
            data.get("sub"),
        ) or token.mission_s256 != data.get("mission_s256"):
            self.events.emit(
                ev.DENIED, "deferred_person_mismatch", pending=record.id, caller=caller.label
            )
            return Reply.error(
                ProtocolError(
                    "the auth token is not for the held request's person",
                    code="invalid_auth_token",
                    status=403,
                )
            )
        kind = pending_kind(record.kind)
        assert isinstance(kind, TokenCompleted)
        refusal = kind.approves(self, caller, token, record)
        if refusal is not None:
            return refusal
        missing = missing_scopes(
            kind.granted(self, caller),
            list(data["scopes"]),
            self.config.scope_matcher,
            token.claims,
        )
        if missing:
            return self.resource._insufficient(caller, missing)
        executing = await self.stores.pending.areplace(
            advance(
                record,
                Event.CLAIM,
                data=dict(data, completed_by=[caller.issuer, caller.jti], retain_until=token.exp),
            )
        )
        if executing is None:  # another poll won the race: it executes, this one waits
            return self.reply(record)
        return self._execute(caller, executing)

    async def _renewed(self, caller: Caller, record: PendingRecord, now: float) -> PendingRecord:
        """Still waiting for the auth token: ``record`` with its expired resource token
        renewed for the same person (the invocation stays held, nothing is re-sent)."""
        data = record.data
        if (
            caller.presents_person_token
            and now >= float(data.get("rt_exp", 0))
            and caller.person == (data.get("ps"), data.get("sub"))
        ):
            person = self.resource._person_record(caller)
            if person.mission_s256 == data.get("mission_s256"):
                fresh = self.resource.mint_resource_token(
                    caller.thumbprint,
                    person,
                    list(data["scopes"]),
                    r3_uri=data.get("r3_uri"),
                    r3_s256=data.get("r3_s256"),
                )
                renewed = await self.stores.pending.areplace(
                    record.evolve(
                        data=dict(
                            data,
                            requirement=Requirement.auth_token(fresh).header_value(),
                            rt_exp=now + self.config.resource_token_lifetime,
                            presented_jti=person.jti,
                        )
                    )
                )
                if renewed is not None:
                    return renewed
        return record

    async def _finish_approved(
        self, caller: Caller, record: PendingRecord, now: float
    ) -> Reply | Execute:
        data = record.data
        kind = pending_kind(record.kind)
        caller, headers = await kind.approved(self, caller, record, now)
        executing = await self.stores.pending.areplace(
            advance(record, Event.CLAIM if data.get("held") else Event.DELIVER)
        )
        if executing is None:
            return self.reply(record)
        if data.get("held"):
            return self._execute(caller, executing, headers)
        self.events.emit(ev.COMPLETED, record.kind, pending=record.id)
        body: dict[str, Any] = {"status": kind.approved_status}
        scopes = [str(s) for s in data.get("scopes", [])]
        if scopes:
            body["scope"] = " ".join(scopes)
        return Reply.json(200, body, (_NO_STORE, *headers))

    def _execute(
        self, caller: Caller, record: PendingRecord, headers: tuple[tuple[str, str], ...] = ()
    ) -> Execute:
        return Execute(caller, HeldRequest.from_json(record.data["held"]), record, headers)

    # -- per-call completion (R3 §Per-Call Proposals) -----------------------------------------

    def refuse_per_call(self, caller: Caller, reason: str, detail: str, **fields: Any) -> Reply:
        self.events.emit(
            ev.DENIED, reason, caller=caller.label, iss=caller.issuer, jti=caller.jti, **fields
        )
        return Reply.error(ProtocolError(detail, code="invalid_auth_token", status=403))

    async def presented(
        self, caller: Caller, token: AuthToken, request: HttpRequest, now: float
    ) -> Outcome:
        """A per-call token presented with a call (R3 §Per-Call Proposals, Flow steps 3-4):
        the call it approved, re-sent unchanged, runs in place of its held twin -- once; a
        repeat is answered from the retained result. Another tool, other arguments, or any
        call once the approved one ran with another token: refused, nothing executed."""
        record_id = self.proposal_id(token)
        assert record_id is not None
        record = await self.stores.pending.aget(record_id)
        kind = pending_kind(record.kind) if record is not None else None
        if (
            record is None
            or not isinstance(kind, TokenCompleted)
            or not kind.holds_proposal
            or not hmac.compare_digest(record.agent_jkt, caller.thumbprint)
        ):
            return self.refuse_per_call(
                caller, "per_call_unknown", "the auth token approves no call held here"
            )
        refusal = kind.approves(self, caller, token, record)
        if refusal is not None:
            return refusal
        try:
            tool, arguments = read_mcp_call(request.body)
        except WireFormatError as exc:
            return Reply.error(exc)
        refusal = self._same_call(caller, record, tool, arguments, now)
        if refusal is not None:
            return refusal
        replayed = await self.resource._replayed(request, caller)
        if replayed is not None:
            return replayed
        outcome = await self.deferred(caller, record, now)
        if isinstance(outcome, Execute):
            await self.resource._remember(caller)
        return outcome

    def _same_call(
        self,
        caller: Caller,
        record: PendingRecord,
        tool: str,
        arguments: dict[str, Any],
        now: float,
    ) -> Reply | None:
        """``None`` when the call presented is the held one and still held; else the answer:
        the retained result of a repeat, or a refusal."""
        data = record.data
        if tool != data.get("tool"):
            return self.refuse_per_call(
                caller,
                "per_call_other_tool",
                "the auth token approves a call of another tool",
                pending=record.id,
            )
        proposed = parse_r3_document(base64.b64decode(data["proposal"])).parameters or {}
        same = parameters_match(proposed, frozenset(data.get("digested", ())), arguments)
        if record.state == COMPLETED:
            stored = data.get("result")
            if (
                same
                and stored is not None
                and [caller.issuer, caller.jti] == data.get("completed_by")
            ):
                result = HeldResult.from_json(stored)
                return Reply(result.status, result.headers, result.body)
            return self.refuse_per_call(
                caller, "per_call_spent", "the approved call has already run", pending=record.id
            )
        if not same:
            return self.refuse_per_call(
                caller,
                "per_call_arguments_changed",
                "the call's arguments are not the ones approved",
                pending=record.id,
            )
        if record.state == EXECUTING:
            return self.reply(record)
        if record.state != PENDING or now >= record.expires_at:
            return self.refuse_per_call(
                caller, "per_call_ended", "the approved call is no longer held", pending=record.id
            )
        return None


__all__ = [
    "KIND_APPROVAL",
    "KIND_AUTH_TOKEN",
    "KIND_INTERACTION",
    "KIND_PER_CALL",
    "TOKEN_KINDS",
    "PendingRecords",
]
