"""Integrations with the frameworks agents and resources live in.

* :mod:`aauth_agents.integrations.mcp` -- MCP over streamable HTTP: :func:`~.mcp.protect_mcp`
  puts a FastMCP server behind :class:`~aauth_agents.resource.AAuthMiddleware` and publishes
  its tools (R3), :func:`~.mcp.caller_from_context` tells a tool who calls it, and
  :func:`~.mcp.aauth_mcp_session` opens an ``mcp.ClientSession`` whose every HTTP request is
  signed by :class:`~aauth_agents.agent.AAuth`. Needs ``pip install 'aauth-agents[mcp]'``.

Each integration is a module of its own, imported on demand: importing this package pulls in
no framework.
"""

from __future__ import annotations

__all__: list[str] = []
