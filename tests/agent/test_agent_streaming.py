"""AAuth hands a resource's answer to the caller unread, so a stream flows as it arrives.

A real server (uvicorn on loopback) streams two chunks and sends the second only once the
client has received the first: a client that read the whole body before returning it would
wait for a chunk that never comes. The flow still reads what it inspects (a challenge, a
pending response): the same stream arrives after a 401 and a deferred 202."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import anyio.to_thread
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from support.agent import World

from aauth_agents.agent import client_options
from aauth_agents.protocol import Requirement
from aauth_agents.servers import LoopbackServer
from aauth_agents.transport import AsyncMappedTransport, MappedTransport

ORIGIN = "https://stream.example"


class Streamer:
    """Serves ``/events`` as two chunks, the second after ``received`` is set (by the
    client, once it has the first); ``/challenged`` first answers 401 (an agent-token
    requirement, which the agent already presents: it gives up and returns the 401), and
    ``/deferred`` first answers 202 with a pending URL that delivers the stream."""

    def __init__(self) -> None:
        self.received = threading.Event()
        self.waited: list[bool] = []

    async def _chunks(self) -> AsyncIterator[bytes]:
        yield b"data: one\n\n"
        got = await anyio.to_thread.run_sync(self.received.wait, 10)
        self.waited.append(got)
        yield b"data: two\n\n"

    def _stream(self) -> Response:
        return StreamingResponse(self._chunks(), media_type="text/event-stream")

    async def events(self, request: Request) -> Response:
        return self._stream()

    async def deferred(self, request: Request) -> Response:
        return JSONResponse(
            {"status": "pending"},
            status_code=202,
            headers={"Location": "/pending/1", "Retry-After": "0"},
        )

    async def pending(self, request: Request) -> Response:
        return self._stream()

    async def metadata(self, request: Request) -> Response:
        return JSONResponse({"issuer": ORIGIN})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/aauth-resource.json", self.metadata),
                Route("/events", self.events),
                Route("/deferred", self.deferred),
                Route("/pending/1", self.pending),
            ]
        )


@pytest.fixture
def served() -> Iterator[tuple[Streamer, str]]:
    streamer = Streamer()
    with LoopbackServer(streamer.app()) as server:
        yield streamer, server.url


@pytest.mark.parametrize("path", ["/events", "/deferred"])
def test_a_stream_flows_through_a_sync_client(
    world: World, served: tuple[Streamer, str], path: str
) -> None:
    streamer, url = served
    with httpx.Client(
        **client_options(
            transport=MappedTransport({ORIGIN: url}, strict=True), auth=world.auth(sleep=None)
        )
    ) as client:
        with client.stream("GET", ORIGIN + path) as response:
            lines = response.iter_lines()
            assert next(lines) == "data: one"
            streamer.received.set()  # only now can the server send the rest
            assert [line for line in lines if line] == ["data: two"]
    assert streamer.waited == [True]


@pytest.mark.parametrize("path", ["/events", "/deferred"])
async def test_a_stream_flows_through_an_async_client(
    world: World, served: tuple[Streamer, str], path: str
) -> None:
    streamer, url = served
    transport = AsyncMappedTransport({ORIGIN: url}, strict=True)
    async with httpx.AsyncClient(
        **client_options(transport=transport, auth=world.auth(sleep=None))
    ) as client:
        async with client.stream("GET", ORIGIN + path) as response:
            lines = response.aiter_lines()
            assert await lines.__anext__() == "data: one"
            streamer.received.set()
            rest = [line async for line in lines if line]
    assert rest == ["data: two"] and streamer.waited == [True]


def test_a_challenge_is_still_read_and_answered(world: World) -> None:
    """The flow reads what it inspects: a 401 whose requirement it cannot meet comes back
    to the caller with its body."""

    async def challenged(request: Request) -> Response:
        headers = Requirement.person_token().headers()
        return JSONResponse({"error": "person token required"}, status_code=401, headers=headers)

    app = Starlette(
        routes=[
            Route("/.well-known/aauth-resource.json", lambda r: JSONResponse({"issuer": ORIGIN})),
            Route("/x", challenged),
        ]
    )
    w = World(ps_claim=False)
    with httpx.Client(
        transport=MappedTransport({ORIGIN: app}, strict=True), auth=w.auth()
    ) as client:
        from aauth_agents.agent import NoPersonServerError

        with pytest.raises(NoPersonServerError):
            client.get(ORIGIN + "/x")
