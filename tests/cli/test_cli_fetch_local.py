"""``aauth-agents fetch`` as a real subprocess against a resource that needs only the agent's
identity (agent identity access): no PS involved, so no Node peer. The resource discovers the
agent's self-hosted provider over real HTTP; ``--map`` sends the connections to loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support.cli import run_cli

from aauth_agents.agent.provider import load_local_agent
from aauth_agents.agent.storage import DirectoryKeyStore
from aauth_agents.discovery import AsyncDiscovery, EgressPolicy
from aauth_agents.httpsig import HttpRequest, SignatureVerifier
from aauth_agents.protocol.errors import AAuthError
from aauth_agents.protocol.requirement import Requirement
from aauth_agents.servers import LoopbackServer
from aauth_agents.tokens import TYP_AGENT, async_token_key_resolver
from aauth_agents.transport import AsyncMappedTransport

RESOURCE = "https://resource.example"
PROVIDER = "https://agent.example"
AGENT_ID = "aauth:local@agent.example"


@dataclass
class IdentityResource:
    """Serves any signed request presenting a valid agent token; records what it saw."""

    discovery: AsyncDiscovery
    seen: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        verifier = SignatureVerifier()
        resolver = async_token_key_resolver(
            keys=self.discovery, audience=RESOURCE, accept=(TYP_AGENT,)
        )

        async def handle(request: Request) -> Response:
            query = f"?{request.url.query}" if request.url.query else ""
            body = await request.body()
            record: dict[str, Any] = {
                "host": request.headers.get("host"),
                "method": request.method,
                "path": request.url.path + query,
                "body": body.decode(),
                "content_type": request.headers.get("content-type"),
            }
            self.seen.append(record)
            try:
                verified = await verifier.averify(
                    HttpRequest(
                        request.method,
                        RESOURCE + request.url.path + query,
                        request.headers.items(),
                        body,
                    ),
                    resolver,
                )
            except AAuthError as err:
                record["error"] = err.code
                status, headers, content = err.to_response()
                if err.code == "invalid_request":
                    headers.update(Requirement.agent_token().headers())
                return Response(content, status_code=status, headers=headers)
            record["agent"] = verified.context.sub
            if request.url.path == "/forbidden":
                return JSONResponse({"error": "not for you"}, status_code=403)
            return JSONResponse({"hello": verified.context.sub, **record})

        async def metadata(request: Request) -> Response:
            return JSONResponse({"issuer": RESOURCE, "name": "Identity-only resource"})

        return Starlette(
            routes=[
                Route("/.well-known/aauth-resource.json", metadata),
                Route("/{path:path}", handle, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )


@dataclass
class Setup:
    home: Path
    keys: Path
    resource: IdentityResource
    url: str

    def fetch(self, *args: str, stdin: bytes | None = None) -> Any:
        return run_cli(
            ["fetch", "--dir", str(self.keys), "--map", f"{RESOURCE}={self.url}", *args],
            self.home,
            stdin=stdin,
        )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    keys = tmp_path / "keys"
    made = run_cli(["keys", "init", "--agent-id", AGENT_ID, "--dir", str(keys)], tmp_path)
    assert made.returncode == 0, made.stderr
    provider = load_local_agent(DirectoryKeyStore(keys)).provider
    with LoopbackServer(provider.app()) as provider_server:
        discovery = AsyncDiscovery(
            transport=AsyncMappedTransport({PROVIDER: provider_server.url}, strict=True),
            egress=EgressPolicy.for_mapped_hosts(
                {"agent.example": "127.0.0.1"}, allow_loopback=True
            ),
        )
        resource = IdentityResource(discovery)
        with LoopbackServer(resource.app()) as server:
            yield Setup(tmp_path, keys, resource, server.url)


def test_fetch_signs_as_the_agent(setup: Setup) -> None:
    result = setup.fetch(f"{RESOURCE}/hello?x=1")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["hello"] == AGENT_ID and answer["path"] == "/hello?x=1"
    # --map moved only the connection: the resource saw its own name in Host
    assert answer["host"] == "resource.example"
    assert [r.get("error") for r in setup.resource.seen] == [None]


def test_body_from_stdin_is_posted(setup: Setup) -> None:
    result = setup.fetch(
        f"{RESOURCE}/notes", "-H", "Content-Type: text/plain", "-d", "@-", stdin=b"a note\n"
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["method"], answer["body"], answer["content_type"]) == (
        "POST",
        "a note\n",
        "text/plain",
    )


def test_inline_data_and_explicit_method(setup: Setup) -> None:
    result = setup.fetch(
        f"{RESOURCE}/item", "-X", "delete", "-H", "Content-Type: application/json", "-d", "{}"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["method"] == "DELETE"


def test_verbose_prints_the_steps_on_stderr_only(setup: Setup) -> None:
    quiet = setup.fetch(f"{RESOURCE}/a")
    loud = setup.fetch(f"{RESOURCE}/a", "--verbose")
    assert quiet.returncode == loud.returncode == 0
    assert quiet.stderr == b""
    steps = loud.stderr.decode()
    assert AGENT_ID in steps and f"connections to {RESOURCE} go to {setup.url}" in steps
    assert "GET https://resource.example/a" in steps
    assert json.loads(quiet.stdout)["hello"] == json.loads(loud.stdout)["hello"]


def test_a_refusal_prints_the_body_and_exits_1(setup: Setup) -> None:
    result = setup.fetch(f"{RESOURCE}/forbidden")
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"error": "not for you"}
    assert result.stderr.startswith(b"aauth-agents: HTTP 403")


def test_unreadable_data_file_is_a_usage_error(setup: Setup) -> None:
    result = setup.fetch(f"{RESOURCE}/a", "-d", "@/nonexistent/file")
    assert result.returncode == 2
    assert b"cannot read /nonexistent/file" in result.stderr
    assert setup.resource.seen == []


def test_fetch_without_an_agent(tmp_path: Path) -> None:
    result = run_cli(["fetch", f"{RESOURCE}/a", "--dir", str(tmp_path / "none")], tmp_path)
    assert result.returncode == 3
    assert b"agent_not_found" in result.stderr


def test_not_an_http_url(setup: Setup) -> None:
    result = setup.fetch("ftp://resource.example/a")
    assert result.returncode == 2
    assert b"not an http(s) URL" in result.stderr
