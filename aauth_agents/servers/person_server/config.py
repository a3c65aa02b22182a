"""Configuration of a person server: explicit objects with defaults (ARCHITECTURE.md, Conventions).

Nothing here reads the environment; the CLI builds a :class:`PersonServerConfig`.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ...clock import Clock, system_clock
from ...discovery import AsyncDiscovery
from ...keys import ED25519, PrivateKey
from ...protocol.errors import ConfigurationError
from ...protocol.identifiers import validate_server_identifier
from ...protocol.scopes import IDENTITY_SCOPES
from ...stores.sql import is_postgres_url, redact_url
from ...tokens import IssuerKeys
from ..proxies import TrustedProxies
from .accounts import ACCOUNT_CLAIMS, DEFAULT_LOG2_N
from .events import EventHook
from .policy import ConsentPolicy, ConsentRequest, Decision, InteractiveConsent
from .signins import SignInLimits

#: The database file inside a data directory.
DATABASE_FILE = "ps.sqlite3"

#: Endpoint paths, relative to the issuer (the defaults; see ``PersonServerConfig.paths``).
PATHS = {
    "metadata": "/.well-known/aauth-person.json",
    "jwks": "/.well-known/jwks.json",
    "person_token": "/person",
    "auth_token": "/token",
    "pending": "/pending",
    "mission": "/mission",
    "permission": "/permission",
    "audit": "/audit",
    "interaction": "/interaction",
    "revocation": "/revoke",
    "interact": "/interact",
}

#: Paths the specification fixes, which a deployment cannot move: agents find the metadata
#: at ``/.well-known/aauth-person.json`` (§Person Server Metadata).
FIXED_PATHS = frozenset({"metadata"})

#: Endpoints with sub-paths below them (``/pending/{id}``, ``/mission/{s256}``,
#: ``/interact/{id}``, ``/interact/callback/...``): no other endpoint may live under them.
_PREFIX_PATHS = ("pending", "mission", "interact")


def resolve_paths(overrides: Mapping[str, str]) -> dict[str, str]:
    """:data:`PATHS` with ``overrides`` applied, or :class:`ConfigurationError`: unknown
    names, a fixed path (:data:`FIXED_PATHS`), a path not starting with a single ``/``, with a
    query, fragment, template braces, whitespace or a trailing slash, two endpoints on one
    path, or an endpoint below another's sub-paths."""
    if not isinstance(overrides, Mapping):
        raise ConfigurationError("paths maps endpoint names to paths")
    unknown = sorted(set(overrides) - set(PATHS))
    if unknown:
        raise ConfigurationError(f"paths: unknown endpoint name(s) {', '.join(map(str, unknown))}")
    resolved = dict(PATHS)
    for name, path in overrides.items():
        if name in FIXED_PATHS:
            if path == PATHS[name]:
                continue
            raise ConfigurationError(
                f"paths: {name} is fixed by the specification at {PATHS[name]}"
            )
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or path.startswith("//")
            or len(path) < 2
            or path.endswith("/")
            or len(path) > 256
            or any(c in path for c in "?#{}\\")
            or any(c.isspace() for c in path)
            or not path.isascii()
        ):
            raise ConfigurationError(
                f"paths: {name} must be an absolute path such as /aauth/{name}, got {path!r}"
            )
        resolved[name] = path
    seen: dict[str, str] = {}
    for name, path in resolved.items():
        if path in seen:
            raise ConfigurationError(f"paths: {seen[path]} and {name} share {path}")
        seen[path] = name
    for prefix_name in _PREFIX_PATHS:
        prefix = resolved[prefix_name] + "/"
        below = [n for n, p in resolved.items() if p.startswith(prefix)]
        if below:
            raise ConfigurationError(
                f"paths: {', '.join(below)} would sit below the "
                f"sub-paths of {prefix_name} ({prefix}...)"
            )
    return resolved


#: §Person Server Metadata ``claims_supported``: ``sub`` plus what accounts can carry.
DEFAULT_CLAIMS = ("sub", "tenant", *sorted(ACCOUNT_CLAIMS))


@dataclass(frozen=True)
class RelayNotice:
    """What the PS hands its relay channel (§Interaction Endpoint): the person should be
    shown ``url``/``code`` (type ``interaction``/``payment``) or asked ``question``.
    ``pending_id`` names the deferred request; the channel reports back through
    :meth:`~aauth_agents.servers.person_server.Interactions.relay_engaged` or
    :meth:`~aauth_agents.servers.person_server.Interactions.answer`."""

    pending_id: str
    type: str
    agent_id: str
    account: str | None
    description: str | None = None
    url: str | None = None
    code: str | None = None
    question: str | None = None


