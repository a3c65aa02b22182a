"""The kinds of pending record a resource keeps (§Deferred Responses), one class each,
registered by name the way authlib registers its grant classes: what sets a kind apart lives
on its class, and :class:`~aauth_agents.resource.pending.PendingRecords` looks the record's
kind up (:func:`pending_kind`) and asks it, instead of testing the name.

==============  ==========================================  ================================
kind            what completes it                           what approval gives the poller
==============  ==========================================  ================================
``interaction`` the person, at the resource's own page      a session token (``AAuth-Access``)
                (an interaction code)                       and ``authorized``
``approval``    an approver's decision (``resolve``)        the held call, or ``approved``
``auth-token``  an auth token presented at the pending URL  the held call (§Deferred Delivery)
``per-call``    an auth token pinning the call's R3         the held call, once
                proposal (R3 §Per-Call Proposals)
==============  ==========================================  ================================
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from ..protocol.errors import ConfigurationError
from ..protocol.interaction import generate_code, normalize_code
from ..protocol.r3 import MCP_VOCABULARY
from ..protocol.reply import Reply
from ..protocol.requirement import Requirement
from ..stores import PendingRecord
from ..tokens import AuthToken
from . import events as ev
from .caller import Caller
from .session import mint_session_token

if TYPE_CHECKING:
    from .pending import PendingRecords

KIND_INTERACTION = "interaction"
KIND_APPROVAL = "approval"
KIND_AUTH_TOKEN = "auth-token"  # noqa: S105 (a requirement name)
KIND_PER_CALL = "per-call"

Headers = tuple[tuple[str, str], ...]


class PendingKind:
    """A kind of pending record. The defaults are those of a record an approver decides
    (:class:`Approval`); each subclass overrides what differs."""

    name: ClassVar[str]
    #: Completed by an auth token presented at the pending URL (§Deferred Delivery), never
    #: by a decision: :meth:`PendingRecords.resolve` leaves it alone.
    token_completed: ClassVar[bool] = False
    #: Decided by the person at the resource's own interaction page.
    consent_page: ClassVar[bool] = False
    #: Holds an R3 proposal for one call, served at its ``r3_uri`` (R3 §Per-Call Proposals).
    holds_proposal: ClassVar[bool] = False
    #: The ``status`` of the ``200`` answering a poll once approved, with nothing held.
    approved_status: ClassVar[str] = "approved"

    def announcement(
        self, records: PendingRecords, requirement: Requirement | None
    ) -> tuple[Requirement, str | None, str | None]:
        """The requirement announcing a new record, with its interaction id and code."""
        assert requirement is not None
        return requirement, None, None

    def check_approval(self, subject: str | None) -> None:
        """Raise :class:`ConfigurationError` when an approval lacks what this kind needs."""

    async def approved(
        self, records: PendingRecords, caller: Caller, record: PendingRecord, now: float
    ) -> tuple[Caller, Headers]:
        """What approval gives the poller: who the held call runs as, and the headers
        added to the answer."""
        return caller, ()

    def __repr__(self) -> str:
        return f"<pending kind {self.name}>"


class Approval(PendingKind):
    """Held for an approver (``AAuth-Requirement: approval``), decided by
    :meth:`~aauth_agents.resource.AAuthResource.resolve` or ``reject``."""

    name = KIND_APPROVAL


class Interaction(PendingKind):
    """A resource-managed interaction (§Interaction Required, §AAuth-Access): the person
    enters a code at the resource's own page and approves there; the poller then gets a
    session token for that person."""

    name = KIND_INTERACTION
    consent_page = True
    approved_status = "authorized"

    def announcement(
        self, records: PendingRecords, requirement: Requirement | None
    ) -> tuple[Requirement, str | None, str | None]:
        interaction_id = secrets.token_urlsafe(16)
        shown = generate_code()
        url = records.interaction_url(interaction_id)
        return Requirement.interaction(url, shown), interaction_id, normalize_code(shown)

    def check_approval(self, subject: str | None) -> None:
        if not subject:
            raise ConfigurationError("approving an interaction needs the person's subject")

    async def approved(
        self, records: PendingRecords, caller: Caller, record: PendingRecord, now: float
    ) -> tuple[Caller, Headers]:
        """A session token for the person who approved, bound to the poller's key."""
        config, data = records.config, record.data
        token, session = mint_session_token(
            config.signing_key,
            resource=config.identifier,
            sub=str(data["subject"]),
            agent_jkt=caller.thumbprint,
            scopes=[str(s) for s in data.get("scopes", [])],
            now=now,
            lifetime=config.session_lifetime,
            account=data.get("account"),
            agent=caller.agent,
        )
        records.events.emit(
            ev.ISSUED,
            "session_token",
            subject=data["subject"],
            jti=session.jti,
            agent_jkt=caller.thumbprint,
        )
        await records.stores.revocations.aremember_token(
            config.identifier, session.jti, session.expires_at
        )
        return caller.with_session(session, config.identifier), (("AAuth-Access", token),)


