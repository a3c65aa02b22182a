"""The limits every server we run holds at its edge, and the ASGI half that enforces them.

A server that waits forever for a request head or body, accepts any number of connections
from one address and runs any number of requests at once is made unreachable by one client
holding a few hundred idle, half-sent requests open. :class:`ServerLimits` is the one
description of what a server admits (ARCHITECTURE.md, "The edge of every server");
:mod:`aauth_agents.servers.edge` applies its connection half (head timeout, connection caps,
431 for an oversized head) in uvicorn's HTTP/1.1 protocol, and :class:`EdgeGuard` its
request half, around any ASGI app:

* request heads larger than ``max_header_bytes``: ``431`` problem+json;
* more than ``max_concurrency`` requests in flight: ``503`` problem+json with
  ``Retry-After`` (before the body is read);
* a body not received within ``body_timeout`` of the head: ``408`` problem+json; a body
  larger than ``max_body_bytes``: ``413`` problem+json. Either way the app sees the client
  disconnect, and nothing it sends afterwards goes out.

Every refusal is an ``invalid_request`` (or ``temporarily_unavailable``) problem+json body
(RFC 9457), as every other error of the package.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from ..protocol.errors import ConfigurationError
from ..protocol.reply import Reply

log = logging.getLogger("aauth_agents.servers.edge")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DISCONNECT: Message = {"type": "http.disconnect"}


@dataclass(frozen=True)
class ServerLimits:
    """What a server admits from its clients. The defaults suit a server reached directly;
    behind a reverse proxy every connection comes from the proxy's address, so set
    ``max_connections_per_address=None`` there and let the proxy limit each client.

    * ``header_timeout`` -- seconds from a connection's first byte (or the end of its
      previous response) to the end of a request head; a connection that sent part of a head
      by then gets ``408``, one that sent nothing is closed.
    * ``body_timeout`` -- seconds from the head to the end of the body (``408``).
    * ``max_header_bytes`` -- the request line and header fields together (``431``).
    * ``max_body_bytes`` -- the body (``413``); the apps hold their own, smaller limits.
    * ``max_concurrency`` -- requests in flight, long polls included (``503``).
    * ``max_connections`` -- open connections; a server holds fewer when the process's
      open-file limit leaves no room for them (:func:`~aauth_agents.servers.uvicorn_config`).
    * ``backlog`` -- connections the kernel queues for the server, which is also how many
      it accepts at once, before the caps close those over them.
    * ``max_connections_per_address`` -- open connections from one client address
      (``None``: no cap); connections over a cap are closed at once.
    * ``keep_alive_timeout`` -- seconds an idle keep-alive connection is kept.
    * ``linger_timeout``, ``max_drain_bytes`` -- after a refusal sent while the client was
      still sending, how long and how much more is read and discarded before the connection
      closes, so that the client reads the refusal instead of a reset.
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 32 * 1024
    max_body_bytes: int = 1024 * 1024
    max_concurrency: int = 512
    max_connections: int = 1000
    max_connections_per_address: int | None = 256
    backlog: int = 256
    keep_alive_timeout: int = 5
    linger_timeout: float = 5.0
    max_drain_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        positive = (
            self.header_timeout,
            self.body_timeout,
            self.max_header_bytes,
            self.max_body_bytes,
            self.max_concurrency,
            self.max_connections,
            self.backlog,
            self.keep_alive_timeout,
            self.linger_timeout,
            self.max_drain_bytes,
        )
        cap = self.max_connections_per_address
        if any(not value > 0 for value in positive) or (cap is not None and cap < 1):
            raise ConfigurationError("server limits must be positive")


def head_size(scope: Scope) -> int:
    """The size of a request head as received: request line and header fields."""
    size = len(scope.get("method", "")) + len(scope.get("raw_path") or b"") + 12
    size += len(scope.get("query_string", b"")) + 1
    for name, value in scope.get("headers", ()):
        size += len(name) + len(value) + 4
    return size


async def send_reply(send: Send, reply: Reply) -> None:
    """``reply`` as ASGI messages, with its ``Content-Length``."""
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


HEAD_TOO_LARGE = Reply.problem(431, "invalid_request", "the request header fields are too large")
BODY_TOO_LARGE = Reply.problem(413, "invalid_request", "the request body is too large")
BODY_TOO_SLOW = Reply.problem(408, "invalid_request", "the request body was not received in time")
BUSY = Reply.problem(
    503, "temporarily_unavailable", "the server is busy; retry later", (("Retry-After", "1"),)
)


class _Exchange:
    """One request's ``receive`` and ``send`` under the body limits. Once it refused the
    request (:meth:`refuse`) it owns the response: the app reads a disconnect and what it
    sends is dropped."""

    def __init__(self, limits: ServerLimits, receive: Receive, send: Send) -> None:
        self.limits, self._receive, self._send = limits, receive, send
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + limits.body_timeout
        self.received = 0
        self.body_done = False
        self.started = False
        self.refused = False

    async def receive(self) -> Message:
        if self.refused:
            return _DISCONNECT
        if self.body_done:  # waiting for a disconnect (a streamed response): no deadline
            return await self._receive()
        try:
            message = await asyncio.wait_for(
                self._receive(), max(self.deadline - self.loop.time(), 0.0)
            )
        except asyncio.TimeoutError:
            return await self.refuse(BODY_TOO_SLOW)
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limits.max_body_bytes:
                return await self.refuse(BODY_TOO_LARGE)
            self.body_done = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def refuse(self, reply: Reply) -> Message:
        """Answer ``reply`` unless a response has started; the app reads a disconnect."""
        if not self.started:
            self.started = self.refused = True
            await send_reply(self._send, reply)
        return _DISCONNECT


class EdgeGuard:
    """``app`` behind the request half of :class:`ServerLimits` (HTTP only; WebSocket and
    lifespan messages pass through). One guard per server: it counts that server's
    requests in flight."""

    def __init__(self, app: ASGIApp, limits: ServerLimits | None = None) -> None:
        self.app = app
        self.limits = limits if limits is not None else ServerLimits()
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if head_size(scope) > self.limits.max_header_bytes:
            await send_reply(send, HEAD_TOO_LARGE)
            return
        if self.in_flight >= self.limits.max_concurrency:
            log.warning("%d requests in flight: refused with 503", self.in_flight)
            await send_reply(send, BUSY)
            return
        exchange = _Exchange(self.limits, receive, send)
        self.in_flight += 1
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception:
            if not exchange.refused:
                raise
            log.debug("the app failed on a refused request", exc_info=True)
        finally:
            self.in_flight -= 1


__all__ = ["EdgeGuard", "ServerLimits"]
