"""A small world for resource tests: issuers, an agent, a resource, a Starlette app behind
AAuthMiddleware, and an httpx.Auth that signs like an agent (with a frozen clock)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aauth_agents.clock import FrozenClock
from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.encoding import b64url_encode
from aauth_agents.resource import (
    AAuthMiddleware,
    AAuthResource,
    AccessRule,
    ResourceConfig,
    ResourceEvent,
    RoutePolicy,
    current_caller,
)
from aauth_agents.stores import Stores
from aauth_agents.tokens import (
    DWK_ACCESS,
    DWK_AGENT,
    DWK_PERSON,
    StaticIssuerKeys,
    mint_agent_token,
    mint_auth_token,
    mint_person_token,
)

AP = "https://ap.example"
PS = "https://ps.example"
AS = "https://as.example"
RESOURCE = "https://resource.example"
AGENT_ID = "aauth:assistant@ap.example"
PERSON_SUB = "8f14e45fceea167a5a36dedd4bea2543"
MISSION_S256 = b64url_encode(hashlib.sha256(b'{"description":"plan a trip"}').digest())
NOW = 1_730_217_600
SCOPES = {
    "data.read": "Read your data",
    "data.write": "Change your data",
    "data.delete": "Delete your data",
}


class Signer(httpx.Auth):
    """Signs every request like an AAuth agent: ``Signature-Key: sig=jwt;jwt=<token>``."""

    requires_request_body = True

    def __init__(
        self,
        key: PrivateKey,
        token: str,
        clock: FrozenClock,
        *,
        extra_components: Iterable[str] = (),
        created: int | None = None,
    ) -> None:
        self.key, self.token, self.clock = key, token, clock
        self.extra_components = tuple(extra_components)
        self.created = created

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        model = HttpRequest(
            request.method, str(request.url), request.headers.multi_items(), request.content or None
        )
        headers = sign_request(
            model,
            key=self.key,
            signature_key=SignatureKey.from_jwt(self.token),
            clock=self.clock,
            created=self.created,
            extra_components=self.extra_components,
        )
        for name, value in headers.items():
            request.headers[name] = value
        yield request


@dataclass
class World:
    clock: FrozenClock = field(default_factory=lambda: FrozenClock(NOW))
    stores: Stores | None = None

    def __post_init__(self) -> None:
        self.ap_key = PrivateKey.generate("Ed25519", kid="ap-1")
        self.ps_key = PrivateKey.generate("Ed25519", kid="ps-1")
        self.as_key = PrivateKey.generate("ES256", kid="as-1")
        self.res_key = PrivateKey.generate("Ed25519", kid="res-1")
        self.agent_key = PrivateKey.generate("Ed25519")
        self.other_key = PrivateKey.generate("Ed25519")
        self.keys = StaticIssuerKeys(
            {
                (AP, DWK_AGENT): [self.ap_key.public_key],
                (PS, DWK_PERSON): [self.ps_key.public_key],
                (AS, DWK_ACCESS): [self.as_key.public_key],
            }
        )
        self.events: list[ResourceEvent] = []
        if self.stores is None:
            self.stores = Stores.memory(clock=self.clock)
        self.calls = 0

    # -- tokens ---------------------------------------------------------------------------

    def agent_token(self, **kw: Any) -> str:
        args: dict[str, Any] = {
            "iss": AP,
            "sub": AGENT_ID,
            "cnf": self.agent_key.public_key,
            "ps": PS,
            "clock": self.clock,
        }
        args.update(kw)
        return mint_agent_token(kw.pop("issuer_key", self.ap_key), **args)

    def person_token(self, **kw: Any) -> str:
        args: dict[str, Any] = {
            "iss": PS,
            "aud": RESOURCE,
            "sub": PERSON_SUB,
            "cnf": self.agent_key.public_key,
            "not_after": NOW + 86_400,
            "mission_s256": MISSION_S256,
            "tenant": "acme",
            "jti": "pt-1",
            "clock": self.clock,
        }
        args.update(kw)
        return mint_person_token(self.ps_key, **args)

    def auth_token(self, **kw: Any) -> str:
        args: dict[str, Any] = {
            "iss": PS,
            "aud": RESOURCE,
            "ps": PS,
            "sub": PERSON_SUB,
            "cnf": self.agent_key.public_key,
            "scope": "data.read",
            "mission_s256": MISSION_S256,
            "tenant": "acme",
            "clock": self.clock,
        }
        args.update(kw)
        key = self.as_key if args["iss"] == AS else self.ps_key
        return mint_auth_token(key, **args)

    # -- the resource -----------------------------------------------------------------------

    def config(self, **kw: Any) -> ResourceConfig:
        args: dict[str, Any] = {
            "identifier": RESOURCE,
            "signing_key": self.res_key,
            "issuer_keys": self.keys,
            "stores": self.stores,
            "clock": self.clock,
            "event_hook": self.events.append,
            "scope_descriptions": SCOPES,
            "name": "Example Data Service",
        }
        args.update(kw)
        return ResourceConfig(**args)

    def resource(self, **kw: Any) -> AAuthResource:
        return AAuthResource(self.config(**kw))

    def signer(self, token: str, key: PrivateKey | None = None, **kw: Any) -> Signer:
        return Signer(key or self.agent_key, token, self.clock, **kw)

    def app(self, resource: AAuthResource, policy: RoutePolicy | None = None) -> Starlette:
        async def whoami(request: Request) -> JSONResponse:
            self.calls += 1
            caller = request.state.aauth
            assert current_caller() is caller
            return JSONResponse(
                {
                    "kind": caller.kind,
                    "agent": caller.agent,
                    "person": caller.person,
                    "scopes": list(caller.scopes),
                    "mission_s256": caller.mission_s256,
                    "tenant": caller.tenant,
                    "thumbprint": caller.thumbprint,
                    "session": caller.session.sub if caller.session else None,
                    "calls": self.calls,
                    "body": (await request.body()).decode(),
                }
            )

        async def public(request: Request) -> JSONResponse:
            return JSONResponse({"public": True, "caller": current_caller() is not None})

        methods = ["GET", "POST", "PUT", "DELETE"]
        app = Starlette(
            routes=[
                Route("/public", public),
                Route("/agent", whoami, methods=methods),
                Route("/person", whoami, methods=methods),
                Route("/data", whoami, methods=methods),
                Route("/strict", whoami, methods=methods),
                Route("/deferred", whoami, methods=methods),
                Route("/approve", whoami, methods=methods),
                Route("/session", whoami, methods=methods),
            ]
        )
        app.add_middleware(AAuthMiddleware, resource=resource, policy=policy or default_policy())
        return app

    def client(self, app: Any, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=RESOURCE, auth=auth
        )

    def snapshot(self) -> str:
        """Everything the memory stores hold, to show a refusal wrote nothing."""
        stores = self.stores
        assert stores is not None
        from aauth_agents.stores import SQLitePendingStore

        if isinstance(stores.pending, SQLitePendingStore):
            db = stores.pending.db
            tables = (
                "aauth_pending",
                "aauth_revoked",
                "aauth_known_tokens",
                "aauth_person_tokens",
                "aauth_replay",
            )
            return json.dumps(
                {t: sorted(map(list, db.execute(f"SELECT * FROM {t}").fetchall())) for t in tables},
                default=str,
            )
        parts = {
            "pending": sorted((r.id, r.state, r.version) for r in stores.pending._records.values()),  # type: ignore[attr-defined]
            "revoked": sorted(stores.revocations._revoked.items()),  # type: ignore[attr-defined]
            "known": sorted(stores.revocations._known.items()),  # type: ignore[attr-defined]
            "persons": sorted(str(r) for r in stores.person_tokens._records.values()),  # type: ignore[attr-defined]
            "replay": sorted(map(str, stores.replay._entries)),  # type: ignore[union-attr]
        }
        return json.dumps(parts, default=str)

    def kinds(self, kind: str) -> list[ResourceEvent]:
        return [e for e in self.events if e.kind == kind]


def default_policy() -> RoutePolicy:
    return RoutePolicy(
        [
            ("*", "/public", AccessRule.public()),
            ("*", "/person", AccessRule.person()),
            ("GET", "/data", AccessRule.auth("data.read")),
            ("*", "/data", AccessRule.auth("data.write")),
            ("*", "/strict", AccessRule.auth("data.delete", step_up=False)),
            ("*", "/deferred", AccessRule.auth("data.write", deferred=True)),
            ("*", "/approve", AccessRule.agent(approval=True)),
            ("*", "/session", AccessRule.session("data.read")),
        ],
        default=AccessRule.agent(),
    )


async def send_signed(
    world: World,
    app: Any,
    token: str | None,
    *,
    key: PrivateKey | None = None,
    path: str = "/deferred",
    method: str = "POST",
    body: bytes = b"{}",
    components: list[str] | None = None,
    created: int | None = None,
    expires: int | None = None,
    signature_key: SignatureKey | None = None,
    extra_headers: dict[str, str] | None = None,
    drop_headers: Iterable[str] = (),
) -> httpx.Response:
    """Sign a request exactly as told (even wrongly) and send it through ``app``."""
    headers = {"content-type": "application/json"} if body else {}
    headers.update(extra_headers or {})
    model = HttpRequest(method, RESOURCE + path, headers, body or None)
    signature_key = signature_key or SignatureKey.from_jwt(token or "")
    headers.update(
        sign_request(
            model,
            key=key or world.agent_key,
            signature_key=signature_key,
            components=components,
            created=created,
            expires=expires,
            clock=world.clock,
        )
    )
    for name in drop_headers:
        headers.pop(name, None)
    async with world.client(app) as client:
        return await client.request(method, path, content=body, headers=headers)
