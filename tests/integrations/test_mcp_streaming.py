"""A FastMCP server behind ``protect_mcp`` on uvicorn whose tool, in the middle of a call,
reports progress, asks the person (elicitation) and asks the model (sampling), and tells the
client its tool list changed (a notification on the session's standing GET stream): an MCP
``ClientSession`` through AAuth answers both requests from its callbacks, sees the
notification and gets the result, with the progress notifications arriving while the call
runs (the responses are streamed, not read whole by AAuth). The tool needs an auth token,
so the call first goes through a challenge and a consent at the person server.

Stateless mode streams progress too; a stateless server cannot send a request of its own on
either MCP SDK line (1.x never delivers the answer, modelcontextprotocol/python-sdk#1740; 2.x
refuses with "this transport context has no back-channel"), so its tool here only reports
progress. Runs on both lines (scripts/test.sh)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from mcp import types
from pydantic import BaseModel
from support.mcp import RESOURCE, World

from aauth_agents.integrations.mcp import (
    aauth_mcp_session,
    protect_mcp,
    require_caller_from_context,
)
from aauth_agents.integrations.mcp_sdk import Context, new_server
from aauth_agents.keys import PrivateKey
from aauth_agents.resource import AccessRule, ResourceConfig


class Day(BaseModel):
    day: str


def planner(*, stateless: bool) -> Any:
    server: Any = new_server("planner", stateless_http=stateless, log_level="WARNING")

    @server.tool()
    async def plan(topic: str, ctx: Context) -> str:
        caller = require_caller_from_context(ctx)
        await ctx.report_progress(1, 3, "asking the person")
        if stateless:
            await asyncio.sleep(0.2)
            await ctx.report_progress(3, 3, "done")
            return f"{topic} ({caller.kind}, {' '.join(caller.scopes)})"
        answer = await ctx.elicit("Which day suits you?", schema=Day)
        assert answer.action == "accept"
        await ctx.report_progress(2, 3, "asking the model")
        sampled = await ctx.session.create_message(
            messages=[
                types.SamplingMessage(
                    role="user", content=types.TextContent(type="text", text=f"Summarise {topic}")
                )
            ],
            max_tokens=50,
        )
        assert isinstance(sampled.content, types.TextContent)
        await ctx.session.send_tool_list_changed()  # unrelated to the call: the GET stream
        await asyncio.sleep(0.2)
        await ctx.report_progress(3, 3, "done")
        return f"{topic} on {answer.data.day}: {sampled.content.text} ({caller.kind})"

    return server


@pytest.mark.parametrize("stateless", [False, True])
@pytest.mark.filterwarnings("ignore:The sampling capability is deprecated")  # (2.x, SEP-2577)
async def test_progress_elicitation_and_sampling_through_aauth(
    local_world: World, stateless: bool
) -> None:
    app = protect_mcp(
        planner(stateless=stateless),
        resource=ResourceConfig(
            identifier=RESOURCE,
            signing_key=PrivateKey.generate(),
            issuer_keys=local_world.resource_discovery(),
            scope_descriptions={"plans.write": "Plan your week"},
        ),
        tools={"plan": AccessRule.auth("plans.write")},
    )
    local_world.serve(app)
    asked: list[str] = []
    prompted: list[str] = []
    progress: list[tuple[float, str | None, float]] = []

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"day": "Tuesday"})

    async def sample(
        context: Any, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        content = params.messages[0].content
        assert isinstance(content, types.TextContent)
        prompted.append(content.text)
        return types.CreateMessageResult(
            role="assistant",
            model="fake",
            content=types.TextContent(type="text", text="a short summary"),
        )

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message, time.monotonic()))

    notified: list[str] = []

    async def on_message(message: Any) -> None:
        # 1.x hands a ServerNotification (a root model) here; 2.x the notification itself
        notification = getattr(message, "root", message)
        method = getattr(notification, "method", None)
        if isinstance(method, str) and method.startswith("notifications/"):
            notified.append(method)

    async with aauth_mcp_session(
        RESOURCE + "/mcp",
        auth=local_world.auth(),
        transport=local_world.transport(),
        elicitation_callback=elicit,
        sampling_callback=sample,
        message_handler=on_message,
    ) as session:
        result = await asyncio.wait_for(
            session.call_tool("plan", {"topic": "the offsite"}, progress_callback=on_progress), 30
        )
        finished = time.monotonic()
        for _ in range(50):  # the standing GET stream delivers on its own schedule
            if stateless or notified:
                break
            await asyncio.sleep(0.05)
    [content] = result.content
    assert isinstance(content, types.TextContent)
    if stateless:
        assert content.text == "the offsite (auth, plans.write)"
        assert [(v, m) for v, m, _ in progress] == [(1, "asking the person"), (3, "done")]
    else:
        assert content.text == "the offsite on Tuesday: a short summary (auth)"
        assert asked == ["Which day suits you?"] and prompted == ["Summarise the offsite"]
        assert "notifications/tools/list_changed" in notified
        assert [(v, m) for v, m, _ in progress] == [
            (1, "asking the person"),
            (2, "asking the model"),
            (3, "done"),
        ]
    # Streamed: the first notification arrived well before the call's result.
    assert finished - progress[0][2] >= 0.15
