"""The bridge: JSON-RPC messages from the host's stdin to the MCP server and back.

A reader thread frames stdin into lines (:class:`~.wire.LineFramer`) and parses each
(:func:`~.wire.parse_message`) into a bounded queue; the event loop dispatches:

* a request -- its own task, one ``POST`` (:meth:`~.upstream.Upstream.post`); whatever the
  server sends on the way (its requests, notifications, progress) and the response go to the
  host as they arrive, unchanged, ids included. A request that ends without a response --
  AAuth ended it, the server could not be reached or went away, an HTTP error -- gets a
  JSON-RPC error with a clear message (:func:`failure`). At most ``max_in_flight`` at once.
* a notification -- forwarded in order (a request waits for the notifications sent before
  it: ``notifications/initialized`` reaches the server before ``tools/list``);
  ``notifications/cancelled`` also stops the request it names here.
* a response -- to one of the proxy's own requests (an elicitation), kept here; else the
  answer to one of the server's requests, forwarded at once.
* what cannot be parsed -- a JSON-RPC error (``id`` null when it could not be read).

End of stdin ends the proxy: open requests are abandoned, a stateful session is ended with
``DELETE``, and what is queued for the host is written.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import httpx

from ...agent import AAuth, AgentIdentity
from ...agent.events import FlowEvent
from ...protocol.errors import AAuthError
from .host import HostChannel, HostPrompts
from .upstream import Upstream, UpstreamError
from .wire import (
    AAUTH_ERROR,
    HTTP_ERROR,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MAX_MESSAGE_BYTES,
    OVERSIZE,
    PARSE_ERROR,
    PROXY_BUSY,
    SERVER_UNREACHABLE,
    Json,
    LineFramer,
    Message,
    Notification,
    Request,
    Response,
    SSEError,
    WireError,
    error_response,
    id_key,
    parse_message,
)

log = logging.getLogger("aauth_agents.integrations.mcp_proxy")

#: Parsed messages from stdin waiting for the event loop (the reader thread waits beyond).
INBOX_SIZE = 64
#: Requests of the host in flight at once; more get :data:`~.wire.PROXY_BUSY`.
MAX_IN_FLIGHT = 64
#: Notifications and responses being forwarded at once before stdin is read further.
MAX_FORWARDING = 64
#: Bytes read from stdin at a time.
READ_CHUNK = 64 * 1024

_EOF = object()


class _Inbox:
    """What the reader thread hands the event loop: at most ``size`` items wait; the
    thread waits for room (the loop never waits for the thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.room = threading.Semaphore(size)
        self.closed = threading.Event()

    def put(self, item: object) -> bool:
        """From the reader thread: False once the proxy stopped."""
        while not self.room.acquire(timeout=0.2):
            if self.closed.is_set():
                return False
        if self.closed.is_set():
            return False
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed
            return False
        return True

    async def get(self) -> object:
        item = await self.queue.get()
        self.room.release()
        return item

    def close(self) -> None:
        self.closed.set()


@dataclass
class _Flight:
    request: Request
    answered: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


# -- errors for the host -------------------------------------------------------------------------


def _asked_for(error: AAuthError) -> str:
    what = f"access to {', '.join(error.scopes)}" if error.scopes else "access"
    host = httpx.URL(error.resource).host if error.resource else ""
    return f"{what} at {host}" if host else what


def aauth_message(error: AAuthError) -> str:
    """A sentence for the host (and the model behind it) about an AAuth failure: no URL of
    a person's page, no code, no token, no key."""
    asked = _asked_for(error)
    messages = {
        "denied": f"The person declined {asked}.",
        "abandoned": f"The person left without deciding on {asked}.",
        "expired": f"The request for {asked} expired before the person decided; it may be "
        "asked again.",
        "cancelled": f"The request for {asked} was withdrawn: {error.detail}",
        "user_unreachable": f"The person could not be reached to approve {asked}.",
        "revoked": f"The person has revoked the agent's {asked}.",
        "insufficient_scope": f"The agent's authorization does not cover this request ({asked}).",
        "mission_terminated": "The mission this agent works under has ended.",
        "invalid_code": f"The request for {asked} can no longer be completed.",
    }
    text = messages.get(error.code, f"Authorization failed for {asked}: {error.detail}")
    return f"AAuth: {text.rstrip('.')} ({error.code})."


def failure(exc: BaseException, url: str) -> tuple[int, str, Json | None]:
    """``(code, message, data)`` of the JSON-RPC error for a request ``exc`` ended."""
    if isinstance(exc, UpstreamError):
        return exc.code, exc.message, exc.data
    if isinstance(exc, AAuthError):
        return AAUTH_ERROR, aauth_message(exc), {"aauth_error": exc.code}
    if isinstance(exc, httpx.HTTPError):
        try:
            host = exc.request.url.host
        except RuntimeError:
            host = httpx.URL(url).host
        kind = type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return SERVER_UNREACHABLE, f"{host} did not answer in time ({kind})", None
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return (
                SERVER_UNREACHABLE,
                f"could not connect to {host} ({kind}): it is down or unreachable",
                None,
            )
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
            return (
                SERVER_UNREACHABLE,
                f"the connection to {host} broke before it answered ({kind})",
                None,
            )
        return SERVER_UNREACHABLE, f"could not complete the request to {host} ({kind})", None
    if isinstance(exc, SSEError):
        return HTTP_ERROR, f"the MCP server sent an invalid event stream: {exc}", None
    return (
        INTERNAL_ERROR,
        f"the proxy failed ({type(exc).__name__}); its log on stderr says more",
        None,
    )


# -- the proxy -----------------------------------------------------------------------------------


class McpProxy:
    """Forward the host's JSON-RPC messages to the streamable HTTP MCP server at ``url``
    through ``client`` (whose ``auth`` is the agent's :class:`~aauth_agents.agent.AAuth`,
    asking the person through :class:`~.host.HostPrompts` on ``host``), and the server's
    back (see the module docstring).

    ``fatal`` -- a reason the proxy cannot work (no agent key): every request gets it as a
    JSON-RPC error. ``on_initialize(capabilities)`` -- called with the host's client
    capabilities from its ``initialize`` before it is forwarded (the agent declares the
    clarification capability only when the host can ask the person). ``listen`` -- follow a
    stateful session's standing GET stream. The client is closed when :meth:`serve` ends.
    """

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        host: HostChannel,
        *,
        fatal: str | None = None,
        on_initialize: Callable[[Json], None] | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_in_flight: int = MAX_IN_FLIGHT,
        read_timeout: float = 300.0,
        listen: bool = True,
    ) -> None:
        self.url = url
        self.client = client
        self.host = host
        self.fatal = fatal
        self.on_initialize = on_initialize
        self.max_message_bytes = max_message_bytes
        self.max_in_flight = max_in_flight
        self.listen = listen
        self.upstream = Upstream(
            url,
            client,
            self._deliver,
            max_message_bytes=max_message_bytes,
            read_timeout=read_timeout,
        )
        self._in_flight: dict[tuple[str, str | int], _Flight] = {}
        self._forwarding: deque[asyncio.Task[None]] = deque()
        self._last_notification: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None

    # -- running ---------------------------------------------------------------------------------

    async def serve(self, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        """Proxy until ``stdin`` ends or the host stops reading ``stdout``."""
        loop = asyncio.get_running_loop()
        self.host.start(stdout, loop)
        inbox = _Inbox(loop, INBOX_SIZE)
        threading.Thread(
            target=self._read, args=(stdin, inbox), name="aauth-mcp-stdin", daemon=True
        ).start()
        pump = asyncio.ensure_future(self._pump(inbox))
        gone = asyncio.ensure_future(self.host.gone.wait())
        try:
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, gone):
                task.cancel()
            await asyncio.wait({pump, gone})
            inbox.close()
            await self._shutdown()

    async def _pump(self, inbox: _Inbox) -> None:
        while True:
            item = await inbox.get()
            if item is _EOF:
                log.info("the host closed stdin: stopping")
                return
            try:
                await self._dispatch(item)
            except Exception:  # never let one message end the proxy
                log.exception("could not handle a message from the host")

    async def _shutdown(self) -> None:
        for flight in list(self._in_flight.values()):
            flight.answered = True  # the host is gone: nobody to answer
        await self.host.cancel_tasks()
        try:
            await self.upstream.close(timeout=1.0)
        finally:
            await self.client.aclose()
            await self.host.aclose(timeout=1.0)

    def _read(self, stdin: IO[bytes], inbox: _Inbox) -> None:
        """The reader thread: lines from ``stdin``, parsed, into ``inbox`` (waiting while it
        is full); :data:`_EOF` at the end."""
        framer = LineFramer(self.max_message_bytes)
        read = getattr(stdin, "read1", None) or stdin.read
        put = inbox.put

        try:
            while True:
                try:
                    chunk = read(READ_CHUNK)
                except (OSError, ValueError) as exc:
                    log.warning("reading stdin failed: %s", exc)
                    chunk = b""
                for line in framer.feed(chunk) if chunk else framer.finish():
                    item: object
                    if line is OVERSIZE:
                        item = WireError(
                            PARSE_ERROR,
                            f"the message is larger than {self.max_message_bytes} bytes",
                        )
                    else:
                        assert isinstance(line, bytes)
                        if not line.strip():
                            continue
                        try:
                            item = parse_message(line, max_bytes=self.max_message_bytes)
                        except WireError as exc:
                            item = exc
                    if not put(item):
                        return
                if not chunk:
                    break
        finally:
            put(_EOF)

    # -- from the host ---------------------------------------------------------------------------

    async def _dispatch(self, item: object) -> None:
        if isinstance(item, WireError):
            log.warning("the host sent an invalid message: %s", item.message)
            if item.reply:
                await self.host.send(item.response())
            return
        if isinstance(item, Response):
            if self.host.resolve(item) or self.fatal is not None:
                return
            await self._forward(item)
        elif isinstance(item, Notification):
            self._notified(item)
            if self.fatal is None:
                await self._forward(item, ordered=True)
        elif isinstance(item, Request):
            await self._request(item)

    def _notified(self, notification: Notification) -> None:
        if notification.method == "notifications/initialized":
            self.host.initialized = True
        elif notification.method == "notifications/cancelled":
            request_id = notification.params.get("requestId")
            if isinstance(request_id, (str, int)) and not isinstance(request_id, bool):
                flight = self._in_flight.get(id_key(request_id))
                if flight is not None and flight.task is not None:
                    flight.answered = True  # the host expects no answer now
                    flight.task.cancel()

    async def _request(self, request: Request) -> None:
        if self.fatal is not None:
            await self.host.send(error_response(request.id, INTERNAL_ERROR, self.fatal))
            return
        key = id_key(request.id)
        if key in self._in_flight:
            await self.host.send(
                error_response(
                    request.id, INVALID_REQUEST, "a request with this id is still in flight"
                )
            )
            return
        if len(self._in_flight) >= self.max_in_flight:
            await self.host.send(
                error_response(
                    request.id,
                    PROXY_BUSY,
                    f"{self.max_in_flight} requests are in flight; try again when some are "
                    "answered",
                )
            )
            return
        if request.method == "initialize":
            capabilities = request.params.get("capabilities")
            self.host.client_capabilities = capabilities if isinstance(capabilities, dict) else {}
            self.host.initialized = False
            if self.on_initialize is not None:
                self.on_initialize(self.host.client_capabilities)
        flight = _Flight(request)
        self._in_flight[key] = flight
        flight.task = self.host.spawn(self._call(flight, self._last_notification))

    async def _call(self, flight: _Flight, after: asyncio.Task[None] | None) -> None:
        request = flight.request
        error: Json | None = None
        try:
            if after is not None and not after.done():
                await asyncio.wait({after})
            await self.upstream.post(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code, message, data = failure(exc, self.url)
            if code == INTERNAL_ERROR:
                log.error("%s failed", request.method, exc_info=exc)
            else:
                log.warning("%s (id %r) failed: %s", request.method, request.id, message)
            error = error_response(request.id, code, message, data)
        else:
            error = error_response(
                request.id,
                SERVER_UNREACHABLE,
                "the MCP server closed the response without answering the request",
            )
        finally:
            if self._in_flight.get(id_key(request.id)) is flight:
                del self._in_flight[id_key(request.id)]
        if not flight.answered:
            flight.answered = True
            await self.host.send(error)

    async def _forward(self, message: Message, *, ordered: bool = False) -> None:
        """Forward a notification (``ordered``: after those before it) or a response."""
        while len(self._forwarding) >= MAX_FORWARDING:  # the server is slow: wait for it
            await asyncio.wait({self._forwarding[0]})
        after = self._last_notification if ordered else None
        task = self.host.spawn(self._send_on(message, after))
        self._forwarding.append(task)
        task.add_done_callback(self._forwarding.remove)
        if ordered:
            self._last_notification = task

    async def _send_on(self, message: Message, after: asyncio.Task[None] | None) -> None:
        if after is not None and not after.done():
            await asyncio.wait({after})
        what = message.method if isinstance(message, Notification) else "a response"
        try:
            await self.upstream.post(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "could not forward %s to the MCP server: %s", what, failure(exc, self.url)[1]
            )
            return
        if (
            isinstance(message, Notification)
            and message.method == "notifications/initialized"
            and self.listen
            and self.upstream.session_id is not None
            and (self._listener is None or self._listener.done())
        ):
            self._listener = self.host.spawn(self.upstream.listen())

    # -- from the server -------------------------------------------------------------------------

    async def _deliver(self, message: Message) -> None:
        if isinstance(message, Response):
            if message.id is None:
                log.warning(
                    "the MCP server sent an error without an id: %s", message.raw.get("error")
                )
                return
            flight = self._in_flight.get(id_key(message.id))
            if flight is None or flight.answered:
                log.info(
                    "a response from the MCP server for no open request (id %r) was dropped",
                    message.id,
                )
                return
            flight.answered = True
        await self.host.send(message.raw)


def proxy_for_agent(
    identity: AgentIdentity | None,
    url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    justification: str | None = None,
    max_poll_seconds: float = 600.0,
    timeout: float = 60.0,
    read_timeout: float = 300.0,
    open_browser: bool = True,
    stream: IO[str] | None = None,
    fatal: str | None = None,
    on_event: Callable[[FlowEvent], None] | None = None,
) -> McpProxy:
    """The proxy for the agent ``identity``: an :class:`~aauth_agents.agent.AAuth` asking the
    person through :class:`~.host.HostPrompts`, an ``httpx.AsyncClient`` with it (through
    ``transport``: e.g. an :class:`~aauth_agents.transport.AsyncMappedTransport`), and the
    :class:`McpProxy`. The agent declares the ``clarification`` capability only when the
    host declares form-mode elicitation (it could not answer otherwise). Without an
    ``identity``, ``fatal`` says why, and every request gets it as its error. ``on_event``
    sees every step of the agent's flow (``-v``)."""
    host = HostChannel()
    prompts = HostPrompts(host, open_browser=open_browser, stream=stream)
    http_timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0), read=read_timeout)
    if identity is None:
        client = httpx.AsyncClient(transport=transport, timeout=http_timeout)
        return McpProxy(
            url,
            client,
            host,
            fatal=fatal or "the proxy has no agent identity",
            read_timeout=read_timeout,
        )
    auth = AAuth(
        identity,
        capabilities=("interaction",),
        justification=justification,
        prompts=prompts,
        max_poll_seconds=max_poll_seconds,
        on_event=on_event,
        anticipate=False,  # a ping or a notification never waits on a tool call's consent
    )

    def declare(capabilities: Json) -> None:
        can_ask = host.declared_form_elicitation()
        auth.config.set_capabilities(
            ("interaction", "clarification") if can_ask else ("interaction",)
        )

    client = auth.async_client(transport=transport, timeout=http_timeout, follow_redirects=False)
    return McpProxy(url, client, host, on_initialize=declare, read_timeout=read_timeout)


__all__ = ["McpProxy", "aauth_message", "failure", "proxy_for_agent"]
