"""The agent flow as a script: a canned response in, the next request out.

As httpx's ``tests/test_auth.py`` steps an auth flow by hand, these tests step
``AAuth.sync_auth_flow`` -- the real flow on the real sync driver, nothing stubbed but the
network: each request the flow would send comes out, the test checks it (method, URL,
the headers that matter, the body) and answers it. Time is a frozen clock moved by the
flow's sleeps. They reach the branches the test servers do not: slow-down, malformed
requirements, round limits, clarification limits, a person server's error bodies.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from aauth_agents.agent import (
    AAuth,
    AgentIdentity,
    DeniedError,
    PollTimeoutError,
    RequestCancelledError,
    ServerError,
)
from aauth_agents.agent.errors import DeferredResponseError
from aauth_agents.agent.events import FlowEvent, PendingEnded, Polling, Reconnecting
from aauth_agents.agent.flow import (
    CHALLENGES,
    MAX_CHALLENGE_ROUNDS,
    MAX_CLARIFICATION_ROUNDS,
    PENDING,
    PENDING_CHALLENGES,
)
from aauth_agents.agent.reconnect import RETRYABLE, failure_response
from aauth_agents.clock import FrozenClock
from aauth_agents.httpsig.signature_key import parse_signature_key
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol import PROBLEM_JSON, Requirement, clarification_body, problem_body
from aauth_agents.protocol.problem import UnexpectedResponseError
from aauth_agents.protocol.requirement import UnsupportedRequirementError
from aauth_agents.tokens import mint_agent_token, mint_person_token

AP = "https://agent.example"
PS = "https://ps.example"
RESOURCE = "https://resource.example"
RESOURCE_METADATA = f"{RESOURCE}/.well-known/aauth-resource.json"
PS_METADATA = f"{PS}/.well-known/aauth-person.json"
PS_DOCUMENT = {
    "issuer": PS,
    "jwks_uri": f"{PS}/.well-known/jwks.json",
    "auth_token_endpoint": f"{PS}/token",
    "person_token_endpoint": f"{PS}/person",
}


class Script:
    """One agent, its flow stepped by hand (see the module docstring)."""

    def __init__(self, **options: Any) -> None:
        self.clock = FrozenClock()
        self.ps_key = PrivateKey.generate()
        self.agent_key = PrivateKey.generate()
        self.agent_token = mint_agent_token(
            PrivateKey.generate(),
            iss=AP,
            sub="aauth:assistant@agent.example",
            cnf=self.agent_key.public_key,
            ps=PS,
            lifetime=3600,
            clock=self.clock,
        )
        self.sleeps: list[float] = []
        self.events: list[FlowEvent] = []
        identity = AgentIdentity(self.agent_key, self.agent_token, clock=self.clock)
        self.auth = AAuth(
            identity, clock=self.clock, sleep=self.sleep, on_event=self.events.append, **options
        )
        self.flow: Generator[httpx.Request, httpx.Response, Any] | None = None

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def start(self, method: str, url: str, **kwargs: Any) -> httpx.Request:
        """The first request the flow sends for ``method url``."""
        self.flow = self.auth.sync_auth_flow(httpx.Request(method, url, **kwargs))
        return next(self.flow)

    def answer(
        self,
        request: httpx.Request,
        status: int,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> httpx.Request:
        """Answer ``request``; the next request the flow sends."""
        assert self.flow is not None
        content = b"" if body is None else json.dumps(body).encode()
        response = httpx.Response(status, headers=headers, content=content, request=request)
        return self.flow.send(response)

    def last(
        self,
        request: httpx.Request,
        status: int,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        """Answer ``request``; what the flow returns (it sends nothing more)."""
        with pytest.raises(StopIteration) as stop:
            self.answer(request, status, headers, body)
        return stop.value.value

    def to_resource(self, method: str = "GET", path: str = "/data") -> httpx.Request:
        """Start a resource request; its metadata is not found: the signed request."""
        metadata = self.start(method, RESOURCE + path)
        assert (metadata.method, str(metadata.url)) == ("GET", RESOURCE_METADATA)
        assert "signature" not in metadata.headers  # metadata is fetched unsigned
        return self.answer(metadata, 404)

    def person_token(self, sub: str = "person-1") -> str:
        return mint_person_token(
            self.ps_key,
            iss=PS,
            aud=RESOURCE,
            sub=sub,
            cnf=self.agent_key.public_key,
            not_after=self.clock() + 3600,
            clock=self.clock,
        )

    def of(self, kind: type[FlowEvent]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


def presented(request: httpx.Request) -> str | None:
    """The token in the request's ``Signature-Key`` (the credential it presents)."""
    _, key = parse_signature_key(request.headers["signature-key"])
    return key.jwt


