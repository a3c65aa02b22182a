"""aauth-agents: AAuth (draft-hardt-oauth-aauth-protocol-11) for AI agents.

The most used names are re-exported here; each subpackage documents the rest:
:mod:`aauth_agents.agent`, :mod:`aauth_agents.keys`, :mod:`aauth_agents.httpsig`,
:mod:`aauth_agents.tokens`,
:mod:`aauth_agents.discovery`, :mod:`aauth_agents.transport`, :mod:`aauth_agents.protocol`.
"""

from __future__ import annotations

from .agent import (
    AAuth,
    AgentIdentity,
    AsyncPersonServerClient,
    LocalAgentProvider,
    PersonServerClient,
    SignedAuth,
)
from .discovery import AsyncDiscovery, Discovery, EgressPolicy
from .httpsig import (
    HttpRequest,
    SignatureKey,
    SignatureVerifier,
    VerifiedSignature,
    sign_request,
)
from .keys import ED25519, ES256, SUPPORTED_ALGORITHMS, PrivateKey, PublicKey, jwk_thumbprint
from .protocol.errors import (
    AAuthError,
    DiscoveryError,
    ProtocolError,
    SignatureError,
    TokenError,
)
from .tokens import (
    AgentToken,
    AuthToken,
    PersonToken,
    ResourceToken,
    StaticIssuerKeys,
    async_token_key_resolver,
    mint_agent_token,
    mint_auth_token,
    mint_person_token,
    mint_resource_token,
    token_key_resolver,
    verify_agent_token,
    verify_auth_token,
    verify_person_token,
    verify_resource_token,
)
from .transport import AsyncMappedTransport, MappedTransport

#: The package's version.
__version__ = "0.1.0"

__all__ = [
    "ED25519",
    "ES256",
    "SUPPORTED_ALGORITHMS",
    "AAuth",
    "AAuthError",
    "AgentIdentity",
    "AgentToken",
    "AsyncDiscovery",
    "AsyncMappedTransport",
    "AsyncPersonServerClient",
    "AuthToken",
    "Discovery",
    "DiscoveryError",
    "EgressPolicy",
    "HttpRequest",
    "LocalAgentProvider",
    "MappedTransport",
    "PersonServerClient",
    "PersonToken",
    "PrivateKey",
    "ProtocolError",
    "PublicKey",
    "ResourceToken",
    "SignatureError",
    "SignatureKey",
    "SignatureVerifier",
    "SignedAuth",
    "StaticIssuerKeys",
    "TokenError",
    "VerifiedSignature",
    "__version__",
    "async_token_key_resolver",
    "jwk_thumbprint",
    "mint_agent_token",
    "mint_auth_token",
    "mint_person_token",
    "mint_resource_token",
    "sign_request",
    "token_key_resolver",
    "verify_agent_token",
    "verify_auth_token",
    "verify_person_token",
    "verify_resource_token",
]
