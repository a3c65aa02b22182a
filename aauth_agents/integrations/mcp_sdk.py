"""The installed MCP SDK line, 1.x or 2.x, behind the few names the integration uses.

The MCP SDK 2.x renamed ``FastMCP`` to ``MCPServer`` (``mcp.server.mcpserver``), moved the
streamable HTTP options (``stateless_http``, ``json_response``, ``streamable_http_path``,
``transport_security``) from the server's settings to ``streamable_http_app(...)``, and runs
its client on ``httpx2`` instead of httpx. Everything else the integration touches (the
session manager, the tool manager, ``Context.request_context.request``, ``ClientSession``)
kept its shape. This module is the one place that knows the difference:

* :data:`MCP2` -- whether the 2.x line is installed; :data:`http` -- its HTTP library
  (``httpx`` or ``httpx2``: the same API, distinct types);
* :data:`McpServer`, :data:`Context` (:data:`AnyContext` to annotate a tool's ``ctx``),
  :data:`RequestContext`, :data:`McpError` -- the server class (``FastMCP`` /
  ``MCPServer``), its tool context, the low-level request context, the JSON-RPC error;
* :func:`new_server`, :func:`streamable_http_app` -- a server and its HTTP app with the
  transport options given the same way on both lines;
* :func:`http_auth`, :func:`http_transport` -- an :class:`~aauth_agents.agent.AAuth` and an
  httpx transport as the installed client library takes them;
* :func:`open_streamable_http` -- the client transport's two streams;
* :data:`TransportSecuritySettings` -- the SDK's DNS-rebinding protection settings, the same
  class on both lines.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from mcp.client.streamable_http import streamable_http_client
from mcp.server.transport_security import TransportSecuritySettings

#: The major version of the installed ``mcp`` package.
MCP_MAJOR = int(version("mcp").split(".")[0])
#: Whether the MCP SDK 2.x line (``MCPServer``, ``httpx2``) is installed.
MCP2 = MCP_MAJOR >= 2

if not MCP2:
    import httpx as http
    from mcp.server.fastmcp import Context
    from mcp.server.fastmcp import FastMCP as McpServer
    from mcp.shared.context import RequestContext
    from mcp.shared.exceptions import McpError
else:
    import httpx2 as http  # type: ignore[no-redef]
    from mcp.server.context import ServerRequestContext as RequestContext  # type: ignore
    from mcp.server.mcpserver import Context  # type: ignore
    from mcp.server.mcpserver import MCPServer as McpServer  # type: ignore
    from mcp.shared.exceptions import MCPError as McpError  # type: ignore

if TYPE_CHECKING:
    #: A tool's ``ctx`` annotation on both lines (1.x ``Context`` takes three type
    #: parameters, 2.x two; the server finds the parameter by its class).
    AnyContext = Context[Any, Any, Any]
else:
    #: A tool's ``ctx`` annotation on both lines (1.x ``Context`` takes three type
    #: parameters, 2.x two; the server finds the parameter by its class).
    AnyContext = Context

#: The streamable HTTP options a server is given on both lines.
HTTP_OPTIONS = ("stateless_http", "json_response", "streamable_http_path", "transport_security")
_kept_options: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def new_server(name: str, **options: Any) -> Any:
    """A ``FastMCP`` (1.x) or ``MCPServer`` (2.x) called ``name``. ``options`` are the
    constructor's (``instructions``, ``log_level``, ...) plus the streamable HTTP options of
    :data:`HTTP_OPTIONS`, which on 2.x are kept for :func:`streamable_http_app`."""
    http_options = {key: options.pop(key) for key in HTTP_OPTIONS if key in options}
    if not MCP2:
        return McpServer(name, **options, **http_options)
    server = McpServer(name, **options)
    _kept_options[server] = http_options
    return server


def http_options(server: Any, **overrides: Any) -> dict[str, Any]:
    """The streamable HTTP options of ``server`` (1.x: its settings; 2.x: what
    :func:`new_server` kept), with the ``overrides`` that are not ``None``."""
    if not MCP2:
        options = {key: getattr(server.settings, key) for key in HTTP_OPTIONS}
    else:
        options = {
            "streamable_http_path": "/mcp",
            "stateless_http": False,
            "json_response": False,
            "transport_security": None,
            **_kept_options.get(server, {}),
        }
    options.update({key: value for key, value in overrides.items() if value is not None})
    return options


def streamable_http_app(server: Any, options: dict[str, Any]) -> Any:
    """``server``'s streamable HTTP Starlette app with ``options`` (:func:`http_options`).
    On 1.x they become the server's settings (a FastMCP server makes one session manager)."""
    if not MCP2:
        for key, value in options.items():
            setattr(server.settings, key, value)
        return server.streamable_http_app()
    return server.streamable_http_app(**options)


def http_auth(auth: Any) -> Any:
    """``auth`` as the installed client library's ``Auth``: an
    :class:`~aauth_agents.agent.AAuth` becomes its ``httpx2`` twin on 2.x."""
    if MCP2 and auth is not None and not isinstance(auth, http.Auth):
        return auth.httpx2()
    return auth


def http_transport(transport: Any) -> Any:
    """``transport`` for the installed client library: on 2.x an httpx transport (such as
    :class:`~aauth_agents.transport.AsyncMappedTransport`) is bridged."""
    if MCP2:
        from ..transport_httpx2 import as_httpx2_transport

        return as_httpx2_transport(transport)
    return transport


@contextlib.asynccontextmanager
async def open_streamable_http(
    url: str, *, http_client: Any, terminate_on_close: bool = True
) -> AsyncIterator[tuple[Any, Any]]:
    """The client transport's read and write streams (1.x yields a third item, the session
    id getter, which the integration does not use)."""
    async with streamable_http_client(
        url, http_client=http_client, terminate_on_close=terminate_on_close
    ) as streams:
        yield streams[0], streams[1]


__all__ = [
    "HTTP_OPTIONS",
    "MCP2",
    "MCP_MAJOR",
    "AnyContext",
    "Context",
    "McpError",
    "McpServer",
    "RequestContext",
    "TransportSecuritySettings",
    "http",
    "http_auth",
    "http_options",
    "http_transport",
    "new_server",
    "open_streamable_http",
    "streamable_http_app",
]