def covered(request: httpx.Request) -> str:
    return request.headers["signature-input"]


def requirement(value: Requirement) -> dict[str, str]:
    return value.headers()


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# -- the tables --------------------------------------------------------------------------------


def test_every_requirement_value_has_its_sub_flows() -> None:
    assert set(CHALLENGES) == {"agent-token", "person-token", "auth-token"}
    assert set(PENDING) == {"interaction", "approval", "clarification", "auth-token"}
    assert set(PENDING_CHALLENGES) == {"auth-token"}


# -- 202, then 200 --------------------------------------------------------------------------------


def test_pending_then_final() -> None:
    script = Script()
    request = script.to_resource()
    assert (request.method, str(request.url)) == ("GET", f"{RESOURCE}/data")
    assert presented(request) == script.agent_token
    assert request.headers["aauth-capabilities"] == "interaction, clarification"
    assert '"@method" "@authority" "@path" "signature-key"' in covered(request)
    assert "prefer" not in request.headers

    poll = script.answer(
        request, 202, {"Location": "/pending/1", "Retry-After": "2"}, {"status": "pending"}
    )
    assert (poll.method, str(poll.url)) == ("GET", f"{RESOURCE}/pending/1")
    assert poll.headers["prefer"] == "wait=30"
    assert presented(poll) == script.agent_token
    assert poll.content == b""
    assert script.sleeps == [2.0]

    final = script.last(poll, 200, body={"ok": True})
    assert final.status_code == 200
    assert final.json() == {"ok": True}
    assert script.of(PendingEnded) == [PendingEnded(f"{RESOURCE}/pending/1", "approved", 200)]


def test_a_202_without_location_or_requirement_is_the_resources_answer() -> None:
    script = Script()
    request = script.to_resource("POST", "/mcp")
    final = script.last(request, 202)
    assert final.status_code == 202
    assert script.sleeps == []


# -- 429 slow-down -------------------------------------------------------------------------------


def test_slow_down_grows_the_interval_and_retry_after_is_honoured() -> None:
    script = Script()
    request = script.to_resource()
    location = f"{RESOURCE}/pending/7"
    poll = script.answer(request, 202, {"Location": location, "Retry-After": "1"})
    assert script.sleeps == [1.0]
    # 429: Retry-After, plus 5 s for every 429 so far
    poll = script.answer(poll, 429, {"Retry-After": "3"})
    assert (poll.method, str(poll.url)) == ("GET", location)
    assert script.sleeps == [1.0, 8.0]
    poll = script.answer(poll, 429)  # no Retry-After: the default 5 s, plus 10
    assert script.sleeps == [1.0, 8.0, 15.0]
    # a 503 is waited out (Retry-After, plus the slow-down); an HTTP-date counts from the clock
    when = formatdate(script.clock() + 7, usegmt=True)
    poll = script.answer(poll, 503, {"Retry-After": when})
    assert script.sleeps == [1.0, 8.0, 15.0, 17.0]
    poll = script.answer(poll, 202, {"Retry-After": "0"}, {"status": "pending"})
    assert script.sleeps[-1] == 10.0  # the slow-down stays
    assert (poll.method, str(poll.url)) == ("GET", location)

    final = script.last(poll, 200)
    assert final.status_code == 200
    assert [(e.attempt, e.wait) for e in script.of(Polling)] == [
        (1, 1.0),
        (2, 8.0),
        (3, 15.0),
        (5, 10.0),
    ]
    assert script.of(Reconnecting) == [Reconnecting(location, 1, 17.0, "HTTP 503")]


def test_a_429_before_any_pending_url_is_the_response() -> None:
    script = Script()
    request = script.to_resource()
    final = script.last(request, 429, {"Retry-After": "3"})
    assert final.status_code == 429
    assert script.sleeps == []


# -- a server restart: connection errors, 502/503/504 ------------------------------------------


