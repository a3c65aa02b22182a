"""An MCP server behind AAuth: ``protect_mcp``, a rule per tool, a per-call tool.

A notes server (``MCPServer`` on the MCP SDK 2.x line, ``FastMCP`` on 1.x: the same code)
is put behind ``AAuthMiddleware`` with ``protect_mcp`` as ``https://notes.example``:
``read_notes`` needs ``notes.read``, ``add_note`` ``notes.write``, and every call of
``clear_notes`` is shown to the person with its arguments and approved one at a time (R3
per-call). Tools read their caller with ``require_caller_from_context``. An agent then
calls the tools through ``aauth_mcp_session``, the person approving in-process
(``on_interaction=stack.approve``) at a person server on loopback (``LocalStack``).

Run: ``python examples/mcp_server.py`` (the MCP SDK, 1.x or 2.x, comes
with the package).
To serve it alone, ``uvicorn`` the app ``protect_mcp`` returns with an ``issuer_keys`` of
``AsyncDiscovery()``.
"""

from __future__ import annotations

import asyncio
from typing import Any

try:  # the MCP SDK 2.x line
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # 1.x
    from mcp.server.fastmcp import Context  # type: ignore[no-redef]
    from mcp.server.fastmcp import FastMCP as Server  # type: ignore[no-redef]

from aauth_agents.agent import AAuth
from aauth_agents.integrations.mcp import (
    aauth_mcp_session,
    protect_mcp,
    require_caller_from_context,
)
from aauth_agents.keys import PrivateKey
from aauth_agents.resource import AccessRule, Display, ResourceConfig
from aauth_agents.servers.stack import LocalStack

NOTES = "https://notes.example"
server = Server("notes", log_level="WARNING")
notes: list[str] = ["buy milk"]


@server.tool()
def read_notes(ctx: Context) -> list[str]:  # type: ignore[type-arg]
    """Read the person's notes."""
    require_caller_from_context(ctx)  # who calls: their person and scopes
    return notes


@server.tool()
def add_note(text: str, ctx: Context) -> str:  # type: ignore[type-arg]
    """Add a note."""
    caller = require_caller_from_context(ctx)
    notes.append(text)
    return f"added for person {caller.person[1] if caller.person else '?'}"


@server.tool()
def clear_notes(reason: str) -> int:
    """Delete every note."""
    cleared = len(notes)
    notes.clear()
    return cleared


def describe_clear(call: Any) -> Display:
    """What the person reads before this one call runs."""
    return Display(
        summary=f"Delete all {len(notes)} of your notes",
        detail=f"Reason given: {call.arguments['reason']}",
        irreversible="Deleted notes cannot be restored.",
    )


async def agent(stack: LocalStack) -> list[Any]:
    auth = AAuth(stack.enroll(), on_interaction=stack.approve, justification="Keep notes")
    async with aauth_mcp_session(
        f"{NOTES}/mcp", auth=auth, transport=stack.async_transport()
    ) as session:
        listed = await session.list_tools()
        print(f"tools:   {sorted(tool.name for tool in listed.tools)}")
        results = []
        for name, arguments in (
            ("read_notes", {}),
            ("add_note", {"text": "call mum"}),  # a step-up to notes.write
            ("clear_notes", {"reason": "spring cleaning"}),  # approved for this call only
        ):
            # as on the wire (1.x names the fields in camelCase, 2.x in snake_case)
            result = (await session.call_tool(name, arguments)).model_dump(by_alias=True)
            assert not result["isError"], result["content"]
            print(f"{name + ':':<12} {result['structuredContent']}")
            results.append(result["structuredContent"])
        return results


def main() -> None:
    with LocalStack() as stack:
        app = protect_mcp(
            server,
            resource=ResourceConfig(
                identifier=NOTES,
                signing_key=PrivateKey.generate(),
                issuer_keys=stack.discovery(),
                scope_descriptions={"notes.read": "Read your notes", "notes.write": "Edit notes"},
            ),
            tools={
                "read_notes": AccessRule.auth("notes.read"),
                "add_note": AccessRule.auth("notes.write"),
                "clear_notes": AccessRule.per_call("notes.write", display=describe_clear),
            },
            stateless_http=True,
        )
        stack.add(NOTES, app)
        results = asyncio.run(agent(stack))
    assert notes == [] and results[-1] == {"result": 2}, results
    print("ok: three MCP tool calls, the last approved call by call")


if __name__ == "__main__":
    main()
