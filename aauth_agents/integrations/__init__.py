"""Integrations with the frameworks agents and resources live in.

* :mod:`aauth_agents.integrations.mcp` -- MCP over streamable HTTP, on both MCP SDK lines
  (:mod:`~aauth_agents.integrations.mcp_sdk`): :func:`~.mcp.protect_mcp` puts an MCP server
  behind :class:`~aauth_agents.resource.AAuthMiddleware` and publishes its tools (R3, per-call
  tools included), :func:`~.mcp.caller_from_context` tells a tool who calls it, and
  :func:`~.mcp.aauth_mcp_session` opens an ``mcp.ClientSession`` whose every HTTP request is
  signed by :class:`~aauth_agents.agent.AAuth`.
* :mod:`aauth_agents.integrations.mcp_proxy` -- ``aauth-agents mcp-proxy``: a stdio MCP
  server bridged to an AAuth-protected streamable HTTP one, for hosts that speak stdio only.
* :mod:`aauth_agents.integrations.langchain` -- LangChain tools and LangGraph interrupts
  (``pip install 'aauth-agents[langchain]'``).

Each integration is a module of its own, imported on demand: importing this package pulls in
no framework.
"""

from __future__ import annotations

__all__: list[str] = []
