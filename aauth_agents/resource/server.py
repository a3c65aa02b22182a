"""The resource: the decision for a protected route -- verification, then the route's
:class:`AccessRule` -- as an outcome. Framework-free: it takes
:class:`~aauth_agents.httpsig.HttpRequest` s and returns outcomes;
:class:`~aauth_agents.resource.AAuthMiddleware` is the ASGI layer over it.

Outcomes of :meth:`AAuthResource.authorize` and :meth:`AAuthResource.endpoint`
(:mod:`.outcomes`):

* :class:`Allow` -- run the application with this caller;
* :class:`Reply` -- send this response (an error, a challenge, a 202, a published document);
* :class:`Execute` -- a poll (or a per-call tool's call re-sent with its approval) completed
  a held invocation: run ``held`` with ``caller``, then hand the response to
  :meth:`AAuthResource.complete` (which stores it, §Deferred Delivery).

The rest of the resource lives next door, one concern per module, each a part of the
:class:`AAuthResource` it belongs to:

* :mod:`.pending` (``resource.pending``) -- pending records: the 202 that holds a request,
  polls of the pending URL, deferred delivery, executing a held request once, per-call
  completion;
* :mod:`.interaction` (``resource.interaction``) -- the resource's own interaction page and
  the person's decision there;
* :mod:`.endpoints` (``resource.endpoints``) -- metadata and JWKS, the authorization and
  revocation endpoints, R3 documents, and the routing of all of them.

Per-call tools (R3 §Per-Call Proposals, :mod:`.percall`): each call is held as a
``per-call`` pending record whose resource token references a proposal built from the
call's arguments, served at ``r3_uri`` to the PS or AS the token names and to nobody else
(R3 §R3 Document Access Restriction). The held call runs when an auth token pinning that
proposal (``r3_uri``, ``r3_s256``, the tool in ``r3_granted``) is presented at the pending
URL -- or with the call itself, re-sent unchanged (the draft's ``401`` completion) -- once:
a repeated presentation of that token is answered from the retained result. A per-call
token presented for another tool, other arguments, another held call, or after its call ran
with something else is refused (``403 invalid_auth_token``), and its scopes are no standing
grant elsewhere: the grant is consumed by the call it approved.

Bad input changes nothing: a request that fails verification, or is refused, leaves no
pending record and writes nothing to a store. What a verified request writes is deliberate:
the person token it presented (for later step-up challenges), the token as known (for the
revocation endpoint), its signature in the replay cache (state-changing requests that are
let through), and the pending record a 202 announces. The one write on failure is the one
§Interaction Code Format requires: a wrong interaction code counts against its record.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from ..clock import Every
from ..httpsig import HttpRequest
from ..httpsig.verify import SAFE_METHODS
from ..protocol.errors import (
    AAuthError,
    ConfigurationError,
    InvalidSignatureError,
    ProtocolError,
)
from ..protocol.reply import Reply
from ..protocol.requirement import Requirement
from ..protocol.scopes import is_identity_scope
from ..protocol.wire import WireFormatError
from ..stores import PersonTokenRecord, Stores, StoreUnavailableError
from ..tokens import (
    DWK_ACCESS,
    DWK_PERSON,
    AuthToken,
    PersonToken,
    mint_resource_token,
)
from . import events as ev
from . import pending_kinds
from .caller import Caller, Session
from .config import ResourceConfig
from .endpoints import ResourceEndpoints
from .held import HeldRequest, HeldResult
from .interaction import InteractionPage
from .outcomes import Allow, Execute, Outcome
from .pending import PendingRecords
from .pending_kinds import KIND_APPROVAL, KIND_AUTH_TOKEN, KIND_INTERACTION
from .percall import ProposedCall, abuild_proposal, read_mcp_call
from .policy import (
    AGENT,
    AUTH,
    PER_CALL,
    PERSON,
    PUBLIC,
    SESSION,
    AccessRule,
    BodyRule,
    resolve_rule,
)
from .scopes import missing_scopes
from .verifier import ResourceVerifier, is_signed

log = logging.getLogger(__name__)


class _Seen:
    """A bounded set: what was written recently need not be written again."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, ...], None] = OrderedDict()

    def add(self, item: tuple[str, ...]) -> bool:
        """True when ``item`` is new."""
        if item in self._items:
            self._items.move_to_end(item)
            return False
        self._items[item] = None
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return True

    def discard(self, item: tuple[str, ...]) -> None:
        self._items.pop(item, None)


