"""The resource side of AAuth: verification, challenges, resource tokens, pending records and
an ASGI middleware.

* :class:`ResourceConfig` + :class:`AAuthResource` -- a protected resource: who it is, whose
  tokens it trusts, its stores, what it publishes.
* :class:`ResourceVerifier` -- ``verify(request)`` / ``averify(request)`` -> :class:`Caller`.
* :class:`AccessRule`, :class:`RoutePolicy`, :func:`requires`, :func:`mcp_tool_rules` --
  what each route (or MCP tool) requires; :class:`WildcardScopeMatcher` for ``*`` scopes.
* :meth:`AccessRule.per_call` -- an MCP tool approved one call at a time (R3 per-call
  proposals, :mod:`.percall`: :class:`Display`, :class:`ProposedCall`, :func:`md_code`).
* :class:`AAuthMiddleware` -- pure ASGI; the caller on ``request.state.aauth`` and
  :func:`current_caller`.

Example::

    resource = AAuthResource(ResourceConfig(
        identifier="https://resource.example", signing_key=PrivateKey.generate(kid="r1"),
        issuer_keys=AsyncDiscovery(), scope_descriptions={"data.read": "Read your data"}))
    app.add_middleware(AAuthMiddleware, resource=resource, policy=RoutePolicy(
        {"/data": AccessRule.auth("data.read")}, default=AccessRule.agent()))
"""

from __future__ import annotations

from ..protocol.r3 import Display
from .caller import Caller, Session, TokenKind, current_caller, require_caller
from .config import (
    EndpointPaths,
    PersonAuthenticator,
    ResourceConfig,
    TrustedIssuerKeys,
    TrustPolicy,
)
from .events import EventHook, EventSink, ResourceEvent
from .held import HeldRequest, HeldResult
from .mcp import MCP_VOCABULARY, McpTool, mcp_metadata, mcp_policy
from .middleware import AAuthMiddleware, resource_app
from .percall import ProposedCall, md_code
from .policy import (
    AccessRule,
    BodyRule,
    RoutePolicy,
    compile_path,
    mcp_tool_calls,
    mcp_tool_rules,
    requires,
)
from .requests import (
    AuthorizationRequest,
    RevocationRequest,
    parse_authorization_request,
    parse_interaction_form,
    parse_revocation_request,
)
from .scopes import ScopeMatcher, WildcardScopeMatcher, exact_scope_matcher, missing_scopes
from .server import AAuthResource, Allow, Execute, Reply
from .session import TYP_SESSION, SessionTokenError, mint_session_token, verify_session_token
from .verifier import ResourceVerifier, RevokedError, TokenRejectedError

__all__ = [
    "MCP_VOCABULARY",
    "TYP_SESSION",
    "AAuthMiddleware",
    "AAuthResource",
    "AccessRule",
    "Allow",
    "AuthorizationRequest",
    "BodyRule",
    "Caller",
    "Display",
    "EndpointPaths",
    "EventHook",
    "EventSink",
    "Execute",
    "HeldRequest",
    "HeldResult",
    "McpTool",
    "PersonAuthenticator",
    "ProposedCall",
    "Reply",
    "ResourceConfig",
    "ResourceEvent",
    "ResourceVerifier",
    "RevocationRequest",
    "RevokedError",
    "RoutePolicy",
    "ScopeMatcher",
    "Session",
    "SessionTokenError",
    "TokenKind",
    "TokenRejectedError",
    "TrustPolicy",
    "TrustedIssuerKeys",
    "WildcardScopeMatcher",
    "compile_path",
    "current_caller",
    "exact_scope_matcher",
    "mcp_metadata",
    "mcp_policy",
    "mcp_tool_calls",
    "mcp_tool_rules",
    "md_code",
    "mint_session_token",
    "missing_scopes",
    "parse_authorization_request",
    "parse_interaction_form",
    "parse_revocation_request",
    "require_caller",
    "requires",
    "resource_app",
    "verify_session_token",
]
