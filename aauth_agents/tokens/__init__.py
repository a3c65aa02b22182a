"""AAuth tokens: mint and verify agent, person, resource and auth tokens.

draft-hardt-oauth-aauth-protocol-11 §Agent Token, §Person Token, §Resource Token,
§Auth Token. JWS is restricted to ``Ed25519`` and ``ES256`` through a private PyJWT registry
(:mod:`.jws`); issuer keys come from an :class:`IssuerKeys` (``aauth_agents.discovery`` over
HTTP, :class:`StaticIssuerKeys` in memory); :func:`token_key_resolver` plugs token
verification into the HTTP signature verifier for Signature-Key ``scheme=jwt``.
"""

from __future__ import annotations

from .cache import VerifiedTokenCache
from .issuer_keys import IssuerKeys, RefreshableIssuerKeys, StaticIssuerKeys
from .jws import JWS_ALGORITHMS, encode_jws, peek, verify_jws
from .mint import (
    RESERVED_CLAIMS,
    Instant,
    mint_agent_token,
    mint_auth_token,
    mint_person_token,
    mint_resource_token,
)
from .resolver import PRESENTABLE, PresentedToken, async_token_key_resolver, token_key_resolver
from .types import (
    AGENT_TOKEN_MAX_LIFETIME,
    AUTH_TOKEN_MAX_LIFETIME,
    DWK_ACCESS,
    DWK_AGENT,
    DWK_PERSON,
    DWK_RESOURCE,
    PERSON_TOKEN_MAX_LIFETIME,
    RESOURCE_TOKEN_MAX_LIFETIME,
    TYP_AGENT,
    TYP_AUTH,
    TYP_PERSON,
    TYP_RESOURCE,
    AgentToken,
    AuthToken,
    Interaction,
    PersonToken,
    ResourceToken,
)
from .verify import (
    IAT_SKEW,
    acheck_auth_token_response,
    acheck_resource_challenge,
    averify_agent_token,
    averify_auth_token,
    averify_person_token,
    averify_resource_token,
    check_auth_token_response,
    check_resource_challenge,
    verify_agent_token,
    verify_auth_token,
    verify_person_token,
    verify_resource_token,
)

__all__ = [
    "AGENT_TOKEN_MAX_LIFETIME",
    "AUTH_TOKEN_MAX_LIFETIME",
    "DWK_ACCESS",
    "DWK_AGENT",
    "DWK_PERSON",
    "DWK_RESOURCE",
    "IAT_SKEW",
    "JWS_ALGORITHMS",
    "PERSON_TOKEN_MAX_LIFETIME",
    "PRESENTABLE",
    "RESERVED_CLAIMS",
    "RESOURCE_TOKEN_MAX_LIFETIME",
    "TYP_AGENT",
    "TYP_AUTH",
    "TYP_PERSON",
    "TYP_RESOURCE",
    "AgentToken",
    "AuthToken",
    "Instant",
    "Interaction",
    "IssuerKeys",
    "PersonToken",
    "PresentedToken",
    "RefreshableIssuerKeys",
    "ResourceToken",
    "StaticIssuerKeys",
    "VerifiedTokenCache",
    "acheck_auth_token_response",
    "acheck_resource_challenge",
    "async_token_key_resolver",
    "averify_agent_token",
    "averify_auth_token",
    "averify_person_token",
    "averify_resource_token",
    "check_auth_token_response",
    "check_resource_challenge",
    "encode_jws",
    "mint_agent_token",
    "mint_auth_token",
    "mint_person_token",
    "mint_resource_token",
    "peek",
    "token_key_resolver",
    "verify_agent_token",
    "verify_auth_token",
    "verify_jws",
    "verify_person_token",
    "verify_resource_token",
]
