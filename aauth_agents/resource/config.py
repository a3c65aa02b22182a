"""Configuring a resource: its identifier and key, whose tokens it trusts, its stores, what it
publishes.

:class:`ResourceConfig` is plain data with defaults; :class:`~aauth_agents.resource.AAuthResource`
is built from it. :class:`TrustPolicy` is the person-server trust policy of §Trust Posture in
PS-Asserted Access, applied *before* any key is fetched: a token from an issuer the policy
does not admit is refused as ``invalid_jwt`` without egress.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..clock import Clock, system_clock
from ..keys import PrivateKey, PublicKey
from ..protocol.errors import ConfigurationError, DiscoveryError
from ..protocol.identifiers import validate_server_identifier
from ..protocol.scopes import is_scope_token
from ..stores import Stores
from ..tokens import DWK_ACCESS, DWK_AGENT, DWK_PERSON, RESOURCE_TOKEN_MAX_LIFETIME, IssuerKeys
from .events import EventHook
from .scopes import ScopeMatcher, exact_scope_matcher

if TYPE_CHECKING:
    from starlette.requests import Request

    from .caller import Caller

#: Authenticates the person at the resource's own interaction page: their local identifier,
#: or ``None`` when nobody is signed in (§Interaction Code Format: the code alone never
#: authorizes a decision).
PersonAuthenticator = Callable[["Request"], "Awaitable[str | None] | str | None"]
#: Decides whether ``account`` (§Account Binding) is held by the person the caller names.
AccountValidator = Callable[["Caller", str], "Awaitable[bool] | bool"]


async def maybe_await(value: Any) -> Any:
    """The result of a hook that may be sync or async (:data:`PersonAuthenticator`,
    :data:`AccountValidator`)."""
    return await value if inspect.isawaitable(value) else value


RESOURCE_TOKEN = "resource-token"  # noqa: S105 (a mode name)
INTERACTION = "interaction"


@dataclass(frozen=True)
class TrustPolicy:
    """Which issuers' tokens the resource accepts, by role. ``None`` admits any issuer
    (discovery and egress admission still apply); a collection admits exactly those.

    ``access_servers=None`` admits only the resource's own ``access_server`` (an AS-issued
    auth token from an AS the resource does not use is refused)."""

    agent_providers: Collection[str] | None = None
    person_servers: Collection[str] | None = None
    access_servers: Collection[str] | None = None

    def admits(self, iss: str, dwk: str, *, own_as: str | None) -> bool:
        if dwk == DWK_AGENT:
            allowed = self.agent_providers
        elif dwk == DWK_PERSON:
            allowed = self.person_servers
        elif dwk == DWK_ACCESS:
            allowed = self.access_servers
            if allowed is None:
                return own_as is not None and iss == own_as
        else:
            return False
        return allowed is None or iss in allowed


class TrustedIssuerKeys:
    """An :class:`~aauth_agents.tokens.IssuerKeys` that refuses, before any lookup, the
    issuers a :class:`TrustPolicy` does not admit."""

    def __init__(self, keys: IssuerKeys, policy: TrustPolicy, *, own_as: str | None) -> None:
        self.keys, self.policy, self.own_as = keys, policy, own_as

    def _check(self, iss: str, dwk: str) -> None:
        if not self.policy.admits(iss, dwk, own_as=self.own_as):
            raise DiscoveryError(f"{iss} is not a trusted issuer of {dwk} tokens here")

    def get_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        self._check(iss, dwk)
        return self.keys.get_key(iss, dwk, kid)

    async def aget_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        self._check(iss, dwk)
        return await self.keys.aget_key(iss, dwk, kid)

    def refresh_key(self, iss: str, dwk: str, kid: str) -> PublicKey | None:
        self._check(iss, dwk)
        refresh = getattr(self.keys, "refresh_key", None)
        return refresh(iss, dwk, kid) if refresh is not None else None

    async def arefresh_key(self, iss: str, dwk: str, kid: str) -> PublicKey | None:
        self._check(iss, dwk)
        refresh = getattr(self.keys, "arefresh_key", None)
        return await refresh(iss, dwk, kid) if refresh is not None else None


@dataclass(frozen=True)
class EndpointPaths:
    """Where the resource's own endpoints live (paths on its identifier's origin)."""

    metadata: str = "/.well-known/aauth-resource.json"
    jwks: str = "/.well-known/jwks.json"
    authorization: str = "/aauth/authorize"
    revocation: str = "/aauth/revoke"
    pending: str = "/aauth/pending"
    interaction: str = "/aauth/interaction"
    #: Where per-call proposals are served (R3 §R3 Document: ``r3_uri``).
    r3: str = "/aauth/r3"

    def __post_init__(self) -> None:
        for name in ("jwks", "authorization", "revocation", "pending", "interaction", "r3"):
            value = getattr(self, name)
            if (
                not isinstance(value, str)
                or not value.startswith("/")
                or value.endswith("/")
                or "?" in value
                or "#" in value
            ):
                raise ConfigurationError(f"paths.{name} must be an absolute path: {value!r}")


@dataclass
class ResourceConfig:
    """Everything an :class:`~aauth_agents.resource.AAuthResource` needs.

    * ``identifier`` -- the resource's server identifier (``https://resource.example``): the
      ``aud`` it accepts and the ``iss`` of the resource tokens it mints.
    * ``signing_key`` -- signs resource and session tokens; published in the JWKS with
      ``previous_keys`` (key rotation).
    * ``issuer_keys`` -- where agent providers', person servers' and access servers' keys
      come from (:class:`~aauth_agents.discovery.AsyncDiscovery` in production,
      :class:`~aauth_agents.tokens.StaticIssuerKeys` for pinned issuers); ``trust`` filters
      issuers first.
    * ``access_server`` -- the resource's AS (four-party: resource tokens go to it); ``None``
      for three-party (resource tokens go to the person token's issuer).
    * ``scope_descriptions`` -- every resource scope a resource token may carry (§Scopes),
      published in metadata; ``scope_matcher`` decides satisfaction.
    * ``authorization_mode`` -- what the authorization endpoint does: ``"resource-token"``
      (three/four-party) or ``"interaction"`` (resource-managed, §Response without Resource
      Token); ``person_authenticator`` signs the person in at the interaction page.
    """

    identifier: str
    signing_key: PrivateKey
    issuer_keys: IssuerKeys
    stores: Stores | None = None
    clock: Clock = system_clock
    event_hook: EventHook | None = None
    access_server: str | None = None
    trust: TrustPolicy = field(default_factory=TrustPolicy)
    scope_descriptions: Mapping[str, str] = field(default_factory=dict)
    scope_matcher: ScopeMatcher = exact_scope_matcher
    access_mode: str | None = None
    name: str | None = None
    description: str | None = None
    logo_uri: str | None = None
    documentation_uri: str | None = None
    tos_uri: str | None = None
    policy_uri: str | None = None
    extra_metadata: Mapping[str, Any] = field(default_factory=dict)
    previous_keys: Sequence[PublicKey] = ()
    additional_signature_components: Sequence[str] = ()
    signature_window: int = 60
    require_query: bool = True
    resource_token_lifetime: int = RESOURCE_TOKEN_MAX_LIFETIME
    pending_lifetime: int = 600
    interaction_retry_after: int = 0
    approval_retry_after: int = 5
    deferred_retry_after: int = 5
    session_lifetime: int = 3600
    #: Seconds between housekeeping passes (expired pending records, revocations, known
    #: tokens, person-token records), made by the first request after one is due; 0: never
    #: (call :meth:`~aauth_agents.resource.AAuthResource.purge` yourself).
    purge_interval: float = 600.0
    revocation_lifetime: int = 24 * 3600
    trusted_revokers: Collection[str] = ()
    max_code_attempts: int = 5
    token_cache_size: int = 1024
    #: Seconds a caller found not revoked is not looked up again (per process; 0: every
    #: request asks the store). A revocation this process records takes effect at once; one
    #: another worker wrote to a shared store (Redis, a database) within this many seconds,
    #: and a request then costs no store round trip while its caller stays unrevoked.
    revocation_recheck: float = 0.5
    #: The largest request body buffered for verification (``413`` problem+json above it).
    max_body_bytes: int = 1024 * 1024
    check_host: bool = True
    paths: EndpointPaths = field(default_factory=EndpointPaths)
    publish_authorization_endpoint: bool = True
    publish_revocation_endpoint: bool = True
    authorization_mode: str = RESOURCE_TOKEN
    person_authenticator: PersonAuthenticator | None = None
    account_validator: AccountValidator | None = None

    def __post_init__(self) -> None:
        def check_id(name: str, value: object) -> None:
            try:
                validate_server_identifier(value)
            except ValueError as exc:
                raise ConfigurationError(f"{name}: {exc}") from exc

        check_id("identifier", self.identifier)
        if self.access_server is not None:
            check_id("access_server", self.access_server)
        if not isinstance(self.signing_key, PrivateKey) or not self.signing_key.kid:
            raise ConfigurationError("signing_key must be a PrivateKey with a kid")
        if not all(is_scope_token(s) for s in self.scope_descriptions):
            raise ConfigurationError("scope_descriptions keys must be scope tokens")
        if not 0 < self.resource_token_lifetime <= RESOURCE_TOKEN_MAX_LIFETIME:
            raise ConfigurationError("resource tokens live at most 5 minutes")
        if (
            self.signature_window <= 0
            or self.pending_lifetime <= 0
            or self.session_lifetime <= 0
            or self.max_code_attempts < 1
        ):
            raise ConfigurationError("windows, lifetimes and attempt limits must be positive")
        if self.purge_interval < 0:
            raise ConfigurationError("purge_interval must be 0 (off) or positive")
        if self.authorization_mode not in (RESOURCE_TOKEN, INTERACTION):
            raise ConfigurationError("authorization_mode is 'resource-token' or 'interaction'")
        if self.stores is None:
            self.stores = Stores.memory(clock=self.clock)

    def url(self, path: str) -> str:
        return self.identifier + path


__all__ = [
    "INTERACTION",
    "RESOURCE_TOKEN",
    "AccountValidator",
    "EndpointPaths",
    "PersonAuthenticator",
    "ResourceConfig",
    "TrustPolicy",
    "TrustedIssuerKeys",
]
