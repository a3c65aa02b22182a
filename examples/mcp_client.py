"""An MCP client whose every request is signed: ``aauth_mcp_session``.

Starts an agent provider, a person server and the demo resource on loopback
(``LocalStack``); the demo resource serves its files as MCP tools at
``https://resource.example/mcp``. The agent opens an MCP ``ClientSession`` through
``aauth_mcp_session``: ``initialize`` and ``tools/list`` need only its agent token,
``list_files`` an auth token (the person consents), ``write_file`` a step-up to
``files.write``. Every challenge is answered before MCP sees a response. The person
approves in-process (``on_interaction=stack.approve``).

Run: ``python examples/mcp_client.py`` (the MCP SDK comes with the
package; both of its lines work). Against ``aauth-agents dev``: drop the stack and the
``transport``, and build ``AAuth`` from your ``keys init`` identity.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aauth_agents.agent import AAuth
from aauth_agents.integrations.mcp import aauth_mcp_session
from aauth_agents.servers.stack import LocalStack


def wire(result: Any) -> dict[str, Any]:
    """A result as on the wire (1.x names its fields in camelCase, 2.x in snake_case)."""
    data: dict[str, Any] = result.model_dump(by_alias=True, exclude_none=True)
    assert not data.get("isError"), data["content"]
    return data


async def agent(stack: LocalStack) -> dict[str, Any]:
    auth = AAuth(stack.enroll(), on_interaction=stack.approve, justification="File my notes")
    async with aauth_mcp_session(
        f"{stack.resource}/mcp", auth=auth, transport=stack.async_transport()
    ) as session:
        tools = await session.list_tools()
        print(f"tools:   {sorted(tool.name for tool in tools.tools)}")
        whoami = wire(await session.call_tool("whoami", {}))["structuredContent"]
        print(f"whoami:  {whoami['agent']}")
        files = wire(await session.call_tool("list_files", {}))["structuredContent"]
        print(f"files:   {files}")
        written = wire(
            await session.call_tool("write_file", {"name": "notes.txt", "content": "buy milk"})
        )["structuredContent"]
        print(f"written: {written}")
        read = wire(await session.call_tool("read_file", {"name": "notes.txt"}))
        return dict(read["structuredContent"])


def main() -> None:
    with LocalStack() as stack:
        read = asyncio.run(agent(stack))
    assert read == {"name": "notes.txt", "content": "buy milk"}, read
    print(f"ok: the MCP session wrote and read back {read['name']}")


if __name__ == "__main__":
    main()