def fail(script: Script, request: httpx.Request, error: Exception) -> httpx.Request:
    """Answer ``request`` as a client's transport does when its connection failed
    (:class:`~aauth_agents.agent.reconnect.ReconnectingTransport`); the next request."""
    assert script.flow is not None
    failed = failure_response(request, error)
    assert failed is not None, "a poll is retryable"
    return script.flow.send(failed)


def test_a_poll_that_cannot_connect_is_repeated_with_backoff() -> None:
    script = Script()
    request = _to_person_token_request(script)
    assert not request.extensions.get(RETRYABLE)  # a POST is never repeated
    location = f"{PS}/pending/r"
    poll = script.answer(request, 202, {"Location": location, "Retry-After": "1"})
    assert poll.extensions[RETRYABLE] is True
    # the PS goes down: the long poll in flight is cut, then connections are refused
    poll = fail(script, poll, httpx.RemoteProtocolError("Server disconnected"))
    poll = fail(script, poll, httpx.ConnectError("Connection refused"))
    poll = fail(script, poll, httpx.ConnectError("Connection refused"))
    # it comes back behind a gateway that is not ready yet, then itself, overloaded
    poll = script.answer(poll, 502)
    poll = script.answer(poll, 503, {"Retry-After": "3"})
    poll = script.answer(poll, 504)
    for each in (poll,):
        assert (each.method, str(each.url)) == ("GET", location)
        assert each.headers["prefer"] == "wait=30" and presented(each) == script.agent_token
    poll = script.answer(poll, 202, {"Retry-After": "2"}, {"status": "pending"})
    request = script.answer(poll, 200, body={"person_token": script.person_token()})
    assert str(request.url) == f"{RESOURCE}/data"  # the call goes on

    events = script.of(Reconnecting)
    assert [(e.url, e.failures, e.reason) for e in events] == [
        (location, 1, "RemoteProtocolError"),
        (location, 2, "ConnectError"),
        (location, 3, "ConnectError"),
        (location, 4, "HTTP 502"),
        (location, 5, "HTTP 503"),
        (location, 6, "HTTP 504"),
    ]
    waits = script.sleeps[1:7]
    assert [e.wait for e in events] == waits
    # exponential with jitter: between half and all of 1, 2, 4, 8 (then 32, capped at 30) s
    for wait, ceiling in zip(waits, (1, 2, 4, 8, None, 30), strict=True):
        if ceiling is not None:
            assert ceiling / 2 <= wait <= ceiling
    assert waits[4] == 3.0  # Retry-After is honoured
    assert script.sleeps[7] == 2.0  # a 202 ends the failures: its own Retry-After
    assert [e.attempt for e in script.of(Polling)] == [1, 8]
    assert script.of(PendingEnded) == [PendingEnded(location, "approved", 200)]


def test_reconnecting_stops_at_the_deadline_with_poll_timeout() -> None:
    script = Script(max_poll_seconds=20)
    request = script.to_resource()
    location = f"{RESOURCE}/pending/9"
    started = script.clock()
    poll = script.answer(request, 202, {"Location": location, "Retry-After": "1"})
    refused = httpx.ConnectError("Connection refused")
    with pytest.raises(PollTimeoutError) as raised:
        while True:
            poll = fail(script, poll, refused)
            if poll.method == "DELETE":  # the agent gives up: it withdraws the request
                assert str(poll.url) == location and poll.extensions[RETRYABLE]
                fail(script, poll, refused)  # (unreachable too: logged, not raised)
    assert raised.value.code == "expired"
    assert raised.value.__cause__ is refused
    assert "ConnectError" in raised.value.detail
    assert script.clock() - started == pytest.approx(20)  # the last try at the deadline
    assert script.of(PendingEnded) == [PendingEnded(location, "expired", 502)]


def test_a_503_to_a_request_that_is_not_a_poll_is_not_repeated() -> None:
    script = Script()
    request = script.to_resource("POST", "/orders")
    assert not request.extensions.get(RETRYABLE)
    final = script.last(request, 503, {"Retry-After": "1"})
    assert final.status_code == 503 and script.sleeps == []
    script = Script()
    request = _to_person_token_request(script)
    with pytest.raises(UnexpectedResponseError) as raised:  # a token request: never twice
        script.answer(request, 503, {"Retry-After": "1"})
    assert raised.value.status == 503
    script = Script()
    request = _to_person_token_request(script)
    with pytest.raises(ServerError):
        script.answer(request, 503, {"Content-Type": PROBLEM_JSON}, problem_body("server_error"))
    assert script.sleeps == [] and script.of(Reconnecting) == []