#: A channel through which the PS reaches the person without the agent (a dashboard
#: notification, a push message). Returns True when the person was reached.
RelayChannel = Callable[[RelayNotice], "bool | Awaitable[bool]"]


@dataclass
class PersonServerConfig:
    """Everything a :class:`~aauth_agents.servers.person_server.PersonServer` needs.

    * ``issuer`` -- the PS identifier (``https://ps.example``), the ``iss`` of everything it
      signs and the ``@authority`` every request must be signed for.
    * ``database`` -- a SQLite file, a directory (``ps.sqlite3`` inside), ``":memory:"``, or
      a ``postgresql://`` URL (PostgreSQL, shared by several PS processes; the ``postgres``
      extra).
    * ``signing_key`` -- the key to sign with; omitted, the PS generates one and keeps it in
      its database. ``key_alg`` is the algorithm of generated keys.
    * ``policy`` -- the :class:`ConsentPolicy` (default :class:`InteractiveConsent`).
    * ``default_person`` -- the account an agent with no binding is bound to without asking
      (unattended runs); ``None`` binds agents only through the person's approval or
      :meth:`~aauth_agents.servers.person_server.PersonServer.bind_agent`.
    * ``discovery`` -- fetches agent providers' and resources' metadata and JWKS (agent
      tokens, resource tokens, consent display, revocation endpoints). ``issuer_keys``
      overrides where token keys come from (e.g. :class:`~aauth_agents.tokens.StaticIssuerKeys`).
    * ``http`` -- the client the PS calls resources with -- their revocation endpoints, and
      the ``r3_uri`` of an R3 document or per-call proposal (default: one built on
      ``transport``, or a plain network client).
    * ``relay_channel`` -- how the PS reaches the person for the interaction endpoint;
      ``None``: the PS has no channel (``interaction_unavailable``).
    * ``events`` -- audit event hook. ``clock`` -- every time decision.
    * ``paths`` -- endpoint paths by name, overriding :data:`PATHS` (e.g. to serve another
      deployment's layout); routes, :meth:`url` and the published metadata follow it. The
      metadata path (:data:`FIXED_PATHS`) cannot move. After construction it holds the full
      table.
    * ``code_only_interaction`` -- the interaction URL handed to agents is the one fixed
      ``paths["interact"]`` URL and the person's ``?code=`` alone finds the interaction
      (§User Interaction: the person opens ``{url}?code={code}``), instead of a URL per
      interaction (``{interact}/{id}``, the default). Codes are then unique among stored
      interactions (enforced when each is created), still single use and compared case-,
      hyphen- and alias-insensitively, and wrong codes are still rate-limited per client
      address by the UI. The trade-off: a wrong code names no interaction, so
      ``code_attempts`` (wrong codes that end one interaction) cannot apply -- guessing is
      bounded only by the per-address limit and the codes' 40+ bits.
    * ``trusted_proxies`` -- reverse proxies (IPs or CIDRs) whose ``X-Forwarded-For`` /
      ``Forwarded`` / ``X-Forwarded-Proto`` are believed
      (:class:`~aauth_agents.servers.ForwardedHeaders`); empty (the default): the client
      address of every per-address limit is the socket peer, whatever the headers say.
    * ``signin_limits`` -- password guesses per account and per address, lockouts, and how
      many password hashes run at once (:class:`~.signins.SignInLimits`).
    """

    issuer: str
    database: str | os.PathLike[str] = ":memory:"
    signing_key: PrivateKey | None = None
    key_alg: str = ED25519
    policy: ConsentPolicy | Callable[[ConsentRequest], Decision | Awaitable[Decision]] = field(
        default_factory=InteractiveConsent
    )
    default_person: str | None = None
    discovery: AsyncDiscovery | None = None
    issuer_keys: IssuerKeys | None = None
    http: httpx.AsyncClient | None = None
    transport: httpx.AsyncBaseTransport | None = None
    relay_channel: RelayChannel | None = None
    events: EventHook | None = None
    clock: Clock = system_clock
    paths: Mapping[str, str] = field(default_factory=dict)
    code_only_interaction: bool = False
    name: str | None = "aauth-agents Person Server"
    description: str | None = None
    scopes_supported: Sequence[str] = tuple(sorted(IDENTITY_SCOPES))
    claims_supported: Sequence[str] = DEFAULT_CLAIMS
    #: Token lifetimes (seconds, each at most 3600) and the longest resource token lifetime
    #: accepted, which is how long person-token records outlive their ``exp``.
    person_token_lifetime: int = 3600
    auth_token_lifetime: int = 3600
    resource_token_max_lifetime: int = 300
    #: Optional mission lifetime written as ``expires_at`` into approved missions.
    mission_lifetime: int | None = None
    #: Deferred responses: how long a pending request lives, the longest ``Prefer: wait``
    #: honoured, the ``Retry-After`` sent, and the poll rate limit (``slow_down``): at most
    #: ``poll_burst`` polls per ``poll_window`` seconds.
    pending_lifetime: int = 600
    max_wait: int = 30
    retry_after: int = 1
    poll_burst: int = 5
    poll_window: float = 1.0
    #: Failed code attempts before an interaction fails for good (§Interaction Code Format).
    code_attempts: int = 5
    #: Clarification rounds per request (§Clarification Limits: 5 recommended).
    clarification_rounds: int = 5
    #: Distinct resources one agent may obtain person tokens for per day (§Person Token
    #: Endpoint: SHOULD rate-limit); ``None`` disables the limit.
    max_resources_per_day: int | None = 1000
    #: Signature ``created`` window, seconds (§Verification step 3).
    signature_window: int = 60
    #: scrypt cost of account passwords (log2 N).
    password_log2_n: int = DEFAULT_LOG2_N
    #: Run database operations in worker threads instead of inline on the event loop (they
    #: are short either way; threads help with a slow disk or a file other processes write).
    #: Set (as with PostgreSQL), the poll rate limit is counted in the database too, so that
    #: it holds across the processes sharing it.
    database_threads: bool = False
    #: Seconds a process trusts its copy of the signing keys before re-reading them from
    #: the database, where another process (a worker) may have rotated: at most one read
    #: per interval, whatever requests arrive.
    key_refresh: float = 1.0
    #: Largest request body accepted, bytes.
    max_body: int = 256 * 1024
    #: Seconds a revocation notification to one resource may take.
    revocation_timeout: float = 10.0
    #: Seconds fetching an R3 document (``r3_uri``) may take; its size is bounded by
    #: :data:`~aauth_agents.protocol.r3.MAX_DOCUMENT_BYTES`.
    r3_timeout: float = 10.0
    #: Seconds between housekeeping passes (:meth:`PersonServer.purge`), each started in the
    #: background by the first protocol request after it is due; 0: never (call ``purge``).
    purge_interval: float = 600.0
    trusted_proxies: Sequence[str] = ()
    signin_limits: SignInLimits = field(default_factory=SignInLimits)

    def __post_init__(self) -> None:
        try:
            self.issuer = validate_server_identifier(self.issuer)
        except ValueError as exc:
            raise ConfigurationError(f"issuer: {exc}") from exc
        for name in ("person_token_lifetime", "auth_token_lifetime"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 3600:
                raise ConfigurationError(f"{name} must be 1..3600 seconds")
        if not 0 < self.resource_token_max_lifetime <= 3600:
            raise ConfigurationError("resource_token_max_lifetime must be 1..3600 seconds")
        if self.pending_lifetime <= 0 or self.max_wait < 0 or self.retry_after < 0:
            raise ConfigurationError("pending_lifetime, max_wait and retry_after are positive")
        if self.code_attempts < 1 or self.clarification_rounds < 0 or self.poll_burst < 1:
            raise ConfigurationError("code_attempts and poll_burst are at least 1")
        if self.key_refresh < 0:
            raise ConfigurationError("key_refresh must be 0 (every use) or positive")
        if self.purge_interval < 0:
            raise ConfigurationError("purge_interval must be 0 (off) or positive")
        if not self.r3_timeout > 0 or not self.revocation_timeout > 0:
            raise ConfigurationError("r3_timeout and revocation_timeout must be positive")
        if self.mission_lifetime is not None and self.mission_lifetime <= 0:
            raise ConfigurationError("mission_lifetime must be positive")
        unknown = [s for s in self.scopes_supported if not isinstance(s, str) or not s]
        if unknown:
            raise ConfigurationError("scopes_supported holds non-empty strings")
        self.paths = resolve_paths(self.paths)
        if isinstance(self.trusted_proxies, str):
            raise ConfigurationError("trusted_proxies is a list of IPs or CIDRs, not one string")
        TrustedProxies(self.trusted_proxies)  # refuses what is not an IP or CIDR

    @property
    def database_path(self) -> str:
        """The SQLite file (or ``":memory:"``, or the PostgreSQL URL)."""
        path = os.fspath(self.database)
        if path == ":memory:" or is_postgres_url(path):
            return path
        if Path(path).is_dir():
            return str(Path(path) / DATABASE_FILE)
        return path

    def url(self, name: str, *suffix: str) -> str:
        """The absolute URL of endpoint ``name`` (see :attr:`paths`)."""
        return self.issuer + self.paths[name] + "".join("/" + s for s in suffix)

    def describe(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "database": redact_url(self.database_path)}


__all__ = [
    "DATABASE_FILE",
    "FIXED_PATHS",
    "PATHS",
    "PersonServerConfig",
    "RelayChannel",
    "RelayNotice",
    "resolve_paths",
]
