"""The demo resource: one AAuth-protected app with a rung of the access ladder per endpoint, as
REST routes and as MCP tools.

=================== ============================ ==========================================
endpoint            MCP tool                     needs
=================== ============================ ==========================================
``GET /whoami``     ``whoami``                   an agent token (who the agent is)
``GET /profile``    ``profile``                  a person token (who the person is)
``GET /files``      ``list_files``               an auth token with ``files.read``
``GET /files/NAME`` ``read_file``                an auth token with ``files.read``
``POST /files``     ``write_file``               an auth token with ``files.write``; an
                                                 agent holding ``files.read`` steps up
--                  ``delete_file``              the person's approval of *that* call, each
                                                 time (R3 per-call, ``files.write``)
=================== ============================ ==========================================

``delete_file`` is an R3 per-call tool (:meth:`~aauth_agents.resource.AccessRule.per_call`):
each call is held (202) with a proposal saying which file it deletes and what it holds now;
the person approves that one call at their PS, and the call then runs once.

The MCP server (stateless streamable HTTP, on either MCP SDK line) is at ``/mcp``; every other
MCP message (``initialize``, ``tools/list``) needs an agent token. The metadata
(``/.well-known/aauth-resource.json``) carries a name, a description, the two scopes,
``access_mode: agent-token``, the tools as the R3 MCP vocabulary, and asks agents to sign
request bodies (``content-type``, ``content-digest``). Files live in memory
(:class:`DemoFiles`), or in Redis when several processes serve the resource
(:class:`RedisDemoFiles`, ``serve resource --redis URL``), one folder per person
(``(iss, sub)``), seeded with ``welcome.txt``.

``aauth-agents serve resource`` runs it; tests and ``aauth-agents demo`` build it with
:func:`demo_resource`. Other parties' keys come from ``issuer_keys`` --
:class:`~aauth_agents.discovery.AsyncDiscovery`, or :func:`mapped_discovery` when their
identifiers are mapped to loopback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..clock import Clock, system_clock
from ..discovery import AsyncDiscovery
from ..integrations.mcp import (
    MCP_SIGNATURE_COMPONENTS,
    McpServerApp,
    declare_tools,
    require_caller_from_context,
)
from ..integrations.mcp_sdk import AnyContext, McpServer, TransportSecuritySettings, new_server
from ..keys import PrivateKey
from ..protocol.encoding import loads_json_object
from ..protocol.errors import ConfigurationError
from ..protocol.identifiers import validate_server_identifier
from ..resource import (
    AAuthMiddleware,
    AAuthResource,
    AccessRule,
    Caller,
    Display,
    EventHook,
    McpTool,
    ProposedCall,
    ResourceConfig,
    RoutePolicy,
    TrustPolicy,
    mcp_metadata,
    mcp_policy,
    md_code,
)
from ..stores import Stores
from ..tokens import IssuerKeys
from .demo_files import WELCOME, DemoFileError, DemoFiles, RedisDemoFiles
from .home import HomePage, Item, Section

log = logging.getLogger("aauth_agents.servers.demo_resource")

MCP_PATH = "/mcp"
NAME = "aauth-agents demo resource"
DESCRIPTION = (
    "A demonstration resource: it tells an agent who it is (agent token) and who its person is "
    "(person token), and keeps a few text files for each person (auth token, `files.read` and "
    "`files.write`). The same operations are MCP tools at `/mcp`."
)
SCOPES: Mapping[str, str] = MappingProxyType(
    {
        "files.read": "Read your files at the demo resource",
        "files.write": "Create and change your files at the demo resource",
    }
)
#: The rule of each MCP tool; ``initialize``, ``tools/list`` and the like need an agent token.
TOOL_RULES: Mapping[str, AccessRule] = MappingProxyType(
    {
        "whoami": AccessRule.agent(),
        "profile": AccessRule.person(),
        "list_files": AccessRule.auth("files.read"),
        "read_file": AccessRule.auth("files.read"),
        "write_file": AccessRule.auth("files.write"),
        "delete_file": AccessRule.per_call("files.write"),  # shown with delete_display
    }
)
#: The REST routes and what each needs, as the page at ``/`` lists them.
ROUTES = (
    ("GET /whoami", "who the agent is (an agent token)"),
    ("GET /profile", "who the agent's person is (a person token)"),
    ("GET /files", "the person's files (an auth token with files.read)"),
    ("GET /files/NAME", "one file (files.read)"),
    ("POST /files", "write a file (files.write)"),
)


def describe_caller(caller: Caller) -> dict[str, Any]:
    """What the demo tells a caller about itself (no tokens, no keys)."""
    return {
        "kind": caller.kind,
        "agent": caller.agent,
        "agent_provider": caller.issuer if caller.presents_agent_token else None,
        "parent_agent": caller.parent_agent,
        "person": {"issuer": caller.person[0], "sub": caller.person[1]} if caller.person else None,
        "scopes": list(caller.scopes),
        "key_thumbprint": caller.thumbprint,
    }


def _person(caller: Caller) -> tuple[str, str]:
    if caller.person is None:  # the rules never let this happen
        raise LookupError("no person: this operation needs a person or auth token")
    return caller.person


def _problem(status: int, error: str, detail: str) -> Response:
    return JSONResponse(
        {"error": error, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


class DemoResource:
    """The demo resource as an ASGI app.

    ``resource`` is the :class:`~aauth_agents.resource.AAuthResource` (metadata, events,
    stores), ``files`` the :class:`DemoFiles` or :class:`RedisDemoFiles`, ``mcp`` the MCP
    server, ``tools`` the published :class:`~aauth_agents.resource.McpTool` list, ``middleware`` the
    :class:`~aauth_agents.resource.AAuthMiddleware` every request passes. When the ASGI
    server runs no lifespan, ``await aclose()`` stops the MCP session manager."""

    def __init__(
        self,
        *,
        middleware: AAuthMiddleware,
        files: DemoFiles | RedisDemoFiles,
        mcp: McpServer[Any],
        mcp_app: McpServerApp,
        tools: list[McpTool],
    ) -> None:
        self.middleware = middleware
        self.resource: AAuthResource = middleware.resource
        self.files = files
        self.mcp = mcp
        self.mcp_app = mcp_app
        self.tools = tools
        self.home = home_page(self.resource.config).response()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if _browsing_home(scope):
            await self.home(scope, receive, send)
            return
        await self.middleware(scope, receive, send)

    async def aclose(self) -> None:
        await self.mcp_app.aclose()


_SIGNATURE_HEADERS = frozenset({b"signature", b"signature-input", b"signature-key"})


def _browsing_home(scope: Any) -> bool:
    """An unsigned ``GET /``: a person's browser, shown :func:`home_page`. A signed request
    to ``/`` is the middleware's, as every other path (the default rule protects it)."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != "/":
        return False
    return not any(name in _SIGNATURE_HEADERS for name, _ in scope.get("headers", ()))


