"""MCP SDK 2.x only (collected in .venv-mcp2): a *stateless* MCPServer behind ``protect_mcp``
asks the person (elicitation) and the model (sampling) in the middle of a tool call.

A stateless server has no channel for requests of its own; the 2.x line's answer is the
input-required round trip (SEP-2322, protocol 2026-07-28): the tool call answers with the
questions, and ``mcp.client.Client`` calls again with the answers. Each round is a new signed
POST through the agent's ``httpx2`` twin (:func:`mcp_http_client`), the auth token obtained
at the first round's challenge presented again on the next, on uvicorn over loopback."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve, Sample
from mcp_types import (
    CreateMessageResult,
    ElicitResult,
    SamplingMessage,
    TextContent,
)
from pydantic import BaseModel
from support.mcp import RESOURCE, World, wire

from aauth_agents.integrations.mcp import (
    mcp_http_client,
    protect_mcp,
    require_caller_from_context,
)
from aauth_agents.keys import PrivateKey
from aauth_agents.resource import AccessRule, ResourceConfig


class Day(BaseModel):
    day: str


def ask_day() -> Elicit[Day]:
    return Elicit("Which day suits you?", Day)


def summarise(topic: str) -> Sample:
    message = SamplingMessage(
        role="user", content=TextContent(type="text", text=f"Summarise {topic}")
    )
    return Sample([message], max_tokens=50)


def planner() -> MCPServer:
    server = MCPServer("planner", log_level="WARNING")

    @server.tool()
    async def plan(
        topic: str,
        day: Annotated[Day, Resolve(ask_day)],
        summary: Annotated[CreateMessageResult, Resolve(summarise)],
        ctx: Context,
    ) -> str:
        caller = require_caller_from_context(ctx)
        assert isinstance(summary.content, TextContent)
        return f"{topic} on {day.day}: {summary.content.text} ({caller.kind})"

    return server


@pytest.mark.filterwarnings("ignore:The sampling capability is deprecated")
async def test_a_stateless_server_asks_through_input_required_rounds(local_world: World) -> None:
    app = protect_mcp(
        planner(),
        resource=ResourceConfig(
            identifier=RESOURCE,
            signing_key=PrivateKey.generate(),
            issuer_keys=local_world.resource_discovery(),
            scope_descriptions={"plans.write": "Plan your week"},
        ),
        tools={"plan": AccessRule.auth("plans.write")},
        stateless_http=True,
    )
    local_world.serve(app)
    asked: list[str] = []
    prompted: list[str] = []

    async def elicit(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"day": "Tuesday"})

    async def sample(context: Any, params: Any) -> CreateMessageResult:
        prompted.append(params.messages[0].content.text)
        return CreateMessageResult(
            role="assistant", model="fake", content=TextContent(type="text", text="a short summary")
        )

    transport = local_world.transport()
    http_client = mcp_http_client(local_world.auth(), transport=transport)
    async with (
        http_client,
        Client(
            streamable_http_client(RESOURCE + "/mcp", http_client=http_client),
            elicitation_callback=elicit,
            sampling_callback=sample,
        ) as client,
    ):
        result = await client.call_tool("plan", {"topic": "the offsite"})
    data = wire(result)
    assert not data.get("isError"), data
    assert data["content"][0]["text"] == "the offsite on Tuesday: a short summary (auth)"
    assert asked == ["Which day suits you?"] and prompted == ["Summarise the offsite"]
    # one challenge and one token; the rounds after it presented the auth token
    assert local_world.count_token_exchanges(transport) == 1
    assert transport.count("resource.example", "/mcp") >= 3  # challenge, questions, answers
