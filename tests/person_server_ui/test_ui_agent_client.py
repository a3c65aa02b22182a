"""End to end in a browser: the real agent client (:class:`aauth_agents.agent.AAuth`) calls a
resource protected by :class:`aauth_agents.resource.AAuthMiddleware`; its ``on_interaction``
hands the link to the person, who signs in and approves in headless Chromium."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.ps import AP, HOSTS, PS, make_world
from support.ui import TIMEOUT, sign_in, start_ui

from aauth_agents.agent import AAuth
from aauth_agents.discovery import AsyncDiscovery, EgressPolicy
from aauth_agents.keys import PrivateKey
from aauth_agents.resource import (
    AAuthMiddleware,
    AAuthResource,
    AccessRule,
    ResourceConfig,
    RoutePolicy,
    current_caller,
)
from aauth_agents.servers import LoopbackServer
from aauth_agents.stores import Stores
from aauth_agents.transport import AsyncMappedTransport

API = "https://api.example"
EGRESS = EgressPolicy.for_mapped_hosts({**HOSTS, "api.example": "127.0.0.1"}, allow_loopback=True)


async def test_agent_client_consent_in_chromium(browser: Any) -> None:
    world = make_world()
    clock = world.clock
    ap_app = world.ap.app()
    holder: dict[str, Any] = {}

    async def ps_asgi(scope: Any, receive: Any, send: Any) -> None:
        await holder["ps"](scope, receive, send)

    resource = AAuthResource(
        ResourceConfig(
            identifier=API,
            signing_key=PrivateKey.generate(kid="api-1"),
            clock=clock,
            issuer_keys=AsyncDiscovery(
                transport=AsyncMappedTransport({PS: ps_asgi, AP: ap_app}, strict=True),
                egress=EGRESS,
                clock=clock,
            ),
            scope_descriptions={"data.read": "Read your **data**"},
            name="The API",
            description="An API for *tests*",
            stores=Stores.memory(clock=clock),
        )
    )

    async def data(request: Request) -> JSONResponse:
        return JSONResponse({"scopes": list(current_caller().scopes)})

    api = Starlette(routes=[Route("/data", data)])
    api.add_middleware(
        AAuthMiddleware,
        resource=resource,
        policy=RoutePolicy({"/data": AccessRule.auth("data.read")}),
    )
    start_ui(
        world,
        discovery=AsyncDiscovery(
            transport=AsyncMappedTransport({AP: ap_app, API: api}, strict=True),
            egress=EGRESS,
            clock=clock,
        ),
        transport=AsyncMappedTransport({API: api}, strict=True),
    )
    holder["ps"] = world.app
    page = await browser.new_page()
    screens: list[str] = []
    try:
        with LoopbackServer(world.app) as server:

            async def person_at_the_link(url: str, code: str) -> None:
                await page.goto(server.url + url.removeprefix(PS) + f"?code={code}")
                if await page.locator("#signin").count():
                    await sign_in(page)
                await page.locator("#approve").wait_for(timeout=TIMEOUT)
                screens.append(await page.locator("body").inner_text())
                await page.click("#approve")
                await page.locator("#message").wait_for(timeout=TIMEOUT)

            identity = world.ap.identity(PrivateKey.generate(), "aauth:assistant@agents.example")
            auth = AAuth(
                identity,
                clock=clock,
                on_interaction=person_at_the_link,
                sleep=lambda seconds: clock.advance(max(float(seconds), 1.0)),
                justification="Fetch the **report**",
                prefer_wait=None,
            )
            async with httpx.AsyncClient(
                auth=auth,
                transport=AsyncMappedTransport({PS: server.url, API: api, AP: ap_app}, strict=True),
            ) as client:
                response = await client.get(f"{API}/data")
                assert response.status_code == 200, response.text
                assert response.json()["scopes"] == ["data.read"]
    finally:
        await world.close()
    # Two screens: the person token for the API (a new agent), then the scope.
    assert len(screens) == 2
    assert "The API" in screens[0] and "This agent is new" in screens[0]
    assert "Read your data" in screens[1] and "Fetch the report" in screens[1]
