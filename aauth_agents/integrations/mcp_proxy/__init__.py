"""``aauth-agents mcp-proxy``: a stdio MCP server that forwards every message to an
AAuth-protected streamable HTTP MCP server, so that a host that only speaks stdio (a desktop
app, an IDE) can use one.

The proxy signs every request as the agent, answers every challenge (person and auth tokens,
step-up, deferred responses), passes the server's requests and notifications to the host and
the host's answers back, writes nothing but MCP messages on stdout and logs to stderr. When
the person must approve, the host is asked to show the link (URL-mode elicitation) when it
can, else told in a log message while the browser opens it::

    proxy = proxy_for_agent(identity, "https://resource.example/mcp")
    asyncio.run(proxy.serve(sys.stdin.buffer, stdout))

:mod:`.wire` holds the sans-I/O parsers (JSON-RPC lines, server-sent events), :mod:`.upstream`
the HTTP side, :mod:`.host` the stdio side and the person's prompts, :mod:`.proxy` the bridge.
"""

from .host import HostChannel, HostPrompts, HostRefused
from .proxy import McpProxy, aauth_message, failure, proxy_for_agent
from .upstream import Upstream, UpstreamError

__all__ = [
    "HostChannel",
    "HostPrompts",
    "HostRefused",
    "McpProxy",
    "Upstream",
    "UpstreamError",
    "aauth_message",
    "failure",
    "proxy_for_agent",
]
