"""What an :class:`~aauth_agents.agent.AAuth` instance remembers between requests.

* person tokens per ``(resource, mission_s256)`` and auth tokens per ``(resource, scope,
  mission_s256)`` (§Person Token Endpoint: cache until expiry; §Auth Token Usage), each
  treated as gone ``refresh_margin`` seconds before its ``exp`` and all flushed when the
  agent's signing key changes (every one of them is bound to the old key by ``cnf``);
* AAuth-Access session tokens per resource (§AAuth-Access), replaced by the newest;
* metadata documents of resources and person servers, and issuer JWKS, with a lifetime;
* single-flight registries, so that concurrent requests needing the same token share one
  exchange: :class:`ThreadFlights` for ``httpx.Client`` (threads), :class:`AsyncFlights`
  for ``httpx.AsyncClient`` (tasks) -- the package's one single-flight helper
  (:mod:`aauth_agents.sansio`), re-exported here.

Every structure is guarded by one lock; nothing here does I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar

from ..httpsig import SignatureKey
from ..protocol.metadata import PersonServerMetadata, ResourceMetadata
from ..sansio import AsyncFlight, AsyncFlights, Flight, Outcome, ThreadFlight, ThreadFlights
from ..tokens import StaticIssuerKeys, peek

T = TypeVar("T")


@dataclass(frozen=True)
class CredentialKind:
    """What the kind of a token the agent presents (in ``Signature-Key``) tells the flow."""

    #: The agent's own token, from its agent provider: it names no person.
    agent: bool = False
    #: Carries the person's ``sub``: person and auth tokens, both from the PS.
    names_person: bool = False
    #: A person token: when a resource refuses it, the PS is asked for a fresh one.
    refreshed_when_refused: bool = False
    #: An auth token: once a resource accepts it, it is the one presented there first.
    grants_access: bool = False


#: Each kind of :class:`HeldToken`, by name; a name not listed has none of the traits.
CREDENTIAL_KINDS: Mapping[str, CredentialKind] = {
    "agent": CredentialKind(agent=True),
    "person": CredentialKind(names_person=True, refreshed_when_refused=True),
    "auth": CredentialKind(names_person=True, grants_access=True),
}
_NO_TRAITS = CredentialKind()


@dataclass(frozen=True)
class HeldToken:
    """A token the agent presents in ``Signature-Key``: ``kind`` is ``agent``, ``person`` or
    ``auth``. ``raw`` and ``claims`` stay out of ``repr``. ``single_use``: presented only to
    complete the held call it was obtained for (an R3-pinned auth token, R3 §Per-Call
    Proposals), never cached."""

    kind: str
    raw: str = field(repr=False)
    claims: Mapping[str, Any] = field(repr=False, compare=False)
    exp: float
    signature_key: SignatureKey = field(repr=False, compare=False)
    single_use: bool = field(default=False, compare=False)

    @classmethod
    def from_raw(cls, kind: str, raw: str) -> HeldToken:
        _, claims = peek(raw)
        exp = claims.get("exp")
        return cls(
            kind=kind,
            raw=raw,
            claims=claims,
            exp=float(exp) if isinstance(exp, (int, float)) else 0.0,
            signature_key=SignatureKey.from_jwt(raw),
        )

    @property
    def sub(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None

    @property
    def scopes(self) -> frozenset[str]:
        scope = self.claims.get("scope")
        return frozenset(scope.split()) if isinstance(scope, str) else frozenset()

    @property
    def traits(self) -> CredentialKind:
        """What this token's ``kind`` tells the flow (:data:`CREDENTIAL_KINDS`)."""
        return CREDENTIAL_KINDS.get(self.kind, _NO_TRAITS)

    @property
    def is_agent_token(self) -> bool:
        """The agent's own token (from its agent provider; no person behind it)."""
        return self.traits.agent

    @property
    def person_sub(self) -> str | None:
        """The person's ``sub`` when the token names one (person and auth tokens)."""
        return self.sub if self.traits.names_person else None

    @property
    def refreshed_when_refused(self) -> bool:
        """A resource refusing this token calls for a fresh one from the PS (person
        tokens)."""
        return self.traits.refreshed_when_refused

    @cached_property
    def reusable_auth(self) -> bool:
        """An auth token the resource that accepted it is shown first from then on: any but
        a single-use one (R3 §Per-Call Proposals). (Asked after every response: kept.)"""
        return self.traits.grants_access and not self.single_use

    def usable(self, now: float, margin: float) -> bool:
        return self.exp - now > margin


