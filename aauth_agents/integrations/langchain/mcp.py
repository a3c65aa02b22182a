"""The tools of an AAuth-protected MCP server as LangChain tools, over one long-lived session.

::

    tools = load_aauth_mcp_tools("https://resource.example/mcp", auth=auth)
    agent = create_agent(model, tools)           # or a StateGraph with a ToolNode

    # or with LangChain's own MCP adapter (MCP SDK 2.x line):
    async with MCPAdapter(aauth_mcp_client("https://resource.example/mcp", auth=auth)) as a:
        tools = await a.list_tools()

    # or with langchain-mcp-adapters' client (MCP SDK 1.x line):
    client = MultiServerMCPClient({"files": aauth_mcp_connection(
        "https://resource.example/mcp", auth=auth)})

:func:`load_aauth_mcp_tools` opens one MCP session (streamable HTTP, every HTTP request
signed and every challenge answered by :class:`~aauth_agents.agent.AAuth`) and keeps it for
every call; the tools are converted by ``langchain.mcp`` on the MCP SDK 2.x line
(``pip install 'aauth-agents[langchain-mcp]'``) or by ``langchain-mcp-adapters`` on 1.x
(``'aauth-agents[langchain-mcp-adapters]'``): schemas, results as content blocks,
``structured_content`` on the artifact, the same on both. The tools have both ``func`` and
``coroutine``. The session lives on the toolset's own event loop thread, so the tools work
from any thread or event loop; it is reopened if the server ends it.

Each tool call runs with its own view of the agent (:meth:`~aauth_agents.agent.AAuth.derive`):
its ``aauth.*`` events, its pending mode (a consent or a question as a LangGraph interrupt,
``on_pending="interrupt"``), its pending requests. The session's HTTP requests are matched to
the call that caused them by the JSON-RPC ``tools/call`` they carry (tool name and
arguments); an AAuth failure of one call (the person declined, a poll expired) becomes that
call's typed error, reported to the MCP session as a JSON-RPC error of that request alone,
so the session and the other calls go on. With ``auth`` a function of the
``RunnableConfig``, each agent gets its own session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import weakref
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool, ToolException
from mcp import ClientSession
from pydantic_core import to_jsonable_python

from ...agent import AAuth, PendingRequests, client_options
from ...protocol.errors import AAuthError, ConfigurationError
from ..mcp_sdk import MCP2, McpError, http, http_auth, http_transport, open_streamable_http
from .http import json_schema_validator
from .interrupts import InterruptRecords, NeedsPerson
from .runtime import AAuthTool, ToolRuntime, aauth_failure, handle_tool_error

log = logging.getLogger("aauth_agents.integrations.langchain")

T = TypeVar("T")
#: The JSON-RPC error code of a call AAuth ended (an implementation-defined server error:
#: the session is told the call failed; the tool raises the typed error).
AAUTH_CALL_FAILED = -32001


def aauth_mcp_connection(
    url: str,
    *,
    auth: AAuth,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
    sse_read_timeout: float = 300.0,
) -> dict[str, Any]:
    """MCP SDK 1.x line: a ``langchain_mcp_adapters`` connection (for
    ``MultiServerMCPClient``) to the streamable-HTTP MCP server at ``url``, every request of
    which goes through ``auth``.
    ``transport`` is the httpx transport (e.g. a development mapping of ``https://HOST`` to
    loopback). The client it makes allows the round trips a person's consent takes
    (:func:`~aauth_agents.agent.client_options`)."""
    if not isinstance(auth, AAuth):
        raise ConfigurationError("aauth_mcp_connection needs auth (an AAuth)")
    if MCP2:
        raise ConfigurationError(
            "langchain-mcp-adapters runs on the MCP SDK 1.x line; on 2.x use "
            "aauth_mcp_client with langchain.mcp.MCPAdapter"
        )

    def factory(
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            **client_options(
                headers=headers,
                auth=auth,
                transport=transport,
                follow_redirects=False,
                **({"timeout": timeout} if timeout is not None else {}),
            )
        )

    return {
        "transport": "streamable_http",
        "url": url,
        "auth": auth,
        "timeout": timeout,
        "sse_read_timeout": sse_read_timeout,
        "httpx_client_factory": factory,
    }


def _httpx2_factory(transport: Any, timeout: Any) -> Callable[..., Any]:
    """An ``httpx_client_factory`` for fastmcp's ``StreamableHttpTransport``: httpx2
    clients through ``transport`` with :func:`~aauth_agents.agent.client_options` (the
    round trips a person's consent takes) and ``timeout`` unless fastmcp passes one."""

    def factory(
        headers: dict[str, str] | None = None,
        auth: Any = None,
        timeout: Any = timeout,
        **_: Any,
    ) -> Any:
        return http.AsyncClient(
            **client_options(
                headers=headers,
                auth=auth,
                transport=transport,
                follow_redirects=False,
                timeout=timeout,
            )
        )

    return factory


def aauth_mcp_client(
    url: str,
    *,
    auth: AAuth,
    transport: Any = None,
    timeout: float = 30.0,
    read_timeout: float = 300.0,
    **client: Any,
) -> Any:
    """MCP SDK 2.x line: a ``fastmcp.Client`` of the streamable-HTTP MCP server at ``url``,
    every request of which goes through ``auth`` (its ``httpx2`` twin,
    :meth:`~aauth_agents.agent.AAuth.httpx2`), for LangChain's own MCP adapter::

        from langchain.mcp import MCPAdapter

        async with MCPAdapter(aauth_mcp_client(url, auth=auth)) as adapter:
            tools = await adapter.list_tools()

    ``transport`` -- an httpx or httpx2 transport (e.g. a development mapping);
    ``client`` -- more ``fastmcp.Client`` options (``elicitation_handler``, ...)."""
    if not isinstance(auth, AAuth):
        raise ConfigurationError("aauth_mcp_client needs auth (an AAuth)")
    if not MCP2:
        raise ConfigurationError(
            "aauth_mcp_client is for the MCP SDK 2.x line (fastmcp 4, langchain.mcp); on 1.x "
            "use aauth_mcp_connection with langchain-mcp-adapters"
        )
    from fastmcp.client import Client
    from fastmcp.client.transports import StreamableHttpTransport

    factory = _httpx2_factory(http_transport(transport), http.Timeout(timeout, read=read_timeout))
    return Client(
        StreamableHttpTransport(url, auth=auth.httpx2(), httpx_client_factory=factory), **client
    )


def _call_key(name: str, arguments: Any) -> str:
    return json.dumps(
        [name, to_jsonable_python(arguments or {})], sort_keys=True, separators=(",", ":")
    )


@dataclass
class _Scope:
    """One tool call's view of the agent, and the failure that ended its request."""

    auth: AAuth
    error: BaseException | None = None
    users: int = 1


class _Router(http.AsyncBaseTransport):
    """The MCP session's transport: sends each request through ``client`` with the AAuth of
    the tool call it carries (else ``auth``); a call's failure becomes a JSON-RPC error
    answer to that call alone (see the module docstring)."""

    def __init__(self, client: Any, auth: AAuth) -> None:
        self.client, self.auth = client, auth
        self.scopes: dict[str, _Scope] = {}

    def enter(self, name: str, arguments: Any, auth: AAuth) -> _Scope:
        key = _call_key(name, arguments)
        scope = self.scopes.get(key)
        if scope is None:
            scope = self.scopes[key] = _Scope(auth)
        else:  # the same call twice at once: one request at the resource serves both
            scope.users += 1
        return scope

    def leave(self, name: str, arguments: Any, scope: _Scope) -> None:
        key = _call_key(name, arguments)
        scope.users -= 1
        if scope.users <= 0 and self.scopes.get(key) is scope:
            del self.scopes[key]

    async def handle_async_request(self, request: Any) -> Any:
        message = await self._message(request)
        scope = None
        if isinstance(message, dict) and message.get("method") == "tools/call":
            params = message.get("params") or {}
            scope = self.scopes.get(_call_key(params.get("name", ""), params.get("arguments")))
        try:
            response = await self.client.send(
                request, auth=http_auth(scope.auth if scope else self.auth), stream=True
            )
        except (AAuthError, NeedsPerson, http.HTTPError) as exc:
            if scope is None or not isinstance(message, dict) or "id" not in message:
                raise
            scope.error = exc
            return http.Response(
                200,
                json={
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "error": {"code": AAUTH_CALL_FAILED, "message": "the request ended in AAuth"},
                },
                request=request,
            )
        if response.is_stream_consumed:  # (AAuth read it, to see whether it was a challenge)
            return http.Response(
                response.status_code,
                headers=response.headers,
                content=response.content,
                extensions=response.extensions,
                request=request,
            )
        return http.Response(
            response.status_code,
            headers=response.headers,
            stream=response.stream,
            extensions=response.extensions,
            request=request,
        )

    @staticmethod
    async def _message(request: Any) -> Any:
        if request.method != "POST":
            return None
        body = await request.aread()
        try:
            return json.loads(body)
        except ValueError:
            return None

    async def aclose(self) -> None:
        await self.client.aclose()


async def _open_mcp1(
    stack: contextlib.AsyncExitStack, toolset: AAuthMcpToolset, router: _Router, timeout: Any
) -> tuple[Any, dict[str, StructuredTool]]:
    """MCP SDK 1.x: a ``ClientSession`` over ``router``, its tools converted by
    ``langchain-mcp-adapters``."""
    try:
        from langchain_mcp_adapters.tools import load_mcp_tools
    except ImportError as exc:
        raise ConfigurationError(
            "MCP tools on the MCP SDK 1.x line need langchain-mcp-adapters: "
            "pip install 'aauth-agents[langchain-mcp-adapters]'"
        ) from exc
    outer = await stack.enter_async_context(
        http.AsyncClient(transport=router, follow_redirects=False, timeout=timeout)
    )
    read, write = await stack.enter_async_context(
        open_streamable_http(toolset.url, http_client=outer)
    )
    session = await stack.enter_async_context(ClientSession(read, write, **toolset.session_options))
    await session.initialize()
    tools = await load_mcp_tools(session)
    return session, {t.name: t for t in tools if isinstance(t, StructuredTool)}


async def _open_mcp2(
    stack: contextlib.AsyncExitStack, toolset: AAuthMcpToolset, router: _Router, timeout: Any
) -> tuple[Any, dict[str, StructuredTool]]:
    """MCP SDK 2.x: a ``fastmcp.Client`` over ``router``, its tools converted by
    LangChain's own MCP adapter (``langchain.mcp``)."""
    try:
        from fastmcp.client import Client
        from fastmcp.client.transports import StreamableHttpTransport
        from langchain.mcp import as_langchain_tool
    except ImportError as exc:
        raise ConfigurationError(
            "MCP tools on the MCP SDK 2.x line need langchain[mcp]: "
            "pip install 'aauth-agents[langchain-mcp]'"
        ) from exc

    transport = StreamableHttpTransport(
        toolset.url, httpx_client_factory=_httpx2_factory(router, timeout)
    )
    client = await stack.enter_async_context(Client(transport, **toolset.session_options))
    tools = [await as_langchain_tool(tool, client) for tool in await client.list_tools()]
    return client, {t.name: t for t in tools if isinstance(t, StructuredTool)}


class _Session:
    """One agent's MCP session, held open on the toolset's loop until closed."""

    def __init__(self, toolset: AAuthMcpToolset, auth: AAuth) -> None:
        self.toolset, self.auth = toolset, auth
        self.router: _Router | None = None
        self.session: Any = None  # ClientSession (1.x) or fastmcp.Client (2.x)
        self.adapters: dict[str, StructuredTool] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._lock = asyncio.Lock()

    async def open(self) -> Any:
        async with self._lock:
            if self.session is not None and self._task is not None and not self._task.done():
                return self.session
            ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._hold(ready))
            return await ready

    async def _hold(self, ready: asyncio.Future[Any]) -> None:
        toolset = self.toolset
        timeout = http.Timeout(toolset.timeout, read=toolset.read_timeout)
        try:
            async with contextlib.AsyncExitStack() as stack:
                inner = toolset.async_http_client or http.AsyncClient(
                    **client_options(
                        transport=http_transport(toolset.transport),
                        follow_redirects=False,
                        timeout=timeout,
                    )
                )
                if toolset.async_http_client is None:
                    await stack.enter_async_context(inner)
                router = self.router = _Router(inner, self.auth)
                if MCP2:
                    self.session, self.adapters = await _open_mcp2(stack, toolset, router, timeout)
                else:
                    self.session, self.adapters = await _open_mcp1(stack, toolset, router, timeout)
                ready.set_result(self.session)
                await self._closing.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.warning("the MCP session to %s ended: %r", toolset.url, exc)
        finally:
            self.session = None

    async def call(self, name: str, arguments: dict[str, Any], auth: AAuth) -> Any:
        await self.open()
        adapter = self.adapters.get(name)
        if adapter is None or adapter.coroutine is None:
            raise ToolException(f"the MCP server has no tool {name!r} (any more)")
        assert self.router is not None
        scope = self.router.enter(name, arguments, auth)
        try:
            return await adapter.coroutine(**arguments)
        except Exception as exc:
            if scope.error is not None:
                raise scope.error from None
            if isinstance(exc, McpError):
                raise ToolException(f"The MCP call failed: {exc.error.message}") from exc
            raise
        finally:
            self.router.leave(name, arguments, scope)

    async def close(self) -> None:
        self._closing.set()
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await self._task