def home_page(config: ResourceConfig) -> HomePage:
    """What ``GET /`` shows a person: the resource, its metadata, routes and MCP endpoint."""
    return HomePage(
        name=config.name or NAME,
        role="An AAuth protected resource (a demonstration)",
        identifier=config.identifier,
        description="It tells an agent who it is and who its person is, and keeps a few "
        "text files for each person. Agents sign every request; the person approves "
        "access at their own person server.",
        sections=(
            Section(
                "For agents",
                items=(
                    Item(
                        config.paths.metadata,
                        "the resource's metadata",
                        href=config.paths.metadata,
                    ),
                    *(Item(route, text) for route, text in ROUTES),
                    Item(
                        MCP_PATH,
                        "the same operations as MCP tools (streamable HTTP), and delete_file, "
                        "which the person approves call by call",
                    ),
                ),
            ),
        ),
    )


def _mcp_server(identifier: str, files: DemoFiles | RedisDemoFiles) -> McpServer[Any]:
    host = urlsplit(identifier).netloc
    server: McpServer[Any] = new_server(
        NAME,
        instructions=DESCRIPTION,
        stateless_http=True,
        streamable_http_path=MCP_PATH,
        log_level="WARNING",
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=[host], allowed_origins=[identifier]
        ),
    )

    @server.tool(description="Who the calling agent is (needs an agent token).")
    def whoami(ctx: AnyContext) -> dict[str, Any]:
        return describe_caller(require_caller_from_context(ctx))

    @server.tool(description="Who the agent's person is (needs a person token).")
    def profile(ctx: AnyContext) -> dict[str, Any]:
        return describe_caller(require_caller_from_context(ctx))

    @server.tool(description="List the person's files (needs files.read).")
    async def list_files(ctx: AnyContext) -> dict[str, Any]:
        return {"files": await files.alist(_person(require_caller_from_context(ctx)))}

    @server.tool(description="Read one of the person's files (needs files.read).")
    async def read_file(name: str, ctx: AnyContext) -> dict[str, Any]:
        content = await files.aread(_person(require_caller_from_context(ctx)), name)
        if content is None:
            raise DemoFileError(f"no file named {name!r}")
        return {"name": name, "content": content}

    @server.tool(description="Create or replace one of the person's files (needs files.write).")
    async def write_file(name: str, content: str, ctx: AnyContext) -> dict[str, Any]:
        return await files.awrite(_person(require_caller_from_context(ctx)), name, content)

    @server.tool(description="Delete one of the person's files (the person approves each call).")
    async def delete_file(name: str, ctx: AnyContext) -> dict[str, Any]:
        if not await files.adelete(_person(require_caller_from_context(ctx)), name):
            raise DemoFileError(f"no file named {name!r}")
        return {"name": name, "deleted": True}

    return server


