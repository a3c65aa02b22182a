"""A rule read from the body (``BodyRule``, e.g. an MCP tool's) is applied only after the
request's signature verified (issue 15): the body of an unsigned or badly signed request is
never handed to it, and the unsigned request is challenged for the rule's floor."""

from __future__ import annotations

from support.resource import World

from aauth_agents.httpsig import HttpRequest
from aauth_agents.protocol import parse_requirement
from aauth_agents.resource import AccessRule, BodyRule, RoutePolicy, mcp_tool_rules

JSON = {"Content-Type": "application/json"}


async def test_a_body_rule_reads_only_verified_requests(world: World) -> None:
    read: list[bytes | None] = []

    def decide(request: HttpRequest) -> AccessRule:
        read.append(request.body)
        return AccessRule.agent()

    policy = RoutePolicy([("*", "/agent", BodyRule(decide, AccessRule.agent()))])
    app = world.app(world.resource(), policy)
    async with world.client(app) as client:
        unsigned = await client.post("/agent", content=b"{not json", headers=JSON)
    wrong_key = world.signer(world.agent_token(), key=world.other_key)
    async with world.client(app, wrong_key) as client:
        badly_signed = await client.post("/agent", content=b"{not json", headers=JSON)
    assert unsigned.status_code == 401 and badly_signed.status_code == 401
    assert "signature-error" in badly_signed.headers
    assert read == []
    async with world.client(app, world.signer(world.agent_token())) as client:
        signed = await client.post("/agent", content=b"{not json", headers=JSON)
    assert signed.status_code == 200 and read == [b"{not json"]


async def test_unsigned_mcp_calls_are_challenged_for_the_floor(world: World) -> None:
    tools = mcp_tool_rules({"write": AccessRule.auth("data.write")}, default=AccessRule.agent())
    assert tools.floor == AccessRule.agent()
    app = world.app(world.resource(), RoutePolicy([("*", "/agent", tools)]))
    call = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write"}}'
    async with world.client(app) as client:
        unsigned = await client.post("/agent", content=call, headers=JSON)
    assert parse_requirement(unsigned.headers["aauth-requirement"]).value == "agent-token"
    async with world.client(app, world.signer(world.agent_token())) as client:
        signed = await client.post("/agent", content=call, headers=JSON)
    assert signed.status_code == 401
    assert parse_requirement(signed.headers["aauth-requirement"]).value == "person-token"


def test_a_public_tool_makes_the_floor_public() -> None:
    tools = mcp_tool_rules({"ping": AccessRule.public()}, default=AccessRule.agent())
    assert tools.floor == AccessRule.public() and not tools.after_verification