class _McpRuntime(ToolRuntime):
    """The runtime of MCP tools: the requests a call leaves pending are withdrawn through
    the session's client, on the toolset's loop."""

    def __init__(self, toolset: AAuthMcpToolset, **options: Any) -> None:
        super().__init__(**options)
        self.toolset = toolset

    def withdraw(self, auth: AAuth, pending: PendingRequests, client: httpx.Client) -> None:
        self.toolset.run(self.toolset.awithdraw(auth, pending))

    async def awithdraw(
        self, auth: AAuth, pending: PendingRequests, client: httpx.AsyncClient
    ) -> None:
        await asyncio.wrap_future(self.toolset.submit(self.toolset.awithdraw(auth, pending)))


class AAuthMcpToolset:
    """The tools of the MCP server at ``url`` and the session(s) behind them (see the
    module docstring). ``auth`` -- an :class:`~aauth_agents.agent.AAuth`, or a function of
    the ``RunnableConfig`` returning one (a session per agent); ``transport`` or
    ``async_http_client`` -- how the session reaches the server (the client is used on the
    toolset's own loop only: give one used nowhere else); ``http_client`` -- unused by MCP
    calls, kept for the same options as the other factories; ``on_pending``,
    ``interrupts`` -- as for every AAuth tool; ``session_options`` go to ``ClientSession``.
    Close it (``close()``, or ``with``) to end the sessions and the loop thread."""

    def __init__(
        self,
        url: str,
        *,
        auth: Any,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        on_pending: str = "wait",
        interrupts: InterruptRecords | None = None,
        timeout: float = 30.0,
        read_timeout: float = 300.0,
        **session_options: Any,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("https", "http") or not parsed.host:
            raise ConfigurationError(f"the MCP server URL must be an http(s) URL, not {url!r}")
        if transport is not None and async_http_client is not None:
            raise ConfigurationError("give transport or async_http_client, not both")
        self.url, self.transport = url, transport
        self.async_http_client = async_http_client
        self.timeout, self.read_timeout = timeout, read_timeout
        self.session_options = session_options
        self.runtime = _McpRuntime(
            self, auth=auth, http_client=http_client, on_pending=on_pending, interrupts=interrupts
        )
        self._sessions: weakref.WeakKeyDictionary[AAuth, _Session] = weakref.WeakKeyDictionary()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.tools: list[AAuthTool] = []

    # -- the loop ------------------------------------------------------------------------

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Any:
        """Run ``coroutine`` on the toolset's loop; a ``concurrent.futures.Future``."""
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="aauth-mcp", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is not None and threading.current_thread() is self._thread:
            coroutine.close()
            raise ConfigurationError("an MCP tool cannot be called from the toolset's own loop")
        result: T = self.submit(coroutine).result()
        return result

    def _session(self, auth: AAuth) -> _Session:
        session = self._sessions.get(auth.root)
        if session is None:
            session = self._sessions[auth.root] = _Session(self, auth.root)
        return session

    async def awithdraw(self, auth: AAuth, pending: PendingRequests) -> None:
        session = self._session(auth)
        await session.open()
        assert session.router is not None
        await auth.awithdraw(pending, session.router.client)

    # -- tools ---------------------------------------------------------------------------

    async def _list(self, config: RunnableConfig | None) -> list[AAuthTool]:
        session = self._session(self.runtime.agent(config))
        await session.open()
        return [self._tool(adapter) for adapter in session.adapters.values()]

    def load(self, config: RunnableConfig | None = None) -> list[AAuthTool]:
        """Open the session (as the agent of ``config``) and make the tools."""
        self.tools = self.run(self._list(config))
        return self.tools

    async def aload(self, config: RunnableConfig | None = None) -> list[AAuthTool]:
        """:meth:`load` from async code."""
        self.tools = await asyncio.wrap_future(self.submit(self._list(config)))
        return self.tools

    def _tool(self, adapter: StructuredTool) -> AAuthTool:
        schema = adapter.args_schema
        if not isinstance(schema, Mapping):
            raise ConfigurationError(f"the MCP tool {adapter.name} has no JSON input schema")
        validate = json_schema_validator(schema)
        name, runtime = adapter.name, self.runtime

        def body(arguments: dict[str, Any]) -> Callable[[AAuth], Coroutine[Any, Any, Any]]:
            async def on_loop(auth: AAuth) -> Any:
                try:
                    return await self._session(auth).call(name, arguments, auth)
                except (AAuthError, httpx.HTTPError) as exc:
                    raise aauth_failure(exc) from exc

            return on_loop

        def run(config: RunnableConfig, callbacks: Any = None, **arguments: Any) -> Any:
            validate(arguments)
            call = body(arguments)
            return runtime.call(config, callbacks, lambda auth, _client: self.run(call(auth)))

        async def arun(config: RunnableConfig, callbacks: Any = None, **arguments: Any) -> Any:
            validate(arguments)
            call = body(arguments)

            async def send(auth: AAuth, _client: Any) -> Any:
                return await asyncio.wrap_future(self.submit(call(auth)))

            return await runtime.acall(config, callbacks, send)

        return AAuthTool(
            name=adapter.name,
            description=adapter.description,
            args_schema=schema,
            func=run,
            coroutine=arun,
            response_format="content_and_artifact",
            metadata=adapter.metadata,
            handle_tool_error=handle_tool_error,
        )

    # -- closing -------------------------------------------------------------------------

    async def _close_sessions(self) -> None:
        for session in list(self._sessions.values()):
            await session.close()

    def close(self) -> None:
        """End the sessions and stop the loop thread."""
        if self._loop is None:
            return
        with contextlib.suppress(Exception):
            self.submit(self._close_sessions()).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop = self._thread = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> AAuthMcpToolset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_aauth_mcp_tools(url: str, *, auth: Any, **options: Any) -> list[AAuthTool]:
    """The tools of the MCP server at ``url`` over one long-lived AAuth session; ``options``
    as for :class:`AAuthMcpToolset`. The session ends with the process; to end it earlier,
    make the toolset yourself (``with AAuthMcpToolset(url, auth=auth) as toolset: tools =
    toolset.load()``)."""
    return AAuthMcpToolset(url, auth=auth, **options).load()


async def aload_aauth_mcp_tools(url: str, *, auth: Any, **options: Any) -> list[AAuthTool]:
    """:func:`load_aauth_mcp_tools` from async code."""
    return await AAuthMcpToolset(url, auth=auth, **options).aload()


__all__ = [
    "AAUTH_CALL_FAILED",
    "AAuthMcpToolset",
    "aauth_mcp_client",
    "aauth_mcp_connection",
    "aload_aauth_mcp_tools",
    "load_aauth_mcp_tools",
]
