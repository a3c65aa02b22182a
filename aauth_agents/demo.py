"""``aauth-agents demo``: an agent proves who it is to a resource, on loopback, with nothing
configured.

Two real HTTP servers start on 127.0.0.1: an agent provider (``https://agent.example``)
publishing its metadata and JWKS, and a resource (``https://resource.example``) that verifies
every request per §Verification and the agent token per §Agent Token Verification, discovering
the provider's keys over HTTP (§JWKS Discovery and Caching). Identifiers stay real; only the
connections are mapped to loopback (:mod:`aauth_agents.transport`).

The agent then walks through: a signed GET, a signed POST with Content-Digest, a request replayed
to another path, a request with a forged Signature-Key, and an unsigned request. Each step
prints which party did what, the headers that matter and a decoded view of the token.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .discovery import AsyncDiscovery, EgressPolicy
from .httpsig import HttpRequest, SignatureKey, SignatureVerifier, sign_request
from .keys import PrivateKey
from .protocol.errors import AAuthError
from .servers import LoopbackServer
from .tokens import async_token_key_resolver, mint_agent_token, peek
from .transport import AsyncMappedTransport, MappedTransport

AGENT_PROVIDER = "https://agent.example"
RESOURCE = "https://resource.example"
PERSON_SERVER = "https://ps.example"
AGENT_ID = "aauth:assistant@agent.example"


def agent_provider_app(key: PrivateKey) -> Starlette:
    """§Agent Provider Metadata and its JWKS."""
    metadata = {
        "issuer": AGENT_PROVIDER,
        "jwks_uri": f"{AGENT_PROVIDER}/.well-known/jwks.json",
        "name": "Demo agent provider",
    }
    jwks = {"keys": [key.public_key.to_jwk()]}

    async def well_known(request: Request) -> Response:
        return JSONResponse(metadata, headers={"Cache-Control": "max-age=300"})

    async def keys(request: Request) -> Response:
        return JSONResponse(jwks, headers={"Cache-Control": "max-age=300"})

    return Starlette(
        routes=[
            Route("/.well-known/aauth-agent.json", well_known),
            Route("/.well-known/jwks.json", keys),
        ]
    )


def resource_app(agent_provider_url: str) -> Starlette:
    """A resource serving agent identity access (§Agent Token Required)."""
    discovery = AsyncDiscovery(
        transport=AsyncMappedTransport({AGENT_PROVIDER: agent_provider_url}, strict=True),
        egress=EgressPolicy.for_mapped_hosts({"agent.example": "127.0.0.1"}, allow_loopback=True),
    )
    verifier = SignatureVerifier()
    resolver = async_token_key_resolver(keys=discovery, audience=RESOURCE, accept=("aa-agent+jwt",))

    async def handle(request: Request) -> Response:
        target = (
            RESOURCE + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
        body = await request.body()
        try:
            verified = await verifier.averify(
                HttpRequest(request.method, target, request.headers.items(), body), resolver
            )
        except AAuthError as err:
            status, headers, content = err.to_response()
            if err.code == "invalid_request":  # nothing signed: say what would do
                headers["AAuth-Requirement"] = "requirement=agent-token"
            return Response(content, status_code=status, headers=headers)
        agent = verified.context
        return JSONResponse(
            {
                "agent": agent.sub,
                "agent_provider": agent.iss,
                "key_thumbprint": verified.thumbprint,
                "covered": list(verified.components),
                "note": json.loads(body) if body else None,
            }
        )

    return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST"])])


@dataclass
class Step:
    name: str
    expected: str
    observed: str

    @property
    def ok(self) -> bool:
        return self.expected == self.observed


class Walkthrough:
    def __init__(self, out: TextIO, resource_url: str, agent_key: PrivateKey, agent_token: str):
        self.out = out
        self.agent_key = agent_key
        self.agent_token = agent_token
        self.client = httpx.Client(transport=MappedTransport({RESOURCE: resource_url}, strict=True))
        self.steps: list[Step] = []

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def signed(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        signature_key: SignatureKey | None = None,
    ) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} if body else {}
        request = HttpRequest(method, RESOURCE + path, headers, body)
        added = sign_request(
            request,
            key=self.agent_key,
            signature_key=signature_key or SignatureKey.from_jwt(self.agent_token),
        )
        return {**headers, **added}

    def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> httpx.Response:
        self.say(f"  agent -> resource   {method} {RESOURCE}{path}")
        for name in ("Signature-Input", "Content-Digest"):
            if name in headers:
                self.say(f"    {name}: {headers[name]}")
        if "Signature-Key" in headers:
            self.say(f"    Signature-Key: {_short(headers['Signature-Key'])}")
        response = self.client.request(method, RESOURCE + path, headers=headers, content=body)
        self.say(f"  resource -> agent   {response.status_code}")
        for name in ("AAuth-Requirement", "Signature-Error"):
            if name in response.headers:
                self.say(f"    {name}: {response.headers[name]}")
        return response

    def step(self, name: str, expected: str, run: Callable[[], httpx.Response]) -> None:
        self.say(f"\n== {name}")
        response = run()
        observed = str(response.status_code)
        if response.status_code != 200:
            observed += " " + response.headers.get("Signature-Error", "")
        else:
            self.say(f"    body: {response.text}")
        self.steps.append(Step(name, expected, observed.strip()))


def _short(value: str, keep: int = 48) -> str:
    return value if len(value) <= keep * 2 else f"{value[:keep]}...{value[-12:]}"


def run(out: TextIO = sys.stdout) -> int:
    """Run the walkthrough; returns the process exit status (0 when every step behaved)."""
    logging.getLogger("aauth_agents.discovery").setLevel(logging.ERROR)  # the mapped egress
    started = time.monotonic()
    provider_key = PrivateKey.generate()
    agent_key = PrivateKey.generate()
    agent_token = mint_agent_token(
        provider_key,
        iss=AGENT_PROVIDER,
        sub=AGENT_ID,
        cnf=agent_key.public_key,
        ps=PERSON_SERVER,
        lifetime=3600,
    )
    print(
        "aauth-agents demo: agent identity on loopback (draft-hardt-oauth-aauth-protocol-11)",
        file=out,
    )
    print(f"\nagent provider {AGENT_PROVIDER} key {provider_key.kid}", file=out)
    print(f"agent          {AGENT_ID} key {agent_key.thumbprint()} ({agent_key.alg})", file=out)
    header, claims = peek(agent_token)
    print("agent token    " + json.dumps(header), file=out)
    shown = {k: v for k, v in claims.items() if k != "cnf"}
    print("               " + json.dumps(shown), file=out)

    with (
        LoopbackServer(agent_provider_app(provider_key)) as provider,
        LoopbackServer(resource_app(provider.url)) as resource,
    ):
        print(f"\nagent provider listening on {provider.url}, resource on {resource.url}", file=out)
        walk = Walkthrough(out, resource.url, agent_key, agent_token)
        with walk.client:
            walk.step(
                "signed GET with the agent token",
                "200",
                lambda: walk.send("GET", "/whoami", walk.signed("GET", "/whoami")),
            )
            note = json.dumps({"text": "remember the milk"}).encode()
            walk.step(
                "signed POST with Content-Digest",
                "200",
                lambda: walk.send("POST", "/notes", walk.signed("POST", "/notes", note), note),
            )
            walk.step(
                "signature replayed to another path",
                "401 error=invalid_signature",
                lambda: walk.send("GET", "/admin", walk.signed("GET", "/whoami")),
            )
            other = PrivateKey.generate()
            forged = SignatureKey.from_jwt(
                mint_agent_token(
                    other, iss=AGENT_PROVIDER, sub=AGENT_ID, cnf=agent_key.public_key, lifetime=3600
                )
            )
            walk.step(
                "agent token signed by an unknown key",
                "401 error=unknown_key",
                lambda: walk.send("GET", "/whoami", walk.signed("GET", "/whoami", None, forged)),
            )
            walk.step(
                "unsigned request",
                "401 error=invalid_request",
                lambda: walk.send("GET", "/whoami", {}),
            )

    print(
        "\nstep                                        expected                      observed",
        file=out,
    )
    for step in walk.steps:
        mark = "ok  " if step.ok else "FAIL"
        print(f"{mark} {step.name:39} {step.expected:29} {step.observed}", file=out)
    failed = [s for s in walk.steps if not s.ok]
    print(
        f"\n{len(walk.steps) - len(failed)} of {len(walk.steps)} steps as expected "
        f"in {time.monotonic() - started:.1f} s",
        file=out,
    )
    return 1 if failed else 0


__all__ = ["agent_provider_app", "resource_app", "run"]