def test_a_connection_error_to_a_request_that_is_not_a_poll_is_raised() -> None:
    script = Script()
    request = _to_person_token_request(script)
    assert failure_response(request, httpx.ConnectError("refused")) is None


# -- clarification --------------------------------------------------------------------------------


def test_too_many_clarification_rounds_withdraw_the_request() -> None:
    asked: list[str] = []

    def on_clarification(question: str, options: Any, timeout: Any) -> str:
        asked.append(question)
        return f"answer {len(asked)}"

    script = Script(on_clarification=on_clarification)
    request = script.to_resource("POST", "/write")
    location = f"{RESOURCE}/pending/c"
    clarify = requirement(Requirement.clarification())
    for round_ in range(1, MAX_CLARIFICATION_ROUNDS + 1):
        request = script.answer(
            request, 202, {"Location": location, **clarify}, clarification_body(f"Q{round_}?")
        )
        assert (request.method, str(request.url)) == ("POST", location)
        assert body_of(request) == {
            "action": "clarification_response",
            "clarification_response": f"answer {round_}",
        }
        assert request.headers["content-type"] == "application/json"
        assert '"content-digest"' in covered(request)
        assert presented(request) == script.agent_token
    withdraw = script.answer(
        request, 202, {"Location": location, **clarify}, clarification_body("?")
    )
    assert (withdraw.method, str(withdraw.url)) == ("DELETE", location)
    assert withdraw.content == b""
    assert "prefer" not in withdraw.headers

    with pytest.raises(RequestCancelledError, match="more than 10 clarification rounds"):
        script.answer(withdraw, 204)
    assert len(asked) == MAX_CLARIFICATION_ROUNDS
    assert script.sleeps == []  # an answered clarification is followed at once
    assert script.of(PendingEnded) == [PendingEnded(location, "cancelled", 204)]


def test_a_clarification_without_a_handler_is_withdrawn() -> None:
    script = Script(unattended=True)
    request = script.to_resource()
    location = f"{RESOURCE}/pending/q"
    headers = {"Location": location, **requirement(Requirement.clarification())}
    withdraw = script.answer(request, 202, headers, clarification_body("Which one?"))
    assert (withdraw.method, str(withdraw.url)) == ("DELETE", location)
    with pytest.raises(RequestCancelledError, match="no on_clarification callback"):
        script.answer(withdraw, 410)


# -- malformed and unsupported requirements -------------------------------------------------------


def test_a_malformed_requirement_on_a_401_is_ignored() -> None:
    script = Script()
    request = script.to_resource()
    final = script.last(request, 401, {"AAuth-Requirement": "requirement=interaction"})
    assert final.status_code == 401  # handed back: nothing to answer
    assert script.events[-1].kind == "response"


def test_a_malformed_requirement_on_a_202_is_an_error() -> None:
    script = Script()
    request = script.to_resource()
    with pytest.raises(DeferredResponseError, match="unreadable AAuth-Requirement"):
        script.answer(request, 202, {"Location": "/p/1", "AAuth-Requirement": "requirement=(oops"})


def test_a_clarification_with_a_malformed_body_is_an_error() -> None:
    script = Script(on_clarification=lambda *_: "x")
    request = script.to_resource()
    headers = {"Location": "/p/2", **requirement(Requirement.clarification())}
    with pytest.raises(DeferredResponseError):
        script.answer(request, 202, headers, {"status": "pending"})  # no question


@pytest.mark.parametrize(
    ("status", "value"),
    [(401, Requirement.claims()), (202, Requirement.claims())],
    ids=["401", "202"],
)
def test_a_requirement_in_no_table_is_refused(status: int, value: Requirement) -> None:
    script = Script()
    request = script.to_resource()
    with pytest.raises(UnsupportedRequirementError):
        script.answer(request, status, {"Location": "/p/3", **requirement(value)})


# -- round limits ---------------------------------------------------------------------------------


