"""A shared store restarted during a run (issue 15, acceptance): requests that arrive while
it is down fail cleanly -- ``503`` problem+json with ``Retry-After``, nothing half-done --,
nothing it acknowledged before is lost, and the agents' flows complete once it is back.

The stores are private servers of the test (:mod:`support.services`), so that it can stop
and start them: Redis with an append-only file synced on every write (what it acknowledged
survives a restart), PostgreSQL as it is."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.scale import ServedWorkers, serve_workers
from support.services import RedisServer

from aauth_agents.agent import AAuth, AgentIdentity
from aauth_agents.agent.storage import DirectoryKeyStore, write_private_key
from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.keys import PrivateKey
from aauth_agents.servers.stack import AGENT_PROVIDER, PERSON_SERVER, LocalStack
from aauth_agents.transport import MappedTransport

RES = "https://resource.example"
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
_AGENTS = itertools.count(1)


def _call(tool: str, **arguments: Any) -> bytes:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    return json.dumps({**body, "params": {"name": tool, "arguments": arguments}}).encode()


def _signed_post(url: str, identity: AgentIdentity, body: bytes) -> httpx.Request:
    headers = dict(MCP_HEADERS)
    headers.update(
        sign_request(
            HttpRequest("POST", RES + "/mcp", headers, body),
            key=identity.key,
            signature_key=SignatureKey.from_jwt(identity.agent_token),
        )
    )
    return httpx.Request("POST", RES + "/mcp", headers=headers, content=body)


def _send(url: str, request: httpx.Request) -> httpx.Response:
    with httpx.Client(transport=MappedTransport({RES: url}, strict=True), timeout=30) as client:
        return client.send(request)


def assert_unavailable(response: httpx.Response) -> None:
    """A clean refusal for a store that is down: 503, problem+json, Retry-After."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "temporarily_unavailable"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", durable=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def resource(
    redis_server: RedisServer, tmp_path: Path
) -> Iterator[tuple[LocalStack, ServedWorkers]]:
    """The stack (agent provider, PS) and ``serve resource --workers 2`` on the Redis."""
    write_private_key(DirectoryKeyStore(tmp_path), "resource.jwk", PrivateKey.generate(kid="r-1"))
    with LocalStack(demo=False) as stack:
        args = [
            "--issuer", RES, "--port", "0", "--workers", "2", "--redis", redis_server.url,
            "--key-file", str(tmp_path / "resource.jwk"),
            "--map", f"{AGENT_PROVIDER}={stack.mapping[AGENT_PROVIDER]}",
            "--map", f"{PERSON_SERVER}={stack.mapping[PERSON_SERVER]}",
        ]  # fmt: skip
        with serve_workers("resource", args, tmp_path) as served:
            stack.network.add(RES, served.url)
            yield stack, served


def test_redis_restarted_while_a_call_is_held(
    redis_server: RedisServer, resource: tuple[LocalStack, ServedWorkers]
) -> None:
    """An agent's per-call ``delete_file`` is held (a pending record in Redis); Redis
    restarts while the person reads the request: what reaches the resource meanwhile is
    refused with 503; after it, the held call completes, and a request accepted before the
    restart is still a replay."""
    stack, served = resource
    identity = stack.enroll(f"aauth:outage{next(_AGENTS)}@agent.example")
    before = _signed_post(served.url, identity, _call("whoami"))
    accepted = _send(served.url, before)
    during: list[httpx.Response] = []

    def person(url: str, code: str) -> None:
        if stack.open(url, code).r3 is not None:  # this call, held at the resource
            redis_server.stop()
            try:
                for tool in ("whoami", "list_files"):
                    request = _signed_post(served.url, identity, _call(tool))
                    during.append(_send(served.url, request))
            finally:
                redis_server.start()
        stack.approve(url, code)

    auth = AAuth(identity, on_interaction=person, trust_env=False)
    transport = MappedTransport(stack.mapping, strict=True)
    with httpx.Client(auth=auth, transport=transport, timeout=60) as agent:
        body = _call("delete_file", name="welcome.txt")
        deleted = agent.post(RES + "/mcp", content=body, headers=MCP_HEADERS)
    replayed = _send(served.url, before)

    assert accepted.status_code == 200, accepted.text
    assert len(during) == 2
    for response in during:
        assert_unavailable(response)
    assert deleted.status_code == 200, deleted.text
    assert '"deleted":true' in deleted.text.replace(" ", "")
    assert replayed.status_code == 401
    assert "invalid_signature" in replayed.headers["signature-error"]
