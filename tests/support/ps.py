"""A small world of real parts around a person server, for the person server tests.

* an agent provider (:class:`~aauth_agents.agent.provider.LocalAgentProvider`, its real ASGI
  app) minting agent tokens;
* resources (:class:`Resource`): real ASGI apps publishing metadata and a JWKS, minting
  resource tokens with the tokens API from person tokens they verified through discovery of
  the PS's JWKS, serving a revocation endpoint that verifies the PS's signature, and R3
  documents at ``/aauth/r3/{id}`` to the PS alone (:meth:`Resource.publish`);
* the PS under test, reached over HTTP through httpx (an in-process ASGI transport, or
  uvicorn on loopback);
* agents (:class:`Agent`) signing every request with ``sign_request`` (content-type and
  content-digest covered on bodies).

Identifiers stay real (``https://ps.example``); only connections are mapped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aauth_agents.agent.provider import LocalAgentProvider
from aauth_agents.clock import FrozenClock
from aauth_agents.discovery import AsyncDiscovery, EgressPolicy
from aauth_agents.httpsig import (
    HttpRequest,
    KeyResolution,
    SignatureKey,
    SignatureVerifier,
    sign_request,
)
from aauth_agents.keys import PrivateKey, PublicKey
from aauth_agents.protocol.metadata import ResourceMetadata
from aauth_agents.protocol.r3 import r3_s256
from aauth_agents.servers.person_server import (
    PersonServer,
    PersonServerConfig,
    PSEvent,
    create_person_server,
)
from aauth_agents.tokens import (
    DWK_PERSON,
    averify_auth_token,
    averify_person_token,
    encode_jws,
    mint_resource_token,
    peek,
)
from aauth_agents.transport import AsyncMappedTransport

PS = "https://ps.example"
AP = "https://agents.example"
AP_CALLBACK = f"{AP}/callback"  # the agents' callback_endpoint (§Agent Provider Metadata)
RES = "https://resource.example"
DOCS = "https://docs.example"
NOW = 1_730_217_600
PASSWORD = "correct horse battery staple"

HOSTS = {
    "ps.example": "127.0.0.1",
    "agents.example": "127.0.0.1",
    "resource.example": "127.0.0.1",
    "docs.example": "127.0.0.1",
}


def egress() -> EgressPolicy:
    return EgressPolicy.for_mapped_hosts(HOSTS, allow_loopback=True)


class Resource:
    """A resource: metadata, JWKS, resource tokens, and a revocation endpoint that checks the
    caller's HTTP signature against the PS's published keys."""

    def __init__(
        self,
        issuer: str,
        clock: FrozenClock,
        *,
        name: str = "Example Data",
        description: str = "**Example** stores your documents.",
        access_mode: str = "auth-token",
        scope_descriptions: Mapping[str, str] | None = None,
        revocation: bool = True,
        revocation_status: int = 200,
    ) -> None:
        self.issuer = issuer
        self.clock = clock
        self.key = PrivateKey.generate(kid="res-1")
        self.revoked: list[dict[str, Any]] = []
        self.revocation_status = revocation_status
        #: R3 documents by id (bytes served as is), who fetched them, and how to misbehave.
        self.documents: dict[str, bytes] = {}
        self.fetches: list[str] = []
        self.r3_status = 200
        self.r3_delay = 0.0
        self.ps_discovery: AsyncDiscovery | None = None
        self.metadata = ResourceMetadata.build(
            issuer=issuer,
            jwks_uri=f"{issuer}/.well-known/jwks.json",
            name=name,
            description=description,
            access_mode=access_mode,
            scope_descriptions=dict(
                scope_descriptions
                or {"data.read": "Read your documents", "data.write": "Change your documents"}
            ),
            revocation_endpoint=f"{issuer}/revoke" if revocation else None,
        ).to_json()
        self.app = Starlette(
            routes=[
                Route("/.well-known/aauth-resource.json", self._metadata, methods=["GET"]),
                Route("/.well-known/jwks.json", self._jwks, methods=["GET"]),
                Route("/revoke", self._revoke, methods=["POST"]),
                Route("/aauth/r3/{id}", self._r3, methods=["GET"]),
            ]
        )

    async def _metadata(self, request: Request) -> Response:
        return JSONResponse(self.metadata)

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.public_key.to_jwk()]})

    def publish(self, document: bytes | Mapping[str, Any], doc_id: str = "p1") -> tuple[str, str]:
        """Serve ``document`` (bytes as given, or compact JSON) at ``/aauth/r3/{doc_id}``;
        returns its ``(r3_uri, r3_s256)``."""
        data = (
            document
            if isinstance(document, bytes)
            else json.dumps(document, separators=(",", ":")).encode()
        )
        self.documents[doc_id] = data
        return f"{self.issuer}/aauth/r3/{doc_id}", r3_s256(data)

    async def _r3(self, request: Request) -> Response:
        """An R3 document for the PS only (R3 §R3 Document Access Restriction)."""
        signer = await self._ps_signed(request, b"")
        if signer is None:
            return JSONResponse({"error": "invalid_signature"}, status_code=401)
        self.fetches.append(signer)
        if self.r3_delay:
            await asyncio.sleep(self.r3_delay)
        found = self.documents.get(request.path_params["id"])
        if found is None or self.r3_status != 200:
            return JSONResponse(
                {"error": "not_found"}, status_code=self.r3_status if self.r3_status != 200 else 404
            )
        return Response(found, media_type="application/json")

    async def _ps_signed(self, request: Request, body: bytes) -> str | None:
        """The signer of ``request`` when it is the PS (``scheme=jwks_uri``), else None."""
        assert self.ps_discovery is not None
        http_request = HttpRequest(
            request.method,
            self.issuer + request.url.path,
            [(k.decode(), v.decode()) for k, v in request.headers.raw],
            body or None,
        )
        discovery = self.ps_discovery

        async def resolve(key: SignatureKey) -> KeyResolution:
            assert key.params["id"] == PS and key.params["dwk"] == DWK_PERSON
            public = await discovery.aget_key(PS, DWK_PERSON, str(key.params["kid"]))
            return KeyResolution(jwk=public.to_jwk(), context=PS)

        verifier = SignatureVerifier(clock=self.clock, accepted_schemes=("jwks_uri",))
        try:
            verified = await verifier.averify(http_request, resolve)
        except Exception:
            return None
        return str(verified.context)

    async def _revoke(self, request: Request) -> Response:
        assert self.ps_discovery is not None
        body = await request.body()
        http_request = HttpRequest(
            "POST",
            self.issuer + request.url.path,
            [(k.decode(), v.decode()) for k, v in request.headers.raw],
            body,
        )
        discovery = self.ps_discovery

        async def resolve(key: SignatureKey) -> KeyResolution:
            assert key.params["id"] == PS and key.params["dwk"] == DWK_PERSON
            public = await discovery.aget_key(PS, DWK_PERSON, str(key.params["kid"]))
            return KeyResolution(jwk=public.to_jwk())

        verifier = SignatureVerifier(
            clock=self.clock, require_body_digest=True, accepted_schemes=("jwks_uri",)
        )
        try:
            await verifier.averify(http_request, resolve)
        except Exception as exc:  # recorded, then refused
            self.revoked.append({"refused": str(exc)})
            return JSONResponse({"error": "invalid_signature"}, status_code=401)
        data = json.loads(body)
        self.revoked.append(data)
        return Response(status_code=self.revocation_status)

    async def verify_person_token(self, token: str, agent_key: PublicKey) -> Any:
        assert self.ps_discovery is not None
        return await averify_person_token(
            token,
            keys=self.ps_discovery,
            audience=self.issuer,
            signing_key=agent_key,
            clock=self.clock,
        )

    async def resource_token(
        self, person_token: str, agent_key: PublicKey, scope: str = "data.read", **extra: Any
    ) -> str:
        """A resource token for ``agent_key`` from a person token this resource verified."""
        person = await self.verify_person_token(person_token, agent_key)
        return mint_resource_token(
            self.key,
            iss=self.issuer,
            aud=PS,
            agent_jkt=agent_key.thumbprint(),
            scope=scope,
            person=person,
            clock=self.clock,
            **extra,
        )

    def reissue(
        self,
        token: str,
        *,
        drop: tuple[str, ...] = (),
        key: PrivateKey | None = None,
        **changes: Any,
    ) -> str:
        """``token`` with claims changed or dropped, signed again (by this resource)."""
        header, claims = peek(token)
        for name in drop:
            claims.pop(name, None)
        claims.update(changes)
        return encode_jws(header, claims, key or self.key)


@dataclass
class Agent:
    """An agent: its key, its agent token, and a client for the PS."""

    world: World
    key: PrivateKey
    agent_id: str
    token: str
    parent_agent: str | None = None

    @property
    def public(self) -> PublicKey:
        return self.key.public_key

    @property
    def exp(self) -> int:
        """The ``exp`` of the agent token."""
        return int(peek(self.token)[1]["exp"])

    def refresh(self) -> None:
        self.token = self.world.ap.mint(self.key, self.agent_id, parent_agent=self.parent_agent)

    async def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        components: list[str] | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        if not url.startswith("https://"):
            url = PS + url
        content = (
            None
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        base = {"content-type": "application/json"} if content is not None else {}
        base.update(headers or {})
        http_request = HttpRequest(method, url, base, content)
        signed = sign_request(
            http_request,
            key=self.key,
            signature_key=SignatureKey.from_jwt(token or self.token),
            created=self.world.created((self.public.thumbprint(), method, url, content)),
            components=components,
        )
        return await self.world.client.request(
            method, url, content=content, headers={**base, **signed}
        )

    async def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, body, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def poll(self, response: httpx.Response, **kwargs: Any) -> httpx.Response:
        """GET the Location of a 202, as a polite agent does (after Retry-After)."""
        assert response.status_code == 202, response.text
        self.world.clock.advance(float(response.headers.get("retry-after", "1")) or 1.0)
        return await self.get(response.headers["location"], **kwargs)

    async def person_token(self, resource: str = RES, **body: Any) -> str:
        response = await self.post("/person", {"resource": resource, **body})
        assert response.status_code == 200, response.text
        return str(response.json()["person_token"])


@dataclass
class World:
    clock: FrozenClock
    ap: LocalAgentProvider
    resource: Resource
    docs: Resource
    events: list[PSEvent] = field(default_factory=list)
    ps: PersonServer | None = None
    app: Any = None
    client: httpx.AsyncClient = None  # type: ignore[assignment]
    ps_discovery: AsyncDiscovery | None = None
    #: Where the PS keeps its state: ``":memory:"`` or a PostgreSQL URL (``ps_database``).
    database: str = ":memory:"
    _closers: list[Any] = field(default_factory=list)
    _created: dict[Hashable, int] = field(default_factory=dict)

    def created(self, signed: Hashable) -> int:
        """``created`` for a request signing ``signed`` (key, method, URL, body): the clock's,
        or one past the last identical request's, as the agent's signer keeps identical
        requests apart (the PS refuses a replayed signature, §Freshness and Replay)."""
        now = int(self.clock())
        last = self._created.get(signed)
        created = now if last is None or last < now else last + 1
        self._created[signed] = created
        return created

    def config(self, **overrides: Any) -> PersonServerConfig:
        transport = AsyncMappedTransport(
            {AP: self.ap.app(), RES: self.resource.app, DOCS: self.docs.app}, strict=True
        )
        discovery = AsyncDiscovery(transport=transport, egress=egress(), clock=self.clock)
        self._closers.append(discovery)
        revocation_transport = AsyncMappedTransport(
            {RES: self.resource.app, DOCS: self.docs.app}, strict=True
        )
        values: dict[str, Any] = {
            "issuer": PS,
            "discovery": discovery,
            "transport": revocation_transport,
            "clock": self.clock,
            "events": self.events.append,
            "password_log2_n": 14,
            "database": self.database,
        }
        values.update(overrides)
        return PersonServerConfig(**values)

    def start(self, **overrides: Any) -> PersonServer:
        """(Re)start the PS with ``overrides`` and point every client at it."""
        config = self.config(**overrides)
        app = create_person_server(config)
        self.app = app
        self.ps = app.state.person_server
        self.attach(app)
        return self.ps

    def attach(self, destination: Any) -> None:
        """Route the agents' and resources' connections for ``https://ps.example`` to
        ``destination`` (an ASGI app or an ``http://127.0.0.1:PORT`` origin)."""
        self.client = httpx.AsyncClient(
            transport=AsyncMappedTransport({PS: destination}, strict=True), timeout=30
        )
        self._closers.append(self.client)
        self.ps_discovery = AsyncDiscovery(
            transport=AsyncMappedTransport({PS: destination}, strict=True),
            egress=egress(),
            clock=self.clock,
        )
        self._closers.append(self.ps_discovery)
        self.resource.ps_discovery = self.ps_discovery
        self.docs.ps_discovery = self.ps_discovery

    def agent(self, local: str = "assistant") -> Agent:
        key = PrivateKey.generate()
        agent_id = f"aauth:{local}@agents.example"
        return Agent(self, key, agent_id, self.ap.mint(key, agent_id))

    def subagent(self, parent: Agent, discriminator: str = "worker") -> Agent:
        key = PrivateKey.generate()
        local = parent.agent_id.split(":", 1)[1].split("@", 1)[0]
        agent_id = f"aauth:{local}+{discriminator}@agents.example"
        return Agent(
            self,
            key,
            agent_id,
            self.ap.mint(key, agent_id, parent_agent=parent.agent_id),
            parent_agent=parent.agent_id,
        )

    async def close(self) -> None:
        for closer in reversed(self._closers):
            await closer.aclose()
        self._closers.clear()
        if self.ps is not None:
            await self.ps.aclose()

    # -- verifying what the PS issued ----------------------------------------------------------

    async def check_person_token(
        self,
        token: str,
        agent_key: PublicKey,
        *,
        resource: str = RES,
        mission: str | None = None,
        tenant: str | None = None,
        not_after: float | None = None,
    ) -> dict[str, Any]:
        """Verify a person token as its resource would and check every claim."""
        assert self.ps_discovery is not None
        header, claims = peek(token)
        assert header == {"alg": "Ed25519", "typ": "aa-person+jwt", "kid": header["kid"]}
        assert self.ps is not None and header["kid"] == self.ps.keys.current.kid
        verified = await averify_person_token(
            token,
            keys=self.ps_discovery,
            audience=resource,
            signing_key=agent_key,
            clock=self.clock,
        )
        expected = {"iss", "dwk", "aud", "sub", "cnf", "jti", "iat", "exp"}
        expected |= {"mission_s256"} if mission else set()
        expected |= {"tenant"} if tenant else set()
        assert set(claims) == expected, claims
        assert claims["iss"] == PS and claims["dwk"] == "aauth-person.json"
        assert claims["aud"] == resource
        assert claims["cnf"] == {"jwk": agent_key.to_jwk(kid=False)}
        assert claims["iat"] == int(self.clock())
        bound = claims["iat"] + 3600
        if not_after is not None:
            bound = min(bound, int(not_after))
        assert claims["exp"] == bound
        assert claims.get("mission_s256") == mission and claims.get("tenant") == tenant
        assert isinstance(claims["sub"], str) and len(claims["sub"]) == 32
        assert verified.sub == claims["sub"]
        return claims

    async def check_auth_token(
        self,
        token: str,
        agent_key: PublicKey,
        *,
        resource: str = RES,
        sub: str,
        scope: str | None,
        mission: str | None = None,
        tenant: str | None = None,
        account: str | None = None,
        extra: Mapping[str, Any] | None = None,
        not_after: float | None = None,
    ) -> dict[str, Any]:
        """Verify an auth token as its resource would and check every claim."""
        assert self.ps_discovery is not None
        header, claims = peek(token)
        assert header == {"alg": "Ed25519", "typ": "aa-auth+jwt", "kid": header["kid"]}
        await averify_auth_token(
            token,
            keys=self.ps_discovery,
            audience=resource,
            signing_key=agent_key,
            clock=self.clock,
        )
        expected = {"iss", "dwk", "aud", "jti", "ps", "sub", "cnf", "iat", "exp"}
        for name, value in (
            ("scope", scope),
            ("mission_s256", mission),
            ("tenant", tenant),
            ("account", account),
        ):
            if value is not None:
                expected.add(name)
        expected |= set(extra or {})
        assert set(claims) == expected, claims
        assert claims["iss"] == PS and claims["ps"] == PS
        assert claims["dwk"] == "aauth-person.json"
        assert claims["aud"] == resource and claims["sub"] == sub
        assert claims["cnf"] == {"jwk": agent_key.to_jwk(kid=False)}
        assert claims.get("scope") == scope and claims.get("mission_s256") == mission
        assert claims.get("tenant") == tenant and claims.get("account") == account
        for name, value in (extra or {}).items():
            assert claims[name] == value
        assert claims["iat"] == int(self.clock())
        bound = claims["iat"] + 3600
        if not_after is not None:
            bound = min(bound, int(not_after))
        assert claims["exp"] == bound
        return claims


def make_world() -> World:
    clock = FrozenClock(NOW)
    ap = LocalAgentProvider(
        AP,
        PrivateKey.generate(kid="ap-1"),
        ps=PS,
        clock=clock,
        name="Example Agents",
        callback_endpoint=AP_CALLBACK,
        localhost_callback_allowed=True,
    )
    return World(
        clock=clock,
        ap=ap,
        resource=Resource(RES, clock),
        docs=Resource(
            DOCS,
            clock,
            name="Docs",
            access_mode="person-token",
            scope_descriptions={"docs.read": "Read docs"},
        ),
    )


def problem(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["error"])
