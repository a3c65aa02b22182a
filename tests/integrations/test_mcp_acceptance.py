"""Acceptance: the demo resource's FastMCP server behind AAuthMiddleware on uvicorn, an MCP
``ClientSession`` over streamable HTTP with the AAuth client, and a real person server (the
in-repo one, then mockin).

The session lists the tools and calls one per rung -- agent, person, ``files.read``,
``files.write`` -- and ``write_file`` makes the resource step up from ``files.read`` to
``files.write``: a second resource token, a second auth-token exchange at the PS. An unsigned
MCP request gets 401 with the rule's ``AAuth-Requirement``, and the tool list in the metadata
is the server's.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from support.mcp import AGENT_ID, PS, RESOURCE, World, wire

from aauth_agents.integrations.mcp import aauth_mcp_session
from aauth_agents.protocol import parse_requirement
from aauth_agents.resource.mcp import ACCESS_MODE_META, MCP_VOCABULARY
from aauth_agents.servers.demo_resource import TOOL_RULES, DemoResource, demo_resource

MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def _serve_demo(world: World) -> DemoResource:
    demo = demo_resource(RESOURCE, issuer_keys=world.resource_discovery(), event_hook=world.hook())
    world.serve(demo, metadata=demo.resource.metadata(), jwks=demo.resource.jwks())
    return demo


def _structured(result: Any) -> dict[str, Any]:
    data = wire(result)
    assert not data.get("isError"), data["content"]
    structured: dict[str, Any] = data["structuredContent"]
    return structured


def _rpc(method: str, params: dict[str, Any] | None = None) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    ).encode()


async def test_client_session_lists_and_calls_every_level(world: World) -> None:
    _serve_demo(world)
    transport = world.transport()
    async with aauth_mcp_session(
        RESOURCE + "/mcp", auth=world.auth(world.identity()), transport=transport
    ) as session:
        listed = await session.list_tools()
        whoami = _structured(await session.call_tool("whoami", {}))
        profile = _structured(await session.call_tool("profile", {}))
        files = _structured(await session.call_tool("list_files", {}))
        assert world.count_token_exchanges(transport) == 1
        written = _structured(
            await session.call_tool("write_file", {"name": "notes.txt", "content": "step up"})
        )
        read = _structured(await session.call_tool("read_file", {"name": "notes.txt"}))
        again = _structured(await session.call_tool("whoami", {}))

    # tools/list: every tool, each annotated with its access mode (R3)
    assert {tool.name: (tool.meta or {}).get(ACCESS_MODE_META) for tool in listed.tools} == {
        name: rule.access_mode for name, rule in TOOL_RULES.items()
    }
    # each rung, served to the credential it needs
    assert whoami["kind"] == "agent" and whoami["agent"] == AGENT_ID
    assert profile["kind"] == "person" and profile["person"]["issuer"] == PS
    sub = profile["person"]["sub"]
    assert files == {"files": [{"name": "welcome.txt", "size": 43}]}
    assert written == {"name": "notes.txt", "size": 7, "created": True}
    assert read == {"name": "notes.txt", "content": "step up"}
    assert again["kind"] == "auth" and again["person"] == {"issuer": PS, "sub": sub}
    assert set(again["scopes"]) == {"files.read", "files.write"}
    # the step-up: a second resource token (files.read + files.write), a second exchange
    issued = [e.detail["scope"] for e in world.resource_events("issued", "resource_token")]
    assert issued == ["files.read", "files.read files.write"]
    assert len(world.resource_events("challenged", "step_up")) == 1
    assert world.count_token_exchanges(transport) == 2
    # the person token was asked for once; every MCP request went to the MCP endpoint
    assert all(
        path == "/mcp" or path.startswith("/.well-known/")
        for host, _, path in transport.sent
        if host == "resource.example"
    )


async def test_unsigned_mcp_requests_get_the_rules_requirement(world: World) -> None:
    demo = _serve_demo(world)
    with world.plain_client() as client:
        initialize = client.post(
            RESOURCE + "/mcp",
            headers=MCP_HEADERS,
            content=_rpc(
                "initialize",
                {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "curl", "version": "0"},
                },
            ),
        )
        write = client.post(
            RESOURCE + "/mcp",
            headers=MCP_HEADERS,
            content=_rpc(
                "tools/call", {"name": "write_file", "arguments": {"name": "x", "content": "y"}}
            ),
        )
        metadata = client.get(RESOURCE + "/.well-known/aauth-resource.json").json()
    assert initialize.status_code == 401
    assert parse_requirement(initialize.headers["aauth-requirement"]).value == "agent-token"
    # unsigned: the body is not read before a signature verifies (issue 15), so the challenge
    # is the one every MCP message starts with; the tool's own rule comes once it is signed
    assert write.status_code == 401
    assert parse_requirement(write.headers["aauth-requirement"]).value == "agent-token"
    assert demo.files.list((PS, "anyone")) == [{"name": "welcome.txt", "size": 43}]

    assert metadata["issuer"] == RESOURCE and metadata["access_mode"] == "agent-token"
    assert metadata["r3_vocabularies"] == {MCP_VOCABULARY: RESOURCE + "/mcp"}
    assert set(metadata["scope_descriptions"]) == {"files.read", "files.write"}
    published = {t["tool"]: (t.get("access_mode"), t.get("scopes")) for t in metadata["mcp_tools"]}
    served = {tool.name for tool in await demo.mcp.list_tools()}
    assert set(published) == served == set(TOOL_RULES)
    assert published["write_file"] == ("auth-token", ["files.write"])
    assert published["whoami"] == ("agent-token", None)


async def test_rest_routes_with_the_aauth_client(world: World) -> None:
    """The same rungs as plain HTTP: GET /whoami, /profile, /files, POST /files (step-up)."""
    _serve_demo(world)
    transport = world.transport()
    async with httpx.AsyncClient(auth=world.auth(), transport=transport, timeout=20) as client:
        whoami = await client.get(RESOURCE + "/whoami")
        profile = await client.get(RESOURCE + "/profile")
        listed = await client.get(RESOURCE + "/files")
        created = await client.post(
            RESOURCE + "/files", json={"name": "todo.md", "content": "- ship"}
        )
        replaced = await client.post(
            RESOURCE + "/files", json={"name": "todo.md", "content": "- shipped"}
        )
        refused = await client.post(RESOURCE + "/files", json={"name": "../x", "content": ""})
        after = await client.get(RESOURCE + "/files")
    assert whoami.status_code == 200 and whoami.json()["agent"] == AGENT_ID
    assert profile.status_code == 200 and profile.json()["kind"] == "person"
    assert listed.status_code == 200 and listed.json()["files"][0]["name"] == "welcome.txt"
    assert created.status_code == 201, created.text
    assert replaced.status_code == 200 and replaced.json()["created"] is False
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert [f["name"] for f in after.json()["files"]] == ["todo.md", "welcome.txt"]
    assert world.count_token_exchanges(transport) == 2  # files.read, then the step-up
    token_scopes = [e.detail["scope"] for e in world.resource_events("issued", "resource_token")]
    assert token_scopes == ["files.read", "files.read files.write"]


async def test_tools_see_the_caller_of_each_request(world: World) -> None:
    """Two agents in turn, one session each: each tool call reports the agent whose request
    carried it, never another request's caller."""
    _serve_demo(world)
    first, second = world.identity("first"), world.identity("second")
    agents = {first.agent_id: world.auth(first), second.agent_id: world.auth(second)}
    seen = []
    for identity in (first, second, first):
        async with aauth_mcp_session(
            RESOURCE + "/mcp", auth=agents[identity.agent_id], transport=world.transport()
        ) as session:
            seen.append(_structured(await session.call_tool("whoami", {}))["key_thumbprint"])
            written = await session.call_tool(
                "write_file", {"name": "who.txt", "content": identity.agent_id}
            )
            assert not wire(written).get("isError")
    # the key tells agents apart whichever token they sign with (an auth token names none)
    assert seen == [first.key.thumbprint(), second.key.thumbprint(), first.key.thumbprint()]
