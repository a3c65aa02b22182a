"""Person and auth tokens issued by a real -11 person server (@hellocoop/mockin 2.x) are
accepted by the resource verifier; tampered ones are rejected with the right code.

The agent side is done by hand here (httpsig ``sign_request`` with the agent token): mockin
issues a person token for https://resource.example, the resource challenges with a resource
token, mockin exchanges it for an auth token, the resource serves the request. The resource
finds mockin's keys through real discovery (metadata + JWKS over HTTP, egress admission),
with https://ps.example mapped to mockin on loopback at the transport only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aauth_agents.discovery import AsyncDiscovery, EgressPolicy
from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol import parse_requirement, parse_signature_error
from aauth_agents.protocol.encoding import b64url_decode, b64url_encode
from aauth_agents.resource import (
    AAuthMiddleware,
    AAuthResource,
    AccessRule,
    ResourceConfig,
    RoutePolicy,
)
from aauth_agents.tokens import TYP_AUTH, TYP_PERSON, mint_agent_token, peek
from aauth_agents.transport import AsyncMappedTransport, MappedTransport

AP = "https://agents.example"
PS = "https://ps.example"
RESOURCE = "https://resource.example"


class Signer(httpx.Auth):
    requires_request_body = True

    def __init__(self, key: PrivateKey, token: str) -> None:
        self.key, self.token = key, token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        model = HttpRequest(
            request.method, str(request.url), request.headers.multi_items(), request.content or None
        )
        request.headers.update(
            sign_request(model, key=self.key, signature_key=SignatureKey.from_jwt(self.token))
        )
        yield request


@pytest.fixture
def setting(mockin: Any) -> Generator[dict[str, Any], None, None]:
    ap_key = PrivateKey.generate("Ed25519", kid="ap-1")
    agent_key = PrivateKey.generate("Ed25519")
    agent_token = mint_agent_token(
        ap_key, iss=AP, sub="aauth:helper@agents.example", cnf=agent_key.public_key, ps=PS
    )
    mockin.trust(
        AP, {"issuer": AP, "jwks_uri": AP + "/jwks.json"}, {"keys": [ap_key.public_key.to_jwk()]}
    )
    discovery = AsyncDiscovery(
        transport=AsyncMappedTransport(mockin.mapping, strict=True),
        egress=EgressPolicy.for_mapped_hosts({"ps.example": "127.0.0.1"}, allow_loopback=True),
    )
    resource = AAuthResource(
        ResourceConfig(
            identifier=RESOURCE,
            signing_key=PrivateKey.generate("Ed25519", kid="res-1"),
            issuer_keys=discovery,
            scope_descriptions={"notes.read": "Read your notes"},
        )
    )
    mockin.trust(RESOURCE, resource.metadata(), resource.jwks())

    async def notes(request: Request) -> JSONResponse:
        caller = request.state.aauth
        return JSONResponse(
            {"kind": caller.kind, "person": caller.person, "scopes": list(caller.scopes)}
        )

    app = Starlette(routes=[Route("/notes", notes), Route("/me", notes)])
    app.add_middleware(
        AAuthMiddleware,
        resource=resource,
        policy=RoutePolicy({"/notes": AccessRule.auth("notes.read"), "/me": AccessRule.person()}),
    )
    ps = httpx.Client(
        transport=MappedTransport(mockin.mapping, strict=True),
        auth=Signer(agent_key, agent_token),
        timeout=10,
    )
    metadata = ps.get(PS + "/.well-known/aauth-person.json").json()
    yield {"app": app, "ps": ps, "metadata": metadata, "agent_key": agent_key, "resource": resource}
    ps.close()


def _person_token(setting: dict[str, Any]) -> str:
    response = setting["ps"].post(
        setting["metadata"]["person_token_endpoint"], json={"resource": RESOURCE}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["person_token"]
    assert peek(token)[0]["typ"] == TYP_PERSON
    return token


def _client(setting: dict[str, Any], token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=setting["app"]),
        base_url=RESOURCE,
        auth=Signer(setting["agent_key"], token),
    )


def _tamper(token: str, **claims: Any) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(b64url_decode(payload))
    data.update(claims)
    return ".".join([header, b64url_encode(json.dumps(data).encode()), signature])


async def test_mockin_person_and_auth_tokens_are_accepted(setting: dict[str, Any]) -> None:
    person = _person_token(setting)
    async with _client(setting, person) as client:
        me = await client.get("/me")
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "person" and me.json()["person"][0] == PS
        challenge = await client.get("/notes")
    assert challenge.status_code == 401
    resource_token = parse_requirement(challenge.headers["aauth-requirement"]).resource_token
    assert resource_token is not None
    claims = peek(resource_token)[1]
    assert claims["presented_jti"] == claims["person_token_jti"] == peek(person)[1]["jti"]

    exchanged = setting["ps"].post(
        setting["metadata"]["auth_token_endpoint"], json={"resource_token": resource_token}
    )
    assert exchanged.status_code == 200, exchanged.text
    auth = exchanged.json()["auth_token"]
    assert peek(auth)[0]["typ"] == TYP_AUTH
    async with _client(setting, auth) as client:
        served = await client.get("/notes")
    assert served.status_code == 200, served.text
    assert served.json() == {
        "kind": "auth",
        "person": [PS, peek(person)[1]["sub"]],
        "scopes": ["notes.read"],
    }


async def test_tampered_mockin_tokens_are_rejected(setting: dict[str, Any]) -> None:
    person = _person_token(setting)
    async with _client(setting, person) as client:
        resource_token = parse_requirement(
            (await client.get("/notes")).headers["aauth-requirement"]
        ).resource_token
    auth = (
        setting["ps"]
        .post(setting["metadata"]["auth_token_endpoint"], json={"resource_token": resource_token})
        .json()["auth_token"]
    )
    cases = [
        (_tamper(person, sub="someone-else"), "/me", "invalid_jwt", "invalid_person_token"),
        (
            _tamper(auth, scope="notes.read notes.write"),
            "/notes",
            "invalid_jwt",
            "invalid_auth_token",
        ),
        (_tamper(auth, exp=int(time.time()) - 10), "/notes", "invalid_jwt", "invalid_auth_token"),
        (
            auth[:-4] + ("AAAA" if not auth.endswith("AAAA") else "BBBB"),
            "/notes",
            "invalid_jwt",
            "invalid_auth_token",
        ),
    ]
    for token, path, signature_error, token_error in cases:
        async with _client(setting, token) as client:
            response = await client.get(path)
        assert response.status_code == 401, (path, response.text)
        assert parse_signature_error(response.headers["signature-error"]).code == signature_error
        assert response.json()["token_error"] == token_error
    # an auth token for another resource (mockin sets aud from the resource token's iss)
    async with _client(setting, _tamper(auth, aud="https://other.example")) as client:
        assert (await client.get("/notes")).status_code == 401


# -- the agent client (aauth_agents.agent.AAuth) against this middleware, over uvicorn ------------


class AgentSetting:
    """A Starlette app behind AAuthMiddleware on uvicorn, mockin as the PS, and an AAuth agent
    whose sleeps (between polls) can act as the approver."""

    def __init__(self, mockin: Any) -> None:
        from aauth_agents.agent import AAuth, AgentIdentity

        self.mockin = mockin
        ap_key = PrivateKey.generate("Ed25519", kid="ap-1")
        self.agent_key = PrivateKey.generate("Ed25519")
        token = mint_agent_token(
            ap_key, iss=AP, sub="aauth:helper@agents.example", cnf=self.agent_key.public_key, ps=PS
        )
        mockin.trust(
            AP,
            {"issuer": AP, "jwks_uri": AP + "/jwks.json"},
            {"keys": [ap_key.public_key.to_jwk()]},
        )
        from aauth_agents.tokens import DWK_AGENT, StaticIssuerKeys

        class Keys:  # the agent provider pinned, the PS discovered
            def __init__(self) -> None:
                self.pinned = StaticIssuerKeys({(AP, DWK_AGENT): [ap_key.public_key]})
                self.discovery = AsyncDiscovery(
                    transport=AsyncMappedTransport(mockin.mapping, strict=True),
                    egress=EgressPolicy.for_mapped_hosts(
                        {"ps.example": "127.0.0.1"}, allow_loopback=True
                    ),
                )

            def get_key(self, iss: str, dwk: str, kid: str) -> Any:
                return self.pinned.get_key(iss, dwk, kid)

            async def aget_key(self, iss: str, dwk: str, kid: str) -> Any:
                if iss == AP:
                    return self.pinned.get_key(iss, dwk, kid)
                return await self.discovery.aget_key(iss, dwk, kid)

        def signed_in(request: Request) -> str | None:
            return "alice" if request.cookies.get("session") == "alice" else None

        self.resource = AAuthResource(
            ResourceConfig(
                identifier=RESOURCE,
                signing_key=PrivateKey.generate("Ed25519", kid="res-1"),
                issuer_keys=Keys(),
                person_authenticator=signed_in,
                scope_descriptions={
                    "notes.read": "Read notes",
                    "notes.write": "Write notes",
                    "notes.delete": "Delete notes",
                },
            )
        )
        mockin.trust(RESOURCE, self.resource.metadata(), self.resource.jwks())
        self.executed: list[str] = []

        async def handler(request: Request) -> JSONResponse:
            caller = request.state.aauth
            self.executed.append(request.url.path)
            return JSONResponse(
                {
                    "kind": caller.kind,
                    "scopes": list(caller.scopes),
                    "session": caller.session.sub if caller.session else None,
                    "body": (await request.body()).decode(),
                }
            )

        paths = ["/agent", "/person", "/notes", "/deferred", "/approve", "/session"]
        app = Starlette(routes=[Route(p, handler, methods=["GET", "POST"]) for p in paths])
        app.add_middleware(
            AAuthMiddleware,
            resource=self.resource,
            policy=RoutePolicy(
                [
                    ("*", "/person", AccessRule.person()),
                    ("GET", "/notes", AccessRule.auth("notes.read")),
                    ("POST", "/notes", AccessRule.auth("notes.write")),
                    ("*", "/deferred", AccessRule.auth("notes.delete", deferred=True)),
                    ("*", "/approve", AccessRule.agent(approval=True)),
                    ("*", "/session", AccessRule.session("notes.read")),
                ],
                default=AccessRule.agent(),
            ),
        )
        self.app = app
        self.identity = AgentIdentity(self.agent_key, token)
        self.make_auth = AAuth

    def act_while_waiting(self, _seconds: float) -> None:
        """What the other parties do while the agent waits between polls: the approver
        resolves approvals; the person, who got the interaction link through the PS relay
        (mockin accepts relays), opens it and approves."""
        import asyncio

        for record in list(self.resource.stores.pending._records.values()):  # type: ignore[attr-defined]
            if record.state != "pending":
                continue
            if record.kind == "approval":
                asyncio.run(self.resource.resolve(record.id))
            elif record.kind == "interaction" and self.server_url:
                self.person(self.resource.interaction_url(record.interaction_id), record.code)

    server_url = ""

    def person(self, url: str, code: str) -> None:
        """The person: opens the link, is signed in, approves."""
        with httpx.Client(
            transport=MappedTransport({RESOURCE: self.server_url}), cookies={"session": "alice"}
        ) as browser:
            page = browser.get(url, params={"code": code})
            assert page.status_code == 200, page.text
            token = page.text.split('name="page_token" value="')[1].split('"')[0]
            done = browser.post(url, data={"decision": "approve", "page_token": token})
            assert done.status_code == 200


def test_agent_client_passes_every_challenge(mockin: Any) -> None:
    """agent-token, person-token, auth-token (three-party, mockin), step-up, deferred
    auth-token, approval and two-party interaction with a session token -- each answered by
    aauth_agents.agent.AAuth over real HTTP."""
    from aauth_agents.servers import LoopbackServer

    setting = AgentSetting(mockin)
    with LoopbackServer(setting.app) as server:
        setting.server_url = server.url
        auth = setting.make_auth(
            setting.identity,
            sleep=setting.act_while_waiting,
            on_interaction=setting.person,
            prefer_wait=None,
        )
        mapping = {**mockin.mapping, RESOURCE: server.url}
        with httpx.Client(
            transport=MappedTransport(mapping, strict=True), auth=auth, timeout=20
        ) as client:
            agent = client.get(RESOURCE + "/agent")
            person = client.get(RESOURCE + "/person")
            read = client.get(RESOURCE + "/notes")
            write = client.post(RESOURCE + "/notes", json={"text": "hi"})  # step-up
            deferred = client.post(RESOURCE + "/deferred", json={"n": 1})
            approved = client.post(RESOURCE + "/approve", json={"a": 1})
            session = client.get(RESOURCE + "/session")
            again = client.get(RESOURCE + "/session")
    assert agent.status_code == 200 and agent.json()["kind"] == "agent"
    assert person.status_code == 200 and person.json()["kind"] == "person", person.text
    assert read.status_code == 200 and read.json()["scopes"] == ["notes.read"], read.text
    assert write.status_code == 200, write.text
    assert "notes.write" in write.json()["scopes"]
    assert deferred.status_code == 200 and deferred.json()["body"] == '{"n":1}', deferred.text
    assert "notes.delete" in deferred.json()["scopes"]
    assert approved.status_code == 200 and approved.json()["body"] == '{"a":1}', approved.text
    assert session.status_code == 200 and session.json()["session"] == "alice", session.text
    assert again.status_code == 200 and again.json()["session"] == "alice"
    assert setting.executed.count("/deferred") == 1 and setting.executed.count("/approve") == 1
