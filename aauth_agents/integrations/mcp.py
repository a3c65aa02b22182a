"""AAuth for MCP over streamable HTTP, on both MCP SDK lines: 1.x (``FastMCP``, httpx) and
2.x (``MCPServer``, httpx2); :mod:`~aauth_agents.integrations.mcp_sdk` holds the difference.

The resource side -- an MCP server every request of which is verified::

    from mcp.server.fastmcp import Context, FastMCP       # 1.x
    # from mcp.server.mcpserver import Context, MCPServer # 2.x

    server = FastMCP("notes")                             # or MCPServer("notes")

    @server.tool()
    def delete_note(name: str, ctx: Context) -> str:
        caller = require_caller_from_context(ctx)   # who calls, with which scopes
        ...

    app = protect_mcp(server, resource=ResourceConfig(
        identifier="https://notes.example", signing_key=key, issuer_keys=AsyncDiscovery(),
        scope_descriptions={"notes.delete": "Delete your notes"}),
        tools={"delete_note": AccessRule.auth("notes.delete")}, default=AccessRule.agent(),
        stateless_http=True)
    uvicorn.run(app)

:func:`protect_mcp` wraps the server's ``streamable_http_app()`` with
:class:`~aauth_agents.resource.AAuthMiddleware`: each ``tools/call`` needs its tool's rule,
every other MCP message (``initialize``, ``tools/list``, ...) needs ``default``
(:func:`~aauth_agents.resource.mcp_policy`). The resource metadata publishes the MCP server
as the R3 vocabulary ``urn:aauth:vocabulary:mcp`` with each tool's access mode and scopes
(:func:`~aauth_agents.resource.mcp_metadata`), and each tool's ``_meta`` in ``tools/list``
carries its ``aauth.dev/access-mode`` annotation (R3 §Vocabulary Encodings).

A tool under :meth:`AccessRule.per_call <aauth_agents.resource.AccessRule.per_call>` (R3
§Per-Call Proposals; annotated ``per-call``) is approved one call at a time::

    tools={"send_email": AccessRule.per_call("mail.send", display=lambda call: Display(
        summary=f"Send an email to {call.arguments['to']}",
        irreversible="A sent email cannot be unsent"))}

Each call is held (``202``) with a proposal of its arguments that the person reads at their
PS; approved, it runs once and the agent's :class:`~aauth_agents.agent.AAuth` receives its
result on the same ``call_tool`` -- nothing else to do on the agent's side.

A tool reads its caller with :func:`caller_from_context` (from the HTTP request that carried
the call), never with :func:`~aauth_agents.resource.current_caller`: a stateful FastMCP
session runs every tool in the task that served the session's *first* request, so the
context variable there belongs to that request, not to this call.

To combine an MCP server with other routes under one middleware, as
:func:`~aauth_agents.servers.demo_resource.demo_resource` does, use the parts:
:class:`McpServerApp` (``.endpoint`` for a ``Route``), :func:`declare_tools` and
:func:`~aauth_agents.resource.mcp_policy`.

The agent side -- an initialized ``mcp.ClientSession`` whose every HTTP request is signed and
whose challenges are answered by :class:`~aauth_agents.agent.AAuth`::

    async with aauth_mcp_session("https://notes.example/mcp", auth=AAuth(identity)) as session:
        tools = await session.list_tools()
        result = await session.call_tool("delete_note", {"name": "draft"})

:class:`~aauth_agents.agent.AAuth` reads only the responses it must inspect (a challenge, a
deferred ``202``); every other response reaches the MCP client unread, so a tool's progress
notifications, and the server's own requests in the middle of a call (elicitation,
sampling, roots: answered by the ``ClientSession``'s callbacks), arrive as the server
sends them, and a stateful session's standing ``GET`` stream delivers. A *stateless*
server (``stateless_http=True``) has no channel for requests of its own: on the MCP SDK 1.x
line its elicitation and sampling never get an answer (modelcontextprotocol/python-sdk#1740);
on 2.x its tools ask through input-required rounds (SEP-2322: ``Resolve(...)`` parameters),
which 2.x's ``mcp.client.Client`` drives -- each round a signed POST through
:func:`mcp_http_client`. Progress works either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    MutableMapping,
)
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from mcp import ClientSession

from ..agent.client import client_options
from ..protocol.errors import ConfigurationError
from ..resource import (
    AAuthMiddleware,
    AAuthResource,
    AccessRule,
    Caller,
    McpTool,
    ResourceConfig,
    RoutePolicy,
    mcp_metadata,
    mcp_policy,
)
from ..resource.mcp import ACCESS_MODE_META
from .mcp_sdk import (
    Context,
    McpServer,
    RequestContext,
    TransportSecuritySettings,
    http,
    http_auth,
    http_options,
    http_transport,
    open_streamable_http,
    streamable_http_app,
)

log = logging.getLogger("aauth_agents.integrations.mcp")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MCP_SESSION_HEADER = b"mcp-session-id"
#: What an MCP resource asks agents to sign besides the profile's components
#: (``additional_signature_components``, on requests with a body): the JSON-RPC body names the
#: tool, and so the rule, and a covered digest lets the resource tell an MCP session's many
#: POSTs within one second from replays of one another.
MCP_SIGNATURE_COMPONENTS = ("content-type", "content-digest")
_SESSION_NOT_FOUND = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": "server-error",
        "error": {"code": -32600, "message": "Session not found"},
    }
).encode()


# -- who calls a tool ----------------------------------------------------------------------------


def caller_from_context(
    ctx: Context[Any, Any, Any] | RequestContext[Any, Any, Any],
) -> Caller | None:
    """The verified caller of the MCP request a tool (or resource, or prompt) is serving:
    what :class:`~aauth_agents.resource.AAuthMiddleware` put on the HTTP request that carried
    it (``request.state.aauth``). ``None`` outside a request, over a transport without HTTP
    requests, or behind a public rule. ``ctx`` is FastMCP's ``Context`` or the low-level
    ``RequestContext``."""
    if isinstance(ctx, Context):
        try:
            request_context: RequestContext[Any, Any, Any] = ctx.request_context
        except ValueError:  # FastMCP: "Context is not available outside of a request"
            return None
    else:
        request_context = ctx
    request = getattr(request_context, "request", None)
    caller = getattr(getattr(request, "state", None), "aauth", None)
    return caller if isinstance(caller, Caller) else None


def require_caller_from_context(
    ctx: Context[Any, Any, Any] | RequestContext[Any, Any, Any],
) -> Caller:
    """:func:`caller_from_context`, raising ``LookupError`` when there is no verified caller
    (FastMCP reports it to the client as a failed tool call)."""
    caller = caller_from_context(ctx)
    if caller is None:
        raise LookupError("no AAuth caller: this MCP request did not pass AAuthMiddleware")
    return caller


# -- the tools a server publishes ------------------------------------------------------------------


def declare_tools(
    server: McpServer[Any], tools: Mapping[str, AccessRule] | None = None, *, default: AccessRule
) -> list[McpTool]:
    """Every tool ``server`` has now, each with its rule: ``tools[name]``, else ``default``.

    Each tool's ``_meta`` gets its ``aauth.dev/access-mode`` annotation (R3), which
    ``tools/list`` then shows. A name in ``tools`` the server does not have is a
    :class:`ConfigurationError` (a misspelt rule would otherwise protect nothing). Tools added
    to the server later are neither published nor annotated, and need ``default``."""
    rules = dict(tools or {})
    for name, rule in rules.items():
        if not isinstance(name, str) or not isinstance(rule, AccessRule):
            raise ConfigurationError("tools maps tool names to AccessRules")
    if not isinstance(default, AccessRule):
        raise ConfigurationError("default must be an AccessRule")
    registered = server._tool_manager.list_tools()
    unknown = sorted(set(rules) - {tool.name for tool in registered})
    if unknown:
        raise ConfigurationError(f"rules for tools the MCP server does not have: {unknown}")
    declared = []
    for tool in registered:
        entry = McpTool(tool.name, rules.get(tool.name, default))
        meta = {k: v for k, v in (tool.meta or {}).items() if k != ACCESS_MODE_META}
        meta.update(entry.meta())
        tool.meta = meta or None
        declared.append(entry)
    return declared


# -- serving a FastMCP server ----------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _scope_caller(scope: Scope) -> Caller | None:
    state = scope.get("state")
    caller = state.get("aauth") if isinstance(state, Mapping) else None
    return caller if isinstance(caller, Caller) else None


class McpServerApp:
    """A FastMCP server's streamable HTTP app, ready to sit behind ``AAuthMiddleware``.

    * The session manager runs for the ASGI lifespan when the server sends one (uvicorn's
      default); when it does not (``lifespan="off"``, ``httpx.ASGITransport``, a ``Route``
      in another app without :meth:`lifespan`), the first request starts it in a background
      task (asyncio only) and :meth:`aclose` stops it. A FastMCP session manager runs once:
      serve one ``McpServerApp`` from one server process.
    * FastMCP's DNS-rebinding protection, when on (the default for ``host="127.0.0.1"``),
      also admits the ``hosts`` given -- the resource identifier's host -- since requests
      keep ``Host: resource.example`` (the middleware checks ``Host`` too).
    * ``bind_sessions``: a stateful MCP session belongs to the agent key that opened it
      (its ``cnf`` thumbprint, the same for agent, person and auth tokens); a request for it
      signed by another key is answered as if the session did not exist (404), as the MCP SDK
      does for its own bearer tokens.

    * ``stateless_http``, ``json_response``, ``streamable_http_path``,
      ``transport_security``: the streamable HTTP options, on both MCP SDK lines (``None``:
      the server's own setting on 1.x, the SDK's default on 2.x; see
      :mod:`~aauth_agents.integrations.mcp_sdk`).

    The object is the whole app (the MCP path and the server's custom routes);
    :attr:`endpoint` is the MCP endpoint alone, for a ``Route`` at any path of another app.
    """

    def __init__(
        self,
        server: McpServer[Any],
        *,
        hosts: Iterable[str] = (),
        bind_sessions: bool = True,
        stateless_http: bool | None = None,
        json_response: bool | None = None,
        streamable_http_path: str | None = None,
        transport_security: TransportSecuritySettings | None = None,
    ) -> None:
        self.server = server
        options = http_options(
            server,
            stateless_http=stateless_http,
            json_response=json_response,
            streamable_http_path=streamable_http_path,
            transport_security=transport_security,
        )
        self.app = streamable_http_app(server, options)
        self.manager = server.session_manager
        self.path: str = options["streamable_http_path"]
        self.app.router.lifespan_context = self.lifespan
        self.bind_sessions = bind_sessions
        self._admit_hosts(list(hosts))
        self._owners: dict[str, str] = {}
        self._live = False
        self._starting: asyncio.Future[None] | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.endpoint: ASGIApp = _Endpoint(self)

    def _admit_hosts(self, hosts: list[str]) -> None:
        settings = self.manager.security_settings
        if not hosts or settings is None or not settings.enable_dns_rebinding_protection:
            return
        allowed_hosts = list(dict.fromkeys([*settings.allowed_hosts, *hosts]))
        origins = [f"https://{host}" for host in hosts]
        allowed_origins = list(dict.fromkeys([*settings.allowed_origins, *origins]))
        self.manager.security_settings = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=allowed_hosts,
            allowed_origins=allowed_origins,
        )

    # -- running the session manager ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Run the session manager for the duration: a Starlette ``lifespan``."""
        async with self.manager.run():
            self._live = True
            try:
                yield
            finally:
                self._live = False

    async def _ensure_running(self) -> None:
        if self._live:
            return
        if self._starting is None:
            log.info(
                "no ASGI lifespan ran: starting the MCP session manager with the first "
                "request (stop it with aclose())"
            )
            loop = asyncio.get_running_loop()
            self._starting = loop.create_future()
            self._stop = asyncio.Event()
            self._task = loop.create_task(self._run_detached(self._starting, self._stop))
        await asyncio.shield(self._starting)
        if not self._live:
            raise RuntimeError("the MCP session manager has been stopped")

    async def _run_detached(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        try:
            async with self.lifespan():
                ready.set_result(None)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
                return
            raise

    async def aclose(self) -> None:
        """Stop a session manager the first request started (a lifespan stops its own)."""
        if self._stop is not None and self._task is not None:
            self._stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- requests -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        await self.serve(scope, receive, send, self.app)

    async def serve(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        """Run ``app`` (the whole app or the bare endpoint) for one request, with the
        session manager running and the session bound to its agent key."""
        if scope["type"] == "http":
            await self._ensure_running()
        caller = _scope_caller(scope)
        if (
            scope["type"] != "http"
            or caller is None
            or not self.bind_sessions
            or self.manager.stateless
        ):
            await app(scope, receive, send)
            return
        session = _header(scope, MCP_SESSION_HEADER)
        if session is not None:
            owner = self._owners.get(session)
            if owner is not None and not hmac.compare_digest(owner, caller.thumbprint):
                log.warning(
                    "MCP session %s… refused: signed by another key than the one that opened it",
                    session[:8],
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 404,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(_SESSION_NOT_FOUND)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": _SESSION_NOT_FOUND})
                return
            await app(scope, receive, send)
            if scope.get("method") == "DELETE":
                self._forget_ended()
            return

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start" and int(message["status"]) < 400:
                for key, value in message.get("headers", ()):
                    if bytes(key).lower() == MCP_SESSION_HEADER:
                        self._forget_ended()
                        self._owners[bytes(value).decode("latin-1")] = caller.thumbprint
            await send(message)

        await app(scope, receive, record)

    def _forget_ended(self) -> None:
        live = getattr(self.manager, "_server_instances", None)
        if isinstance(live, Mapping):
            for session in [s for s in self._owners if s not in live]:
                del self._owners[session]


class _Endpoint:
    """The MCP endpoint alone (an ASGI object, so a Starlette ``Route`` passes it requests
    as they are)."""

    def __init__(self, owner: McpServerApp) -> None:
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.owner.serve(scope, receive, send, self.owner.manager.handle_request)


def protect_mcp(
    server: McpServer[Any],
    *,
    resource: ResourceConfig | AAuthResource,
    tools: Mapping[str, AccessRule] | None = None,
    default: AccessRule | None = None,
    bind_sessions: bool = True,
    **http: Any,
) -> AAuthMiddleware:
    """``server``'s streamable HTTP app behind :class:`AAuthMiddleware`.

    ``tools`` maps tool names to their rules; ``default`` (an agent token, unless given) is
    the rule of every other MCP message, of tools not named, and of the server's custom
    routes. With a :class:`ResourceConfig`, the tools are added to its metadata (the R3
    vocabulary at ``identifier + streamable_http_path``) and agents are asked to sign request
    bodies (:data:`MCP_SIGNATURE_COMPONENTS`); an :class:`AAuthResource` must already publish
    both (``extra_metadata=mcp_metadata(url, declare_tools(...))``).

    ``http``: the streamable HTTP options of :class:`McpServerApp` (``stateless_http=True``,
    ...), given the same way on both MCP SDK lines.

    Returns the middleware: ``.resource`` is the :class:`AAuthResource`, ``.app`` the
    :class:`McpServerApp` (``await app.app.aclose()`` when no lifespan ran)."""
    default = default if default is not None else AccessRule.agent()
    config = resource.config if isinstance(resource, AAuthResource) else resource
    if not isinstance(config, ResourceConfig):
        raise ConfigurationError("resource must be a ResourceConfig or an AAuthResource")
    app = McpServerApp(
        server, hosts=[urlsplit(config.identifier).netloc], bind_sessions=bind_sessions, **http
    )
    declared = declare_tools(server, tools, default=default)
    published = mcp_metadata(config.identifier + app.path, declared)
    if isinstance(resource, AAuthResource):
        document = resource.metadata()
        if any(document.get(name) != value for name, value in published.items()) or not set(
            MCP_SIGNATURE_COMPONENTS
        ) <= set(config.additional_signature_components):
            raise ConfigurationError(
                "the AAuthResource does not publish this MCP server's tools and "
                "MCP_SIGNATURE_COMPONENTS: build it with extra_metadata=mcp_metadata(url, "
                "declare_tools(...)) and additional_signature_components including "
                "MCP_SIGNATURE_COMPONENTS, or pass a ResourceConfig"
            )
    else:
        resource = replace(
            config,
            extra_metadata={**config.extra_metadata, **published},
            additional_signature_components=tuple(
                dict.fromkeys((*config.additional_signature_components, *MCP_SIGNATURE_COMPONENTS))
            ),
        )
    policy = RoutePolicy([("*", app.path, mcp_policy(declared, default=default))], default=default)
    middleware = AAuthMiddleware(app, resource=resource, policy=policy)
    middleware.resource.check_rules(tool.rule for tool in declared)  # scopes it can grant
    return middleware


# -- the agent side --------------------------------------------------------------------------------


def mcp_http_client(
    auth: Any, *, transport: Any = None, timeout: float = 30.0, read_timeout: float = 300.0
) -> Any:
    """The HTTP client an MCP client transport sends through, every request of it through
    ``auth`` (an :class:`~aauth_agents.agent.AAuth`): an ``httpx.AsyncClient`` on the MCP
    SDK 1.x line, an ``httpx2.AsyncClient`` with ``auth``'s twin on 2.x (``transport``, an
    httpx one, bridged), with the round trips a consent takes
    (:func:`~aauth_agents.agent.client_options`) and MCP's own redirect handling. For the
    SDK's other clients, e.g. 2.x's ``mcp.client.Client``::

        Client(streamable_http_client(url, http_client=mcp_http_client(auth)))
    """
    return http.AsyncClient(
        **client_options(
            auth=http_auth(auth),
            transport=http_transport(transport),
            follow_redirects=False,
            timeout=http.Timeout(timeout, read=read_timeout),
        )
    )


@contextlib.asynccontextmanager
async def aauth_mcp_session(
    url: str,
    *,
    auth: Any = None,
    transport: Any = None,
    http_client: Any = None,
    timeout: float = 30.0,
    read_timeout: float = 300.0,
    terminate_on_close: bool = True,
    **session_options: Any,
) -> AsyncIterator[ClientSession]:
    """An initialized ``mcp.ClientSession`` over streamable HTTP to ``url``, every HTTP
    request of which goes through ``auth`` -- an :class:`~aauth_agents.agent.AAuth`, which
    signs it and answers the resource's challenges (person and auth tokens, step-up,
    deferred responses) before MCP sees the response; MCP's own bare ``202`` (no
    ``Location``) is not a deferred response and reaches MCP untouched.

    ``transport`` is the httpx transport (e.g. an
    :class:`~aauth_agents.transport.AsyncMappedTransport` that reaches
    ``https://resource.example`` on loopback); ``timeout`` / ``read_timeout`` are httpx's
    (a response stream may stay open a while). Or pass a ready ``http_client`` (with its own
    ``auth``), which is then not closed here.

    On both MCP SDK lines: on 2.x the client is an ``httpx2.AsyncClient`` with ``auth``'s
    ``httpx2`` twin (:meth:`~aauth_agents.agent.AAuth.httpx2`, the same agent and caches) and
    an httpx ``transport`` bridged to it; a ready ``http_client`` is then an
    ``httpx2.AsyncClient``.
    ``session_options`` go to ``ClientSession`` (``client_info``, ``logging_callback``,
    ``read_timeout_seconds``, ...).

    Keep one ``AAuth`` per agent for all its sessions: it caches the agent's tokens, and it
    keeps the signatures of identical requests (every session opens with the same
    ``initialize``) apart; two ``AAuth`` objects with one key opening sessions within the same
    second sign the same message twice, and the resource refuses the second as a replay.

    An AAuth error that ends a request (the person denied, no person server, ...) fails the
    HTTP request, which this MCP SDK treats as the end of the session: leaving the ``async
    with`` raises an exception group holding the :class:`~aauth_agents.protocol.errors.
    AAuthError`."""
    if http_client is not None and (auth is not None or transport is not None):
        raise ConfigurationError("give auth and transport, or an http_client, not both")
    if http_client is None and auth is None:
        raise ConfigurationError("aauth_mcp_session needs auth (an AAuth) or an http_client")
    async with contextlib.AsyncExitStack() as stack:
        if http_client is None:
            assert auth is not None
            http_client = await stack.enter_async_context(
                mcp_http_client(
                    auth, transport=transport, timeout=timeout, read_timeout=read_timeout
                )
            )
        read, write = await stack.enter_async_context(
            open_streamable_http(
                url, http_client=http_client, terminate_on_close=terminate_on_close
            )
        )
        session = await stack.enter_async_context(ClientSession(read, write, **session_options))
        await session.initialize()
        yield session


__all__ = [
    "MCP_SIGNATURE_COMPONENTS",
    "McpServerApp",
    "aauth_mcp_session",
    "caller_from_context",
    "declare_tools",
    "mcp_http_client",
    "protect_mcp",
    "require_caller_from_context",
]
