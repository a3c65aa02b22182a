"""AAuth for LangChain and LangGraph (``pip install 'aauth-agents[langchain]'``; the
``interrupt`` pending mode needs ``'aauth-agents[langgraph]'``; MCP tools need
``'aauth-agents[langchain-mcp]'`` on the MCP SDK 2.x line or
``'aauth-agents[langchain-mcp-adapters]'`` on 1.x).

* :func:`aauth_tool` -- one HTTP endpoint as a tool whose requests go through
  :class:`~aauth_agents.agent.AAuth` (:mod:`.http`);
* :class:`AAuthToolkit` -- a tool per operation of an OpenAPI 3 document (:mod:`.openapi`);
* :func:`load_aauth_mcp_tools` -- the tools of an AAuth-protected MCP server, over one
  long-lived MCP session; :func:`aauth_mcp_client` (2.x: ``langchain.mcp.MCPAdapter``),
  :func:`aauth_mcp_connection` (1.x: ``MultiServerMCPClient``) -- for those adapters
  (:mod:`.mcp`);
* :func:`governed`, :func:`governed_tools` -- any tool, run only with the person's
  permission (§Permission) and recorded afterwards (§Audit), under a mission
  (:mod:`.governed`).

What they share -- the agent of a run (an ``AAuth`` or a function of the
``RunnableConfig``), the httpx clients, the pending modes (``"wait"``, ``"interrupt"``),
the flow's events as ``aauth.*`` custom callback events, AAuth failures as
:class:`AAuthToolError` -- is described in :mod:`.runtime` and :mod:`.interrupts`.
"""

from __future__ import annotations

from .governed import PermissionDeniedError, governed, governed_tools, summarize
from .http import aauth_tool
from .interrupts import ClarificationResume, InteractionResume, InterruptRecords
from .mcp import (
    AAuthMcpToolset,
    aauth_mcp_client,
    aauth_mcp_connection,
    aload_aauth_mcp_tools,
    load_aauth_mcp_tools,
)
from .openapi import AAuthToolkit, OpenAPIError, OpenAPIOperation
from .runtime import (
    AAuthTool,
    AAuthToolArtifact,
    AAuthToolError,
    HTTPToolError,
    model_message,
)

__all__ = [
    "AAuthMcpToolset",
    "AAuthTool",
    "AAuthToolArtifact",
    "AAuthToolError",
    "AAuthToolkit",
    "ClarificationResume",
    "HTTPToolError",
    "InteractionResume",
    "InterruptRecords",
    "OpenAPIError",
    "OpenAPIOperation",
    "PermissionDeniedError",
    "aauth_mcp_client",
    "aauth_mcp_connection",
    "aauth_tool",
    "aload_aauth_mcp_tools",
    "governed",
    "governed_tools",
    "load_aauth_mcp_tools",
    "model_message",
    "summarize",
]