def test_challenges_are_answered_a_limited_number_of_times() -> None:
    script = Script()
    request = script.to_resource()
    challenge = requirement(Requirement.person_token())
    request = script.answer(request, 401, challenge)
    assert (request.method, str(request.url)) == ("GET", PS_METADATA)
    request = script.answer(request, 200, body=PS_DOCUMENT)
    tokens = []
    for round_ in range(1, MAX_CHALLENGE_ROUNDS + 1):
        assert (request.method, str(request.url)) == ("POST", f"{PS}/person")
        assert body_of(request) == {
            "resource": RESOURCE,
            "capabilities": ["interaction", "clarification"],
        }
        assert request.headers["prefer"] == "wait=30"
        assert presented(request) == script.agent_token
        assert '"content-type" "content-digest"' in covered(request)
        tokens.append(script.person_token(f"person-{round_}"))
        request = script.answer(request, 200, body={"person_token": tokens[-1]})
        assert (request.method, str(request.url)) == ("GET", f"{RESOURCE}/data")
        assert presented(request) == tokens[-1]
        if round_ < MAX_CHALLENGE_ROUNDS:
            request = script.answer(request, 401, challenge)
    final = script.last(request, 401, challenge)  # one challenge too many: handed back
    assert final.status_code == 401
    assert len([e for e in script.events if e.kind == "challenge"]) == MAX_CHALLENGE_ROUNDS + 1


def test_an_agent_token_challenge_to_the_agent_token_is_the_response() -> None:
    script = Script()
    request = script.to_resource()
    final = script.last(request, 401, requirement(Requirement.agent_token()))
    assert final.status_code == 401


# -- the person server's error bodies -------------------------------------------------------------


def _to_person_token_request(script: Script) -> httpx.Request:
    request = script.to_resource()
    request = script.answer(request, 401, requirement(Requirement.person_token()))
    request = script.answer(request, 200, body=PS_DOCUMENT)
    assert (request.method, str(request.url)) == ("POST", f"{PS}/person")
    return request


def test_a_person_server_error_body_is_a_typed_error() -> None:
    script = Script()
    request = _to_person_token_request(script)
    with pytest.raises(DeniedError) as raised:
        script.answer(
            request,
            403,
            {"Content-Type": PROBLEM_JSON},
            problem_body("denied", "the person said no"),
        )
    assert raised.value.code == "denied"
    assert raised.value.detail == "the person said no"
    # not asked for again by itself: the next request starts with the agent token
    request = script.start("GET", f"{RESOURCE}/data")  # (the metadata is cached)
    assert (request.method, str(request.url)) == ("GET", f"{RESOURCE}/data")
    assert presented(request) == script.agent_token


def test_a_person_server_error_after_a_pending_response() -> None:
    script = Script()
    request = _to_person_token_request(script)
    poll = script.answer(
        request, 202, {"Location": "/pending/p", "Retry-After": "1"}, {"status": "pending"}
    )
    assert (poll.method, str(poll.url)) == ("GET", f"{PS}/pending/p")
    assert presented(poll) == script.agent_token
    assert poll.headers["prefer"] == "wait=30"
    with pytest.raises(DeniedError):
        script.answer(poll, 403, {"Content-Type": PROBLEM_JSON}, problem_body("denied"))
    assert script.sleeps == [1.0]
    assert script.of(PendingEnded) == [PendingEnded(f"{PS}/pending/p", "denied", 403)]


def test_the_httpx2_twin_reconnects_the_same_way() -> None:
    """The same flow building httpx2 requests (the MCP SDK 2.x line): a failed poll comes
    back as an httpx2 response value and is repeated."""
    import httpx2

    script = Script()
    flow = script.auth.httpx2().sync_auth_flow(httpx2.Request("GET", f"{RESOURCE}/data"))
    metadata = next(flow)
    request = flow.send(httpx2.Response(404, request=metadata))
    location = f"{RESOURCE}/pending/2"
    poll = flow.send(httpx2.Response(202, headers={"Location": location}, request=request))
    assert isinstance(poll, httpx2.Request) and poll.extensions[RETRYABLE]
    failed = failure_response(poll, httpx2.ConnectError("Connection refused"))
    assert isinstance(failed, httpx2.Response)
    poll = flow.send(failed)
    assert (poll.method, str(poll.url)) == ("GET", location)
    with pytest.raises(StopIteration) as stop:
        flow.send(httpx2.Response(200, request=poll))
    assert stop.value.value.status_code == 200
    assert [(e.failures, e.reason) for e in script.of(Reconnecting)] == [(1, "ConnectError")]