@dataclass
class ResourceInfo:
    """What the agent knows of a resource: its metadata (``None`` when it publishes none)
    and the components it asked for at runtime with ``required_input``."""

    resource: str
    metadata: ResourceMetadata | None = None
    extra_components: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        asked = self.metadata.additional_signature_components if self.metadata else ()
        self.extra_components = tuple(dict.fromkeys(asked))

    def learn(self, components: tuple[str, ...]) -> None:
        """Cover ``components`` from now on (a resource's ``required_input``)."""
        self.extra_components = tuple(dict.fromkeys((*self.extra_components, *components)))

    @property
    def access_mode(self) -> str | None:
        return (
            self.metadata.access_mode
            if self.metadata and self.metadata.raw.get("access_mode") is not None
            else None
        )


# -- caches ------------------------------------------------------------------------------------


@dataclass
class _Timed(Generic[T]):
    value: T
    expires_at: float
    fetched_at: float = 0.0


class AgentState:
    """The caches of one :class:`~aauth_agents.agent.AAuth` instance."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.key_thumbprint: str | None = None
        self._person: dict[tuple[str, str | None], HeldToken] = {}
        self._auth: dict[tuple[str, frozenset[str], str | None], HeldToken] = {}
        self._current_auth: dict[str, HeldToken] = {}
        self._sessions: dict[str, str] = {}
        self._wants: dict[str, str] = {}
        self._agent: HeldToken | None = None
        self._resources: dict[str, _Timed[ResourceInfo]] = {}
        self._person_servers: dict[str, _Timed[PersonServerMetadata]] = {}
        self._jwks: dict[tuple[str, str], _Timed[StaticIssuerKeys]] = {}
        self.thread_flights = ThreadFlights()
        self.async_flights = AsyncFlights()

    # key rotation

    def check_key(self, thumbprint: str) -> bool:
        """Record the signing key in use; True (and every person and auth token dropped)
        when it differs from the one the cached tokens are bound to."""
        if thumbprint == self.key_thumbprint:
            return False
        with self._lock:
            if thumbprint == self.key_thumbprint:
                return False
            rotated = self.key_thumbprint is not None
            self.key_thumbprint = thumbprint
            if rotated:
                self._person.clear()
                self._auth.clear()
                self._current_auth.clear()
                self._agent = None
            return rotated

    def flush(self) -> None:
        """Forget every token, session and metadata document."""
        with self._lock:
            self._person.clear()
            self._auth.clear()
            self._current_auth.clear()
            self._sessions.clear()
            self._wants.clear()
            self._agent = None
            self._resources.clear()
            self._person_servers.clear()
            self._jwks.clear()

    # the agent token, parsed once per value

    def agent_token(self, raw: str) -> HeldToken:
        held = self._agent
        if held is None or held.raw != raw:
            held = self._agent = HeldToken.from_raw("agent", raw)
        return held

    # person tokens

    def person_token(
        self, resource: str, mission: str | None, now: float, margin: float
    ) -> HeldToken | None:
        held = self._person.get((resource, mission))
        return held if held is not None and held.usable(now, margin) else None

    def put_person_token(self, resource: str, mission: str | None, token: HeldToken) -> None:
        with self._lock:
            self._person[(resource, mission)] = token

    # auth tokens

    def current_auth_token(self, resource: str, now: float, margin: float) -> HeldToken | None:
        held = self._current_auth.get(resource)
        return held if held is not None and held.usable(now, margin) else None

    def auth_token(
        self,
        resource: str,
        scopes: frozenset[str],
        mission: str | None,
        now: float,
        margin: float,
    ) -> HeldToken | None:
        held = self._auth.get((resource, scopes, mission))
        if held is not None and held.usable(now, margin):
            return held
        for (res, held_scopes, held_mission), other in list(self._auth.items()):
            if (
                res == resource
                and held_mission == mission
                and scopes <= held_scopes
                and other.usable(now, margin)
            ):
                return other
        return None

    def put_auth_token(self, resource: str, mission: str | None, token: HeldToken) -> None:
        with self._lock:
            self._auth[(resource, token.scopes, mission)] = token
            self._current_auth[resource] = token

    def use_auth_token(self, resource: str, token: HeldToken) -> None:
        """Make ``token`` the one presented first to ``resource``."""
        if self._current_auth.get(resource) is token:
            return
        with self._lock:
            self._current_auth[resource] = token

    def drop(self, resource: str, token: HeldToken) -> None:
        """Forget ``token`` (a resource refused it)."""
        with self._lock:
            for person_key in [k for k, v in self._person.items() if v.raw == token.raw]:
                del self._person[person_key]
            for auth_key in [k for k, v in self._auth.items() if v.raw == token.raw]:
                del self._auth[auth_key]
            if self._current_auth.get(resource) is token:
                del self._current_auth[resource]

    def drop_mission(self, mission: str) -> None:
        with self._lock:
            for key in [k for k in self._person if k[1] == mission]:
                del self._person[key]

    # what a resource asked for before

    def wants(self, resource: str) -> str | None:
        return self._wants.get(resource)

    def set_wants(self, resource: str, kind: str) -> None:
        with self._lock:
            if self._wants.get(resource) != "auth":
                self._wants[resource] = kind

    def forget_wants(self, resource: str) -> None:
        with self._lock:
            self._wants.pop(resource, None)

    # sessions

    def session(self, resource: str) -> str | None:
        return self._sessions.get(resource)

    def set_session(self, resource: str, token: str) -> bool:
        """Store the newest session token; True when it replaced another."""
        with self._lock:
            previous = self._sessions.get(resource)
            self._sessions[resource] = token
            return previous is not None and previous != token

    def drop_session(self, resource: str) -> None:
        with self._lock:
            self._sessions.pop(resource, None)

    # metadata and keys

    def resource_info(self, resource: str, now: float) -> ResourceInfo | None:
        timed = self._resources.get(resource)
        return timed.value if timed is not None and timed.expires_at > now else None

    def put_resource_info(self, info: ResourceInfo, expires_at: float) -> None:
        with self._lock:
            self._resources[info.resource] = _Timed(info, expires_at)

    def person_server(self, issuer: str, now: float) -> PersonServerMetadata | None:
        timed = self._person_servers.get(issuer)
        return timed.value if timed is not None and timed.expires_at > now else None

    def put_person_server(self, metadata: PersonServerMetadata, expires_at: float) -> None:
        with self._lock:
            self._person_servers[metadata.issuer] = _Timed(metadata, expires_at)

    def issuer_keys(
        self, issuer: str, dwk: str, now: float
    ) -> tuple[StaticIssuerKeys, float] | None:
        timed = self._jwks.get((issuer, dwk))
        if timed is None or timed.expires_at <= now:
            return None
        return timed.value, timed.fetched_at

    def put_issuer_keys(
        self, issuer: str, dwk: str, keys: StaticIssuerKeys, now: float, expires_at: float
    ) -> None:
        with self._lock:
            self._jwks[(issuer, dwk)] = _Timed(keys, expires_at, now)


__all__ = [
    "CREDENTIAL_KINDS",
    "AgentState",
    "AsyncFlight",
    "AsyncFlights",
    "CredentialKind",
    "Flight",
    "HeldToken",
    "Outcome",
    "ResourceInfo",
    "ThreadFlight",
    "ThreadFlights",
]
