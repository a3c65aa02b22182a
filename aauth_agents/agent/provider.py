"""A self-hosted agent provider: agent tokens for local agents, and the documents that let any
person server verify them.

§Agent Token Acquisition leaves the enrollment ceremony to the platform; for an agent that runs
on the developer's own machine the simplest one is that the agent provider *is* local: a key of
its own, which signs agent tokens for the agent keys beside it. :class:`LocalAgentProvider`
mints those tokens (§Agent Token Structure) under the rules the provider is responsible for:

* every agent identifier it issues is in its own domain (``aauth:local@domain`` where
  ``https://domain`` is the provider's ``issuer``, §Agent Provider Metadata);
* a top-level agent's ``local`` part has no ``+``; a sub-agent's is its parent's followed by
  ``+`` and a discriminator, and its token carries ``parent_agent`` (§Sub-Agents);
* a sub-agent's parent is a top-level agent -- never a sub-agent (§Single-Level Depth). Because
  this provider never issues a top-level token for an identifier with ``+``, an identifier with
  ``+`` in its namespace is a sub-agent's, so the rule can be enforced from the identifier.

:meth:`LocalAgentProvider.app` serves ``/.well-known/aauth-agent.json`` and the JWKS it names
as an ASGI app; :meth:`~LocalAgentProvider.metadata` and :meth:`~LocalAgentProvider.jwks` are
the same documents for a PS that is told about the provider out of band (``aauth-agents keys
show --provider-metadata``).

:func:`init_local_agent` creates an agent's key and its provider's key in a
:class:`~aauth_agents.agent.storage.KeyStore`; :func:`load_local_agent` and
:func:`load_identity` read them back and give an
:class:`~aauth_agents.agent.identity.AgentIdentity` whose token is re-minted before it expires.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..clock import Clock, system_clock
from ..keys import ED25519, PrivateKey, PublicKey
from ..protocol.errors import ConfigurationError
from ..protocol.identifiers import (
    validate_agent_identifier,
    validate_server_identifier,
)
from ..protocol.metadata import AgentProviderMetadata
from ..tokens import AGENT_TOKEN_MAX_LIFETIME, mint_agent_token
from .identity import AgentIdentity, TokenSource
from .storage import (
    KeyStore,
    KeyStoreError,
    read_json,
    read_private_key,
    write_json,
    write_private_key,
)

log = logging.getLogger("aauth_agents.agent.provider")

WELL_KNOWN_PATH = "/.well-known/aauth-agent.json"
JWKS_PATH = "/.well-known/jwks.json"
DEFAULT_LIFETIME = 3600


def _split(agent_id: str) -> tuple[str, str]:
    local, _, domain = agent_id[len("aauth:") :].rpartition("@")
    return local, domain


class LocalAgentProvider:
    """An agent provider whose signing key is local (§Agent Token, §Sub-Agents).

    ``issuer`` is the provider's server identifier (``https://domain``); ``key`` signs agent
    tokens and needs a ``kid`` (the JWKS names it). ``ps`` is written into every token as the
    agent's person server unless :meth:`mint` is given another; ``lifetime`` is the agent
    tokens' lifetime in seconds (at most 24 h). ``previous_keys`` are still published in the
    JWKS, so tokens signed before a provider key rotation verify until they expire.
    ``callback_endpoint`` and ``localhost_callback_allowed`` are published in the metadata
    (§Agent Provider Metadata): the interaction callbacks its agents may use.
    """

    def __init__(
        self,
        issuer: str,
        key: PrivateKey,
        *,
        ps: str | None = None,
        clock: Clock = system_clock,
        lifetime: int = DEFAULT_LIFETIME,
        name: str | None = None,
        previous_keys: Iterable[PublicKey] = (),
        cache_max_age: int = 300,
        callback_endpoint: str | None = None,
        localhost_callback_allowed: bool = False,
    ) -> None:
        try:
            self.issuer = validate_server_identifier(issuer)
            self.ps = None if ps is None else validate_server_identifier(ps)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        if not isinstance(key, PrivateKey) or not key.kid:
            raise ConfigurationError("the provider key must be a PrivateKey with a kid")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int):
            raise ConfigurationError("lifetime must be a number of seconds")
        if not 0 < lifetime <= AGENT_TOKEN_MAX_LIFETIME:
            raise ConfigurationError(
                f"agent token lifetime must be 1..{AGENT_TOKEN_MAX_LIFETIME} seconds"
            )
        if isinstance(cache_max_age, bool) or not isinstance(cache_max_age, int):
            raise ConfigurationError("cache_max_age must be a number of seconds")
        if cache_max_age < 0:
            raise ConfigurationError("cache_max_age must not be negative")
        self.key = key
        self.clock = clock
        self.lifetime = lifetime
        self.name = name
        self.previous_keys = tuple(previous_keys)
        for old in self.previous_keys:
            if not isinstance(old, PublicKey) or not old.kid:
                raise ConfigurationError("previous_keys must be PublicKeys with a kid")
            if old.kid == key.kid:
                raise ConfigurationError(f"kid {old.kid!r} is used by more than one key")
        self.cache_max_age = cache_max_age
        self.callback_endpoint = callback_endpoint
        self.localhost_callback_allowed = localhost_callback_allowed
        self.metadata()  # an invalid callback_endpoint is a ConfigurationError now

    def __repr__(self) -> str:
        return f"LocalAgentProvider({self.issuer!r}, kid={self.key.kid!r})"

    @property
    def domain(self) -> str:
        """The ``domain`` of the agent identifiers this provider issues."""
        return self.issuer[len("https://") :]

    # -- identifiers -------------------------------------------------------------------------

    def check_agent_id(self, agent_id: str, *, parent_agent: str | None = None) -> None:
        """Raise :class:`ConfigurationError` unless this provider may issue a token for
        ``agent_id`` (with ``parent_agent`` for a sub-agent)."""
        try:
            validate_agent_identifier(agent_id)
            if parent_agent is not None:
                validate_agent_identifier(parent_agent)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        local, domain = _split(agent_id)
        if domain != self.domain:
            raise ConfigurationError(f"{agent_id} is not in this provider's domain {self.domain!r}")
        if parent_agent is None:
            if "+" in local:
                raise ConfigurationError(
                    f"{agent_id} names a sub-agent ('+' is the sub-agent delimiter): "
                    "a top-level agent's local part has no '+'; pass parent_agent for a sub-agent"
                )
            return
        parent_local, parent_domain = _split(parent_agent)
        if parent_domain != self.domain:
            raise ConfigurationError(
                f"parent agent {parent_agent} is not in this provider's domain {self.domain!r}"
            )
        if "+" in parent_local:
            raise ConfigurationError(
                f"{parent_agent} is itself a sub-agent: sub-agents are never nested "
                "(§Sub-Agents, Single-Level Depth)"
            )
        if not local.startswith(parent_local + "+") or local == parent_local + "+":
            raise ConfigurationError(
                f"a sub-agent of {parent_agent} is named aauth:{parent_local}+DISCRIMINATOR"
                f"@{self.domain}, not {agent_id}"
            )

    # -- tokens ------------------------------------------------------------------------------

    def mint(
        self,
        agent_key: PublicKey | PrivateKey,
        agent_id: str,
        *,
        parent_agent: str | None = None,
        ps: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """An agent token binding ``agent_key`` to ``agent_id`` (a sub-agent of
        ``parent_agent`` when given). ``ps`` overrides the provider's default person server."""
        self.check_agent_id(agent_id, parent_agent=parent_agent)
        public = agent_key.public_key if isinstance(agent_key, PrivateKey) else agent_key
        if not isinstance(public, PublicKey):
            raise ConfigurationError("agent_key must be a PublicKey or PrivateKey")
        if public.same_key(self.key.public_key) or any(
            public.same_key(old) for old in self.previous_keys
        ):
            raise ConfigurationError("an agent's key must not be the provider's signing key")
        token = mint_agent_token(
            self.key,
            iss=self.issuer,
            sub=agent_id,
            cnf=public,
            lifetime=self.lifetime,
            ps=ps if ps is not None else self.ps,
            parent_agent=parent_agent,
            clock=self.clock,
            extra=extra,
        )
        log.info("issued an agent token for %s (key %s)", agent_id, public.thumbprint())
        return token

    def token_source(self, agent_id: str, *, parent_agent: str | None = None) -> TokenSource:
        """A :data:`~aauth_agents.agent.identity.TokenSource` for
        :class:`~aauth_agents.agent.identity.AgentIdentity`: mints ``agent_id``'s token for
        whatever key the identity holds (so a key rotation gets a token for the new key)."""
        self.check_agent_id(agent_id, parent_agent=parent_agent)

        def source(key: PrivateKey) -> str:
            return self.mint(key, agent_id, parent_agent=parent_agent)

        return source

    def identity(
        self,
        agent_key: PrivateKey,
        agent_id: str,
        *,
        parent_agent: str | None = None,
        refresh_margin: float = 300.0,
    ) -> AgentIdentity:
        """An :class:`AgentIdentity` for ``agent_key`` whose token this provider refreshes."""
        source = self.token_source(agent_id, parent_agent=parent_agent)
        return AgentIdentity(
            agent_key,
            source(agent_key),
            token_source=source,
            refresh_margin=refresh_margin,
            clock=self.clock,
        )

    # -- published documents -----------------------------------------------------------------

    def metadata(self) -> AgentProviderMetadata:
        """``/.well-known/aauth-agent.json`` (§Agent Provider Metadata)."""
        return AgentProviderMetadata.build(
            issuer=self.issuer,
            jwks_uri=self.issuer + JWKS_PATH,
            name=self.name,
            callback_endpoint=self.callback_endpoint,
            localhost_callback_allowed=True if self.localhost_callback_allowed else None,
        )

    def jwks(self) -> dict[str, Any]:
        """The JWK Set: the current key, then any previous ones; public members, ``alg`` and
        ``kid`` only (§JWKS Discovery and Caching)."""
        keys = [self.key.public_key, *self.previous_keys]
        return {"keys": [key.to_jwk() for key in keys]}

    def app(self) -> Starlette:
        """An ASGI app serving the metadata and the JWKS with ``Cache-Control``."""
        metadata = self.metadata().to_json()
        headers = {"Cache-Control": f"public, max-age={self.cache_max_age}"}

        async def well_known(request: Request) -> Response:
            return JSONResponse(metadata, headers=headers)

        async def jwks(request: Request) -> Response:
            return JSONResponse(self.jwks(), headers=headers)

        return Starlette(
            routes=[
                Route(WELL_KNOWN_PATH, well_known, methods=["GET"]),
                Route(JWKS_PATH, jwks, methods=["GET"]),
            ]
        )


