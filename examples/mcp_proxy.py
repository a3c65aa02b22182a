"""A stdio MCP host using an AAuth-protected MCP server through ``aauth-agents mcp-proxy``.

``mcp_proxy_host.json`` (next to this file) is what a desktop app or an IDE that only
launches stdio MCP servers is given: the command ``aauth-agents mcp-proxy URL --dir DIR``.
This script plays the host. It makes an agent as ``aauth-agents keys init --agent-id
aauth:me@laptop.example --ps https://ps.example --dir DIR`` would, starts a person server
and the demo resource on loopback (``LocalStack``, serving the agent's self-hosted
provider too), then launches the configuration's command as the host would -- with this
Python (``python -m aauth_agents.cli``), the agent's directory for ``--dir`` and one
``--map`` per party so the proxy reaches them on loopback -- and talks to it through the
MCP SDK's stdio client (``mcp.client.stdio``): it lists the tools, calls ``whoami``
(the agent token is enough) and ``list_files``, for which the person must approve. The
host declares URL-mode elicitation, so the proxy hands it the person server's link; the
person approves in-process (``stack.approve``), standing in for a click.

Run: ``python examples/mcp_proxy.py`` (the MCP SDK comes with the package). For a
real host, put the JSON in its configuration with your own ``--dir`` (``aauth-agents keys
init`` makes it), and start the parties with ``aauth-agents dev`` (adding
``--map https://HOST=http://127.0.0.1:PORT`` to the args for each party it prints).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

from aauth_agents.agent.provider import init_local_agent, load_local_agent
from aauth_agents.agent.storage import DirectoryKeyStore
from aauth_agents.servers.stack import LocalStack

HOST_CONFIG = Path(__file__).with_name("mcp_proxy_host.json")
LINK = re.compile(r"(https://ps\.example/interact/[^\s?]+)\?code=([0-9A-Z-]+)")


def server_parameters(keys: Path, stack: LocalStack) -> StdioServerParameters:
    """The host configuration's ``files`` server, launched from this checkout."""
    server = json.loads(HOST_CONFIG.read_text())["mcpServers"]["files"]
    args = list(server["args"])
    args[args.index("--dir") + 1] = str(keys)
    args += [f"--map={name}={origin}" for name, origin in stack.mapping.items()]
    command = [sys.executable, "-m", "aauth_agents.cli"]  # what "aauth-agents" runs
    assert server["command"] == "aauth-agents"
    return StdioServerParameters(
        command=command[0], args=[*command[1:], *args, "--no-browser"], env=dict(os.environ)
    )


async def host(params: StdioServerParameters, stack: LocalStack) -> list[dict[str, Any]]:
    decisions: set[asyncio.Task[Any]] = set()

    async def elicit(context: Any, request: Any) -> types.ElicitResult:
        """The host shows the person server's link; the person opens it and approves."""
        link = LINK.fullmatch(request.url)
        assert link, request
        print(f"elicit:  {request.message}")
        decision = asyncio.create_task(asyncio.to_thread(stack.approve, *link.groups()))
        decisions.add(decision)
        return types.ElicitResult(action="accept")

    results = []
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, elicitation_callback=elicit) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        print(f"tools:   {sorted(tool.name for tool in tools.tools)}")
        for name in ("whoami", "list_files"):
            result = (await session.call_tool(name, {})).model_dump(by_alias=True)
            assert not result["isError"], result["content"]
            print(f"{name + ':':<11} {result['structuredContent']}")
            results.append(result["structuredContent"])
    await asyncio.gather(*decisions)
    return results


def main() -> None:
    with tempfile.TemporaryDirectory() as home, LocalStack() as stack:
        keys = Path(home) / "keys"
        store = DirectoryKeyStore(keys)
        init_local_agent(store, "aauth:me@laptop.example", ps=stack.person_server)
        stack.add("https://laptop.example", load_local_agent(store).provider.app())
        whoami, files = asyncio.run(host(server_parameters(keys, stack), stack))
    assert files == {"files": [{"name": "welcome.txt", "size": 43}]}, files
    print(f"ok: the stdio host listed {whoami['agent']}'s files through mcp-proxy")


if __name__ == "__main__":
    main()
