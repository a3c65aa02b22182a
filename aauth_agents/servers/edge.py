"""The edge of every server we run: uvicorn's HTTP/1.1 protocol with the connection half of
:class:`~aauth_agents.servers.limits.ServerLimits`, and the one place a uvicorn server is
configured (:func:`uvicorn_config`, used by ``aauth-agents serve`` and
:class:`~aauth_agents.servers.LoopbackServer`).

uvicorn waits for a request head without a deadline (its keep-alive timer runs only between
requests), answers a malformed or oversized head with a plain-text ``400`` and closes the
connection with the rest of the client's data unread (the client sees a reset), and counts
connections, idle ones included, against ``limit_concurrency``. :class:`EdgeProtocol`, a
subclass of its h11 protocol, adds:

* a head deadline (``header_timeout``) from a connection's first byte, or from the end of
  the previous response: a partial head then gets ``408`` problem+json, no head at all a
  close;
* caps on open connections, in all and per client address, checked when a connection is
  made (over a cap: closed at once);
* ``400`` / ``431`` problem+json for a malformed / oversized head (``max_header_bytes``);
* a lingering close after a refusal sent while the client is still sending (a head it did
  not finish, a body the app did not read): our side is shut, at most ``max_drain_bytes``
  more are read and discarded for at most ``linger_timeout``, then the connection closes.

The request half (concurrency, body deadline and size, the size of a head that arrived in
one piece) is :class:`~aauth_agents.servers.limits.EdgeGuard`, which :func:`uvicorn_config`
puts around the app.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from http import HTTPStatus
from typing import Any, ClassVar, Literal

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..protocol.reply import Reply
from .limits import HEAD_TOO_LARGE, EdgeGuard, ServerLimits

BAD_HEAD = Reply.problem(400, "invalid_request", "the request is not valid HTTP/1.1")
HEAD_TOO_SLOW = Reply.problem(408, "invalid_request", "the request was not received in time")


def raw_response(reply: Reply) -> bytes:
    """``reply`` as the bytes of an HTTP/1.1 response that closes the connection (written
    without h11, which has no request to answer when the head never completed)."""
    head = [f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}"]
    head += [f"{name}: {value}" for name, value in reply.headers]
    head += [f"content-length: {len(reply.body)}", "connection: close", "", ""]
    return "\r\n".join(head).encode("latin-1") + reply.body


class EdgeProtocol(H11Protocol):
    """uvicorn's h11 protocol under the connection limits of :attr:`limits`. Use
    :func:`edge_protocol` for a subclass bound to one server's limits and counters."""

    limits: ClassVar[ServerLimits]
    #: Open connections per client address, for this server only.
    per_address: ClassVar[dict[str, int]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._address: str | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._draining = False
        self._drained = 0

    # -- connections --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self.limits
        address = self.client[0] if self.client else ""
        held = self.per_address.get(address, 0)
        cap = limits.max_connections_per_address
        if len(self.connections) > limits.max_connections or (cap is not None and held >= cap):
            transport.close()
            return
        self._address = address
        self.per_address[address] = held + 1
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        super().connection_lost(exc)

    def _release(self) -> None:
        """Forget the connection's timers and its place in its address's count (once)."""
        for timer in (self._head_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._linger_timer = None
        address, self._address = self._address, None
        if address is not None:
            left = self.per_address.get(address, 1) - 1
            if left > 0:
                self.per_address[address] = left
            else:
                self.per_address.pop(address, None)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._release()  # the WebSocket protocol takes the connection over
        super().handle_websocket_upgrade(event)

    def shutdown(self) -> None:
        if self._draining:
            self.transport.close()
            return
        super().shutdown()

    # -- the request head ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._draining:
            self._drained += len(data)
            if self._drained > self.limits.max_drain_bytes:
                self.transport.close()
            return
        super().data_received(data)
        self._watch_head()

    def _watch_head(self) -> None:
        """Keep a head deadline while the connection waits for (the rest of) a head."""
        if self.transport.is_closing() or self._draining or self.conn.their_state is not h11.IDLE:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
        elif self._head_timer is None:
            self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timeout)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0].strip():  # part of a head arrived, not all of it
            self._refuse(HEAD_TOO_SLOW)
        else:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """A head h11 refused: too large (``431``), or not HTTP/1.1 (``400``)."""
        oversized = len(self.conn.trailing_data[0]) > self.limits.max_header_bytes
        self._refuse(HEAD_TOO_LARGE if oversized else BAD_HEAD)

    # -- responses ----------------------------------------------------------------------------

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.SEND_BODY:  # answered before the body arrived
            self._linger()
        else:
            self._watch_head()

    def _refuse(self, reply: Reply) -> None:
        self.transport.write(raw_response(reply))
        self._linger()

    def _linger(self) -> None:
        """Close after the client had time to read what we sent: shut our side, discard
        what it still sends, close after ``linger_timeout`` (or at its end)."""
        self._draining = True
        self._unset_keepalive_if_required()
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self.transport.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger_timer = self.loop.call_later(self.limits.linger_timeout, self.transport.close)


def edge_protocol(limits: ServerLimits) -> type[EdgeProtocol]:
    """An :class:`EdgeProtocol` bound to ``limits``, with connection counts of its own: one
    per server."""
    return type("EdgeProtocol", (EdgeProtocol,), {"limits": limits, "per_address": {}})


#: Open files a server keeps for itself beyond its connections: databases, logs, the
#: connections it opens (discovery, revocation notices).
RESERVED_FILES = 64


def fitted(limits: ServerLimits) -> ServerLimits:
    """``limits`` with at most as many connections as the process's open-file limit leaves
    room for, a whole accept burst (``backlog``) and :data:`RESERVED_FILES` included: past
    it, accepting fails (``EMFILE``) and the server stops answering anyone."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):  # not on this platform
        return limits
    if soft == resource.RLIM_INFINITY:
        return limits
    room = max(1, soft - limits.backlog - RESERVED_FILES)
    return replace(limits, max_connections=min(limits.max_connections, room))


def uvicorn_config(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: ServerLimits | None = None,
    lifespan: Literal["on", "off", "auto"] = "off",
    log_level: str = "warning",
) -> uvicorn.Config:
    """The uvicorn configuration of every server we run: ``app`` behind
    :class:`~aauth_agents.servers.limits.EdgeGuard`, served by :class:`EdgeProtocol`, both
    under ``limits`` (default :class:`ServerLimits`), :func:`fitted` to the open-file limit."""
    limits = fitted(limits if limits is not None else ServerLimits())
    return uvicorn.Config(
        EdgeGuard(app, limits),
        host=host,
        port=port,
        http=edge_protocol(limits),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_keep_alive=limits.keep_alive_timeout,
        backlog=limits.backlog,
        lifespan=lifespan,
        log_level=log_level,
        access_log=False,
        proxy_headers=False,  # forwarding headers: servers.proxies, trusted ones only
    )


__all__ = ["EdgeProtocol", "edge_protocol", "fitted", "raw_response", "uvicorn_config"]
