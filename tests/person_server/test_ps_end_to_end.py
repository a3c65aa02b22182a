"""End to end with the other real parts: the agent client (:class:`aauth_agents.agent.AAuth`)
calls a resource protected by :class:`aauth_agents.resource.AAuthMiddleware`, whose
challenges it answers at this PS; the person consents through ``ps.interactions``. Then the
agent provider revokes the agent token and the PS's revocation reaches the resource."""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.ps import AP, HOSTS, PASSWORD, PS, World

from aauth_agents.agent import AAuth
from aauth_agents.discovery import AsyncDiscovery, EgressPolicy
from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.keys import PrivateKey
from aauth_agents.resource import (
    AAuthMiddleware,
    AAuthResource,
    AccessRule,
    ResourceConfig,
    RoutePolicy,
    current_caller,
)
from aauth_agents.servers.person_server import InteractionView, create_person_server
from aauth_agents.stores import Stores
from aauth_agents.tokens import DWK_AGENT, peek
from aauth_agents.transport import AsyncMappedTransport

API = "https://api.example"
EGRESS = EgressPolicy.for_mapped_hosts({**HOSTS, "api.example": "127.0.0.1"}, allow_loopback=True)


async def test_agent_client_resource_and_person_server(bare: World) -> None:
    clock = bare.clock
    ap_app = bare.ap.app()
    holder: dict[str, Any] = {}

    async def ps_asgi(scope: Any, receive: Any, send: Any) -> None:  # late-bound PS app
        await holder["ps"](scope, receive, send)

    # The resource: real middleware, trusting PS and agent provider keys through discovery.
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
            scope_descriptions={"data.read": "Read your data"},
            name="The API",
            description="An API for *tests*",
            stores=Stores.memory(clock=clock),
        )
    )

    async def data(request: Request) -> JSONResponse:
        caller = current_caller()
        return JSONResponse(
            {"sub": caller.person[1] if caller.person else None, "scopes": list(caller.scopes)}
        )

    api = Starlette(routes=[Route("/data", data)])
    api.add_middleware(
        AAuthMiddleware,
        resource=resource,
        policy=RoutePolicy({"/data": AccessRule.auth("data.read")}),
    )

    # The PS, fetching the resource's and the provider's documents through discovery.
    mapping = {AP: ap_app, API: api}
    ps_app = create_person_server(
        bare.config(
            discovery=AsyncDiscovery(
                transport=AsyncMappedTransport(mapping, strict=True), egress=EGRESS, clock=clock
            ),
            transport=AsyncMappedTransport({API: api}, strict=True),
        )
    )
    holder["ps"] = ps_app
    ps = ps_app.state.person_server
    bare.ps = ps
    ps.accounts.create_account("alice", PASSWORD)

    seen: list[InteractionView] = []

    async def person_at_the_link(url: str, code: str) -> None:
        """The person opens the link, signs in, reads the request and approves it."""
        view = await ps.interactions.lookup(url.rsplit("/", 1)[1], code)
        seen.append(view)
        account = await ps.accounts.aauthenticate("alice", PASSWORD)
        assert account is not None
        await ps.interactions.approve(view.id, account.username)

    agent_key = PrivateKey.generate()
    identity = bare.ap.identity(agent_key, "aauth:assistant@agents.example")
    auth = AAuth(
        identity,
        clock=clock,
        on_interaction=person_at_the_link,
        sleep=lambda seconds: clock.advance(max(float(seconds), 1.0)),
        justification="Fetch the report",
        prefer_wait=None,
    )
    async with httpx.AsyncClient(
        auth=auth, transport=AsyncMappedTransport({PS: ps_app, API: api, AP: ap_app}, strict=True)
    ) as client:
        response = await client.get(f"{API}/data")
        assert response.status_code == 200, response.text
        assert response.json()["scopes"] == ["data.read"]
        # The person was asked twice: may this agent act at the API as them, then for the
        # scope. Both screens showed the resource from its metadata.
        assert [v.kind for v in seen] == ["person_token", "auth_token"]
        assert seen[0].resource is not None and seen[0].resource.name == "The API"
        assert seen[0].new_agent and not seen[1].new_agent
        assert [s.description for s in seen[1].scopes] == ["Read your data"]
        assert seen[1].justification == "Fetch the report"
        # Cached from now on: no new consent.
        assert (await client.get(f"{API}/data")).status_code == 200
        assert len(seen) == 2

        # The provider revokes the agent token; the PS tells the API.
        body = json.dumps({"iss": AP, "jti": peek(identity.agent_token)[1]["jti"]}).encode()
        signed = sign_request(
            HttpRequest("POST", f"{PS}/revoke", {"content-type": "application/json"}, body),
            key=bare.ap.key,
            clock=clock,
            signature_key=SignatureKey.from_jwks_uri(
                id=AP, dwk=DWK_AGENT, kid=str(bare.ap.key.kid)
            ),
        )
        async with httpx.AsyncClient(
            transport=AsyncMappedTransport({PS: ps_app}, strict=True)
        ) as provider:
            revoked = await provider.post(
                f"{PS}/revoke", content=body, headers={"content-type": "application/json", **signed}
            )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json() == {"revoked_auth_tokens": 1, "notified": 1}
        refused = await client.get(f"{API}/data")
        assert refused.status_code == 403 and refused.json()["error"] == "revoked"
