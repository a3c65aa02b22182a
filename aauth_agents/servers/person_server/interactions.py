"""The person's side of the person server, as a Python interface for the UI.

The consent page, sign-in, CSRF and the dashboard are built on top of this module; it holds
the protocol rules those pages must not get wrong:

* :meth:`Interactions.lookup` -- the interaction page is reached at ``{url}?code=...``
  (§User Interaction). The code is compared case-, hyphen- and alias-insensitively
  (§Interaction Code Format); after ``code_attempts`` wrong codes the pending request fails
  for good (``invalid_code``). A right code changes nothing: it correlates the link with
  the request until the person's decision consumes it (see :meth:`~Interactions.lookup`).
* :meth:`Interactions.mark_interacting` -- the signed-in person is at the consent screen:
  the polling agent sees ``interacting`` (§Pending Response), and a request no person was
  known for yet becomes that person's (its ``owner``: their dashboard lists it).
* :func:`code_interaction_id` -- the interaction id to look up when one fixed URL serves
  every interaction (``code_only_interaction``): the code alone finds it (a wrong code names
  no interaction, so no per-interaction attempt limit applies).
* :meth:`Interactions.get` -- the same view again, by pending id (for the page's later
  requests: the UI keeps the id in the person's signed-in session, never the code).
* :meth:`Interactions.approve` / :meth:`deny` / :meth:`abandon` -- the decision, taken for
  the signed-in ``account`` (§PS Approval Endpoint Authentication: the UI authenticates the
  person first). Approving an agent not yet bound binds it to that person (§Agent-Person
  Binding); approving for a different person than the one it is bound to is refused.
* :meth:`Interactions.ask` -- a clarification question for the agent (§Clarification Chat);
  the agent's answer appears in the view's ``clarifications``. At most
  ``clarification_rounds`` (5) rounds, one open question at a time, and only when the agent
  declared the ``clarification`` capability.
* :meth:`Interactions.answer` and :meth:`relay_engaged` -- for questions and relays from the
  interaction endpoint; :meth:`resource_redirect` / :meth:`resource_callback` -- the
  resource-initiated interaction (§Resource-Initiated Interaction);
  :func:`callback_redirect` -- the agent's ``callback`` with the spec's error codes
  (§Interaction Callback Errors).
* :func:`callback_allowed` and :meth:`Interactions.check_callback` -- the agent's
  ``callback`` is accepted only when its provider's metadata allows it (§User Interaction:
  built from ``callback_endpoint``; a localhost URL when ``localhost_callback_allowed``), so
  the PS is never an open redirector.

The module sees the server only through :class:`InteractionHost` (pending store, clock,
notifier, events, accounts, bindings, missions, applying a decision); what differs between
kinds of request -- what the person may edit, the proposed mission, how a refusal is logged,
the consent page's :class:`~.kinds.ConsentPage` -- is asked of the request's kind
(:mod:`.kinds`).

What a view holds -- :class:`InteractionView` and its parts -- and how one is built from a
pending record live in :mod:`.interaction_views` (re-exported here). Everything in a view that
came from an agent or a resource (justification, descriptions, questions, answers, names) is
raw, untrusted Markdown or text: the UI MUST sanitize it before rendering (§Untrusted Input).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...clock import Clock
from ...protocol.identifiers import LOOPBACK_HOSTS
from ...protocol.interaction import codes_match, normalize_code
from ...protocol.metadata import AgentProviderMetadata
from ...stores import (
    COMPLETED,
    FAILED,
    INTERACTING,
    OPEN,
    Event,
    PendingRecord,
    PendingStore,
    advance,
    public_state,
    release,
)
from . import events as ev
from .accounts import Account, Accounts
from .config import PersonServerConfig
from .errors import InteractionError, WrongCodeError
from .interaction_views import (
    ClarificationView,
    InteractionView,
    MissionView,
    R3View,
    ScopeView,
    build_view,
)
from .kinds import Edits, kind_of
from .pending import Notifier, PendingRequest
from .policy import Decision
from .state import Mission

P = ParamSpec("P")
T = TypeVar("T")

#: §Interaction Callback Errors, and the polling error each maps to.
CALLBACK_ERRORS: Mapping[str, str] = {
    "access_denied": "denied",
    "user_abandoned": "abandoned",
    "interaction_expired": "expired",
    "server_error": "server_error",
    "temporarily_unavailable": "server_error",
}
#: The callback error for each way an interaction can end without success.
OUTCOME_CALLBACK_ERRORS: Mapping[str, str] = {
    "denied": "access_denied",
    "abandoned": "user_abandoned",
    "expired": "interaction_expired",
    "server_error": "server_error",
}


def code_interaction_id(code: str) -> str:
    """The interaction id of a code-only interaction (``code_only_interaction``): a digest of
    the normalized code, so the code alone finds the interaction, the store's unique
    ``interaction_id`` keeps codes unique, and the code itself is not kept once used.
    Raises :class:`~aauth_agents.protocol.interaction.InvalidInteractionCodeError` for a
    code outside the alphabet."""
    digest = hashlib.sha256(normalize_code(code).encode()).hexdigest()
    return f"code:{digest}"


def callback_redirect(callback: str, outcome: str | None = None) -> str:
    """The agent's ``callback`` URL to redirect the person's browser to when the
    interaction ends: unchanged on success, with ``?error=<code>`` otherwise
    (§Interaction Callback Errors). ``outcome`` is a polling error (``denied``,
    ``abandoned``, ``expired``, ``server_error``) or a callback error code."""
    if outcome is None:
        return callback
    error = OUTCOME_CALLBACK_ERRORS.get(outcome, outcome)
    if error not in CALLBACK_ERRORS:
        raise ValueError(f"not an interaction callback error: {outcome!r}")
    parts = urlsplit(callback)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("error", error)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


MAX_CALLBACK = 2048


def callback_allowed(callback: str, metadata: AgentProviderMetadata | None) -> bool:
    """Whether the agent may have the person's browser sent to ``callback``, given its
    provider's metadata (``None``: unavailable -- nothing is allowed).

    §User Interaction: the callback "is constructed from the agent's ``callback_endpoint``
    metadata" -- the endpoint itself, character for character (§Server Identifiers: exact
    string comparison; §Endpoint URLs: https, no query, no fragment), to which the agent may
    add a query string of its own. §Endpoint URLs: with ``localhost_callback_allowed`` the
    agent may instead use a localhost URL (``http``/``https`` on ``localhost``,
    ``127.0.0.1`` or ``[::1]``, any port and path). Never a fragment, userinfo, whitespace,
    control characters, backslashes or non-ASCII: what a browser would read differently
    from this check is refused."""
    if metadata is None or not isinstance(callback, str) or len(callback) > MAX_CALLBACK:
        return False
    if any(not 0x21 <= ord(c) <= 0x7E or c in "\\#" for c in callback):
        return False
    base = callback.split("?", 1)[0]
    endpoint = metadata.callback_endpoint
    if endpoint is not None and base == endpoint:
        return True
    if not metadata.localhost_callback_allowed:
        return False
    try:
        parts = urlsplit(callback)
        parts.port  # noqa: B018 -- raises on a malformed port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or "@" in parts.netloc:
        return False
    if not callback.lower().startswith(f"{parts.scheme}://"):
        return False
    return (parts.hostname or "") in LOOPBACK_HOSTS


class InteractionHost(Protocol):
    """What :class:`Interactions` needs of the person server, and nothing more: the pending
    store and the way to run its operations, the clock, configuration, accounts, the
    notifier that wakes long polls, the audit events, bindings (§Agent-Person Binding),
    agent provider metadata, missions and the mission log, the agent's capabilities, and
    applying an approval (:meth:`~.server.PersonServer.apply`, which the request's kind
    carries out). :class:`~.server.PersonServer` is one."""

    @property
    def config(self) -> PersonServerConfig: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def pending(self) -> PendingStore: ...
    @property
    def accounts(self) -> Accounts: ...
    @property
    def notifier(self) -> Notifier: ...

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T: ...
    def emit(self, name: str, **fields: Any) -> None: ...
    async def default_account(self) -> str | None: ...
    async def bind(self, agent_iss: str, agent_id: str, account: str, how: str) -> None: ...
    async def provider_metadata(self, iss: str) -> AgentProviderMetadata | None: ...
    async def mission(self, s256: str) -> Mission | None: ...
    async def log_mission(self, s256: str, kind: str, entry: Mapping[str, Any]) -> int: ...
    async def can_clarify(self, req: PendingRequest) -> bool: ...
    async def apply(
        self,
        req: PendingRequest,
        account: str,
        decision: Decision | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        remember: bool = True,
    ) -> dict[str, Any]: ...


class Interactions:
    """The UI boundary of a :class:`~aauth_agents.servers.person_server.PersonServer`
    (``ps.interactions``). All methods are coroutines; they raise
    :class:`~aauth_agents.protocol.ProtocolError` subclasses with the protocol's codes
    (``invalid_code`` 410, ``expired`` 408, ``not_found`` 404, ...)."""

    def __init__(self, server: InteractionHost) -> None:
        self._ps = server

    # -- reading -------------------------------------------------------------------------------

    async def lookup(self, interaction_id: str, code: str) -> InteractionView:
        """The pending request behind ``{url}?code=...``, while it can still be decided.

        §Interaction Code Format calls the code a correlation identifier, not an
        authorization credential: it finds the request; deciding it needs the
        authenticated person (§PS Approval Endpoint Authentication). So a right code is
        checked here and changes nothing -- a link preview, a second browser or a re-opened
        tab find the same request -- and the code is *consumed* when the person decides
        (approve, deny, abandon) or the request otherwise ends: every move to a decided or
        ended state drops it (:data:`~aauth_agents.stores.states.CODE_ENDS`). "Once the user
        arrives ... with a valid code and the code is consumed, the server MUST reject any
        later presentation" holds from that moment: the code is single use (one decision),
        and any later presentation is ``invalid_code``. A wrong code counts toward
        ``code_attempts`` and the request fails for good at the limit (``invalid_code``);
        an expired request says ``expired``."""
        ps = self._ps
        for _ in range(10):
            record = await ps.run(ps.pending.get_by_interaction, interaction_id)
            if record is None:
                raise InteractionError("no such interaction", code="invalid_code")
            req = PendingRequest.from_json(record.data)
            now = ps.clock()
            if record.state == FAILED and req.error == "invalid_code":
                raise InteractionError("this interaction has failed", code="invalid_code")
            if record.state in OPEN and now >= record.expires_at:
                await self._fail(record, req, "expired")
                raise InteractionError("the request has expired", code="expired")
            if record.state == COMPLETED and req.error == "expired":
                raise InteractionError("the request has expired", code="expired")
            if record.code is None or record.state not in OPEN:
                raise InteractionError("the code has already been used", code="invalid_code")
            if not codes_match(record.code, code):
                attempts = record.code_attempts + 1
                if attempts >= ps.config.code_attempts:
                    failed = advance(
                        record,
                        Event.FAIL,
                        code=None,
                        code_attempts=attempts,
                        data=req.evolve(error="invalid_code").to_json(),
                    )
                    if await ps.run(ps.pending.replace, failed) is None:
                        continue
                    ps.notifier.notify(record.id)
                    ps.emit(
                        ev.REJECTED,
                        agent=req.agent_id,
                        detail={"kind": req.kind, "reason": "too many wrong codes"},
                    )
                else:
                    counted = record.evolve(code_attempts=attempts)
                    if await ps.run(ps.pending.replace, counted) is None:
                        continue
                raise WrongCodeError("the code does not match", code="invalid_code")
            return await self._view(record, req)
        raise InteractionError("the interaction is changing too fast", code="server_error")

    async def check_callback(self, interaction_id: str, callback: str) -> str:
        """``callback`` if the metadata of the provider of the agent behind
        ``interaction_id`` allows it (:func:`callback_allowed`); otherwise
        ``invalid_request`` (400). An unknown interaction is ``invalid_code``, as
        :meth:`lookup` answers. Reads nothing but the record: the code is not consumed."""
        ps = self._ps
        record = await ps.run(ps.pending.get_by_interaction, interaction_id)
        if record is None:
            raise InteractionError("no such interaction", code="invalid_code")
        metadata = await ps.provider_metadata(PendingRequest.from_json(record.data).agent_iss)
        if not callback_allowed(callback, metadata):
            raise InteractionError(
                "the callback is not one the agent's provider publishes",
                code="invalid_request",
                status=400,
            )
        return callback

    async def get(self, pending_id: str) -> InteractionView | None:
        """The view of a pending request by id (any state), or ``None``."""
        record = await self._ps.run(self._ps.pending.get, pending_id)
        if record is None:
            return None
        return await self._view(record, PendingRequest.from_json(record.data))

    async def mark_interacting(
        self, pending_id: str, account: str | None = None
    ) -> InteractionView:
        """The person is engaged: the polling agent sees ``status: interacting``
        (§Pending Response). With ``account`` (the signed-in person at the consent screen) a
        request no person was known for -- a new agent's -- becomes theirs (its ``owner``,
        listed on their dashboard); one waiting for another person is refused
        (``access_denied``, 403) and left as it was. The code is kept: only the decision
        consumes it (:meth:`lookup`). Changes nothing when already done."""
        ps = self._ps
        record = await self._load(pending_id)
        req = PendingRequest.from_json(record.data)
        self._require_person(record, req, account)
        if record.state == INTERACTING and (account is None or record.owner is not None):
            return await self._view(record, req)

        def mutate(record: PendingRecord, req: PendingRequest) -> PendingRecord:
            self._require_open(record)
            self._require_person(record, req, account)
            return advance(record, Event.ARRIVE, owner=record.owner or req.account or account)

        arrived, req = await self._update(pending_id, mutate)
        if record.state != INTERACTING:
            ps.emit(
                ev.INTERACTING,
                agent=req.agent_id,
                account=account or req.account,
                detail={"kind": req.kind},
            )
        return await self._view(arrived, req)

    @staticmethod
    def _require_person(record: PendingRecord, req: PendingRequest, account: str | None) -> None:
        """Refuse ``account`` when the request waits for another person (§Agent-Person
        Binding: the agent is bound to them, or they claimed it first)."""
        waits_for = req.account or record.owner
        if account is not None and waits_for is not None and waits_for != account:
            raise InteractionError(
                "this request is waiting for another person", code="access_denied", status=403
            )

    # -- deciding ------------------------------------------------------------------------------

    async def approve(
        self,
        pending_id: str,
        account: str | None,
        *,
        scopes: Sequence[str] | None = None,
        description: str | None = None,
        tools: Sequence[Mapping[str, str]] | None = None,
        resources: Sequence[str] | None = None,
        expires_at: float | None = None,
        answer: str | None = None,
    ) -> InteractionView:
        """The person ``account`` (signed in by the UI) approves.

        ``scopes`` narrows an auth token request (never widens it). For a mission proposal,
        ``description``, ``tools``, ``resources`` and ``expires_at`` change what is approved
        (§Mission Creation: the approved mission MAY differ from the proposal; tools and
        resources are limited to those proposed). ``answer`` answers a question. ``account``
        ``None`` is for policy approvals of an agent already bound (or a ``default_person``).
        """
        ps = self._ps
        record = await self._load(pending_id)
        req = PendingRequest.from_json(record.data)
        self._require_open(record)
        found = await self._approver(req, account, record.owner)
        edits = Edits(
            scopes=scopes,
            description=description,
            tools=tools,
            resources=resources,
            expires_at=expires_at,
            answer=answer,
        )
        overrides = kind_of(req.kind).overrides(req, edits, ps.clock())
        # Claim the record (executing), make the decision's effects once, then publish it.
        claimed = await ps.run(ps.pending.replace, advance(record, Event.CLAIM))
        if claimed is None:
            raise InteractionError("the request changed; reload it", code="invalid_request")
        try:
            await ps.bind(req.agent_iss, req.agent_id, found.username, "interaction")
            bound = req.evolve(account=found.username)
            result = await ps.apply(bound, found.username, None, overrides)
        except BaseException:
            await ps.run(ps.pending.replace, release(claimed, record))
            raise
        done = advance(claimed, Event.APPROVE, data=bound.evolve(result=result).to_json())
        stored = await ps.run(ps.pending.replace, done)
        if stored is None:
            raise InteractionError("the request changed meanwhile", code="invalid_request")
        ps.notifier.notify(pending_id)
        ps.emit(
            ev.APPROVED,
            agent=req.agent_id,
            account=found.username,
            resource=req.resource.identifier if req.resource else None,
            mission=req.mission_s256,
            detail={"kind": req.kind},
        )
        return await self._view(stored, bound.evolve(result=result))

    async def _approver(
        self, req: PendingRequest, account: str | None, owner: str | None
    ) -> Account:
        """The person approving ``req``: ``account``, else the one the agent is bound to,
        else the request's ``owner``, else the ``default_person``; never another person than
        the bound one or the one who claimed the request (§Agent-Person Binding). A
        resource-initiated interaction must have completed first (§Resource-Initiated
        Interaction)."""
        ps = self._ps
        if req.resource_interaction and req.resource_interaction.get("state") != "done":
            raise InteractionError(
                "the resource's own interaction has not completed yet", code="invalid_request"
            )
        if account is None:
            account = req.account or owner or await ps.default_account()
        if account is None:
            raise InteractionError("approving needs the person's account", code="invalid_request")
        found = await ps.run(ps.accounts.get, account)
        if found is None or found.disabled:
            raise InteractionError("unknown account", code="invalid_request")
        waits_for = req.account or owner
        if waits_for is not None and waits_for != found.username:
            raise InteractionError(
                "this request is waiting for another person", code="access_denied", status=403
            )
        return found

    async def deny(self, pending_id: str, reason: str | None = None) -> InteractionView:
        """The person (or approver) refuses: the agent's next poll gets ``403 denied``
        (``permission: denied`` at the permission endpoint)."""

        def mutate(record: PendingRecord, req: PendingRequest) -> PendingRecord:
            self._require_open(record)
            return advance(record, Event.DENY, code=None, data=req.evolve(reason=reason).to_json())

        record, req = await self._update(pending_id, mutate)
        await kind_of(req.kind).record_denial(self._ps, req, reason)
        self._ps.emit(ev.DENIED, agent=req.agent_id, account=req.account, detail={"kind": req.kind})
        return await self._view(record, req)

    async def abandon(self, pending_id: str) -> InteractionView:
        """The person left without deciding: the agent's next poll gets ``403 abandoned``."""

        def mutate(record: PendingRecord, req: PendingRequest) -> PendingRecord:
            self._require_open(record)
            return advance(
                record, Event.FAIL, code=None, data=req.evolve(error="abandoned").to_json()
            )

        record, req = await self._update(pending_id, mutate)
        self._ps.emit(
            ev.ABANDONED, agent=req.agent_id, account=req.account, detail={"kind": req.kind}
        )
        return await self._view(record, req)

    async def ask(
        self, pending_id: str, question: str, options: Sequence[str] | None = None
    ) -> InteractionView:
        """Ask the agent a clarification question (§Clarification Required): its polls get
        ``requirement=clarification`` until it POSTs a ``clarification_response`` (or an
        updated request), which then shows in ``clarifications``."""
        ps = self._ps
        if not isinstance(question, str) or not question.strip():
            raise InteractionError("a question is non-empty Markdown text", code="invalid_request")
        if len(question) > 16_384:
            raise InteractionError("the question is too long", code="invalid_request")
        record = await self._load(pending_id)
        req = PendingRequest.from_json(record.data)
        if not await ps.can_clarify(req):
            raise InteractionError(
                "the agent did not declare the clarification capability", code="invalid_request"
            )

        def mutate(record: PendingRecord, req: PendingRequest) -> PendingRecord:
            self._require_open(record)
            if req.open_question is not None:
                raise InteractionError("the agent has not answered yet", code="invalid_request")
            if req.rounds >= ps.config.clarification_rounds:
                raise InteractionError(
                    f"at most {ps.config.clarification_rounds} clarification rounds",
                    code="invalid_request",
                )
            entry: dict[str, Any] = {"question": question, "answer": None, "asked_at": ps.clock()}
            if options:
                entry["options"] = [str(o) for o in options]
            # A question is the person engaging: the agent hears ``interacting`` too.
            asked = req.evolve(conversation=(*req.conversation, entry))
            return advance(record, Event.ARRIVE, data=asked.to_json())

        record, req = await self._update(pending_id, mutate)
        ps.notifier.notify(pending_id)  # wake a long poll: the agent has a question to answer
        if req.mission_s256:
            await ps.log_mission(req.mission_s256, "clarification_question", {"question": question})
        ps.emit(
            ev.CLARIFICATION_ASKED,
            agent=req.agent_id,
            account=req.account,
            detail={"kind": req.kind, "round": req.rounds},
        )
        return await self._view(record, req)

    async def answer(self, pending_id: str, account: str | None, text: str) -> InteractionView:
        """The person answers a question the agent asked through the interaction endpoint."""
        return await self.approve(pending_id, account, answer=text)

    async def relay_engaged(self, pending_id: str, account: str | None = None) -> InteractionView:
        """The person (``account``, or the one the agent is bound to) opened a relayed
        interaction (§Interaction Response): the relay's pending URL resolves; the
        resource's own pending URL stays authoritative for completion."""
        record = await self._load(pending_id)
        if not kind_of(record.kind).relayed:
            raise InteractionError("not a relayed interaction", code="invalid_request")
        return await self.approve(pending_id, account)

    # -- resource-initiated interaction --------------------------------------------------------

    async def resource_redirect(self, pending_id: str) -> str:
        """Where to send the person's browser first when the resource token carried an
        ``interaction`` claim (§Resource-Initiated Interaction): the resource's own page,
        with a per-flow PS callback URL. Call :meth:`resource_callback` from that URL."""
        ps = self._ps
        nonce = secrets.token_urlsafe(16)

        def mutate(record: PendingRecord, req: PendingRequest) -> PendingRecord:
            self._require_open(record)
            if req.resource_interaction is None:
                raise InteractionError("no resource interaction", code="invalid_request")
            return record.evolve(
                data=req.evolve(
                    resource_interaction={**req.resource_interaction, "nonce": nonce}
                ).to_json()
            )

        _, req = await self._update(pending_id, mutate)
        assert req.resource_interaction is not None
        callback = ps.config.url("interact", "callback", pending_id, nonce)
        query = urlencode({"code": req.resource_interaction["code"], "callback": callback})
        return f"{req.resource_interaction['url']}?{query}"

    async def resource_callback(
        self, pending_id: str, nonce: str, error: str | None = None
    ) -> InteractionView:
        """The resource redirected back. With ``error`` the request ends with the mapped
        polling error (``access_denied`` -> ``denied``, ``user_abandoned`` -> ``abandoned``,
        ``interaction_expired`` -> ``expired``, others -> ``server_error``); otherwise the
        person goes on to the PS's own consent."""
        ps = self._ps

        def mutate(record: PendingRecord, req: PendingRequest) -> PendingRecord:
            self._require_open(record)
            ri = req.resource_interaction
            if (
                ri is None
                or not ri.get("nonce")
                or not secrets.compare_digest(str(ri["nonce"]), nonce)
            ):
                raise InteractionError("unknown resource callback", code="invalid_request")
            if error is not None:
                mapped = CALLBACK_ERRORS.get(error, "server_error")
                if mapped == "denied":
                    return advance(
                        record,
                        Event.DENY,
                        code=None,
                        data=req.evolve(
                            reason="declined at the resource",
                            resource_interaction={**ri, "state": "failed"},
                        ).to_json(),
                    )
                return advance(
                    record,
                    Event.FAIL,
                    code=None,
                    data=req.evolve(
                        error=mapped, resource_interaction={**ri, "state": "failed"}
                    ).to_json(),
                )
            return record.evolve(
                data=req.evolve(
                    resource_interaction={**ri, "state": "done", "nonce": None}
                ).to_json()
            )

        record, req = await self._update(pending_id, mutate)
        ps.emit(
            ev.INTERACTING,
            agent=req.agent_id,
            detail={"kind": req.kind, "resource_interaction": error or "done"},
        )
        return await self._view(record, req)

    # -- internals -----------------------------------------------------------------------------

    async def _load(self, pending_id: str) -> PendingRecord:
        record = await self._ps.run(self._ps.pending.get, pending_id)
        if record is None:
            raise InteractionError("no such pending request", code="not_found", status=404)
        return record

    @staticmethod
    def _require_open(record: PendingRecord) -> None:
        if record.state == COMPLETED:
            raise InteractionError("the request is finished", code="gone", status=410)
        if record.state not in OPEN:
            raise InteractionError(
                f"the request is already {public_state(record.state)}", code="invalid_request"
            )

    async def _update(
        self, pending_id: str, mutate: Callable[[PendingRecord, PendingRequest], PendingRecord]
    ) -> tuple[PendingRecord, PendingRequest]:
        ps = self._ps
        for _ in range(20):
            record = await self._load(pending_id)
            req = PendingRequest.from_json(record.data)
            if record.state in OPEN and ps.clock() >= record.expires_at:
                await self._fail(record, req, "expired")
                raise InteractionError("the request has expired", code="expired")
            new = mutate(record, req)
            stored = await ps.run(ps.pending.replace, new)
            if stored is not None:
                ps.notifier.notify(pending_id)
                return stored, PendingRequest.from_json(stored.data)
        raise InteractionError("the request is changing too fast", code="server_error")

    async def _fail(self, record: PendingRecord, req: PendingRequest, error: str) -> None:
        ps = self._ps
        failed = advance(record, Event.FAIL, code=None, data=req.evolve(error=error).to_json())
        if await ps.run(ps.pending.replace, failed) is not None:
            ps.notifier.notify(record.id)
            ps.emit(
                ev.EXPIRED if error == "expired" else ev.REJECTED,
                agent=req.agent_id,
                detail={"kind": req.kind},
            )

    async def _view(self, record: PendingRecord, req: PendingRequest) -> InteractionView:
        return await build_view(self._ps, record, req)


__all__ = [
    "CALLBACK_ERRORS",
    "ClarificationView",
    "InteractionError",
    "InteractionHost",
    "InteractionView",
    "Interactions",
    "MissionView",
    "R3View",
    "ScopeView",
    "callback_allowed",
    "callback_redirect",
    "code_interaction_id",
]