class AAuthResource:
    """A protected resource built from a :class:`ResourceConfig`.

    ``resource.verifier`` verifies (no policy, no writes); ``authorize`` applies a route's
    :class:`AccessRule`; ``endpoint`` serves what the resource publishes (metadata, JWKS,
    authorization endpoint, revocation endpoint, pending URLs, the interaction page);
    ``resolve`` / ``reject`` / ``expire`` drive pending records; ``revoke_*`` revoke.
    Its parts: ``resource.pending`` (:class:`~.pending.PendingRecords`),
    ``resource.interaction`` (:class:`~.interaction.InteractionPage`) and
    ``resource.endpoints`` (:class:`~.endpoints.ResourceEndpoints`).
    """

    def __init__(self, config: ResourceConfig) -> None:
        self.config = config
        assert config.stores is not None
        self.stores: Stores = config.stores
        self.clock = config.clock
        self.events = ev.EventSink(config.event_hook, clock=config.clock)
        self.verifier = ResourceVerifier(config, events=self.events)
        self.paths = config.paths
        self.pending = PendingRecords(self)
        self.interaction = InteractionPage(self)
        self.endpoints = ResourceEndpoints(self)
        self._remembered = _Seen()
        self._purges = Every(self.clock, config.purge_interval)

    # -- what the resource publishes (:mod:`.endpoints`) --------------------------------------

    def metadata(self) -> dict[str, Any]:
        """``/.well-known/aauth-resource.json`` (§Resource Metadata)."""
        return self.endpoints.metadata()

    def jwks(self) -> dict[str, Any]:
        """The JWKS at ``jwks_uri``: the signing key and ``previous_keys``."""
        return self.endpoints.jwks()

    def is_endpoint(self, method: str, path: str) -> bool:
        return self.endpoints.is_endpoint(method, path)

    async def endpoint(
        self, request: HttpRequest, path: str, starlette_request: Any = None
    ) -> Reply | Execute:
        """Serve one of the resource's own endpoints (``is_endpoint(method, path)``)."""
        return await self.endpoints.serve(request, path, starlette_request)

    async def authorization_endpoint(self, request: HttpRequest) -> Reply:
        return await self.endpoints.authorization(request)

    async def revocation_endpoint(self, request: HttpRequest) -> Reply:
        return await self.endpoints.revocation(request)

    async def r3_document(self, request: HttpRequest, record_id: str) -> Reply:
        return await self.endpoints.r3_document(request, record_id)

    async def interaction_page(
        self, request: HttpRequest, interaction_id: str, starlette_request: Any = None
    ) -> Reply:
        return await self.interaction.serve(request, interaction_id, starlette_request)

    def check_rules(self, rules: Iterable[AccessRule]) -> None:
        """Refuse, at start-up, rules whose scopes no resource token could carry (§Scopes:
        only scopes in ``scope_descriptions``, and identity scopes)."""
        for rule in rules:
            if rule.level in (AUTH, PER_CALL):
                self._described(rule.scopes)

    def _described(self, scopes: Iterable[str]) -> None:
        unknown = [
            s
            for s in scopes
            if s not in self.config.scope_descriptions and not is_identity_scope(s)
        ]
        if unknown:
            raise ConfigurationError(
                f"scopes {unknown} are not in scope_descriptions; a resource token may "
                "only carry described resource scopes (§Scopes)"
            )

    # -- pending records (:mod:`.pending`) ---------------------------------------------------

    def pending_url(self, record_id: str) -> str:
        return self.pending.pending_url(record_id)

    def interaction_url(self, interaction_id: str) -> str:
        return self.pending.interaction_url(interaction_id)

    def r3_url(self, record_id: str) -> str:
        """The ``r3_uri`` of the proposal held with pending record ``record_id``."""
        return self.pending.r3_url(record_id)

    async def resolve(
        self, record_id: str, *, subject: str | None = None, scopes: Sequence[str] | None = None
    ) -> bool:
        """Approve a pending record (an approver's decision, or the person's at the
        resource's own page). An interaction record needs the authenticated ``subject``.
        False when there is nothing pending to resolve."""
        return await self.pending.resolve(record_id, subject=subject, scopes=scopes)

    async def reject(self, record_id: str) -> bool:
        """Deny a pending record: its next poll answers ``403 denied``."""
        return await self.pending.reject(record_id)

    async def expire(self, record_id: str) -> bool:
        """End a pending record now: its next poll answers ``408 expired``."""
        return await self.pending.expire(record_id)

    async def poll(self, request: HttpRequest, record_id: str) -> Reply | Execute:
        """GET on a pending URL (§Deferred Responses, §Pending URL Security)."""
        return await self.pending.poll(request, record_id)

    async def complete(self, execute: Execute, result: HeldResult) -> None:
        """Store the response of a held invocation (§Deferred Delivery: kept until the auth
        token's ``exp``, to answer a repeated presentation without executing again)."""
        await self.pending.complete(execute, result)

    async def purge(self) -> int:
        """Forget expired pending records, revocations, known tokens and person-token
        records (the seed's ``InteractionManager.cleanup``); returns how many."""
        return await self.stores.apurge(self.clock())

    async def _housekeeping(self, now: float) -> None:
        """:meth:`purge`, due at ``now`` (``purge_interval`` seconds have passed since the last
        pass), so a long-running resource does not keep every record it ever wrote; the
        request that finds it due pays for one pass (a few indexed deletes)."""
        try:
            await self.stores.apurge(now)
        except Exception:  # housekeeping never fails the request that triggered it
            log.exception("housekeeping failed")

    # -- the decision for a protected route ---------------------------------------------------

    async def authorize(
        self, request: HttpRequest, rule: AccessRule | BodyRule, held: HeldRequest | None = None
    ) -> Outcome:
        """Apply ``rule`` to ``request``. ``held`` is the invocation to keep when the answer
        is a 202 that holds it (approval, deferred auth-token, interaction, per-call). An
        :class:`Execute` only under a per-call rule: the call, re-sent with the auth token
        approving it, completes its held twin. A :class:`BodyRule` is read from the body
        only once the signature verified (an unsigned request is challenged for its floor)."""
        due = self._purges.due()
        if due is not None:  # checked here: no coroutine per request when nothing is due
            await self._housekeeping(due)
        first = rule.floor if isinstance(rule, BodyRule) else rule
        if first.level == PUBLIC:
            return Allow(None)
        if not is_signed(request):
            requirement = (
                Requirement.agent_token()
                if first.level in (AGENT, SESSION)
                else Requirement.person_token()
            )
            return self._challenge(requirement, None, "unsigned")
        try:
            caller = await self.verifier.averify(request)
        except AAuthError as exc:
            return Reply.error(exc)
        if isinstance(rule, BodyRule):
            rule = resolve_rule(rule, request)  # the body is parsed only now
            if rule.level == PUBLIC:
                return Allow(None)
        try:
            return await self._decide(caller, rule, request, held)
        except StoreUnavailableError as exc:  # a shared store is down: 503, nothing kept
            return Reply.error(exc)

    async def _decide(
        self, caller: Caller, rule: AccessRule, request: HttpRequest, held: HeldRequest | None
    ) -> Outcome:
        """:meth:`authorize` for a verified ``caller``."""
        now = self.clock()
        if rule.level == PER_CALL:
            return await self._per_call(caller, rule, request, held, now)
        refusal = await self._apply(caller, rule, request, held, now)
        if refusal is not None:
            return refusal
        if rule.approval:
            return await self.pending.pend(
                pending_kinds.APPROVAL,
                caller,
                rule.scopes,
                held,
                Requirement.approval(),
                self.config.approval_retry_after,
            )
        replayed = await self._replayed(request, caller)
        if replayed is not None:
            return replayed
        await self._remember(caller)
        if caller.presents_person_token:
            await self._remember_person(caller)
        if self.events.listening(ev.VERIFIED):
            self.events.emit(
                ev.VERIFIED,
                caller.kind,
                caller=caller.label,
                iss=caller.issuer,
                jti=caller.jti,
                method=request.method,
                path=request.target.path,
            )
        return Allow(caller)

    async def _apply(
        self,
        caller: Caller,
        rule: AccessRule,
        request: HttpRequest,
        held: HeldRequest | None,
        now: float,
    ) -> Reply | None:
        if rule.level == AGENT:
            return None
        if rule.level == PERSON:
            return (
                None
                if caller.person is not None
                else self._challenge(Requirement.person_token(), caller, "person_token_required")
            )
        if rule.level == SESSION:
            if caller.session is None:
                return await self.pending.pend_interaction(caller, rule.scopes, held)
            missing = missing_scopes(caller.session.scopes, rule.scopes, self.config.scope_matcher)
            return self._insufficient(caller, missing) if missing else None
        return await self._apply_auth(caller, rule, held, now)

    async def _apply_auth(
        self, caller: Caller, rule: AccessRule, held: HeldRequest | None, now: float
    ) -> Reply | None:
        """An ``auth`` rule (§Auth Token Required): an auth token covering its scopes passes;
        one that does not gets a resource token for the broader scopes, resting on the person
        token its key presented (when the rule allows step-up; §Scopes); a person token gets a
        resource token to exchange; anything else is asked for a person token."""
        token = caller.token
        if isinstance(token, AuthToken):
            standing = self._standing_scopes(caller)
            missing = missing_scopes(standing, rule.scopes, self.config.scope_matcher, token.claims)
            if not missing:
                return None
            if not rule.step_up:
                return self._insufficient(caller, missing)
            record = await self.stores.person_tokens.afind(
                caller.thumbprint, token.ps, token.sub, token.mission_s256, now=now
            )
            if record is None:
                return self._challenge(
                    Requirement.person_token(),
                    caller,
                    "step_up_needs_person_token",
                    missing=list(missing),
                )
            # Keep what was granted: described resource scopes and identity scopes (§Scopes),
            # so the broader token still carries the identity claims the first one did.
            granted = [
                s for s in standing if s in self.config.scope_descriptions or is_identity_scope(s)
            ]
            scopes = tuple(dict.fromkeys((*granted, *rule.scopes)))
            return await self._auth_challenge(
                caller, rule, held, record, scopes, caller.account, "step_up", missing=list(missing)
            )
        if isinstance(token, PersonToken):
            await self._remember_person(caller)  # a later step-up names this person token
            return await self._auth_challenge(
                caller,
                rule,
                held,
                self._person_record(caller),
                rule.scopes,
                None,
                "auth_token_required",
            )
        return self._challenge(Requirement.person_token(), caller, "person_token_required")

    # -- challenges --------------------------------------------------------------------------

    def _challenge(
        self, requirement: Requirement, caller: Caller | None, reason: str, **detail: Any
    ) -> Reply:
        self.events.emit(
            ev.CHALLENGED,
            reason,
            requirement=requirement.value,
            caller=caller.label if caller else None,
            **detail,
        )
        error = requirement.value.replace("-", "_") + "_required"
        return Reply.problem(
            401,
            error,
            f"this request needs requirement={requirement.value}",
            requirement.headers().items(),
        )

    def _insufficient(self, caller: Caller, missing: Sequence[str]) -> Reply:
        # The agent is not told which scope it lacked (ARCHITECTURE.md, Conventions).
        self.events.emit(
            ev.DENIED,
            "insufficient_scope",
            caller=caller.label,
            iss=caller.issuer,
            jti=caller.jti,
            missing=list(missing),
        )
        return Reply.error(
            ProtocolError(
                "the presented authorization does not cover this request", code="insufficient_scope"
            )
        )

    def _person_record(self, caller: Caller) -> PersonTokenRecord:
        token = caller.token
        assert isinstance(token, PersonToken)
        return PersonTokenRecord(
            agent_jkt=caller.thumbprint,
            ps=token.iss,
            sub=token.sub,
            jti=token.jti,
            exp=token.exp,
            mission_s256=token.mission_s256,
            tenant=token.tenant,
        )

    async def _remember_person(self, caller: Caller) -> None:
        """§Resource Token Structure, ``presented_jti``: keep the person token each agent key
        presented, so a later step-up challenge can name it."""
        if self._remembered.add(("person", caller.thumbprint, caller.issuer, caller.jti)):
            await self.stores.person_tokens.aput(self._person_record(caller))

    async def _remember(self, caller: Caller) -> None:
        if self._remembered.add(("token", caller.issuer, caller.jti)):
            await self.stores.revocations.aremember_token(
                caller.issuer, caller.jti, caller.expires_at
            )

    async def _replayed(self, request: HttpRequest, caller: Caller) -> Reply | None:
        """§Freshness and Replay, for state-changing requests that are let through."""
        replay = self.stores.replay
        signature = caller.signature
        if replay is None or signature is None or request.method.upper() in SAFE_METHODS:
            return None
        if await replay.acheck_and_store(
            signature.replay_key, signature.created + self.config.signature_window
        ):
            return None
        self.events.emit(ev.DENIED, "replay", caller=caller.label)
        return Reply.error(InvalidSignatureError("the signature has been seen before"))

    def mint_resource_token(
        self,
        agent_jkt: str,
        person: PersonTokenRecord,
        scopes: Sequence[str],
        account: str | None = None,
        *,
        r3_uri: str | None = None,
        r3_s256: str | None = None,
    ) -> str:
        """A resource token (§Resource Token Structure) for the agent key ``agent_jkt``,
        resting on the verified person token ``person``: ``ps``, ``sub``, ``presented_jti``,
        ``mission_s256`` and ``tenant`` come from it; ``aud`` is the resource's AS, else the
        person token's issuer; at most ``resource_token_lifetime`` and, under a mission, never
        past the person token (which never outlives the mission)."""
        self._described(scopes)
        aud = self.config.access_server or person.ps
        token = mint_resource_token(
            self.config.signing_key,
            iss=self.config.identifier,
            aud=aud,
            agent_jkt=agent_jkt,
            scope=scopes,
            ps=person.ps,
            sub=person.sub,
            presented_jti=person.jti,
            mission_s256=person.mission_s256,
            tenant=person.tenant,
            account=account,
            mission_expires_at=person.exp if person.mission_s256 else None,
            r3_uri=r3_uri,
            r3_s256=r3_s256,
            lifetime=self.config.resource_token_lifetime,
            clock=self.clock,
        )
        self.events.emit(
            ev.ISSUED,
            "resource_token",
            aud=aud,
            scope=" ".join(scopes),
            presented_jti=person.jti,
            agent_jkt=agent_jkt,
            r3_uri=r3_uri,
        )
        return token

    async def _auth_challenge(
        self,
        caller: Caller,
        rule: AccessRule,
        held: HeldRequest | None,
        person: PersonTokenRecord,
        scopes: Sequence[str],
        account: str | None,
        reason: str,
        **detail: Any,
    ) -> Reply:
        token = self.mint_resource_token(caller.thumbprint, person, scopes, account)
        requirement = Requirement.auth_token(token)
        if rule.deferred and held is not None:
            return await self.pending.pend(
                pending_kinds.AUTH_TOKEN,
                caller,
                scopes,
                held,
                requirement,
                self.config.deferred_retry_after,
                extra={
                    "ps": person.ps,
                    "sub": person.sub,
                    "mission_s256": person.mission_s256,
                    "person_exp": person.exp,
                    "presented_jti": person.jti,
                    "rt_exp": self.clock() + self.config.resource_token_lifetime,
                },
            )
        return self._challenge(requirement, caller, reason, **detail)

    # -- per-call tools (R3 §Per-Call Proposals) ----------------------------------------------

    def _standing_scopes(self, caller: Caller) -> tuple[str, ...]:
        """What an auth token grants beyond one call: nothing for a per-call token, whose
        grant is consumed by the call it approved (R3 §Per-Call Proposals, Single use)."""
        token = caller.token
        if isinstance(token, AuthToken) and self.pending.proposal_id(token) is not None:
            return ()
        return caller.scopes

    async def _per_call(
        self,
        caller: Caller,
        rule: AccessRule,
        request: HttpRequest,
        held: HeldRequest | None,
        now: float,
    ) -> Outcome:
        """A call of a per-call tool. With an auth token pinning one of our proposals it is
        that proposal's completion (:meth:`PendingRecords.presented`); otherwise it is a new
        invocation: held, with a proposal of its own (R3 §Per-Call Proposals, Flow step 1)."""
        token = caller.token
        if isinstance(token, AuthToken) and self.pending.proposal_id(token) is not None:
            return await self.pending.presented(caller, token, request, now)
        person = await self._per_call_person(caller, now)
        if person is None:
            return self._challenge(Requirement.person_token(), caller, "person_token_required")
        if held is None:
            raise ConfigurationError("a per-call rule holds the call: pass held= to authorize")
        try:
            tool, arguments = read_mcp_call(request.body)
            proposal = await abuild_proposal(ProposedCall(tool, arguments, caller), rule.display)
        except WireFormatError as exc:
            self.events.emit(ev.DENIED, exc.code, caller=caller.label, check="per_call")
            return Reply.error(exc)
        record_id = secrets.token_urlsafe(24)
        r3_uri = self.r3_url(record_id)
        aud = self.config.access_server or person.ps
        readers = [[person.ps, DWK_PERSON]]
        if aud != person.ps:
            readers.append([aud, DWK_ACCESS])
        rt = self.mint_resource_token(
            caller.thumbprint, person, rule.scopes, r3_uri=r3_uri, r3_s256=proposal.s256
        )
        return await self.pending.pend(
            pending_kinds.PER_CALL,
            caller,
            rule.scopes,
            held,
            Requirement.auth_token(rt),
            self.config.deferred_retry_after,
            record_id=record_id,
            extra={
                "ps": person.ps,
                "sub": person.sub,
                "mission_s256": person.mission_s256,
                "person_exp": person.exp,
                "presented_jti": person.jti,
                "rt_exp": now + self.config.resource_token_lifetime,
                "tool": tool,
                "r3_uri": r3_uri,
                "r3_s256": proposal.s256,
                "readers": readers,
                "digested": sorted(proposal.digested),
                "proposal": base64.b64encode(proposal.document).decode("ascii"),
            },
        )

    async def _per_call_person(self, caller: Caller, now: float) -> PersonTokenRecord | None:
        """The person token a per-call proposal rests on: the one presented, or the one an
        auth token's agent key presented before (``presented_jti``)."""
        token = caller.token
        if isinstance(token, PersonToken):
            await self._remember_person(caller)
            return self._person_record(caller)
        if isinstance(token, AuthToken):
            return await self.stores.person_tokens.afind(
                caller.thumbprint, token.ps, token.sub, token.mission_s256, now=now
            )
        return None

    # -- revocation by the resource's operator -----------------------------------------------

    def _until(self, until: float | None) -> float:
        return until if until is not None else self.clock() + self.config.revocation_lifetime

    async def revoke_token(
        self,
        iss: str,
        jti: str,
        *,
        until: float | None = None,
        reason: str = "operator",
        by: str | None = None,
    ) -> None:
        await self.stores.revocations.arevoke_token(iss, jti, self._until(until))
        self.verifier.revoked(token=(iss, jti))
        self._remembered.discard(("token", iss, jti))
        self.events.emit(ev.REVOKED, reason, iss=iss, jti=jti, by=by)

    async def revoke_agent(self, agent: str, *, until: float | None = None) -> None:
        """``agent``: an agent identifier or an agent key's thumbprint ("disconnect this
        agent")."""
        await self.stores.revocations.arevoke_agent(agent, self._until(until))
        self.verifier.revoked(agents=[agent])
        self.events.emit(ev.REVOKED, "agent", agent=agent)

    async def revoke_person(self, iss: str, sub: str, *, until: float | None = None) -> None:
        """Every credential naming the person ``(iss, sub)``."""
        await self.stores.revocations.arevoke_person(iss, sub, self._until(until))
        self.verifier.revoked(person=(iss, sub))
        self.events.emit(ev.REVOKED, "person", iss=iss, sub=sub)


__all__ = [
    "KIND_APPROVAL",
    "KIND_AUTH_TOKEN",
    "KIND_INTERACTION",
    "AAuthResource",
    "Allow",
    "Execute",
    "Outcome",
    "Reply",
    "Session",
]