# -- a local agent in a key store -------------------------------------------------------------

#: Entry names in a :class:`~aauth_agents.agent.storage.KeyStore`.
AGENT_ENTRY = "agent.json"
AGENT_KEY_ENTRY = "agent-key.jwk"
PROVIDER_KEY_ENTRY = "provider-key.jwk"


class AgentExistsError(KeyStoreError):
    """``init_local_agent`` found an agent already set up in the store."""

    code = "agent_exists"


class AgentNotFoundError(KeyStoreError):
    """The store holds no (complete) local agent."""

    code = "agent_not_found"


@dataclass(frozen=True)
class LocalAgent:
    """An agent and its self-hosted provider, as kept in a key store."""

    agent_id: str
    key: PrivateKey
    provider: LocalAgentProvider

    @property
    def ps(self) -> str | None:
        return self.provider.ps

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint of the agent's signing key."""
        return self.key.thumbprint()

    def identity(self, *, refresh_margin: float = 300.0) -> AgentIdentity:
        """The agent's :class:`AgentIdentity`, its token minted now and before it expires."""
        return self.provider.identity(self.key, self.agent_id, refresh_margin=refresh_margin)

    def sub_agent(
        self,
        discriminator: str,
        *,
        key: PrivateKey | None = None,
        refresh_margin: float = 300.0,
    ) -> AgentIdentity:
        """A sub-agent of this agent (§Sub-Agents): ``aauth:LOCAL+discriminator@domain`` with
        its own key (a fresh Ed25519 key unless ``key`` is given) and ``parent_agent``."""
        local, domain = _split(self.agent_id)
        sub_id = f"aauth:{local}+{discriminator}@{domain}"
        return self.provider.identity(
            key or PrivateKey.generate(),
            sub_id,
            parent_agent=self.agent_id,
            refresh_margin=refresh_margin,
        )

    def provider_documents(self) -> dict[str, Any]:
        """What a PS needs to trust the provider without fetching:
        ``{"issuer", "metadata", "jwks"}``."""
        return {
            "issuer": self.provider.issuer,
            "metadata": self.provider.metadata().to_json(),
            "jwks": self.provider.jwks(),
        }


