"""Two ``aauth-agents serve resource --workers 2 --redis URL`` processes serving one
identifier on two ports, with no balancer in front (issue 15, acceptance): everything a
resource remembers -- signatures seen, revocations, pending records, person-token records --
is in the shared Redis, so

* a signed request accepted by one is refused as a replay by the other;
* a revocation the PS sends to one is seen by both within one second;
* a deferred request (an R3 per-call tool held with a 202) started on one completes on
  the other: the agent polls the other's pending URL, which executes the held call, and a
  repeated poll of the first answers the retained result without executing it again;
* a file the person's agent writes through one is read through every worker of the other.

The agent provider and the person server run in this process (:class:`LocalStack`); the
person approves through the PS's own interaction path."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from support.scale import ServedWorkers, serve_together

from aauth_agents.agent import AAuth, AgentIdentity
from aauth_agents.agent.storage import DirectoryKeyStore, write_private_key
from aauth_agents.httpsig import HttpRequest, SignatureKey, parse_signature_key, sign_request
from aauth_agents.keys import PrivateKey
from aauth_agents.resource import ResourceConfig
from aauth_agents.servers.stack import AGENT_PROVIDER, PERSON_SERVER, LocalStack
from aauth_agents.tokens import TYP_AUTH, peek
from aauth_agents.transport import MappedTransport

RES = "https://resource.example"
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@dataclass
class Two:
    """The stack (agent provider, PS), the two resource processes, and an agent."""

    stack: LocalStack
    a: ServedWorkers
    b: ServedWorkers
    identity: AgentIdentity
    seen: list[httpx.Request] = field(default_factory=list)

    def transport(self, resource_url: str, pending_url: str | None = None) -> Recording:
        """Every party of the stack, the resource at ``resource_url`` -- its pending URLs at
        ``pending_url`` when given; every request sent is kept in :attr:`seen`."""
        return Recording(self, resource_url, pending_url or resource_url)

    def agent(self, resource_url: str, pending_url: str | None = None) -> httpx.Client:
        auth = AAuth(self.identity, on_interaction=self.stack.approve, trust_env=False)
        return httpx.Client(
            auth=auth, transport=self.transport(resource_url, pending_url), timeout=60
        )

    def signed(self, method: str, url: str, signature_key: SignatureKey, body: bytes = b"") -> Any:
        headers = dict(MCP_HEADERS) if body else {}
        headers.update(
            sign_request(
                HttpRequest(method, url, headers, body),
                key=self.identity.key,
                signature_key=signature_key,
            )
        )
        return headers


class Recording(httpx.BaseTransport):
    """The stack's parties, with the resource's requests routed by path (see
    :meth:`Two.transport`)."""

    def __init__(self, two: Two, resource_url: str, pending_url: str) -> None:
        mapping = dict(two.stack.mapping)
        self.two = two
        self.main = MappedTransport({**mapping, RES: resource_url}, strict=True)
        self.pending = MappedTransport({**mapping, RES: pending_url}, strict=True)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.two.seen.append(request)
        polling = request.url.path.startswith("/aauth/pending/")
        return (self.pending if polling else self.main).handle_request(request)

    def close(self) -> None:
        self.main.close()
        self.pending.close()


@pytest.fixture(scope="module")
def running(
    redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalStack, ServedWorkers, ServedWorkers]]:
    """The stack and the two resource processes, for the module's tests (each test has an
    agent of its own)."""
    import redis

    with redis.Redis.from_url(redis_server_url) as client:
        client.flushall()
    home = tmp_path_factory.mktemp("resources")
    key_file = home / "resource.jwk"  # one identifier, one key: both processes sign alike
    write_private_key(DirectoryKeyStore(home), key_file.name, PrivateKey.generate(kid="r-1"))
    with LocalStack(demo=False) as stack:
        args = [
            "--issuer", RES, "--port", "0", "--workers", "2", "--redis", redis_server_url,
            "--key-file", str(key_file),
            "--map", f"{AGENT_PROVIDER}={stack.mapping[AGENT_PROVIDER]}",
            "--map", f"{PERSON_SERVER}={stack.mapping[PERSON_SERVER]}",
        ]  # fmt: skip
        with serve_together([("resource", args), ("resource", args)], home) as [a, b]:
            stack.network.add(RES, a.url)  # the PS reaches the resource at the first one
            yield stack, a, b


_AGENTS = itertools.count(1)


@pytest.fixture
def two(running: tuple[LocalStack, ServedWorkers, ServedWorkers]) -> Two:
    stack, a, b = running
    return Two(stack, a, b, stack.enroll(f"aauth:agent{next(_AGENTS)}@agent.example"))


def _call(tool: str, **arguments: Any) -> bytes:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    return json.dumps({**body, "params": {"name": tool, "arguments": arguments}}).encode()


def _result(response: httpx.Response) -> Any:
    """The JSON-RPC result of an MCP answer (JSON or one server-sent event)."""
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        text = next(line[5:] for line in text.splitlines() if line.startswith("data:"))
    return json.loads(text)["result"]


def _send(url: str, method: str, path: str, headers: Any, body: bytes = b"") -> httpx.Response:
    with httpx.Client(transport=MappedTransport({RES: url}, strict=True), timeout=30) as client:
        return client.request(method, RES + path, headers=headers, content=body)


def test_a_request_accepted_by_one_is_a_replay_at_the_other(two: Two) -> None:
    body = _call("whoami")
    token = SignatureKey.from_jwt(two.identity.agent_token)
    headers = two.signed("POST", RES + "/mcp", token, body)
    first = _send(two.a.url, "POST", "/mcp", headers, body)
    replayed = _send(two.b.url, "POST", "/mcp", headers, body)
    again = _send(two.a.url, "POST", "/mcp", headers, body)

    assert first.status_code == 200, first.text
    assert _result(first)["structuredContent"]["agent"] == two.identity.agent_id
    for refused in (replayed, again):
        assert refused.status_code == 401, refused.text
        assert "invalid_signature" in refused.headers["signature-error"]
        assert refused.headers["content-type"] == "application/problem+json"


def _auth_token(seen: list[httpx.Request], path: str) -> SignatureKey:
    """The auth token the agent presented on its last request for ``path``."""
    for request in reversed(seen):
        header = request.headers.get("signature-key")
        if request.url.path == path and header is not None:
            key = parse_signature_key(header)[1]
            if key.jwt is not None and peek(key.jwt)[0].get("typ") == TYP_AUTH:
                return key
    raise AssertionError(f"no auth token was presented for {path}")


def test_a_revocation_sent_to_one_is_seen_by_both_within_one_second(two: Two) -> None:
    """Every worker of both processes refuses the token once ``revocation_recheck`` (0.5 s:
    how long a worker trusts its last "not revoked" for a caller) has passed since the PS's
    notification returned; the issue asks for one second."""
    with two.agent(two.a.url) as agent:
        files = agent.get(RES + "/files")
    assert files.status_code == 200, files.text
    token = _auth_token(two.seen, "/files")
    accepted = [
        _send(url, "GET", "/files", two.signed("GET", RES + "/files", token))
        for url in (two.a.url, two.b.url) * 3
    ]
    assert {r.status_code for r in accepted} == {200}, [r.text for r in accepted]

    report = two.stack.call(two.stack.ps.unbind_agent(two.identity.agent_id))
    assert report.notified and not report.failed  # told once, at the first process

    time.sleep(ResourceConfig.revocation_recheck + 0.1)
    refused = [
        _send(url, "GET", "/files", two.signed("GET", RES + "/files", token))
        for url in (two.b.url, two.a.url) * 4  # each process's two workers
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert "signature-error" not in response.headers
        assert response.headers["content-type"] == "application/problem+json"


def test_a_deferred_request_started_on_one_completes_on_the_other(two: Two) -> None:
    body = _call("delete_file", name="welcome.txt")
    with two.agent(two.a.url, pending_url=two.b.url) as agent:
        deleted = agent.post(RES + "/mcp", content=body, headers=MCP_HEADERS)

    assert deleted.status_code == 200, deleted.text
    assert _result(deleted)["structuredContent"] == {"name": "welcome.txt", "deleted": True}
    started = [r for r in two.seen if r.url.path == "/mcp" and r.method == "POST"]
    polls = [r for r in two.seen if r.url.path.startswith("/aauth/pending/")]
    assert started and polls  # held by the first (a 202), executed at the second's pending URL
    # The first process answers a repeated poll from the shared, completed record: the
    # retained result, the held call not executed again.
    token = _auth_token(two.seen, polls[-1].url.path)
    repeated = _send(
        two.a.url, "GET", polls[-1].url.path, two.signed("GET", str(polls[-1].url), token)
    )
    assert repeated.status_code == 200, repeated.text
    assert _result(repeated) == _result(deleted)


def test_a_file_written_at_one_is_read_at_the_other(two: Two) -> None:
    content = f"written through the first by {two.identity.agent_id}"
    with two.agent(two.a.url) as agent:
        written = agent.post(RES + "/files", json={"name": "shared.txt", "content": content})
    assert written.status_code in (200, 201), written.text
    with two.agent(two.b.url) as agent:
        listed = agent.get(RES + "/files")
    assert listed.status_code == 200, listed.text
    assert "shared.txt" in [f["name"] for f in listed.json()["files"]]
    token = _auth_token(two.seen, "/files")
    path = "/files/shared.txt"
    read = [  # a new connection each: both workers of the second process answer
        _send(two.b.url, "GET", path, two.signed("GET", RES + path, token)) for _ in range(4)
    ]
    assert [(r.status_code, r.json().get("content")) for r in read] == [(200, content)] * 4