class TokenCompleted(PendingKind):
    """A kind completed by an auth token presented at the pending URL (§Deferred Delivery):
    the held call runs when a token from the held request's person covers it."""

    token_completed = True

    def approves(
        self, records: PendingRecords, caller: Caller, token: AuthToken, record: PendingRecord
    ) -> Reply | None:
        """``None`` when ``token`` may complete ``record`` (beyond person and scopes, which
        every token kind checks); else the refusal."""
        return None

    def granted(self, records: PendingRecords, caller: Caller) -> tuple[str, ...]:
        """What the presented auth token grants towards the held call."""
        return records.resource._standing_scopes(caller)


class DeferredAuthToken(TokenCompleted):
    """A deferred auth-token challenge: any auth token of the person that covers the held
    call's scopes completes it."""

    name = KIND_AUTH_TOKEN


class PerCall(TokenCompleted):
    """A per-call tool's held call (R3 §Per-Call Proposals): completed by an auth token
    pinning the call's own proposal, whose grant is that call."""

    name = KIND_PER_CALL
    holds_proposal = True

    def approves(
        self, records: PendingRecords, caller: Caller, token: AuthToken, record: PendingRecord
    ) -> Reply | None:
        """``token`` pins the record's proposal (``r3_uri`` and ``r3_s256``, R3 §Per-Call
        Proposals, Flow step 2) and lists its tool in ``r3_granted``."""
        data = record.data
        granted = token.r3_granted
        if (
            token.r3_uri != data.get("r3_uri")
            or token.r3_s256 != data.get("r3_s256")
            or granted is None
            or granted.vocabulary != MCP_VOCABULARY
            or not granted.covers({"tool": data.get("tool")})
        ):
            return records.refuse_per_call(
                caller,
                "per_call_other_call",
                "the auth token does not approve this call",
                pending=record.id,
            )
        return None

    def granted(self, records: PendingRecords, caller: Caller) -> tuple[str, ...]:
        """The token's whole grant: it was issued for this call."""
        return caller.scopes


APPROVAL = Approval()
INTERACTION = Interaction()
AUTH_TOKEN = DeferredAuthToken()
PER_CALL = PerCall()

#: Every pending kind, by the name its records carry.
PENDING_KINDS: Mapping[str, PendingKind] = {
    registered.name: registered for registered in (INTERACTION, APPROVAL, AUTH_TOKEN, PER_CALL)
}
#: Pending kinds completed by presenting an auth token at the pending URL.
TOKEN_KINDS = tuple(name for name, kind in PENDING_KINDS.items() if kind.token_completed)


def pending_kind(name: str) -> PendingKind:
    """The kind registered as ``name``; a name not registered is decided like an approval."""
    return PENDING_KINDS.get(name, APPROVAL)


__all__ = [
    "APPROVAL",
    "AUTH_TOKEN",
    "INTERACTION",
    "KIND_APPROVAL",
    "KIND_AUTH_TOKEN",
    "KIND_INTERACTION",
    "KIND_PER_CALL",
    "PENDING_KINDS",
    "PER_CALL",
    "TOKEN_KINDS",
    "Approval",
    "DeferredAuthToken",
    "Interaction",
    "PendingKind",
    "PerCall",
    "TokenCompleted",
    "pending_kind",
]