def delete_display(files: DemoFiles | RedisDemoFiles) -> Callable[[ProposedCall], Display]:
    """What the person reads before one ``delete_file`` call: which file, and what it holds
    now -- what only the resource knows (R3 §Per-Call Proposals)."""

    def display(call: ProposedCall) -> Display:
        name = call.arguments.get("name")
        person = call.caller.person
        content = files.read(person, name) if person and isinstance(name, str) else None
        shown = md_code(name)
        if content is None:
            state = f"There is no file {shown} now: the call will fail and delete nothing."
        else:
            size = len(content.encode())
            state = f"{shown} holds {size} bytes now. It begins:\n{md_code(content[:200])}"
        return Display(
            summary=f"Delete one of your files at the demo resource: {name}",
            detail=f"## Action\nDelete the file {shown}\n\n## Details\n{state}",
            irreversible="A deleted file cannot be restored.",
        )

    return display


def demo_resource(
    issuer: str,
    *,
    issuer_keys: IssuerKeys,
    signing_key: PrivateKey | None = None,
    clock: Clock = system_clock,
    stores: Stores | None = None,
    trust: TrustPolicy | None = None,
    event_hook: EventHook | None = None,
    files: DemoFiles | RedisDemoFiles | None = None,
) -> DemoResource:
    """Build the demo resource.

    * ``issuer`` -- its server identifier (``https://resource.example``): the ``aud`` it
      accepts, the ``iss`` of its resource tokens, the ``Host`` requests must carry.
    * ``issuer_keys`` -- where agent providers' and person servers' keys come from
      (:class:`~aauth_agents.discovery.AsyncDiscovery`, :func:`mapped_discovery`,
      :class:`~aauth_agents.tokens.StaticIssuerKeys`); ``trust`` limits which issuers count.
    * ``signing_key`` -- signs resource tokens (default: a fresh Ed25519 key, so resource
      tokens of an earlier run no longer verify).
    * ``clock``, ``stores`` (default: in memory), ``event_hook`` (audit events), ``files``
      (default: a :class:`DemoFiles` in this process's memory; a :class:`RedisDemoFiles`
      shares them between processes).
    """
    try:
        issuer = validate_server_identifier(issuer)
    except ValueError as exc:
        raise ConfigurationError(f"issuer: {exc}") from exc
    files = files if files is not None else DemoFiles()
    server = _mcp_server(issuer, files)
    mcp_app = McpServerApp(server, hosts=[urlsplit(issuer).netloc])
    tools = declare_tools(server, _tool_rules(files), default=AccessRule.agent())
    config = ResourceConfig(
        identifier=issuer,
        signing_key=signing_key or PrivateKey.generate(kid="demo-resource-1"),
        issuer_keys=issuer_keys,
        stores=stores,
        clock=clock,
        event_hook=event_hook,
        trust=trust or TrustPolicy(),
        name=NAME,
        description=DESCRIPTION,
        scope_descriptions=SCOPES,
        access_mode="agent-token",
        deferred_retry_after=1,  # a held delete_file call is polled again after 1 s
        additional_signature_components=MCP_SIGNATURE_COMPONENTS,
        extra_metadata=mcp_metadata(issuer + MCP_PATH, tools),
    )

    app = Starlette(
        routes=[
            *_rest_routes(files),
            Route(MCP_PATH, mcp_app.endpoint, methods=["GET", "POST", "DELETE"]),
        ],
        lifespan=mcp_app.lifespan,
    )
    middleware = AAuthMiddleware(app, resource=config, policy=_route_policy(tools))
    return DemoResource(
        middleware=middleware, files=files, mcp=server, mcp_app=mcp_app, tools=tools
    )


