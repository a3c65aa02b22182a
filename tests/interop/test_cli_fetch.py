"""``aauth-agents fetch`` as a real subprocess: the three-party flow against mockin (a real -11
person server) and a resource served by uvicorn on 127.0.0.1.

Nothing in between is simulated. The agent's keys are made by ``aauth-agents keys init``; mockin
trusts the agent's self-hosted provider from ``keys show --provider-metadata``; the resource
discovers the provider's and the PS's keys over real HTTP. Identifiers stay real
(``https://resource.example``, ``https://ps.example``, ``https://agent.example``); only the
connections are mapped to loopback (``--map`` on the command line).

The flow: agent token -> 401 ``requirement=person-token`` -> person token from mockin -> 401
``requirement=auth-token`` with a resource token for ``aud=https://ps.example`` -> auth token
from mockin -> 200.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aauth_agents.agent.provider import load_local_agent
from aauth_agents.agent.storage import DirectoryKeyStore
from aauth_agents.discovery import AsyncDiscovery, EgressPolicy
from aauth_agents.httpsig import HttpRequest, SignatureVerifier
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.errors import AAuthError
from aauth_agents.protocol.requirement import Requirement
from aauth_agents.servers import LoopbackServer
from aauth_agents.tokens import (
    TYP_AGENT,
    TYP_AUTH,
    TYP_PERSON,
    AgentToken,
    AuthToken,
    PersonToken,
    async_token_key_resolver,
    mint_resource_token,
)
from aauth_agents.transport import AsyncMappedTransport

RESOURCE = "https://resource.example"
PROVIDER = "https://agent.example"
PS = "https://ps.example"
AGENT_ID = "aauth:cli@agent.example"
SCOPE = "data.read"


@dataclass
class ThreePartyResource:
    """A resource needing an auth token from the agent's PS (three-party). ``seen`` records the
    credential each request was signed under."""

    discovery: AsyncDiscovery
    key: PrivateKey = field(default_factory=PrivateKey.generate)
    seen: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": RESOURCE,
            "jwks_uri": f"{RESOURCE}/.well-known/jwks.json",
            "name": "CLI test resource",
            "scope_descriptions": {SCOPE: "Read the data"},
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public_key.to_jwk()]}

    def app(self) -> Starlette:
        verifier = SignatureVerifier()
        resolver = async_token_key_resolver(
            keys=self.discovery, audience=RESOURCE, accept=(TYP_AGENT, TYP_PERSON, TYP_AUTH)
        )

        async def metadata(request: Request) -> Response:
            return JSONResponse(self.metadata())

        async def jwks(request: Request) -> Response:
            return JSONResponse(self.jwks())

        async def protected(request: Request) -> Response:
            query = f"?{request.url.query}" if request.url.query else ""
            target = RESOURCE + request.url.path + query
            body = await request.body()
            try:
                verified = await verifier.averify(
                    HttpRequest(request.method, target, request.headers.items(), body), resolver
                )
            except AAuthError as err:
                self.seen.append(f"rejected:{err.code}")
                status, headers, content = err.to_response()
                if err.code == "invalid_request":
                    headers.update(Requirement.agent_token().headers())
                return Response(content, status_code=status, headers=headers)
            token = verified.context
            if isinstance(token, AgentToken):
                self.seen.append("agent")
                return Response(status_code=401, headers=Requirement.person_token().headers())
            if isinstance(token, PersonToken):
                self.seen.append("person")
                resource_token = mint_resource_token(
                    self.key,
                    iss=RESOURCE,
                    aud=token.iss,
                    agent_jkt=verified.thumbprint,
                    scope=SCOPE,
                    person=token,
                )
                return Response(
                    status_code=401, headers=Requirement.auth_token(resource_token).headers()
                )
            assert isinstance(token, AuthToken)
            self.seen.append("auth")
            if SCOPE not in token.scopes:
                return JSONResponse({"error": "insufficient_scope"}, status_code=403)
            if request.url.path == "/missing":
                return JSONResponse({"error": "not_found"}, status_code=404)
            return JSONResponse(
                {
                    "data": [1, 2, 3],
                    "person": token.sub,
                    "ps": token.iss,
                    "agent_jkt": verified.thumbprint,
                    "method": request.method,
                    "body": body.decode() or None,
                    "x_trace": request.headers.get("x-trace"),
                }
            )

        return Starlette(
            routes=[
                Route("/.well-known/aauth-resource.json", metadata),
                Route("/.well-known/jwks.json", jwks),
                Route("/{path:path}", protected, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )


def cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "aauth_agents.cli", *args]


def cli_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }


@dataclass
class World:
    home: Path
    keys: Path
    resource: ThreePartyResource
    resource_url: str
    mockin: Any
    thumbprint: str

    def fetch_args(self, path: str = "/data", *extra: str) -> list[str]:
        return cli(
            self.home,
            "fetch",
            f"{RESOURCE}{path}",
            "--dir",
            str(self.keys),
            "--map",
            f"{RESOURCE}={self.resource_url}",
            "--map",
            f"{PS}={self.mockin.url}",
            *extra,
        )

    def fetch(self, path: str = "/data", *extra: str, timeout: float = 120) -> Any:
        return subprocess.run(
            self.fetch_args(path, *extra),
            env=cli_env(self.home),
            capture_output=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture
def world(mockin: Any, tmp_path: Path) -> Iterator[World]:
    keys = tmp_path / "keys"
    env = cli_env(tmp_path)
    init = subprocess.run(
        cli(tmp_path, "keys", "init", "--agent-id", AGENT_ID, "--ps", PS, "--dir", str(keys)),
        env=env,
        capture_output=True,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    shown = subprocess.run(
        cli(tmp_path, "keys", "show", "--provider-metadata", "--dir", str(keys)),
        env=env,
        capture_output=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    provider = json.loads(shown.stdout)
    assert provider["issuer"] == PROVIDER
    mockin.trust(PROVIDER, provider["metadata"], provider["jwks"])

    # the agent provider, served from the same key directory, for the resource to discover
    agent = load_local_agent(DirectoryKeyStore(keys))
    with LoopbackServer(agent.provider.app()) as provider_server:
        discovery = AsyncDiscovery(
            transport=AsyncMappedTransport(
                {**mockin.mapping, PROVIDER: provider_server.url}, strict=True
            ),
            egress=EgressPolicy.for_mapped_hosts(
                {"ps.example": "127.0.0.1", "agent.example": "127.0.0.1"}, allow_loopback=True
            ),
        )
        resource = ThreePartyResource(discovery)
        mockin.trust(RESOURCE, resource.metadata(), resource.jwks())
        with LoopbackServer(resource.app()) as resource_server:
            yield World(
                home=tmp_path,
                keys=keys,
                resource=resource,
                resource_url=resource_server.url,
                mockin=mockin,
                thumbprint=provider["thumbprint"],
            )


def test_fetch_completes_the_three_party_flow(world: World) -> None:
    result = world.fetch("/data", "--justification", "Read the data for the report", "--verbose")
    assert result.returncode == 0, result.stderr.decode()
    answer = json.loads(result.stdout)
    assert answer["data"] == [1, 2, 3] and answer["ps"] == PS and answer["person"]
    assert answer["agent_jkt"] == world.thumbprint
    # every credential in turn, each over real HTTP
    assert world.resource.seen == ["agent", "person", "auth"]
    steps = result.stderr.decode()
    assert "requirement=person-token" in steps and "requirement=auth-token" in steps
    assert AGENT_ID in steps
    assert "eyJ" not in steps  # --verbose never prints a token


def test_fetch_with_headers_and_a_body(world: World, tmp_path: Path) -> None:
    payload = tmp_path / "body.json"
    payload.write_text('{"q": "x"}')
    result = world.fetch(
        "/submit?x=1",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "-H",
        "X-Trace: abc",
        "-d",
        f"@{payload}",
    )
    assert result.returncode == 0, result.stderr.decode()
    answer = json.loads(result.stdout)
    assert (answer["method"], answer["body"], answer["x_trace"]) == ("PUT", '{"q": "x"}', "abc")


def test_a_non_2xx_answer_is_printed_and_exits_1(world: World) -> None:
    result = world.fetch("/missing")
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"error": "not_found"}
    assert b"HTTP 404" in result.stderr


def test_a_denial_is_a_typed_error(world: World) -> None:
    world.mockin.configure(error="denied", error_endpoint="token")
    result = world.fetch("/data")
    assert result.returncode == 3, result.stderr.decode()
    assert b"denied" in result.stderr
    assert result.stdout == b""
    assert world.resource.seen == ["agent", "person"]  # never got an auth token to present


def test_interaction_is_shown_and_completes_after_consent(world: World) -> None:
    """The person approves at mockin while ``fetch`` waits: the approval link is written on
    stderr (a JSON line: there is no terminal), the test plays the person's browser, and
    ``fetch`` finishes."""
    world.mockin.configure(auto_approve=False, requirement="interaction")
    process = subprocess.Popen(
        world.fetch_args("/data", "--max-wait", "60"),
        env=cli_env(world.home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    lines: list[str] = []
    consented = threading.Event()

    def read_stderr() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode()
            lines.append(line)
            # No terminal: the prompt is a JSON line (aauth_agents.prompts.TerminalPrompts).
            if '"aauth.interaction"' in line and not consented.is_set():
                world.mockin.consent(json.loads(line)["code"])
                consented.set()

    # stderr belongs to the reader thread alone: communicate() would race it for the lines.
    reader = threading.Thread(target=read_stderr)
    reader.start()
    assert process.stdout is not None
    try:
        stdout = process.stdout.read()
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(timeout=10)
    assert consented.is_set(), "".join(lines)
    assert process.returncode == 0, "".join(lines)
    assert json.loads(stdout)["data"] == [1, 2, 3]
    # the link shown is the one a browser on this machine reaches (--map's loopback origin)
    assert f'"url": "{world.mockin.url}/' in "".join(lines), "".join(lines)


def test_an_unreachable_resource_is_a_network_error(world: World) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    result = subprocess.run(
        cli(
            world.home,
            "fetch",
            f"{RESOURCE}/data",
            "--dir",
            str(world.keys),
            "--map",
            f"{RESOURCE}=http://127.0.0.1:{closed}",
        ),
        env=cli_env(world.home),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 4
    assert b"network error" in result.stderr