def _issuer_for(agent_id: str) -> str:
    try:
        validate_agent_identifier(agent_id)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    domain = _split(agent_id)[1]
    try:
        return validate_server_identifier(f"https://{domain}")
    except ValueError as exc:
        raise ConfigurationError(
            f"{agent_id}: its domain cannot be an agent provider identifier ({exc})"
        ) from exc


def init_local_agent(
    store: KeyStore,
    agent_id: str,
    *,
    ps: str | None = None,
    alg: str = ED25519,
    name: str | None = None,
    lifetime: int = DEFAULT_LIFETIME,
    replace: bool = False,
    clock: Clock = system_clock,
) -> LocalAgent:
    """Create a top-level agent ``agent_id`` in ``store``: a fresh agent key, a fresh key for
    its self-hosted provider ``https://<domain of agent_id>``, and the settings (``ps``,
    ``name``, ``lifetime``).

    Everything is checked before anything is written. An agent already in the store is an
    :class:`AgentExistsError` unless ``replace`` is true.
    """
    issuer = _issuer_for(agent_id)
    agent_key = PrivateKey.generate(alg)
    provider = LocalAgentProvider(
        issuer, PrivateKey.generate(alg), ps=ps, clock=clock, lifetime=lifetime, name=name
    )
    provider.check_agent_id(agent_id)
    if not replace and any(
        store.read(entry) is not None
        for entry in (AGENT_ENTRY, AGENT_KEY_ENTRY, PROVIDER_KEY_ENTRY)
    ):
        raise AgentExistsError(
            f"{store.location} already holds an agent; replace it explicitly to start over"
        )
    write_private_key(store, PROVIDER_KEY_ENTRY, provider.key)
    write_private_key(store, AGENT_KEY_ENTRY, agent_key)
    settings: dict[str, Any] = {
        "agent_id": agent_id,
        "issuer": issuer,
        "lifetime": lifetime,
    }
    if ps is not None:
        settings["ps"] = provider.ps
    if name is not None:
        settings["name"] = name
    write_json(store, AGENT_ENTRY, settings)  # last: its presence means the agent is complete
    log.info("created agent %s in %s", agent_id, store.location)
    return LocalAgent(agent_id, agent_key, provider)


