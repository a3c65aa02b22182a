"""The person server's protocol core: every PS endpoint of draft-hardt-oauth-aauth-protocol-11.

:class:`PersonServer` holds the state (SQLite), the signing keys and the consent policy, and
answers requests given as :class:`~aauth_agents.httpsig.HttpRequest` with a
:class:`~aauth_agents.servers.person_server.pending.Reply`. The ASGI layer
(:mod:`.app`) only moves bytes; the person's side (sign-in, consent page, dashboard) is built
on :attr:`PersonServer.interactions` and :attr:`PersonServer.accounts`.

Endpoints (§Person Server Metadata):

* ``/person`` -- §Person Token Endpoint: a directed ``sub`` per resource, mission checks,
  ``subagent_token``, consent on first issuance, retention of every issued token's record;
* ``/token`` -- §PS Token Endpoint (three-party): §Resource Token Verification steps 1-7,
  scope never broader than the resource token's, identity claims for identity scopes,
  parent-mediated sub-agent requests and the single-level rule; a resource token carrying
  ``r3_uri`` / ``r3_s256`` (R3, exploratory) makes the PS fetch that document signed as
  itself, verify its hash over the bytes received, show its ``display`` on the consent page
  and, approved, issue a token echoing ``r3_uri`` / ``r3_s256`` with the document's
  operations in ``r3_granted`` (:meth:`PersonServer.fetch_r3`);
* ``/pending/{id}`` -- §Deferred Responses: ``GET`` (``Prefer: wait``), ``POST``
  (clarification response, updated request), ``DELETE`` (withdraw);
* ``/mission`` and ``/mission/{s256}`` -- §Mission: propose, update, complete;
* ``/permission``, ``/audit``, ``/interaction`` -- §Permission/Audit/Interaction Endpoint;
* ``/revoke`` -- §Token Revocation: an agent provider revokes an agent token, and the PS
  revokes the auth tokens it issued for that agent at each resource.

Every request is verified per §Verification (``content-type`` and ``content-digest`` covered
on bodies) with the agent token in ``Signature-Key``; a revoked agent token is refused. A
request signed by a sub-agent is refused everywhere (§Single-Level Depth, §Parent-Mediated
Authorization: a sub-agent never calls the PS itself).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread
import httpx

from ...clock import Every
from ...httpsig import (
    SCHEME_JWKS_URI,
    HttpRequest,
    KeyResolution,
    SignatureKey,
    SignatureVerifier,
    sign_request,
)
from ...keys import PublicKey
from ...protocol.deferred import (
    CLARIFICATION_RESPONSE,
    STATUS_INTERACTING,
    STATUS_PENDING,
    parse_pending_action,
)
from ...protocol.errors import (
    AAuthError,
    ConfigurationError,
    InvalidJWTError,
    InvalidKeyError,
    ProtocolError,
    TokenError,
)
from ...protocol.identifiers import validate_server_identifier
from ...protocol.interaction import generate_code, normalize_code
from ...protocol.metadata import AgentProviderMetadata, PersonServerMetadata, ResourceMetadata
from ...protocol.mission import build_mission_blob, mission_approval_response, mission_s256
from ...protocol.mission import validate_s256 as _validate_s256
from ...protocol.r3 import MAX_DOCUMENT_BYTES, parse_r3_document, r3_s256
from ...protocol.requirement import Requirement
from ...protocol.scopes import IDENTITY_SCOPES
from ...protocol.wire import WireFormatError
from ...stores import (
    APPROVED,
    COMPLETED,
    DENIED,
    EXECUTING,
    INTERACTING,
    OPEN,
    PENDING,
    Event,
    PendingRecord,
    SQLiteDatabase,
    SQLitePendingStore,
    SQLiteRevocationStore,
    advance,
)
from ...tokens import (
    AGENT_TOKEN_MAX_LIFETIME,
    DWK_AGENT,
    DWK_PERSON,
    DWK_RESOURCE,
    TYP_AGENT,
    AgentToken,
    ResourceToken,
    async_token_key_resolver,
    averify_agent_token,
    averify_resource_token,
    mint_auth_token,
    mint_person_token,
)
from . import events as ev
from .accounts import Accounts
from .config import PersonServerConfig, RelayNotice
from .database import PSDatabase
from .events import EventSink, PSEvent
from .interactions import Interactions, code_interaction_id
from .keyring import SigningKeys
from .pending import Notifier, PendingRequest, PollLimiter, Reply
from .policy import (
    APPROVAL,
    APPROVE,
    AUTH_TOKEN,
    DENY,
    INTERACTION,
    MISSION,
    MISSION_COMPLETION,
    MISSION_UPDATE,
    PERMISSION,
    PERSON_TOKEN,
    QUESTION,
    ConsentRequest,
    Decision,
    ResourceInfo,
    as_policy,
    resolve,
)
from .requests import (
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
from .state import (
    ACTIVE,
    IssuedAuthToken,
    IssuedPersonToken,
    Mission,
    MissionLogEntry,
    PSState,
)
from .ui_sessions import UISessions

log = logging.getLogger("aauth_agents.ps")

P = ParamSpec("P")
T = TypeVar("T")

RELAY = "relay"
#: Termination reasons after which the mission's outstanding auth tokens are revoked.
REVOKING_REASONS = frozenset({"revoked", "administrative", "superseded"})
_SEEN_CACHE = 4096


def gone(detail: str = "the pending request is finished") -> ProtocolError:
    """§Pending URL Security: once a terminal response was sent, the pending URL is 410."""
    return ProtocolError("gone", detail, status=410)


def not_found(detail: str = "no such pending request") -> ProtocolError:
    return ProtocolError("not_found", detail, status=404)


def mission_terminated(mission: Mission) -> ProtocolError:
    """§Mission Status Errors."""
    return ProtocolError(
        "mission_terminated", "the mission has ended", mission_status="terminated",
        termination_reason=mission.termination_reason or "revoked",
    )


def iso8601(moment: float) -> str:
    return datetime.fromtimestamp(int(moment), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class AgentContext:
    """Who signed a request: the verified agent token and the signing key."""

    token: AgentToken
    key: PublicKey
    jkt: str

    @property
    def agent_id(self) -> str:
        return self.token.sub

    @property
    def iss(self) -> str:
        return self.token.iss

    @property
    def exp(self) -> float:
        return float(self.token.exp)


@dataclass(frozen=True)
class RevocationReport:
    """What revoking produced: auth tokens newly revoked, resources told, and failures
    (``jti`` -> reason) to retry with :meth:`PersonServer.retry_revocations`."""

    revoked: tuple[str, ...] = ()
    notified: tuple[str, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentTokenRevocation:
    """The outcome of an agent provider revoking ``(iss, jti)``: ``known`` when this PS had
    seen that agent token (§Token Revocation: otherwise 404; it is refused all the same)."""

    iss: str
    jti: str
    known: bool
    agent_id: str | None
    report: RevocationReport


class PersonServer:
    """A persistent AAuth person server. See the module docstring; build the ASGI app with
    :meth:`app` or :func:`~aauth_agents.servers.person_server.create_person_server`."""

    def __init__(self, config: PersonServerConfig) -> None:
        self.config = config
        self.issuer = config.issuer
        self.clock = config.clock
        keys = config.issuer_keys if config.issuer_keys is not None else config.discovery
        if keys is None:
            raise ConfigurationError(
                "a person server needs discovery (or issuer_keys) to verify agent tokens")
        self.issuer_keys = keys
        self.discovery = config.discovery
        path = config.database_path
        self.db = PSDatabase(path)
        self.state = PSState(self.db)
        self._stores_db = SQLiteDatabase(path)
        self.pending = SQLitePendingStore(self._stores_db)
        self.revocations = SQLiteRevocationStore(self._stores_db)
        self.keys = SigningKeys(
            self.db, configured=config.signing_key, alg=config.key_alg,
            max_token_lifetime=max(config.person_token_lifetime, config.auth_token_lifetime),
            clock=self.clock,
        )
        self.accounts = Accounts(self.db, clock=self.clock, log2_n=config.password_log2_n)
        self.policy = as_policy(config.policy)
        self.events = EventSink(config.events)
        self.verifier = SignatureVerifier(
            clock=self.clock, window=config.signature_window, require_body_digest=True)
        self._verify_agent_token = async_token_key_resolver(
            keys=self.issuer_keys, audience=None, accept=(TYP_AGENT,), clock=self.clock)
        self._agent_tokens: OrderedDict[str, AgentToken] = OrderedDict()
        self._revocation_verifier = SignatureVerifier(
            clock=self.clock, window=config.signature_window, require_body_digest=True,
            accepted_schemes=(SCHEME_JWKS_URI,))
        self.notifier = Notifier()
        self.limiter = PollLimiter(self.clock, burst=config.poll_burst, window=config.poll_window)
        self.interactions = Interactions(self)
        self._http = config.http
        self._owns_http = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._purges = Every(self.clock, config.purge_interval)
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._seen_lock = threading.Lock()
        log.info("person server %s on %s (signing key %s)", self.issuer, path,
                 self.keys.current.kid)

    # -- lifecycle -----------------------------------------------------------------------------

    def app(self) -> Any:
        """The ASGI app serving every endpoint (see :mod:`.app`)."""
        from .app import create_person_server

        return create_person_server(self)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None
        self.close()

    def close(self) -> None:
        """Close the database connections (pending records and everything else persist)."""
        self.db.close()
        self._stores_db.close()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a short database operation: inline on the event loop (each one is a
        single indexed statement or a short transaction that is never held across an
        ``await``), or in a worker thread when ``database_threads`` is set (a slow disk, a
        database file shared with other processes)."""
        if self.config.database_threads:
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
        return fn(*args, **kwargs)

    def _event(self, name: str, **fields: Any) -> None:
        self.events(PSEvent(name=name, at=self.clock(), **fields))

    # -- documents -----------------------------------------------------------------------------

    def metadata(self) -> PersonServerMetadata:
        """``/.well-known/aauth-person.json`` with every endpoint this PS serves."""
        c = self.config
        return PersonServerMetadata.build(
            issuer=self.issuer, name=c.name, description=c.description,
            jwks_uri=c.url("jwks"), auth_token_endpoint=c.url("auth_token"),
            person_token_endpoint=c.url("person_token"), mission_endpoint=c.url("mission"),
            permission_endpoint=c.url("permission"), audit_endpoint=c.url("audit"),
            interaction_endpoint=c.url("interaction"), revocation_endpoint=c.url("revocation"),
            scopes_supported=list(c.scopes_supported), claims_supported=list(c.claims_supported),
        )

    def jwks(self) -> dict[str, Any]:
        return self.keys.jwks()

    def rotate_signing_key(self, new_key: Any = None) -> str:
        """Sign with a new key from now on; the old one stays in the JWKS until every token
        it signed has expired. Returns the new ``kid``."""
        old = self.keys.current.kid
        key = self.keys.rotate(new_key)
        self._event(ev.KEY_ROTATED, detail={"old": old, "new": key.kid})
        assert key.kid is not None
        return key.kid

    # -- persons -------------------------------------------------------------------------------

    def bind_agent(self, agent_id: str, account: str, *, issuer: str | None = None) -> None:
        """Bind an agent to a person ahead of time (§Agent-Person Binding: e.g. an
        administrator pre-authorizing agents). ``issuer`` is the agent provider; by default
        ``https://<domain of agent_id>``. Raises if the agent acts for someone else."""
        from ...protocol.identifiers import agent_domain, validate_agent_identifier

        agent_id = validate_agent_identifier(agent_id)
        iss = validate_server_identifier(issuer or f"https://{agent_domain(agent_id)}")
        found = self.accounts.get(account)
        if found is None:
            raise ConfigurationError(f"no account {account!r}")
        _, created = self.state.bind(iss, agent_id, found.username, "configured", self.clock())
        if created:
            self._event(ev.BOUND, agent=agent_id, account=found.username,
                        detail={"how": "configured"})

    async def unbind_agent(self, agent_id: str, *, issuer: str | None = None) -> RevocationReport:
        """Revoke an agent's binding: it can obtain nothing more until a person binds it again,
        and the auth tokens issued for it are revoked at their resources."""
        from ...protocol.identifiers import agent_domain

        iss = issuer or f"https://{agent_domain(agent_id)}"
        binding = await self.run(self.state.unbind, iss, agent_id)
        if binding is not None:
            self._event(ev.UNBOUND, agent=agent_id, account=binding.account)
        tokens = await self.run(self.state.live_auth_tokens_for_agent, agent_id, self.clock())
        return await self._revoke_auth_tokens(tokens)

    async def _default_account(self) -> str | None:
        name = self.config.default_person
        if name is None:
            return None
        account = await self.run(self.accounts.get, name)
        if account is None:
            log.error("default_person %r has no account; ignoring it", name)
            return None
        return account.username

    async def person_for(self, agent_iss: str, agent_id: str) -> str | None:
        """The account the agent acts for, binding it to ``default_person`` when configured."""
        binding = await self.run(self.state.binding, agent_iss, agent_id)
        if binding is not None:
            return binding.account
        default = await self._default_account()
        if default is None:
            return None
        await self._bind(agent_iss, agent_id, default, "default")
        return default

    async def _bind(self, agent_iss: str, agent_id: str, account: str, how: str) -> None:
        _, created = await self.run(
            self.state.bind, agent_iss, agent_id, account, how, self.clock())
        if created:
            log.info("bound %s to %s (%s)", agent_id, account, how)
            self._event(ev.BOUND, agent=agent_id, account=account, detail={"how": how})

    # -- verification --------------------------------------------------------------------------

    async def _agent_resolver(self, signature_key: SignatureKey) -> KeyResolution:
        """Signature-Key ``scheme=jwt`` with an agent token, verified once per token string
        and then served from a small cache (its signature cannot change; ``exp`` is checked
        on every use, revocation by the caller)."""
        raw = signature_key.jwt
        if signature_key.scheme == "jwt" and raw is not None:
            with self._seen_lock:
                cached = self._agent_tokens.get(raw)
            if cached is not None and self.clock() < cached.exp:
                return KeyResolution(jwk=cached.cnf.to_jwk(), context=cached)
        resolution = await self._verify_agent_token(signature_key)
        token = resolution.context
        if raw is not None and isinstance(token, AgentToken):
            with self._seen_lock:
                self._agent_tokens[raw] = token
                while len(self._agent_tokens) > _SEEN_CACHE:
                    self._agent_tokens.popitem(last=False)
        return resolution

    async def verify_agent(self, request: HttpRequest) -> AgentContext:
        """§Verification with the agent token in Signature-Key; refuses revoked agent tokens
        and sub-agents (§Single-Level Depth)."""
        verified = await self.verifier.averify(request, self._agent_resolver)
        token = verified.context
        assert isinstance(token, AgentToken)
        now = self.clock()
        revoked = await self.run(self.revocations.is_revoked, now=now, token=(token.iss, token.jti))
        if revoked is not None:
            raise InvalidJWTError("the agent token has been revoked")
        if token.parent_agent is not None:
            raise ProtocolError(
                "invalid_agent_token",
                "a sub-agent never calls the person server: its parent requests on its behalf",
            )
        key = (token.iss, token.jti)
        with self._seen_lock:
            seen = key in self._seen
        if not seen:
            await self.run(self.state.remember_agent_token, token.iss, token.jti, token.sub,
                           float(token.exp))
            with self._seen_lock:
                self._seen[key] = None
                while len(self._seen) > _SEEN_CACHE:
                    self._seen.popitem(last=False)
        return AgentContext(token, verified.public_key, verified.thumbprint)

    async def _subagent(self, ctx: AgentContext, subagent_token: str | None
                        ) -> AgentToken | None:
        """§Parent-Mediated Authorization: the sub-agent's token verified, naming the signer
        as its ``parent_agent``."""
        if subagent_token is None:
            return None
        try:
            sub = await averify_agent_token(
                subagent_token, keys=self.issuer_keys, signing_key=None, clock=self.clock)
        except TokenError as exc:
            raise ProtocolError(exc.code, f"subagent_token: {exc.detail}") from exc
        if sub.parent_agent is None:
            raise ProtocolError("invalid_agent_token",
                                "subagent_token is not a sub-agent's token (no parent_agent)")
        if sub.parent_agent != ctx.agent_id:
            raise ProtocolError("invalid_agent_token",
                                "subagent_token's parent_agent is not the signing agent")
        revoked = await self.run(self.revocations.is_revoked, now=self.clock(),
                                 token=(sub.iss, sub.jti))
        if revoked is not None:
            raise ProtocolError("invalid_agent_token", "subagent_token has been revoked")
        return sub

    async def _owned_mission(self, ctx_iss: str, agent_id: str, s256: str) -> Mission:
        """The agent's active mission, or ``mission_not_found`` (unknown and not-yours alike)
        / ``mission_terminated``. A mission past ``expires_at`` is terminated here."""
        mission = await self.run(self.state.owned_mission, s256, ctx_iss, agent_id)
        if mission is None:
            raise ProtocolError("mission_not_found", "no such mission")
        return await self._check_active(mission)

    async def _check_active(self, mission: Mission) -> Mission:
        if mission.active_at(self.clock()):
            return mission
        if mission.state == ACTIVE:  # past expires_at: terminate it now
            ended = await self.terminate_mission(mission.s256, "expired")
            if ended is None:  # terminated meanwhile, perhaps for another reason
                ended = await self.run(self.state.mission, mission.s256)
            mission = ended or replace(mission, state="terminated",
                                       termination_reason="expired")
        raise mission_terminated(mission)

    # -- metadata of other parties -------------------------------------------------------------

    async def resource_info(self, resource: str) -> ResourceInfo | None:
        """A resource's name, description, access mode and scope descriptions from its
        metadata (§Resource Metadata); ``None`` when it cannot be fetched."""
        if self.discovery is None:
            return None
        try:
            document = await self.discovery.metadata(resource, DWK_RESOURCE)
            meta = ResourceMetadata.from_json(document, expected_issuer=resource)
        except (AAuthError, ValueError) as exc:
            log.warning("no metadata for %s: %s", resource, exc)
            return None
        return ResourceInfo(
            identifier=resource, name=meta.name, description=meta.description,
            access_mode=meta.access_mode, logo_uri=meta.logo_uri,
            scope_descriptions=dict(meta.scope_descriptions or {}),
            revocation_endpoint=meta.revocation_endpoint,
        )

    async def provider_metadata(self, iss: str) -> AgentProviderMetadata | None:
        """The metadata of agent provider ``iss`` through discovery; ``None`` without
        discovery or when it cannot be fetched or is invalid (callers then show no name and
        allow no callback)."""
        if self.discovery is None:
            return None
        try:
            document = await self.discovery.metadata(iss, DWK_AGENT)
            return AgentProviderMetadata.from_json(document, expected_issuer=iss)
        except (AAuthError, ValueError):
            return None

    # -- the common decision path --------------------------------------------------------------

    def _consent_request(self, req: PendingRequest, consented: bool) -> ConsentRequest:
        r = req.request
        return ConsentRequest(
            kind=req.kind, agent_id=req.agent_id, agent_issuer=req.agent_iss,
            account=req.account, consented=consented, resource=req.resource,
            scopes=tuple(r.get("scopes", ())), subagent=req.subagent,
            mission_s256=req.mission_s256, justification=req.params.justification,
            description=r.get("description") or r.get("summary") or r.get("question"),
            action=r.get("action"), parameters=r.get("parameters"),
            tools=tuple(r.get("tools", ())), resources=tuple(r.get("resources", ())),
            capabilities=req.params.capabilities, platform=req.params.platform,
            device=req.params.device, r3=r.get("r3"),
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
        caps = await self._capabilities(req)
        return caps is not None and "clarification" in caps

    async def _decide(self, req: PendingRequest, ctx: AgentContext, *, consented: bool,
                      wait: int | None, force_interaction: bool = False) -> Reply:
        prompt = set(req.params.prompt)
        if prompt & {"login", "consent"}:
            consented = False  # the agent asks for the person to be asked again (OIDC prompt)
        consent = self._consent_request(req, consented)
        if force_interaction:
            decision = Decision.interaction()
        else:
            decision = await resolve(self.policy.decide(consent))
            if not isinstance(decision, Decision):
                raise ConfigurationError("a consent policy must return a Decision")
        if decision.outcome == APPROVE:
            account = decision.account or req.account or await self._default_account()
            if account is not None:
                known = await self.run(self.accounts.get, account)
                if known is None:
                    raise ConfigurationError(f"the policy named an unknown account {account!r}")
                if req.account != known.username:
                    await self._bind(req.agent_iss, req.agent_id, known.username, "policy")
                    req = req.evolve(account=known.username)
                result = await self.apply(req, known.username, decision,
                                          remember=not consented)
                self._event(ev.APPROVED, agent=req.agent_id, account=known.username,
                            detail={"kind": req.kind, "by": "policy"})
                return await self.complete(req, result, ctx)
            log.info("policy approved %s for unbound %s: asking the person", req.kind,
                     req.agent_id)
            decision = Decision.interaction()
        if decision.outcome == DENY:
            self._event(ev.DENIED, agent=req.agent_id, account=req.account,
                        detail={"kind": req.kind, "by": "policy"})
            return await self.denied(req, decision.reason)
        if "none" in prompt and decision.outcome in (INTERACTION, APPROVAL):
            raise ProtocolError("user_unreachable",
                                "the person would have to be asked and prompt is none")
        if decision.outcome == INTERACTION:
            if not await self.can_interact(req):
                raise ProtocolError(
                    "user_unreachable",
                    "the person must decide and the agent cannot drive an interaction")
            record = await self.create_pending(req, ctx, requirement=INTERACTION)
            return self.pending_reply(record, PendingRequest.from_json(record.data),
                                      initial=True)
        assert decision.outcome == APPROVAL
        record = await self.create_pending(req, ctx, requirement=APPROVAL)
        if decision.decide is not None:
            self._schedule(record.id, replace(consent, pending_id=record.id), decision)
        if wait:
            return await self.answer_poll(record.id, ctx, wait)
        return self.pending_reply(record, PendingRequest.from_json(record.data), initial=True)

    def _schedule(self, pending_id: str, consent: ConsentRequest, decision: Decision) -> None:
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
                    await self.interactions.approve(pending_id, outcome.account,
                                                    scopes=outcome.scopes)
                elif isinstance(outcome, Decision) and outcome.outcome == DENY:
                    await self.interactions.deny(pending_id, outcome.reason)
                else:
                    log.warning("an approval decider answers approve, deny or None")
            except AAuthError as exc:
                log.warning("approval of %s not applied: %s", pending_id, exc.detail)

        self._spawn(run())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background; :meth:`aclose` cancels what is still running."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def create_pending(self, req: PendingRequest, ctx: AgentContext, *, requirement: str,
                             lifetime: float | None = None) -> PendingRecord:
        now = self.clock()
        provider = await self.provider_metadata(req.agent_iss)
        name, logo = (provider.name, provider.logo_uri) if provider else (None, None)
        binding = await self.run(self.state.binding, req.agent_iss, req.agent_id)
        req = req.evolve(requirement=requirement, provider_name=name, provider_logo=logo,
                         new_agent=binding is None)
        life = lifetime if lifetime is not None else self.config.pending_lifetime
        for _ in range(8):
            interaction_id = code = None
            evolved = req
            if requirement == INTERACTION:
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
                evolved = req.evolve(interaction_url=url, display_code=display)
            record = PendingRecord(
                id=secrets.token_urlsafe(24), kind=req.kind, state=PENDING, agent_jkt=ctx.jkt,
                created_at=now, expires_at=now + life, purge_at=now + life + 3600,
                interaction_id=interaction_id, code=code, data=evolved.to_json(),
                # The person it waits for (their dashboard lists it); unknown for a new agent.
                owner=binding.account if binding is not None else req.account,
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
            raise ProtocolError("server_error", "no unused interaction code was found")
        self._event(ev.PENDING, agent=req.agent_id, account=req.account,
                    resource=req.resource.identifier if req.resource else None,
                    mission=req.mission_s256,
                    detail={"kind": req.kind, "requirement": requirement, "pending": record.id})
        return record

    def pending_reply(self, record: PendingRecord, req: PendingRequest, *,
                      initial: bool = False) -> Reply:
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
            headers.update(
                Requirement.interaction(req.interaction_url, req.display_code).headers())
        else:
            headers.update(Requirement.approval().headers())
        return Reply.json(202, body, headers.items())

    # -- polling -------------------------------------------------------------------------------

    async def owned_record(self, pending_id: str, ctx: AgentContext
                           ) -> tuple[PendingRecord, PendingRequest]:
        """The pending record if this agent (same identity and key) made it; otherwise the
        same 404 as for an unknown id (§Pending URL Security: verify on every poll)."""
        record = await self.run(self.pending.get, pending_id)
        if record is None:
            raise not_found()
        req = PendingRequest.from_json(record.data)
        if (record.agent_jkt != ctx.jkt or req.agent_id != ctx.agent_id
                or req.agent_iss != ctx.iss):
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
                # Re-read at least every second: another process may change the record.
                await self.notifier.wait(entry, min(remaining, 1.0))
            finally:
                self.notifier.unregister(pending_id, entry)

    async def _settle(self, record: PendingRecord, req: PendingRequest, ctx: AgentContext
                      ) -> Reply | None:
        """The terminal response of a decided record (moving it to ``completed``), or
        ``None`` while it is still pending."""
        for _ in range(10):
            if record.state == COMPLETED:
                raise gone()
            now = self.clock()
            if record.state in (PENDING, INTERACTING, EXECUTING):
                if now < record.expires_at:
                    return None
                expired = advance(record, Event.FAIL, code=None,
                                  data=req.evolve(error="expired").to_json())
                if await self.run(self.pending.replace, expired) is not None:
                    self._event(ev.EXPIRED, agent=req.agent_id, account=req.account,
                                detail={"kind": req.kind})
            else:
                done = await self.run(self.pending.replace,
                                      advance(record, Event.DELIVER, code=None))
                if done is not None:
                    self.notifier.notify(record.id)
                    self.limiter.forget(record.id)
                    return await self._terminal(record, req, ctx)
            latest = await self.run(self.pending.get, record.id)
            if latest is None:
                raise not_found()
            record, req = latest, PendingRequest.from_json(latest.data)
        raise ProtocolError("server_error", "the pending request is changing too fast")

    async def _terminal(self, record: PendingRecord, req: PendingRequest, ctx: AgentContext
                        ) -> Reply:
        if record.state == APPROVED:
            try:
                return await self.complete(req, req.result or {}, ctx)
            except AAuthError:
                raise
            except Exception as exc:
                log.exception("completing %s failed", record.id)
                raise ProtocolError("server_error", "the request could not be completed") from exc
        if record.state == DENIED:
            return await self.denied(req, req.reason, logged=True)
        code = req.error or "server_error"
        details = {
            "abandoned": "the person left the interaction without deciding",
            "expired": "the request timed out",
            "invalid_code": "the interaction failed: too many wrong codes",
        }
        return Reply.error(ProtocolError(code, req.reason or details.get(code, code)))

    async def denied(self, req: PendingRequest, reason: str | None, *, logged: bool = False
                     ) -> Reply:
        """A refusal: ``permission: denied`` at the permission endpoint, ``403 denied``
        anywhere else."""
        if req.kind == PERMISSION:
            if not logged and req.mission_s256:
                await self.log_mission(req.mission_s256, "permission_response",
                                       {"action": req.request.get("action"),
                                        "permission": "denied", "reason": reason})
            body: dict[str, Any] = {"permission": "denied"}
            if reason:
                body["reason"] = reason
            return Reply.json(200, body)
        return Reply.error(ProtocolError("denied", reason or "the person declined the request"))

    # -- applying and completing decisions ----------------------------------------------------

    async def apply(self, req: PendingRequest, account: str, decision: Decision | None = None,
                    overrides: Mapping[str, Any] | None = None, *, remember: bool = True
                    ) -> dict[str, Any]:
        """The effects of an approval, made once when the decision is taken: consent
        remembered (unless ``remember`` is false: it already was), mission created, update
        logged, completion accepted..."""
        now = self.clock()
        overrides = overrides or {}
        r = req.request
        result: dict[str, Any] = {"account": account}
        if req.kind == PERSON_TOKEN:
            if remember:
                await self.run(self.state.remember_consent, account, req.agent_iss,
                               req.agent_id, r["resource"], PERSON_TOKEN, req.mission_s256, (),
                               now)
        elif req.kind == AUTH_TOKEN:
            requested = tuple(r.get("scopes", ()))
            narrowed = overrides.get("scopes") or (decision.scopes if decision else None)
            granted = requested if narrowed is None else tuple(
                s for s in requested if s in set(narrowed))
            if (remember or narrowed is not None) and not r.get("r3"):
                await self.run(self.state.remember_consent, account, req.agent_iss,
                               req.agent_id, r["resource"], AUTH_TOKEN, req.mission_s256,
                               granted, now)
            result["scopes"] = list(granted)
        elif req.kind == MISSION:
            result["s256"] = await self._create_mission(req, account, overrides)
        elif req.kind == MISSION_UPDATE:
            entry = compact({"type": "update", "description": r["description"],
                             "at": iso8601(now)})
            digest = mission_s256(entry)
            await self.run(self.state.append_log, r["s256"], "update", entry, now, digest)
            self._event(ev.MISSION_UPDATED, agent=req.agent_id, account=account,
                        mission=r["s256"])
            result["s256"] = digest
        elif req.kind == MISSION_COMPLETION:
            await self.log_mission(r["s256"], "completion", {"summary": r["summary"]})
            await self.terminate_mission(r["s256"], "completed")
        elif req.kind == PERMISSION:
            result["permission"] = "granted"
            if req.mission_s256:
                await self.log_mission(req.mission_s256, "permission_response",
                                       {"action": r.get("action"), "permission": "granted"})
        elif req.kind == QUESTION:
            answer = overrides.get("answer")
            if not isinstance(answer, str) or not answer:
                raise ProtocolError("invalid_request", "a question is approved with an answer")
            result["answer"] = answer
            if req.mission_s256:
                await self.log_mission(req.mission_s256, "question_answer",
                                       {"question": r.get("question"), "answer": answer})
        elif req.kind == RELAY:
            result["status"] = "engaged"
        return result

    async def complete(self, req: PendingRequest, result: Mapping[str, Any], ctx: AgentContext
                       ) -> Reply:
        """The ``200`` of an approved request, built when the agent collects it (tokens are
        minted then, bounded by the ``exp`` of the agent token presenting the poll)."""
        account = str(result.get("account") or req.account or "")
        if req.kind == PERSON_TOKEN:
            token, expires_in = await self._issue_person_token(
                req, account, req.request["resource"], ctx)
            return Reply.json(200, {"person_token": token, "expires_in": expires_in})
        if req.kind == AUTH_TOKEN:
            token, expires_in = await self._issue_auth_token(req, account, result, ctx)
            return Reply.json(200, {"auth_token": token, "expires_in": expires_in})
        if req.kind == MISSION:
            return await self._mission_approval(str(result["s256"]), req, ctx)
        if req.kind == MISSION_UPDATE:
            return Reply.json(200, {"s256": result["s256"]})
        if req.kind == MISSION_COMPLETION:
            return Reply.json(200, {"mission_status": "terminated",
                                    "termination_reason": "completed"})
        if req.kind == PERMISSION:
            return Reply.json(200, {"permission": "granted"})
        if req.kind == QUESTION:
            return Reply.json(200, {"answer": result["answer"]})
        if req.kind == RELAY:
            return Reply.json(200, {"status": result.get("status", "engaged")})
        raise ProtocolError("server_error", f"unknown request kind {req.kind!r}")

    def _not_after(self, req: PendingRequest, ctx: AgentContext) -> float:
        bound = ctx.exp
        if req.subagent_exp is not None:
            bound = min(bound, req.subagent_exp)
        return bound

    async def _mission_bound(self, req: PendingRequest, s256: str | None) -> float | None:
        if s256 is None:
            return None
        mission = await self._owned_mission(req.agent_iss, req.agent_id, s256)
        return mission.expires_at

    async def _issue_person_token(self, req: PendingRequest, account: str, resource: str,
                                  ctx: AgentContext, *, mission: str | None = None
                                  ) -> tuple[str, int]:
        s256 = mission if mission is not None else req.mission_s256
        mission_expires = await self._mission_bound(req, s256)
        acct = await self.run(self.accounts.get, account)
        if acct is None:
            raise ProtocolError("server_error", "the person's account is gone")
        now = self.clock()
        sub = await self.run(self.state.directed_sub, account, resource, now)
        jti = secrets.token_urlsafe(16)
        subject = PublicKey.from_jwk(req.subject_jwk)
        token = mint_person_token(
            self.keys.current, iss=self.issuer, aud=resource, sub=sub, cnf=subject,
            not_after=self._not_after(req, ctx), mission_s256=s256,
            mission_expires_at=mission_expires, tenant=acct.tenant,
            lifetime=self.config.person_token_lifetime, jti=jti, clock=self.clock,
        )
        iat = int(now)
        exp = _claim_exp(token)
        record = IssuedPersonToken(
            jti=jti, aud=resource, sub=sub, account=account,
            agent_id=req.subagent or req.agent_id, requested_by=req.agent_id,
            mission_s256=s256, tenant=acct.tenant, iat=iat, exp=exp,
        )
        await self.run(self.state.record_person_token, record,
                       exp + self.config.resource_token_max_lifetime)
        if s256:
            await self.log_mission(s256, "person_token", {"resource": resource, "jti": jti,
                                                          "justification":
                                                          req.params.justification})
        self._event(ev.ISSUED_PERSON_TOKEN, agent=record.agent_id, account=account,
                    resource=resource, mission=s256, jti=jti)
        return token, exp - iat

    async def _issue_auth_token(self, req: PendingRequest, account: str,
                                result: Mapping[str, Any], ctx: AgentContext) -> tuple[str, int]:
        r = req.request
        mission_expires = await self._mission_bound(req, req.mission_s256)
        acct = await self.run(self.accounts.get, account)
        if acct is None:
            raise ProtocolError("server_error", "the person's account is gone")
        scopes = tuple(result.get("scopes", r.get("scopes", ())))
        claims = acct.released_claims(tuple(s for s in scopes if s in IDENTITY_SCOPES))
        jti = secrets.token_urlsafe(16)
        now = self.clock()
        # R3 §Auth Token Extensions: the document approved, its operations granted (a
        # per-call proposal's one operation: R3 §Per-Call Proposals, Flow step 2).
        r3 = r.get("r3") or {}
        pin = {"r3_uri": r3["uri"], "r3_s256": r3["s256"], "r3_granted": {
            "vocabulary": r3["vocabulary"], "operations": r3["operations"]}} if r3 else {}
        token = mint_auth_token(
            self.keys.current, iss=self.issuer, aud=r["resource"], ps=self.issuer, sub=r["sub"],
            cnf=PublicKey.from_jwk(req.subject_jwk), scope=scopes or None,
            account=r.get("account"), mission_s256=req.mission_s256,
            mission_expires_at=mission_expires, tenant=r.get("tenant"),
            not_after=self._not_after(req, ctx), lifetime=self.config.auth_token_lifetime,
            jti=jti, clock=self.clock, extra=claims or None, **pin,
        )
        iat = int(now)
        exp = _claim_exp(token)
        await self.run(self.state.record_auth_token, IssuedAuthToken(
            jti=jti, aud=r["resource"], sub=r["sub"], account=account,
            agent_id=req.subagent or req.agent_id, requested_by=req.agent_id,
            mission_s256=req.mission_s256, scope=" ".join(scopes) or None, iat=iat, exp=exp,
        ))
        if req.mission_s256:
            await self.log_mission(req.mission_s256, "auth_token", {
                "resource": r["resource"], "scope": " ".join(scopes), "jti": jti,
                "justification": req.params.justification, "r3_uri": r3.get("uri"),
                "r3_s256": r3.get("s256")})
        self._event(ev.ISSUED_AUTH_TOKEN, agent=req.subagent or req.agent_id, account=account,
                    resource=r["resource"], mission=req.mission_s256, jti=jti,
                    detail={"scope": " ".join(scopes),
                            **({"r3_uri": r3["uri"], "r3_s256": r3["s256"]} if r3 else {})})
        return token, exp - iat

    # -- /person -------------------------------------------------------------------------------

    async def handle_person_token(self, request: HttpRequest) -> Reply:
        """§Person Token Endpoint."""
        ctx = await self.verify_agent(request)
        body = parse_json_object(request.body, request.header("content-type"))
        parsed = parse_person_token_request(body)
        if parsed.upstream_token is not None:
            raise ProtocolError("invalid_request",
                                "upstream_token (call chaining) is not supported by this PS")
        sub = await self._subagent(ctx, parsed.subagent_token)
        if parsed.mission_s256 is not None:
            await self._owned_mission(ctx.iss, ctx.agent_id, parsed.mission_s256)
        await self._resource_rate_limit(ctx.agent_id, parsed.resource)
        account = await self.person_for(ctx.iss, ctx.agent_id)
        info = await self.resource_info(parsed.resource)
        req = self._request(PERSON_TOKEN, ctx, sub, account, parsed.params,
                            {"resource": parsed.resource}, parsed.mission_s256, info)
        consented = False
        if account is not None:
            consented = await self.run(
                self.state.consent_covers, account, ctx.iss, ctx.agent_id, parsed.resource,
                PERSON_TOKEN, parsed.mission_s256, ())
            if not consented and parsed.mission_s256 is not None:
                mission = await self.run(self.state.mission, parsed.mission_s256)
                consented = mission is not None and parsed.resource in mission.approved_resources
        if parsed.mission_s256:
            await self.log_mission(parsed.mission_s256, "person_token_request", {
                "resource": parsed.resource, "subagent": req.subagent,
                "justification": parsed.params.justification})
        return await self._decide(req, ctx, consented=consented,
                                  wait=parse_prefer_wait(request.header("prefer")))

    async def _resource_rate_limit(self, agent_id: str, resource: str) -> None:
        limit = self.config.max_resources_per_day
        if limit is None:
            return
        if await self.run(self.state.had_person_token, agent_id, resource):
            return
        count = await self.run(self.state.resources_since, agent_id, self.clock() - 86400)
        if count >= limit:
            raise ProtocolError("slow_down",
                                "too many distinct resources for this agent today")

    def _request(self, kind: str, ctx: AgentContext, sub: AgentToken | None,
                 account: str | None, params: RequestParams, request: Mapping[str, Any],
                 mission_s256: str | None, info: ResourceInfo | None) -> PendingRequest:
        subject = sub.cnf if sub is not None else ctx.key
        return PendingRequest(
            kind=kind, agent_iss=ctx.iss, agent_id=ctx.agent_id,
            subject_jwk=subject.to_jwk(kid=False), requirement="", request=dict(request),
            params=params, account=account, subagent=sub.sub if sub else None,
            subagent_exp=float(sub.exp) if sub else None, mission_s256=mission_s256,
            resource=info,
        )

    # -- /token --------------------------------------------------------------------------------

    async def verify_resource_token(self, token: str, ctx: AgentContext,
                                    subject: PublicKey, account: str | None,
                                    subagent: str | None) -> ResourceToken:
        """§Resource Token Verification steps 1-7 at this PS."""
        try:
            rt = await averify_resource_token(
                token, keys=self.issuer_keys, audience=self.issuer,
                agent_jkt=subject.thumbprint(), clock=self.clock,
                max_lifetime=self.config.resource_token_max_lifetime)
        except TokenError as exc:
            raise ProtocolError(exc.code, exc.detail) from exc
        record = await self.run(self.state.person_token, rt.presented_jti, self.clock())
        if record is None:
            raise ProtocolError(
                "unknown_person_token",
                "the resource token names a person token this PS has no record of")
        mismatches = [
            name for name, token_value, recorded in (
                ("ps", rt.ps, self.issuer), ("sub", rt.sub, record.sub),
                ("mission_s256", rt.mission_s256, record.mission_s256),
                ("tenant", rt.tenant, record.tenant), ("iss", rt.iss, record.aud),
            ) if token_value != recorded
        ]
        if mismatches:
            log.warning("resource token from %s disagrees with person token record on %s: "
                        "possible tampering (e.g. mission stripping)", rt.iss, mismatches)
            self._event(ev.TAMPERING, agent=ctx.agent_id, resource=rt.iss,
                        jti=rt.presented_jti, detail={"mismatch": mismatches})
            raise ProtocolError(
                "invalid_resource_token",
                f"the resource token disagrees with the person token it names: {mismatches}")
        if record.requested_by != ctx.agent_id or record.agent_id != (subagent or ctx.agent_id):
            raise ProtocolError("invalid_resource_token",
                                "the person token it names was issued to another agent")
        if account is None or record.account != account:
            raise ProtocolError("invalid_resource_token",
                                "the person token it names is not this agent's person's")
        if rt.mission_s256 is not None:
            await self._owned_mission(ctx.iss, ctx.agent_id, rt.mission_s256)
        return rt

    def _check_scopes(self, rt: ResourceToken, info: ResourceInfo | None) -> None:
        supported = set(self.config.scopes_supported)
        unsupported = [s for s in rt.scopes if s in IDENTITY_SCOPES and s not in supported]
        if unsupported:
            raise ProtocolError("invalid_scope",
                                f"identity scopes this PS does not support: {unsupported}")
        if info is not None and info.scope_descriptions:
            undefined = [s for s in rt.scopes
                         if s not in IDENTITY_SCOPES and s not in info.scope_descriptions]
            if undefined:
                raise ProtocolError(
                    "invalid_scope",
                    f"scopes the resource's metadata does not describe: {undefined}")

    # -- R3 documents (draft-hardt-aauth-r3, exploratory) ---------------------------------------

    def _signed_headers(self, request: HttpRequest) -> dict[str, str]:
        """Headers signing ``request`` as this PS: ``Signature-Key: sig=jwks_uri;
        id=<PS>; dwk="aauth-person.json"`` (revocation notices, R3 document fetches)."""
        key = self.keys.current
        assert key.kid is not None
        return sign_request(request, key=key, clock=self.clock,
                            signature_key=SignatureKey.from_jwks_uri(
                                id=self.issuer, dwk=DWK_PERSON, kid=key.kid))

    async def _read_bounded(self, url: str) -> bytes:
        headers = self._signed_headers(HttpRequest("GET", url))
        async with self._client().stream("GET", url, headers={
                "accept": "application/json", **headers}) as response:
            if response.status_code != 200:
                raise ProtocolError("invalid_resource_token",
                                    f"r3_uri answered {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_DOCUMENT_BYTES:
                    raise ProtocolError("invalid_resource_token",
                                        f"the R3 document exceeds {MAX_DOCUMENT_BYTES} bytes")
                chunks.append(chunk)
        return b"".join(chunks)

    async def fetch_r3(self, rt: ResourceToken) -> dict[str, Any] | None:
        """The R3 document ``rt`` references, for consent (R3 §R3 Processing: the PS reads
        ``display``), or ``None`` when it references none.

        Fetched from ``r3_uri`` -- on the resource's own origin (checked when the token was
        verified), admitted by egress policy, signed by this PS (R3 §R3 Document Access
        Restriction), without redirects, within ``r3_timeout`` seconds and
        :data:`~aauth_agents.protocol.r3.MAX_DOCUMENT_BYTES` -- then its SHA-256 over the
        bytes received compared with ``r3_s256`` (R3 §Hash Verification) and parsed as
        untrusted input. Any failure refuses the resource token (``invalid_resource_token``):
        without the document the person cannot be told what they approve. Not cached: a
        per-call proposal is read once, and a class document's fetch is cheap."""
        if rt.r3_uri is None or rt.r3_s256 is None:
            return None
        url = rt.r3_uri
        try:
            if self.discovery is not None:
                await self.discovery.egress.aadmit(url)
            body = await asyncio.wait_for(self._read_bounded(url), self.config.r3_timeout)
        except ProtocolError:
            raise
        except (AAuthError, httpx.HTTPError, OSError, asyncio.TimeoutError) as exc:
            log.warning("cannot fetch the R3 document of %s: %s", rt.iss, exc)
            raise ProtocolError("invalid_resource_token",
                                "the R3 document at r3_uri could not be fetched") from exc
        if not hmac.compare_digest(r3_s256(body), rt.r3_s256):
            self._event(ev.TAMPERING, resource=rt.iss, jti=rt.jti,
                        detail={"mismatch": ["r3_s256"]})
            raise ProtocolError("invalid_resource_token",
                                "the R3 document does not match the resource token's r3_s256")
        try:
            document = parse_r3_document(body)
        except WireFormatError as exc:
            raise ProtocolError("invalid_resource_token",
                                f"the R3 document is malformed: {exc.detail}") from exc
        return {
            "uri": url, "s256": rt.r3_s256, "vocabulary": document.vocabulary,
            "operations": [dict(o) for o in document.operations],
            "display": document.display.to_json() if document.display else None,
            "account": document.account, "parameters": document.parameters,
            "per_call": document.per_call,
        }

    async def _token_request_members(self, rt: ResourceToken) -> dict[str, Any]:
        """What a pending auth-token request keeps of its resource token (and R3 document)."""
        members = _resource_request(rt)
        r3 = await self.fetch_r3(rt)
        if r3 is not None:
            members["r3"] = r3
        return members

    async def handle_auth_token(self, request: HttpRequest) -> Reply:
        """§PS Token Endpoint, three-party."""
        ctx = await self.verify_agent(request)
        body = parse_json_object(request.body, request.header("content-type"))
        parsed = parse_auth_token_request(body)
        if parsed.upstream_token is not None:
            raise ProtocolError("invalid_request",
                                "upstream_token (call chaining) is not supported by this PS")
        sub = await self._subagent(ctx, parsed.subagent_token)
        subject = sub.cnf if sub is not None else ctx.key
        account = await self.person_for(ctx.iss, ctx.agent_id)
        rt = await self.verify_resource_token(parsed.resource_token, ctx, subject, account,
                                              sub.sub if sub else None)
        info = await self.resource_info(rt.iss)
        self._check_scopes(rt, info)
        members = await self._token_request_members(rt)
        req = self._request(AUTH_TOKEN, ctx, sub, account, parsed.params, members,
                            rt.mission_s256, info)
        force = False
        if rt.interaction is not None:
            if self.discovery is not None:
                self.discovery.egress.check_url(rt.interaction.url)
            req = req.evolve(resource_interaction={
                "url": rt.interaction.url, "code": rt.interaction.code, "state": "pending"})
            force = True
        assert account is not None
        # R3: what an R3 document describes is shown to the person each time (a per-call
        # proposal is one call; consent to a scope is not consent to it).
        consented = "r3" not in members and await self.run(
            self.state.consent_covers, account, ctx.iss, ctx.agent_id, rt.iss, AUTH_TOKEN,
            rt.mission_s256, rt.scopes)
        if rt.mission_s256:
            await self.log_mission(rt.mission_s256, "auth_token_request", {
                "resource": rt.iss, "scope": rt.scope, "subagent": req.subagent,
                "justification": parsed.params.justification})
        return await self._decide(req, ctx, consented=consented, force_interaction=force,
                                  wait=parse_prefer_wait(request.header("prefer")))

    # -- /pending/{id} ---------------------------------------------------------------------------

    async def handle_poll(self, request: HttpRequest, pending_id: str) -> Reply:
        ctx = await self.verify_agent(request)
        await self.owned_record(pending_id, ctx)
        if not self.limiter.allow(pending_id):
            return Reply.error(ProtocolError("slow_down", "poll less often (Retry-After)"))
        return await self.answer_poll(pending_id, ctx,
                                      parse_prefer_wait(request.header("prefer")))

    async def handle_pending_post(self, request: HttpRequest, pending_id: str) -> Reply:
        """§Agent Response to Clarification: ``clarification_response`` or
        ``updated_request``."""
        ctx = await self.verify_agent(request)
        body = parse_json_object(request.body, request.header("content-type"))
        record, req = await self.owned_record(pending_id, ctx)
        action, data = parse_pending_action(body)
        if record.state == COMPLETED:
            raise gone()
        if record.state not in OPEN:
            raise ProtocolError("invalid_request", "the request has already been decided")
        if action == CLARIFICATION_RESPONSE:
            question = req.open_question
            if question is None:
                raise ProtocolError("invalid_request", "no clarification question is open")
            answered = {**question, "answer": data[CLARIFICATION_RESPONSE],
                        "answered_at": self.clock()}
            new_req = req.evolve(conversation=(*req.conversation[:-1], answered))
            event = ev.CLARIFICATION_ANSWERED
            if req.mission_s256:
                await self.log_mission(req.mission_s256, "clarification", {
                    "question": question["question"], "answer": answered["answer"]})
        else:
            new_req = await self._updated_request(req, ctx, data)
            event = ev.REQUEST_UPDATED
        stored = await self.run(self.pending.replace, record.evolve(data=new_req.to_json()))
        if stored is None:
            raise ProtocolError("invalid_request", "the request changed; poll and retry")
        self.notifier.notify(pending_id)
        self._event(event, agent=req.agent_id, account=req.account, detail={"kind": req.kind})
        return self.pending_reply(stored, new_req)

    async def _updated_request(self, req: PendingRequest, ctx: AgentContext,
                               data: Mapping[str, Any]) -> PendingRequest:
        """§Updated Request: a new resource token from the same resource for the same key."""
        if req.kind != AUTH_TOKEN:
            raise ProtocolError("invalid_request", "only a token request can be updated")
        subject = PublicKey.from_jwk(req.subject_jwk)
        rt = await self.verify_resource_token(str(data["resource_token"]), ctx, subject,
                                              req.account, req.subagent)
        if rt.iss != req.request["resource"]:
            raise ProtocolError("invalid_resource_token",
                                "the updated resource token is from another resource")
        if rt.mission_s256 != req.mission_s256:
            raise ProtocolError("invalid_resource_token",
                                "the updated resource token names another mission")
        self._check_scopes(rt, req.resource)
        justification = data.get("justification")
        params = replace(req.params, justification=justification
                         if isinstance(justification, str) else req.params.justification)
        conversation = req.conversation
        question = req.open_question
        if question is not None:
            conversation = (*conversation[:-1], {**question, "answer": justification or "",
                                                 "updated_request": True,
                                                 "answered_at": self.clock()})
        return req.evolve(request=await self._token_request_members(rt), params=params,
                          conversation=conversation)

    async def handle_pending_delete(self, request: HttpRequest, pending_id: str) -> Reply:
        """§Cancel Request: the agent withdraws; the pending URL is then 410."""
        ctx = await self.verify_agent(request)
        for _ in range(10):
            record, req = await self.owned_record(pending_id, ctx)
            if record.state == COMPLETED:
                raise gone()
            withdrawn = advance(record, Event.WITHDRAW, code=None,
                                data=req.evolve(withdrawn=True).to_json())
            if await self.run(self.pending.replace, withdrawn) is not None:
                self.notifier.notify(pending_id)
                self._event(ev.WITHDRAWN, agent=req.agent_id, account=req.account,
                            detail={"kind": req.kind})
                return Reply.empty(204)
        raise ProtocolError("server_error", "the pending request is changing too fast")

    # -- /mission ------------------------------------------------------------------------------

    async def handle_mission_proposal(self, request: HttpRequest) -> Reply:
        """§Mission Creation."""
        ctx = await self.verify_agent(request)
        body = parse_json_object(request.body, request.header("content-type"))
        proposal = parse_mission_proposal(body)
        account = await self.person_for(ctx.iss, ctx.agent_id)
        req = self._request(MISSION, ctx, None, account, proposal.params, {
            "description": proposal.description, "tools": list(proposal.tools),
            "resources": list(proposal.resources)}, None, None)
        return await self._decide(req, ctx, consented=False,
                                  wait=parse_prefer_wait(request.header("prefer")))

    async def _create_mission(self, req: PendingRequest, account: str,
                              overrides: Mapping[str, Any]) -> str:
        r = req.request
        now = self.clock()
        expires_at = overrides.get("expires_at")
        if expires_at is None and self.config.mission_lifetime is not None:
            expires_at = now + self.config.mission_lifetime
        tools = overrides.get("tools")
        resources = overrides.get("resources")
        blob = build_mission_blob(
            approver=self.issuer, agent=req.agent_id, approved_at=iso8601(now),
            description=str(overrides.get("description") or r["description"]),
            expires_at=None if expires_at is None else iso8601(float(expires_at)),
            approved_tools=list(tools if tools is not None else r.get("tools", ())) or None,
            approved_resources=list(resources if resources is not None
                                    else r.get("resources", ())) or None,
        )
        s256 = mission_s256(blob)
        caps = ("interaction",) if self.config.relay_channel is not None else ()
        mission = Mission(
            s256=s256, agent_iss=req.agent_iss, agent_id=req.agent_id, account=account,
            blob=blob, state=ACTIVE, termination_reason=None,
            expires_at=None if expires_at is None else float(int(float(expires_at))),
            capabilities=caps, agent_capabilities=req.params.capabilities, created_at=now,
        )
        await self.run(self.state.create_mission, mission)
        await self.log_mission(s256, "approved", {
            "proposal": dict(r), "justification": req.params.justification,
            "clarifications": [dict(c) for c in req.conversation]})
        self._event(ev.MISSION_APPROVED, agent=req.agent_id, account=account, mission=s256)
        return s256

    async def _mission_approval(self, s256: str, req: PendingRequest, ctx: AgentContext
                                ) -> Reply:
        """§Mission Approval: blob, ``s256``, capabilities and a person token for each
        approved resource."""
        mission = await self._owned_mission(req.agent_iss, req.agent_id, s256)
        tokens: dict[str, str] = {}
        for resource in mission.approved_resources:
            token, _ = await self._issue_person_token(req, mission.account, resource, ctx,
                                                      mission=s256)
            tokens[resource] = token
        body = mission_approval_response(
            mission.blob, capabilities=list(mission.capabilities) or None,
            person_tokens=tokens or None)
        return Reply.json(200, body)

    async def handle_mission_action(self, request: HttpRequest, s256: str) -> Reply:
        """§Mission Update and §Mission Completion at ``/mission/{s256}``."""
        ctx = await self.verify_agent(request)
        body = parse_json_object(request.body, request.header("content-type"))
        try:
            _validate_s256(s256)
        except WireFormatError as exc:
            raise ProtocolError("invalid_request", exc.detail) from exc
        action, text = parse_mission_action(body)
        mission = await self._owned_mission(ctx.iss, ctx.agent_id, s256)
        kind = MISSION_UPDATE if action == "update" else MISSION_COMPLETION
        member = "description" if action == "update" else "summary"
        params = RequestParams(capabilities=mission.agent_capabilities)
        req = self._request(kind, ctx, None, mission.account, params,
                            {"s256": s256, member: text}, s256, None)
        await self.log_mission(s256, f"{action}_proposed", {member: text})
        return await self._decide(req, ctx, consented=False,
                                  wait=parse_prefer_wait(request.header("prefer")))

    # -- /permission, /audit, /interaction -----------------------------------------------------

    async def handle_permission(self, request: HttpRequest) -> Reply:
        """§Permission Endpoint."""
        ctx = await self.verify_agent(request)
        body = parse_json_object(request.body, request.header("content-type"))
        parsed = parse_permission_request(body)
        mission = None
        if parsed.mission_s256 is not None:
            mission = await self._owned_mission(ctx.iss, ctx.agent_id, parsed.mission_s256)
            await self.log_mission(parsed.mission_s256, "permission_request", {
                "action": parsed.action, "description": parsed.description,
                "parameters": parsed.parameters})
            if any(t.get("name") == parsed.action for t in mission.approved_tools):
                await self.log_mission(parsed.mission_s256, "permission_response", {
                    "action": parsed.action, "permission": "granted",
                    "reason": "approved tool"})
                return Reply.json(200, {"permission": "granted"})
        account = await self.person_for(ctx.iss, ctx.agent_id)
        params = RequestParams(capabilities=mission.agent_capabilities if mission else None)
        req = self._request(PERMISSION, ctx, None, account, params, {
            "action": parsed.action, "description": parsed.description,
            "parameters": parsed.parameters}, parsed.mission_s256, None)
        return await self._decide(req, ctx, consented=False,
                                  wait=parse_prefer_wait(request.header("prefer")))

    async def handle_audit(self, request: HttpRequest) -> Reply:
        """§Audit Endpoint: recorded in the mission log, ``201``."""
        ctx = await self.verify_agent(request)
        body = parse_json_object(request.body, request.header("content-type"))
        parsed = parse_audit_request(body)
        mission = await self._owned_mission(ctx.iss, ctx.agent_id, parsed.mission_s256)
        await self.log_mission(mission.s256, "audit", parsed.to_json())
        self._event(ev.AUDIT, agent=ctx.agent_id, account=mission.account, mission=mission.s256,
                    detail={"action": parsed.action})
        return Reply.empty(201)

    async def handle_interaction(self, request: HttpRequest) -> Reply:
        """§Interaction Endpoint: relay an interaction or payment, or ask the person."""
        ctx = await self.verify_agent(request)
        body = parse_json_object(request.body, request.header("content-type"))
        parsed = parse_interaction_request(body)
        mission = None
        if parsed.mission_s256 is not None:
            mission = await self._owned_mission(ctx.iss, ctx.agent_id, parsed.mission_s256)
            await self.log_mission(parsed.mission_s256, "interaction_request", {
                "type": parsed.type, "description": parsed.description, "url": parsed.url,
                "question": parsed.question})
        account = await self.person_for(ctx.iss, ctx.agent_id)
        params = RequestParams(capabilities=mission.agent_capabilities if mission else None)
        wait = parse_prefer_wait(request.header("prefer"))
        if parsed.type in ("interaction", "payment"):
            channel = self.config.relay_channel
            if channel is None:
                raise ProtocolError("interaction_unavailable",
                                    "this PS has no channel to reach the person")
            req = self._request(RELAY, ctx, None, account, params, {
                "type": parsed.type, "url": parsed.url, "code": parsed.code,
                "description": parsed.description}, parsed.mission_s256, None)
            lifetime = min(parsed.max_wait or self.config.pending_lifetime,
                           self.config.pending_lifetime)
            record = await self.create_pending(req, ctx, requirement=APPROVAL,
                                               lifetime=lifetime)
            notice = RelayNotice(pending_id=record.id, type=parsed.type, agent_id=ctx.agent_id,
                                 account=account, description=parsed.description,
                                 url=parsed.url, code=parsed.code)
            if not await resolve(channel(notice)):
                await self.run(self.pending.delete, record.id)
                raise ProtocolError("interaction_unavailable",
                                    "the person cannot be reached right now")
            if wait:
                return await self.answer_poll(record.id, ctx, wait)
            return self.pending_reply(record, PendingRequest.from_json(record.data),
                                      initial=True)
        # A question for the person.
        req = self._request(QUESTION, ctx, None, account, params, {
            "question": parsed.question, "description": parsed.description},
            parsed.mission_s256, None)
        decision = await resolve(self.policy.decide(self._consent_request(req, False)))
        if isinstance(decision, Decision) and decision.outcome == DENY:
            return await self.denied(req, decision.reason)
        channel = self.config.relay_channel
        if channel is not None:
            record = await self.create_pending(req, ctx, requirement=APPROVAL)
            notice = RelayNotice(pending_id=record.id, type="question", agent_id=ctx.agent_id,
                                 account=account, description=parsed.description,
                                 question=parsed.question)
            if await resolve(channel(notice)):
                if wait:
                    return await self.answer_poll(record.id, ctx, wait)
                return self.pending_reply(record, PendingRequest.from_json(record.data),
                                          initial=True)
            await self.run(self.pending.delete, record.id)
        if not await self.can_interact(req):
            raise ProtocolError("user_unreachable",
                                "the PS cannot reach the person and the agent cannot either")
        record = await self.create_pending(req, ctx, requirement=INTERACTION)
        return self.pending_reply(record, PendingRequest.from_json(record.data), initial=True)

    # -- missions (the person's and operator's side) -------------------------------------------

    async def log_mission(self, s256: str, kind: str, entry: Mapping[str, Any]) -> int:
        """Append to the mission log (§Mission Log)."""
        now = self.clock()
        data = {"type": kind, "at": iso8601(now),
                **{k: v for k, v in entry.items() if v is not None}}
        return await self.run(self.state.append_log, s256, kind, compact(data), now)

    async def mission(self, s256: str) -> Mission | None:
        return await self.run(self.state.mission, s256)

    async def mission_log(self, s256: str) -> list[MissionLogEntry]:
        return await self.run(self.state.mission_log, s256)

    async def missions_for(self, account: str) -> list[Mission]:
        return await self.run(self.state.missions_for_account, account)

    async def terminate_mission(self, s256: str, reason: str = "revoked") -> Mission | None:
        """Terminate a mission (§Mission Management) with ``reason``; for ``revoked``,
        ``administrative`` and ``superseded`` its outstanding auth tokens are revoked at
        their resources (§Token Revocation). ``None`` when it was not active."""
        if not isinstance(reason, str) or not reason:
            raise ConfigurationError("a termination reason is a non-empty string")
        now = self.clock()
        mission = await self.run(self.state.terminate_mission, s256, reason, now)
        if mission is None:
            return None
        await self.log_mission(s256, "terminated", {"reason": reason})
        self._event(ev.MISSION_TERMINATED, agent=mission.agent_id, account=mission.account,
                    mission=s256, detail={"reason": reason})
        if reason in REVOKING_REASONS:
            tokens = await self.run(self.state.live_auth_tokens_for_mission, s256, now)
            await self._revoke_auth_tokens(tokens)
        return mission

    # -- revocation ----------------------------------------------------------------------------

    async def _jwks_uri_resolver(self, signature_key: SignatureKey) -> KeyResolution:
        params = signature_key.params
        issuer, dwk, kid = params.get("id"), params.get("dwk"), params.get("kid")
        try:
            issuer = validate_server_identifier(issuer)
        except ValueError as exc:
            raise InvalidKeyError(f"jwks_uri id: {exc}") from exc
        if dwk != DWK_AGENT:
            raise InvalidKeyError("only agent providers revoke tokens at this PS")
        key = await self.issuer_keys.aget_key(issuer, str(dwk), str(kid))
        return KeyResolution(jwk=key.to_jwk(), context=issuer)

    async def handle_revocation(self, request: HttpRequest) -> Reply:
        """§Token Revocation: an agent provider revokes an agent token it issued."""
        verified = await self._revocation_verifier.averify(request, self._jwks_uri_resolver)
        caller = str(verified.context)
        body = parse_json_object(request.body, request.header("content-type"))
        iss, jti = parse_revocation_request(body)
        if caller != iss:
            raise ProtocolError("access_denied",
                                "only the issuer of a token may revoke it here", status=403)
        outcome = await self.revoke_agent_token(iss, jti)
        if not outcome.known:
            return Reply.error(ProtocolError(
                "not_found", "this PS has not seen that token (it is refused from now on)",
                status=404))
        return Reply.json(200, {
            "revoked_auth_tokens": len(outcome.report.revoked),
            "notified": len(outcome.report.notified)})

    async def revoke_agent_token(self, iss: str, jti: str) -> AgentTokenRevocation:
        """Refuse agent token ``(iss, jti)`` from now on and revoke every auth token this PS
        issued for its agent at the resources they were issued for."""
        now = self.clock()
        agent_id = await self.run(self.state.seen_agent_token, iss, jti)
        await self.run(self.revocations.revoke_token, iss, jti, now + AGENT_TOKEN_MAX_LIFETIME)
        if agent_id is None:
            log.info("revocation of an agent token this PS never saw (%s)", iss)
            return AgentTokenRevocation(iss, jti, False, None, RevocationReport())
        self._event(ev.REVOKED, agent=agent_id, jti=jti, detail={"token": "agent", "iss": iss})
        tokens = await self.run(self.state.live_auth_tokens_for_agent, agent_id, now)
        report = await self._revoke_auth_tokens(tokens)
        return AgentTokenRevocation(iss, jti, True, agent_id, report)

    async def retry_revocations(self) -> RevocationReport:
        """Tell resources again about revoked tokens they have not acknowledged."""
        tokens = await self.run(self.state.unnotified_revocations, self.clock())
        return await self._notify_revocations(tokens, tuple(t.jti for t in tokens))

    async def _revoke_auth_tokens(self, tokens: Sequence[IssuedAuthToken]) -> RevocationReport:
        if not tokens:
            return RevocationReport()
        newly = await self.run(self.state.mark_revoked, [t.jti for t in tokens], self.clock())
        fresh = [t for t in tokens if t.jti in set(newly)]
        for token in fresh:
            self._event(ev.REVOKED, agent=token.agent_id, account=token.account,
                        resource=token.aud, mission=token.mission_s256, jti=token.jti,
                        detail={"token": "auth"})
        return await self._notify_revocations(fresh, tuple(newly))

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=self.config.transport, timeout=self.config.revocation_timeout,
                follow_redirects=False, trust_env=False)
            self._owns_http = True
        return self._http

    async def _notify_revocations(self, tokens: Sequence[IssuedAuthToken],
                                  revoked: tuple[str, ...]) -> RevocationReport:
        results = await asyncio.gather(*(self._notify_one(t) for t in tokens))
        notified = tuple(t.jti for t, error in zip(tokens, results, strict=True) if error is None)
        failed = {t.jti: error for t, error in zip(tokens, results, strict=True)
                  if error is not None}
        return RevocationReport(revoked=revoked, notified=notified, failed=failed)

    async def _notify_one(self, token: IssuedAuthToken) -> str | None:
        """POST ``{iss, jti}`` to the resource's revocation endpoint, signed by this PS
        (``Signature-Key: sig=jwks_uri; id=<PS>; dwk="aauth-person.json"``)."""
        error: str | None = None
        try:
            info = await self.resource_info(token.aud)
            endpoint = info.revocation_endpoint if info else None
            if endpoint is None:
                error = "the resource publishes no revocation_endpoint"
            else:
                if self.discovery is not None:
                    await self.discovery.egress.aadmit(endpoint)
                body = compact({"iss": self.issuer, "jti": token.jti})
                outgoing = HttpRequest("POST", endpoint, {"content-type": "application/json"},
                                       body)
                headers = self._signed_headers(outgoing)
                response = await asyncio.wait_for(
                    self._client().post(endpoint, content=body, headers={
                        "content-type": "application/json", **headers}),
                    self.config.revocation_timeout)
                if response.status_code not in (200, 204, 404):
                    error = f"the resource answered {response.status_code}"
        except (AAuthError, httpx.HTTPError, OSError, asyncio.TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        await self.run(self.state.mark_notified, token.jti, self.clock(), error)
        if error is None:
            self._event(ev.REVOCATION_SENT, resource=token.aud, jti=token.jti)
        else:
            log.warning("revocation of an auth token at %s failed: %s", token.aud, error)
        return error

    # -- housekeeping --------------------------------------------------------------------------

    async def purge(self) -> int:
        """Forget what no longer needs keeping: pending records past ``purge_at``, person
        token records past retention, expired auth-token and agent-token records, expired
        revocations, retired keys no longer published, expired browser sessions."""
        now = self.clock()
        count = await self.run(self.pending.purge, now)
        count += await self.run(self.revocations.purge, now)
        count += await self.run(self.state.purge, now)
        count += await self.run(self.keys.purge)
        count += await self.run(UISessions(self.db).purge, now)
        return count

    def housekeeping(self) -> None:
        """Start :meth:`purge` in the background once ``purge_interval`` seconds have passed
        since the last pass, so a long-running PS does not keep every record it ever wrote.
        Called by the app after each protocol request: cheap when nothing is due."""
        if self._purges.due() is not None:
            self._spawn(self._purge_logged())

    async def _purge_logged(self) -> None:
        try:
            count = await self.purge()
        except Exception:
            log.exception("housekeeping failed")
            return
        if count:
            log.info("housekeeping forgot %d expired records", count)


def _resource_request(rt: ResourceToken) -> dict[str, Any]:
    return {
        "resource": rt.iss, "sub": rt.sub, "scopes": list(rt.scopes), "account": rt.account,
        "tenant": rt.tenant, "presented_jti": rt.presented_jti, "rt_jti": rt.jti,
    }


def _claim_exp(token: str) -> int:
    from ...tokens import peek

    _, claims = peek(token)
    return int(claims["exp"])


__all__ = [
    "AgentContext",
    "AgentTokenRevocation",
    "PersonServer",
    "RevocationReport",
    "iso8601",
]
