"""MCP tools through AAuth: the demo resource's ``/mcp`` (a FastMCP server behind the AAuth
middleware) over loopback, its tools loaded with ``load_aauth_mcp_tools`` /
``AAuthMcpToolset`` (one long-lived session) and through the MCP SDK line's own LangChain
adapter: ``langchain.mcp.MCPAdapter`` with ``aauth_mcp_client`` (2.x),
``MultiServerMCPClient`` with ``aauth_mcp_connection`` (1.x). Runs on both lines. A
LangGraph agent lists and calls them; writing steps up to files.write; a call the person
declines fails alone and the session goes on; a consent becomes a LangGraph interrupt."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from support.langchain import Graph, Party, interrupted, tool_messages

from aauth_agents.integrations.langchain import (
    AAuthMcpToolset,
    aauth_mcp_client,
    aauth_mcp_connection,
    load_aauth_mcp_tools,
)
from aauth_agents.integrations.mcp_sdk import MCP2
from aauth_agents.protocol.errors import ConfigurationError


@pytest.fixture
def toolset(party: Party) -> Iterator[Any]:
    """A toolset whose person approves every consent (scripted at the PS)."""
    made = AAuthMcpToolset(
        f"{party.stack.resource}/mcp",
        auth=party.approving(),
        async_http_client=party.mcp_client(),
        http_client=party.client(),
    )
    try:
        yield made
    finally:
        made.close()


def text_of(message: ToolMessage) -> Any:
    [block] = message.content
    assert isinstance(block, dict)
    return json.loads(block["text"])


async def test_a_langgraph_agent_lists_and_calls_mcp_tools_and_a_write_steps_up(
    party: Party, toolset: AAuthMcpToolset, mode: str
) -> None:
    tools = toolset.load() if mode == "sync" else await toolset.aload()
    by_name = {tool.name: tool for tool in tools}
    assert set(by_name) == {
        "whoami",
        "profile",
        "list_files",
        "read_file",
        "write_file",
        "delete_file",
    }
    assert by_name["read_file"].args == {"name": {"title": "Name", "type": "string"}}
    calls = [
        {"name": "list_files", "args": {}, "id": "call-1"},
        {
            "name": "write_file",
            "args": {"name": f"mcp-{mode}.txt", "content": "via MCP"},
            "id": "call-2",
        },
    ]
    done = await Graph(tools, calls, mode).start()
    listed, written = tool_messages(done)
    assert listed.status == written.status == "success"
    assert {"name": "welcome.txt", "size": 43} in text_of(listed)["files"]
    assert listed.artifact["structured_content"] == text_of(listed)
    assert text_of(written)["name"] == f"mcp-{mode}.txt"
    assert party.count("resource.example", "/mcp", "POST") >= 4  # one session, many calls
    initialize = [1 for host, method, path in party.sent if path == "/mcp" and method == "DELETE"]
    assert initialize == []  # the session stays open
    scopes = {
        e.detail.get("kind")
        for e in party.stack.events
        if e.name == "issued_auth_token" and e.agent == party.identity.agent_id
    }
    assert scopes  # auth tokens were issued: files.read, then files.write (step-up)


async def test_a_per_call_tool_asks_the_person_for_that_call(
    party: Party, toolset: AAuthMcpToolset, mode: str
) -> None:
    """The demo's ``delete_file`` (R3 per-call) as a LangChain tool: the call is held, the
    person approves that one call at the PS, the tool returns what the call did."""
    tools = toolset.load() if mode == "sync" else await toolset.aload()
    name = f"per-call-{mode}.txt"
    calls = [
        {"name": "write_file", "args": {"name": name, "content": "bye"}, "id": "call-1"},
        {"name": "delete_file", "args": {"name": name}, "id": "call-2"},
    ]
    done = await Graph(tools, calls, mode).start()
    written, deleted = tool_messages(done)
    assert written.status == deleted.status == "success", deleted.content
    assert text_of(deleted) == {"name": name, "deleted": True}
    asked = [
        e.detail
        for e in party.stack.events
        if e.name == "pending" and e.agent == party.identity.agent_id
    ]
    assert [d["kind"] for d in asked] == ["person_token", "auth_token", "auth_token"]


async def test_a_declined_call_fails_alone_and_the_session_goes_on(party: Party, mode: str) -> None:
    declining = party.auth(on_interaction=party.stack.deny)
    with AAuthMcpToolset(
        f"{party.stack.resource}/mcp", auth=declining, async_http_client=party.mcp_client()
    ) as toolset:
        tools = {tool.name: tool for tool in toolset.load()}
        calls = [
            {"name": "list_files", "args": {}, "id": "call-1"},
            {"name": "whoami", "args": {}, "id": "call-2"},
        ]
        done = await Graph(list(tools.values()), calls, mode).start()
        declined, who = tool_messages(done)
        assert declined.status == "error"
        assert declined.content == "The person declined access at resource.example."
        assert who.status == "success" and text_of(who)["agent"] == party.identity.agent_id
        posts = [p for h, m, p in party.sent if m == "POST" and p == "/mcp"]
        assert len(posts) >= 4  # initialize, notification, tools/list, the calls: one session


async def test_a_consent_is_an_interrupt(party: Party, mode: str) -> None:
    with AAuthMcpToolset(
        f"{party.stack.resource}/mcp",
        auth=party.auth(),
        on_pending="interrupt",
        async_http_client=party.mcp_client(),
        http_client=party.client(),
    ) as toolset:
        tools = toolset.load()
        graph = Graph(tools, [{"name": "list_files", "args": {}, "id": "call-1"}], mode)
        payload = interrupted(await graph.start())  # consent to the agent (person token)
        party.stack.approve(payload["url"], payload["code"])
        payload = interrupted(await graph.resume({"done": True}))  # then to files.read
        assert payload["resource"] == "https://resource.example"
        party.stack.approve(payload["url"], payload["code"])
        done = await graph.resume({"done": True})
        [message] = tool_messages(done)
        assert message.status == "success" and "welcome.txt" in message.content[0]["text"]
        assert party.pending_created() == 2  # one per consent, none from the re-runs


async def test_arguments_are_checked_before_the_call(
    party: Party, toolset: AAuthMcpToolset, mode: str
) -> None:
    tools = {tool.name: tool for tool in toolset.load()}
    sent = len(party.sent)
    value = {"type": "tool_call", "id": "c", "name": "read_file", "args": {"name": 7}}
    message = (
        tools["read_file"].invoke(value)
        if mode == "sync"
        else await tools["read_file"].ainvoke(value)
    )
    assert message.status == "error" and message.content.startswith("Invalid arguments: name")
    assert len(party.sent) == sent


async def adapter_tools(party: Party, *, hold: bool = False) -> Any:
    """The demo's tools through the MCP SDK line's own LangChain adapter, every request
    through AAuth: ``langchain.mcp.MCPAdapter`` with :func:`aauth_mcp_client` (2.x) or
    ``MultiServerMCPClient`` with :func:`aauth_mcp_connection` (1.x). Both open a new MCP
    session per tool call unless a session is held (``hold``: an ``async with`` yielding
    the tools)."""
    url = f"{party.stack.resource}/mcp"
    auth = party.approving()
    if MCP2:
        from langchain.mcp import MCPAdapter

        adapter = MCPAdapter(
            aauth_mcp_client(url, auth=auth, transport=party.stack.async_transport())
        )
        if not hold:
            return {tool.name: tool for tool in await adapter.list_tools()}

        @contextlib.asynccontextmanager
        async def held() -> AsyncIterator[dict[str, Any]]:
            async with adapter:
                yield {tool.name: tool for tool in await adapter.list_tools()}

        return held()
    from langchain_mcp_adapters.client import MultiServerMCPClient
    from langchain_mcp_adapters.tools import load_mcp_tools

    client = MultiServerMCPClient(
        {"demo": aauth_mcp_connection(url, auth=auth, transport=party.stack.async_transport())}
    )
    if not hold:
        return {tool.name: tool for tool in await client.get_tools()}

    @contextlib.asynccontextmanager
    async def session() -> AsyncIterator[dict[str, Any]]:
        async with client.session("demo") as opened:
            yield {tool.name: tool for tool in await load_mcp_tools(opened)}

    return session()


async def test_the_lines_own_adapter_in_one_session(party: Party) -> None:
    async with await adapter_tools(party, hold=True) as tools:
        listed = await tools["list_files"].ainvoke(
            {"type": "tool_call", "id": "c", "name": "list_files", "args": {}}
        )
        written = await tools["write_file"].ainvoke(
            {
                "type": "tool_call",
                "id": "w",
                "name": "write_file",
                "args": {"name": "adapter.txt", "content": "held"},
            }
        )
        read = await tools["read_file"].ainvoke(
            {"type": "tool_call", "id": "r", "name": "read_file", "args": {"name": "adapter.txt"}}
        )
    assert "welcome.txt" in listed.content[0]["text"]
    assert written.status == "success", written.content
    assert json.loads(read.content[0]["text"])["content"] == "held"


def test_load_and_bad_options(party: Party) -> None:
    tools = load_aauth_mcp_tools(
        f"{party.stack.resource}/mcp",
        auth=party.approving(),
        transport=party.stack.async_transport(),
    )
    assert "whoami" in {tool.name for tool in tools}
    for bad in ({"url": "ftp://resource.example/mcp"}, {"on_pending": "later"}, {"auth": 42}):
        options: dict[str, Any] = {
            "url": f"{party.stack.resource}/mcp",
            "auth": party.auth(),
            **bad,
        }
        with pytest.raises(ConfigurationError):
            AAuthMcpToolset(options.pop("url"), **options)
    with pytest.raises(ConfigurationError):
        aauth_mcp_connection(f"{party.stack.resource}/mcp", auth="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        aauth_mcp_client(f"{party.stack.resource}/mcp", auth="x")  # type: ignore[arg-type]
    # each adapter's helper on its own line only, with a message naming the other
    other = aauth_mcp_connection if MCP2 else aauth_mcp_client
    with pytest.raises(ConfigurationError, match="aauth_mcp_client" if MCP2 else "1.x"):
        other(f"{party.stack.resource}/mcp", auth=party.auth())


async def test_fifty_sessions_in_a_row_with_the_replay_cache_on(party: Party) -> None:
    """The adapters open a new MCP session per tool call: fifty identical ``initialize``
    POSTs (and identical calls) within seconds. The agent keeps them apart (``created``,
    then a ``nonce``); the resource's replay cache, keyed on the signed content, takes none
    of them for a replay."""
    tools = await adapter_tools(party)
    for number in range(50):
        message = await tools["whoami"].ainvoke(
            {"type": "tool_call", "id": f"c{number}", "name": "whoami", "args": {}}
        )
        assert message.status == "success", message.content
        assert json.loads(message.content[0]["text"])["agent"] == party.identity.agent_id