def load_local_agent(store: KeyStore, *, clock: Clock = system_clock) -> LocalAgent:
    """The agent :func:`init_local_agent` created in ``store``.

    :class:`AgentNotFoundError` when there is none; :class:`KeyStoreError` when an entry is
    damaged or the settings are not valid.
    """
    settings = read_json(store, AGENT_ENTRY)
    if settings is None:
        raise AgentNotFoundError(
            f"no agent in {store.location}: create one with "
            "`aauth-agents keys init --agent-id aauth:LOCAL@DOMAIN --ps https://PS`"
        )
    agent_key = read_private_key(store, AGENT_KEY_ENTRY)
    provider_key = read_private_key(store, PROVIDER_KEY_ENTRY)
    if agent_key is None or provider_key is None:
        raise AgentNotFoundError(f"{store.location} holds an incomplete agent (a key is missing)")
    agent_id = settings.get("agent_id")
    issuer = settings.get("issuer")
    ps = settings.get("ps")
    name = settings.get("name")
    lifetime = settings.get("lifetime", DEFAULT_LIFETIME)
    if not isinstance(agent_id, str) or not isinstance(issuer, str):
        raise KeyStoreError(f"{store.location}: {AGENT_ENTRY} lacks agent_id or issuer")
    if ps is not None and not isinstance(ps, str):
        raise KeyStoreError(f"{store.location}: {AGENT_ENTRY} ps must be a string")
    if name is not None and not isinstance(name, str):
        raise KeyStoreError(f"{store.location}: {AGENT_ENTRY} name must be a string")
    try:
        if _issuer_for(agent_id) != issuer:
            raise ConfigurationError(f"issuer {issuer} does not match {agent_id}")
        provider = LocalAgentProvider(
            issuer, provider_key, ps=ps, clock=clock, lifetime=lifetime, name=name
        )
        provider.check_agent_id(agent_id)
    except ConfigurationError as exc:
        raise KeyStoreError(f"{store.location}: {AGENT_ENTRY}: {exc.detail}") from exc
    return LocalAgent(agent_id, agent_key, provider)


def load_identity(
    store: KeyStore, *, clock: Clock = system_clock, refresh_margin: float = 300.0
) -> AgentIdentity:
    """The :class:`AgentIdentity` of the local agent in ``store`` (see :func:`load_local_agent`)."""
    return load_local_agent(store, clock=clock).identity(refresh_margin=refresh_margin)


__all__ = [
    "AGENT_ENTRY",
    "AGENT_KEY_ENTRY",
    "JWKS_PATH",
    "PROVIDER_KEY_ENTRY",
    "WELL_KNOWN_PATH",
    "AgentExistsError",
    "AgentNotFoundError",
    "LocalAgent",
    "LocalAgentProvider",
    "init_local_agent",
    "load_identity",
    "load_local_agent",
]
