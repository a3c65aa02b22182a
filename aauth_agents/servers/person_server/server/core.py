"""The person server's state and the services every layer uses (§Person Server).

:class:`ServerCore` owns the SQLite state, the pending and revocation stores, the signing
keys, the consent policy and the event sink; it runs database work (:meth:`~ServerCore.run`),
emits audit events (:meth:`~ServerCore.emit`), keeps background tasks, signs requests as the
PS, binds agents to persons (§Agent-Person Binding) and reads other parties' metadata
(§Resource Metadata, §Agent Provider Metadata). The layers of
:class:`~aauth_agents.servers.person_server.server.PersonServer` build on it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import anyio.to_thread
import httpx

from ....clock import Every
from ....httpsig import (
    SCHEME_JWKS_URI,
    HttpRequest,
    SignatureKey,
    SignatureVerifier,
    sign_request,
)
from ....keys import PublicKey
from ....protocol.errors import AAuthError, ConfigurationError
from ....protocol.identifiers import validate_server_identifier
from ....protocol.metadata import AgentProviderMetadata, PersonServerMetadata, ResourceMetadata
from ....stores import (
    AttemptStore,
    ReplayStore,
    SQLiteAttemptStore,
    SQLitePendingStore,
    SQLiteReplayCache,
    SQLiteRevocationStore,
)
from ....tokens import (
    DWK_AGENT,
    DWK_PERSON,
    DWK_RESOURCE,
    TYP_AGENT,
    AgentToken,
    VerifiedTokenCache,
    async_token_key_resolver,
)
from .. import events as ev
from ..accounts import Account, Accounts, PasswordHashing
from ..config import PersonServerConfig
from ..database import open_database
from ..events import EventSink, PSEvent
from ..keyring import SigningKeys
from ..pending import Notifier, PollLimiter, SharedPollLimiter
from ..policy import ResourceInfo, as_policy
from ..state import PSState

if TYPE_CHECKING:
    from ..interactions import Interactions

log = logging.getLogger("aauth_agents.ps")

P = ParamSpec("P")
T = TypeVar("T")


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


#: The accounts read by the request being served (:meth:`ServerCore.request_scope`).
_REQUEST_ACCOUNTS: ContextVar[dict[str, Account] | None] = ContextVar(
    "ps_request_accounts", default=None
)


class ServerCore:
    """State, stores, keys, policy and the shared services (see the module docstring)."""

    #: The person's side (set by :class:`~.PersonServer`).
    interactions: Interactions

    def __init__(self, config: PersonServerConfig) -> None:
        self.config = config
        self.issuer = config.issuer
        self.clock = config.clock
        keys = config.issuer_keys if config.issuer_keys is not None else config.discovery
        if keys is None:
            raise ConfigurationError(
                "a person server needs discovery (or issuer_keys) to verify agent tokens"
            )
        self.issuer_keys = keys
        self.discovery = config.discovery
        path = config.database_path
        self.db = open_database(path)
        self.state = PSState(self.db)
        self._stores_db = self.db.stores_database()
        self.pending = SQLitePendingStore(self._stores_db)
        self.revocations = SQLiteRevocationStore(self._stores_db)
        #: Attempts counted for limits (wrong passwords, wrong interaction codes) and the
        #: signatures of state-changing requests seen within the window (§Freshness and
        #: Replay), shared by every worker on the database.
        self.attempts: AttemptStore = SQLiteAttemptStore(self._stores_db)
        self.replay: ReplayStore = SQLiteReplayCache(self._stores_db, clock=self.clock)
        self.keys = SigningKeys(
            self.db,
            configured=config.signing_key,
            alg=config.key_alg,
            max_token_lifetime=max(config.person_token_lifetime, config.auth_token_lifetime),
            clock=self.clock,
            refresh=config.key_refresh,
        )
        limits = config.signin_limits
        self.accounts = Accounts(
            self.db,
            clock=self.clock,
            log2_n=config.password_log2_n,
            hashing=PasswordHashing(limits.hashes, limits.queue),
        )
        self.policy = as_policy(config.policy)
        self.events = EventSink(config.events)
        self._verifiers(config)
        self.notifier = Notifier()
        self.limiter = self._poll_limiter(config)
        self._http = config.http
        self._owns_http = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._purges = Every(self.clock, config.purge_interval)
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._seen_lock = threading.Lock()
        log.info(
            "person server %s on %s (signing key %s)",
            self.issuer,
            config.describe()["database"],
            self.keys.current.kid,
        )

    def _poll_limiter(self, config: PersonServerConfig) -> PollLimiter | SharedPollLimiter:
        """The poll rate limit (§Polling Error Codes): in the shared store when other
        processes may serve the same pending URLs (PostgreSQL, or a database file other
        processes write: ``database_threads``), else in memory (no store round trip)."""
        burst, window = config.poll_burst, config.poll_window
        if self.db.threaded or config.database_threads:
            return SharedPollLimiter(self.attempts, self.clock, burst=burst, window=window)
        return PollLimiter(self.clock, burst=burst, window=window)

    def _verifiers(self, config: PersonServerConfig) -> None:
        """The request verifiers: agents' requests (§Verification, the agent token in
        ``Signature-Key``) and resources' revocation notices (``scheme=jwks_uri``)."""
        self.verifier = SignatureVerifier(
            clock=self.clock, window=config.signature_window, require_body_digest=True
        )
        #: Agent tokens verified once per token string (§Agent Token Verification).
        self.tokens = VerifiedTokenCache(4096, clock=self.clock)
        self._resolve_agent_token = self.tokens.awrap(
            async_token_key_resolver(
                keys=self.issuer_keys, audience=None, accept=(TYP_AGENT,), clock=self.clock
            )
        )
        self._revocation_verifier = SignatureVerifier(
            clock=self.clock,
            window=config.signature_window,
            require_body_digest=True,
            accepted_schemes=(SCHEME_JWKS_URI,),
        )

    # -- lifecycle -----------------------------------------------------------------------------

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
        self.accounts.hashing.close()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a short database operation: inline on the event loop (each one is a
        single indexed statement or a short transaction that is never held across an
        ``await``), or in a worker thread when ``database_threads`` is set (a slow disk, a
        database file shared with other processes) and always with PostgreSQL."""
        if self.config.database_threads or self.db.threaded:
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
        return fn(*args, **kwargs)

    def emit(self, name: str, **fields: Any) -> None:
        """Report audit event ``name`` (:mod:`..events`) to the configured hook."""
        self.events(PSEvent(name=name, at=self.clock(), **fields))

    @contextmanager
    def request_scope(self) -> Iterator[None]:
        """Serving one request: an account it reads is read once (:meth:`account`). The
        decision and the token it issues (§PS Response) see the same account row, and the
        request pays one database round trip for it, not one per step."""
        token = _REQUEST_ACCOUNTS.set({})
        try:
            yield
        finally:
            _REQUEST_ACCOUNTS.reset(token)

    async def account(self, name: str) -> Account | None:
        """The account ``name`` (``None`` if there is none), read once per request served
        in a :meth:`request_scope`, from the database each time outside one."""
        seen = _REQUEST_ACCOUNTS.get()
        found = seen.get(name) if seen is not None else None
        if found is None:
            found = await self.run(self.accounts.get, name)
            if seen is not None and found is not None:
                seen[name] = found
        return found

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background; :meth:`aclose` cancels what is still running.
        It outlives the request that started it, so it reads accounts afresh."""

        async def unscoped() -> None:
            _REQUEST_ACCOUNTS.set(None)
            await work

        task = asyncio.get_running_loop().create_task(unscoped())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=self.config.transport,
                timeout=self.config.revocation_timeout,
                follow_redirects=False,
                trust_env=False,
            )
            self._owns_http = True
        return self._http

    def _signed_headers(self, request: HttpRequest) -> dict[str, str]:
        """Headers signing ``request`` as this PS: ``Signature-Key: sig=jwks_uri;
        id=<PS>; dwk="aauth-person.json"`` (revocation notices, R3 document fetches)."""
        key = self.keys.current
        assert key.kid is not None
        return sign_request(
            request,
            key=key,
            clock=self.clock,
            signature_key=SignatureKey.from_jwks_uri(id=self.issuer, dwk=DWK_PERSON, kid=key.kid),
        )

    # -- documents -----------------------------------------------------------------------------

    def metadata(self) -> PersonServerMetadata:
        """``/.well-known/aauth-person.json`` with every endpoint this PS serves
        (§Person Server Metadata)."""
        c = self.config
        return PersonServerMetadata.build(
            issuer=self.issuer,
            name=c.name,
            description=c.description,
            jwks_uri=c.url("jwks"),
            auth_token_endpoint=c.url("auth_token"),
            person_token_endpoint=c.url("person_token"),
            mission_endpoint=c.url("mission"),
            permission_endpoint=c.url("permission"),
            audit_endpoint=c.url("audit"),
            interaction_endpoint=c.url("interaction"),
            revocation_endpoint=c.url("revocation"),
            scopes_supported=list(c.scopes_supported),
            claims_supported=list(c.claims_supported),
        )

    def jwks(self) -> dict[str, Any]:
        return self.keys.jwks()

    async def fresh_keys(self) -> None:
        """Re-read the signing keys when the copy is ``key_refresh`` seconds old (another
        worker may have rotated): before signing a token and serving the JWKS."""
        if self.keys.refresh_due():
            await self.run(self.keys.refresh)

    def rotate_signing_key(self, new_key: Any = None) -> str:
        """Sign with a new key from now on; the old one stays in the JWKS until every token
        it signed has expired. Returns the new ``kid``."""
        old = self.keys.current.kid
        key = self.keys.rotate(new_key)
        self.emit(ev.KEY_ROTATED, detail={"old": old, "new": key.kid})
        assert key.kid is not None
        return key.kid

    # -- persons (§Agent-Person Binding) -------------------------------------------------------

    def bind_agent(self, agent_id: str, account: str, *, issuer: str | None = None) -> None:
        """Bind an agent to a person ahead of time (§Agent-Person Binding: e.g. an
        administrator pre-authorizing agents). ``issuer`` is the agent provider; by default
        ``https://<domain of agent_id>``. Raises if the agent acts for someone else."""
        from ....protocol.identifiers import agent_domain, validate_agent_identifier

        agent_id = validate_agent_identifier(agent_id)
        iss = validate_server_identifier(issuer or f"https://{agent_domain(agent_id)}")
        found = self.accounts.get(account)
        if found is None:
            raise ConfigurationError(f"no account {account!r}")
        _, created = self.state.bind(iss, agent_id, found.username, "configured", self.clock())
        if created:
            self.emit(
                ev.BOUND, agent=agent_id, account=found.username, detail={"how": "configured"}
            )

    async def default_account(self) -> str | None:
        """The configured ``default_person``'s account, if it exists."""
        name = self.config.default_person
        if name is None:
            return None
        account = await self.account(name)
        if account is None:
            log.error("default_person %r has no account; ignoring it", name)
            return None
        return account.username

    async def person_for(self, agent_iss: str, agent_id: str) -> str | None:
        """The account the agent acts for, binding it to ``default_person`` when configured."""
        binding = await self.run(self.state.binding, agent_iss, agent_id)
        if binding is not None:
            return binding.account
        default = await self.default_account()
        if default is None:
            return None
        await self.bind(agent_iss, agent_id, default, "default")
        return default

    async def bind(self, agent_iss: str, agent_id: str, account: str, how: str) -> None:
        """Bind the agent to ``account`` (``how``: ``default``, ``policy``, ``interaction``)
        unless it already is; raises when it acts for someone else."""
        _, created = await self.run(
            self.state.bind, agent_iss, agent_id, account, how, self.clock()
        )
        if created:
            log.info("bound %s to %s (%s)", agent_id, account, how)
            self.emit(ev.BOUND, agent=agent_id, account=account, detail={"how": how})

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
            identifier=resource,
            name=meta.name,
            description=meta.description,
            access_mode=meta.access_mode,
            logo_uri=meta.logo_uri,
            scope_descriptions=dict(meta.scope_descriptions or {}),
            revocation_endpoint=meta.revocation_endpoint,
        )

    async def provider_metadata(self, iss: str) -> AgentProviderMetadata | None:
        """The metadata of agent provider ``iss`` through discovery (§Agent Provider
        Metadata); ``None`` without discovery or when it cannot be fetched or is invalid
        (callers then show no name and allow no callback)."""
        if self.discovery is None:
            return None
        try:
            document = await self.discovery.metadata(iss, DWK_AGENT)
            return AgentProviderMetadata.from_json(document, expected_issuer=iss)
        except (AAuthError, ValueError):
            return None


__all__ = ["AgentContext", "AgentTokenRevocation", "RevocationReport", "ServerCore", "log"]