def _tool_rules(files: DemoFiles | RedisDemoFiles) -> dict[str, AccessRule]:
    """The MCP tools' rules: :data:`TOOL_RULES`, with each ``delete_file`` call approved on
    its own, shown with :func:`delete_display` (R3 §Per-Call Proposals)."""
    return dict(
        TOOL_RULES,
        delete_file=AccessRule.per_call(
            *TOOL_RULES["delete_file"].scopes, display=delete_display(files)
        ),
    )


def _route_policy(tools: list[McpTool]) -> RoutePolicy:
    """What each route needs (§Resource Access Modes): the REST routes by level, the MCP
    endpoint by tool (:func:`~aauth_agents.integrations.mcp.mcp_policy`)."""
    return RoutePolicy(
        [
            ("GET", "/whoami", AccessRule.agent()),
            ("GET", "/profile", AccessRule.person()),
            ("GET", "/files", AccessRule.auth("files.read")),
            ("GET", "/files/{name}", AccessRule.auth("files.read")),
            ("POST", "/files", AccessRule.auth("files.write")),
            ("*", MCP_PATH, mcp_policy(tools, default=AccessRule.agent())),
        ],
        default=AccessRule.agent(),
    )


def _rest_routes(files: DemoFiles | RedisDemoFiles) -> list[Route]:
    """The REST routes: who is calling (``/whoami``, ``/profile``) and the person's files."""

    async def whoami(request: Request) -> Response:
        return JSONResponse(describe_caller(request.state.aauth))

    async def profile(request: Request) -> Response:
        return JSONResponse(describe_caller(request.state.aauth))

    async def list_files(request: Request) -> Response:
        return JSONResponse({"files": await files.alist(_person(request.state.aauth))})

    async def read_file(request: Request) -> Response:
        name = request.path_params["name"]
        content = await files.aread(_person(request.state.aauth), name)
        if content is None:
            return _problem(404, "not_found", "no such file")
        return JSONResponse({"name": name, "content": content})

    async def write_file(request: Request) -> Response:
        try:
            body = loads_json_object(await request.body())
        except ValueError:
            return _problem(400, "invalid_request", "the body is a JSON object")
        if set(body) != {"name", "content"}:
            return _problem(400, "invalid_request", 'the body is {"name": ..., "content": ...}')
        try:
            written = await files.awrite(
                _person(request.state.aauth), body.get("name", ""), body.get("content", "")
            )
        except DemoFileError as exc:
            return _problem(400, "invalid_request", str(exc))
        return JSONResponse(written, status_code=201 if written["created"] else 200)

    return [
        Route("/whoami", whoami, methods=["GET"]),
        Route("/profile", profile, methods=["GET"]),
        Route("/files", list_files, methods=["GET"]),
        Route("/files/{name}", read_file, methods=["GET"]),
        Route("/files", write_file, methods=["POST"]),
    ]


def mapped_discovery(
    mapping: Mapping[str, str], *, clock: Clock = system_clock, timeout: float = 10.0
) -> AsyncDiscovery:
    """Discovery for a development setup where other parties' identifiers are mapped
    (``{"https://ps.example": "http://127.0.0.1:8123"}``, the CLI's ``--map``).

    Connections for a mapped origin go to its destination; nothing signed or compared
    changes. Egress admission still applies: a mapped host resolves to its destination's
    addresses, and loopback or private destinations are admitted *for mapped hosts only*
    (logged as a warning); any other host must resolve to public addresses only, as without
    a mapping (:meth:`~aauth_agents.network.LocalNetwork.discovery`). An empty mapping is
    plain :class:`AsyncDiscovery`."""
    if not mapping:
        return AsyncDiscovery(clock=clock, timeout=timeout)
    from ..network import LocalNetwork

    return LocalNetwork(mapping).discovery(clock=clock, timeout=timeout)


__all__ = [
    "DESCRIPTION",
    "MCP_PATH",
    "NAME",
    "SCOPES",
    "TOOL_RULES",
    "WELCOME",
    "DemoFileError",
    "DemoFiles",
    "DemoResource",
    "RedisDemoFiles",
    "delete_display",
    "demo_resource",
    "describe_caller",
    "mapped_discovery",
]
