"""A shared store restarted during a run (issue 15, acceptance): requests that arrive while
it is down fail cleanly -- ``503`` problem+json with ``Retry-After``, nothing half-done --,
nothing it acknowledged before is lost, and the agents' flows complete once it is back.

The stores are private servers of the test (:mod:`support.services`), so that it can stop
and start them: Redis with an append-only file synced on every write (what it acknowledged
survives a restart), PostgreSQL as it is."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.scale import ServedWorkers, approve_in_pages, serve_together, serve_workers
from support.services import PostgresServer, RedisServer, free_port

from aauth_agents.agent import AAuth, AgentIdentity, LocalAgentProvider
from aauth_agents.agent.events import Reconnecting
from aauth_agents.agent.storage import DirectoryKeyStore, write_private_key
from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.keys import PrivateKey
from aauth_agents.servers import LoopbackServer
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
    restarts while the person reads the request: what reaches the resource meanwhile from a
    caller it must look up is refused with 503 (one it found unrevoked less than
    ``revocation_recheck`` ago may be answered without the store); after it, the held call
    completes, and a request accepted before the restart is still a replay."""
    stack, served = resource
    identity = stack.enroll(f"aauth:outage{next(_AGENTS)}@agent.example")
    newcomer = stack.enroll(f"aauth:outage{next(_AGENTS)}@agent.example")
    before = _signed_post(served.url, identity, _call("whoami"))
    accepted = _send(served.url, before)
    during: list[httpx.Response] = []

    def person(url: str, code: str) -> None:
        if stack.open(url, code).r3 is not None:  # this call, held at the resource
            redis_server.stop()
            try:
                for tool in ("whoami", "list_files"):
                    request = _signed_post(served.url, newcomer, _call(tool))
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


# -- PostgreSQL and Redis, a PS and a resource of two workers each ------------------------------

PS = "https://ps.example"
AP = "https://agents.example"
PERSON, PASSWORD = "alice", "correct horse battery staple"


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


class _Restarts:
    """Stops PostgreSQL after the person's approval and starts it again once the agent's
    poll of the PS met the outage (a :class:`Reconnecting` event for the PS)."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.down = False
        self.reconnected = 0
        self.thread: threading.Thread | None = None

    def stop(self) -> None:
        if not self.reconnected:
            self.server.stop()
            self.down = True

    def on_event(self, event: Any) -> None:
        if isinstance(event, Reconnecting) and event.url.startswith(PS):
            self.reconnected += 1
            if self.down and self.thread is None:
                self.thread = threading.Thread(target=self.server.start)
                self.thread.start()

    def finish(self) -> None:
        if self.thread is not None:
            self.thread.join()
        elif self.down:
            self.server.start()


def _signed_mission(identity: AgentIdentity) -> httpx.Request:
    body = json.dumps({"description": "Tidy my files"}).encode()
    headers = {"content-type": "application/json"}
    headers.update(
        sign_request(
            HttpRequest("POST", PS + "/mission", headers, body),
            key=identity.key,
            signature_key=SignatureKey.from_jwt(identity.agent_token),
        )
    )
    return httpx.Request("POST", PS + "/mission", headers=headers, content=body)


def test_postgres_and_redis_restarted_while_the_person_decides(
    redis_server: RedisServer, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """``serve ps --workers 2 --database postgresql://...`` and ``serve resource --workers 2
    --redis ...``; an agent's per-call call is held at the resource and waits at the PS for
    the person. Each time the person is asked, PostgreSQL and Redis restart first: requests
    meanwhile are refused with 503 at both; then the person approves at the PS's pages, and
    the agent's flow completes -- the pending records of both survived."""
    write_private_key(DirectoryKeyStore(tmp_path), "resource.jwk", PrivateKey.generate(kid="r-1"))
    provider = LocalAgentProvider(AP, PrivateKey.generate(kid="ap-1"), ps=PS)
    with LoopbackServer(provider.app()) as ap:
        ps_url, res_url = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
        ps_args = [
            "--issuer", PS, "--port", ps_url.rsplit(":", 1)[1], "--workers", "2",
            "--database", postgres_server.create_database("ps"), "--person", PERSON,
            "--map", f"{AP}={ap.url}", "--map", f"{RES}={res_url}",
        ]  # fmt: skip
        res_args = [
            "--issuer", RES, "--port", res_url.rsplit(":", 1)[1], "--workers", "2",
            "--redis", redis_server.url, "--key-file", str(tmp_path / "resource.jwk"),
            "--map", f"{AP}={ap.url}", "--map", f"{PS}={ps_url}",
        ]  # fmt: skip
        env = {"AAUTH_AGENTS_PASSWORD": PASSWORD}
        commands = [("ps", ps_args), ("resource", res_args)]
        with serve_together(commands, tmp_path, env) as [ps, res]:
            identity = provider.identity(PrivateKey.generate(), "aauth:outage@agents.example")
            mapping = {AP: ap.url, PS: ps.url, RES: res.url}
            during: list[httpx.Response] = []

            back = _Restarts(postgres_server)

            def person(url: str, code: str) -> None:
                redis_server.stop()
                postgres_server.stop()
                try:
                    newcomer = provider.identity(PrivateKey.generate(), "aauth:new@agents.example")
                    request = _signed_post(res.url, newcomer, _call("whoami"))
                    during.append(_send(res.url, request))
                    with httpx.Client(transport=MappedTransport(mapping), timeout=30) as client:
                        during.append(client.send(_signed_mission(identity)))
                finally:
                    postgres_server.start()
                    redis_server.start()
                approve_in_pages(ps.url, url, code, PERSON, PASSWORD)
                back.stop()  # down again: the agent's next poll of the PS meets the outage

            auth = AAuth(
                identity,
                on_interaction=person,
                on_event=back.on_event,
                trust_env=False,
                max_poll_seconds=120,
            )
            transport = MappedTransport(mapping, strict=True)
            try:
                with auth.client(transport=transport, timeout=60) as agent:
                    body = _call("delete_file", name="welcome.txt")
                    deleted = agent.post(RES + "/mcp", content=body, headers=MCP_HEADERS)
            finally:
                back.finish()

    assert during  # the person was asked, the stores restarted meanwhile
    for response in during:
        assert_unavailable(response)
    assert back.reconnected  # the agent's poll met PostgreSQL down (503) and polled again
    assert deleted.status_code == 200, deleted.text
    assert '"deleted":true' in deleted.text.replace(" ", "")
