"""The middleware's per-request fast paths keep their behaviour: a body in several ASGI
messages is verified and replayed whole (and refused past the limit), a caller built once
per cached token still carries each request's own signature, and the ``verified`` event
still reaches the log when no hook listens."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from support.resource import RESOURCE, World

from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request


def _signed_scope(world: World, token: str, body: bytes, path: str = "/agent") -> dict[str, Any]:
    headers = {"content-type": "text/plain"}
    model = HttpRequest("POST", RESOURCE + path, headers, body)
    headers.update(
        sign_request(
            model,
            key=world.agent_key,
            signature_key=SignatureKey.from_jwt(token),
            clock=world.clock,
        )
    )
    raw = [(b"host", RESOURCE.split("//")[1].encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 443),
    }


async def _call(app: Any, scope: dict[str, Any], messages: list[dict[str, Any]]) -> list[Any]:
    queue = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _chunks(body: bytes, size: int) -> list[dict[str, Any]]:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return [
        {"type": "http.request", "body": part, "more_body": n < len(parts) - 1}
        for n, part in enumerate(parts)
    ]


async def test_a_body_in_several_messages_is_verified_and_replayed_whole(world: World) -> None:
    app = world.app(world.resource())
    body = b"0123456789" * 5
    sent = await _call(app, _signed_scope(world, world.agent_token(), body), _chunks(body, 7))
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"])["body"] == body.decode()


async def test_a_body_past_the_limit_in_several_messages_is_refused(world: World) -> None:
    app = world.app(world.resource(max_body_bytes=20))
    body = b"x" * 21
    sent = await _call(app, _signed_scope(world, world.agent_token(), body), _chunks(body, 8))
    assert sent[0]["status"] == 413 and world.calls == 0


async def test_a_client_gone_before_its_body_gets_no_answer(world: World) -> None:
    app = world.app(world.resource())
    scope = _signed_scope(world, world.agent_token(), b"abc")
    assert await _call(app, scope, [{"type": "http.disconnect"}]) == []
    assert world.calls == 0


def test_each_request_under_a_cached_token_has_its_own_signature(world: World) -> None:
    resource = world.resource()
    token = world.auth_token()
    callers = []
    for created in (world.clock() - 2, world.clock() - 1):
        request = HttpRequest("GET", RESOURCE + "/data", {})
        headers = sign_request(
            request,
            key=world.agent_key,
            signature_key=SignatureKey.from_jwt(token),
            created=int(created),
        )
        callers.append(resource.verifier.verify(request.with_headers(headers)))
    first, second = callers
    assert first == second and first is not second
    assert first.token is second.token  # served from the verified-token cache
    assert first.signature is not None and second.signature is not None
    assert (first.signature.created, second.signature.created) == (
        int(world.clock() - 2),
        int(world.clock() - 1),
    )


async def test_the_verified_event_reaches_the_log_without_a_hook(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aauth_agents")
    app = world.app(world.resource(event_hook=None))
    async with world.client(app, world.signer(world.agent_token())) as client:
        assert (await client.get("/agent")).status_code == 200
    assert any(r.getMessage().startswith("verified agent") for r in caplog.records)
