"""Riding out a server restart: a poll that meets a connection error comes back into the
flow as a value, and the flow polls again with backoff (§Deferred Responses).

A person server or resource restarted (or a worker of a rolling deploy replaced) while an
agent polls a pending URL drops the agent's connection: the long poll in flight ends with
``RemoteProtocolError`` / ``ReadError``, the next ones with ``ConnectError`` until the server
listens again. Its pending records survive; so must the agent's wait. Only requests that are
safe to repeat are retried -- a poll is a ``GET`` of the pending URL (§Polling with GET), and
a withdrawal a ``DELETE`` of it; a ``POST`` that may have been acted upon never is.

The flow does no I/O, and an httpx client closes an ``Auth`` flow on a transport error
rather than throwing it in; so the error is turned into a response *value* where it
happens, in the same form for every driver:

* the flow marks such a request :func:`retryable`;
* :class:`ReconnectingTransport` -- the transport every client built with
  :func:`~aauth_agents.agent.client_options` (``AAuth.client()``, ``AAuth.async_client()``,
  the MCP and LangChain clients) sends through, for ``httpx`` and ``httpx2``, sync and async
  -- and the governance runners (:func:`~aauth_agents.agent.effects.run_sync`,
  :func:`~aauth_agents.agent.effects.run_async`) answer a marked request whose connection
  failed with :func:`failure_response`: a ``502`` with no body that carries the exception
  (:func:`failure_of`), as a gateway in front of the server would answer;
* the poll loop (:mod:`aauth_agents.agent.flow.deferred`) treats that like a ``502``,
  ``503`` or ``504`` from the server: it emits
  :class:`~aauth_agents.agent.events.Reconnecting`, waits ``Retry-After`` when the server
  sent one, else :func:`backoff`, and polls again -- until ``max_poll_seconds``, when it
  withdraws the request and raises
  :class:`~aauth_agents.agent.errors.PollTimeoutError` (the last connection error chained).

A client built without :func:`client_options` (``httpx.Client(auth=auth)``) gets the same
by sending through ``ReconnectingTransport(its_transport)``. Without it a connection error
ends the call, as httpx's does, and the ``Auth`` flow cannot change that: httpx sends each
request the flow yields and, when the transport raises, closes the flow (``close()`` /
``aclose()`` in a ``finally``) instead of throwing the error into it, so no flow can catch
it and poll again. What the flow can do is say how to fix it: the connection error of a
poll that reaches the caller of a sync client carries :data:`UNRETRIED_HINT` as a note
(:func:`note_unretried`; PEP 678, shown in its traceback; logged on Python 3.10); an async
client's flow, which
does not see the error, logs the hint as a warning (:func:`warn_unretried`).
"""

from __future__ import annotations

import importlib
import logging
import secrets
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx

log = logging.getLogger("aauth_agents.agent")

#: The request extension that marks a request safe to repeat (a poll, a withdrawal).
RETRYABLE = "aauth_agents.retryable"
#: The response extension holding the connection error a :func:`failure_response` stands for.
FAILURE = "aauth_agents.transport_error"
#: What a poll is answered with when the connection failed (a gateway's answer).
FAILURE_STATUS = 502
#: Server answers after which a poll is repeated: the server (or the gateway in front of
#: it) is restarting, overloaded or cannot reach its upstream.
RETRY_STATUSES = frozenset({502, 503, 504})
#: :func:`backoff`: the first wait's ceiling, and the largest ceiling (seconds).
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
#: The defaults of ``httpx.Client`` that shape its default transport.
TRANSPORT_OPTIONS = ("verify", "cert", "trust_env", "http1", "http2", "limits")

#: What a poll's connection error says when the client's transport did not answer it as a
#: value (the fix: the transport every :func:`client_options` client has).
UNRETRIED_HINT = (
    "aauth_agents: this was a poll of a pending request, safe to repeat, and the client's "
    "transport does not repeat it: build the client with AAuth.client() / "
    "AAuth.async_client(), or pass transport=ReconnectingTransport(your_transport) "
    "(aauth_agents.agent.reconnect), so that polling rides out a server restart"
)

_random = secrets.SystemRandom()


def retryable(request: Any) -> Any:
    """Mark ``request`` (httpx or httpx2) safe to repeat; returns it."""
    request.extensions = {**request.extensions, RETRYABLE: True}
    return request


def _libraries() -> list[ModuleType]:
    """httpx, and httpx2 when it is loaded (a bridged transport raises httpx's errors for
    an httpx2 request, so both are recognised whatever the request)."""
    loaded = [httpx]
    second = sys.modules.get("httpx2")
    if second is not None:
        loaded.append(second)
    return loaded


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a connection failure worth another try: a network error
    (connect, read, write, close), a timeout, or the server breaking the protocol (a
    connection dropped mid-response). A malformed URL or an unsupported scheme is not."""
    return any(
        isinstance(exc, (lib.NetworkError, lib.TimeoutException, lib.RemoteProtocolError))
        for lib in _libraries()
    )


def _library_of(request: Any) -> ModuleType:
    return importlib.import_module(type(request).__module__.split(".", 1)[0])


def failure_response(request: Any, exc: BaseException) -> Any | None:
    """The value a connection failure of ``request`` comes back as: a ``502`` of the
    request's library with ``exc`` in its extensions -- when ``request`` is
    :func:`retryable` and ``exc`` :func:`transient`; otherwise ``None`` (raise ``exc``)."""
    if not request.extensions.get(RETRYABLE) or not transient(exc):
        return None
    library = _library_of(request)
    log.info("%s %s failed (%s); answered as a %d", request.method, request.url, exc, 502)
    return library.Response(FAILURE_STATUS, request=request, extensions={FAILURE: exc})


def failure_of(response: Any) -> BaseException | None:
    """The connection error a :func:`failure_response` stands for (``None``: a real
    response)."""
    error = response.extensions.get(FAILURE)
    return error if isinstance(error, BaseException) else None


def note_unretried(exc: BaseException | None) -> None:
    """Add :data:`UNRETRIED_HINT` as a note to ``exc`` when it is the :func:`transient`
    connection failure of a :func:`retryable` request (a poll) on its way to the caller:
    the client's transport did not turn it into a :func:`failure_response`."""
    if exc is None or not transient(exc) or UNRETRIED_HINT in getattr(exc, "__notes__", ()):
        return
    try:
        request = exc.request  # type: ignore[attr-defined]  # httpx's RequestError
    except (AttributeError, RuntimeError):  # no request attached
        return
    if request.extensions.get(RETRYABLE):
        add_note = getattr(exc, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(UNRETRIED_HINT)
        else:
            log.warning("%s %s failed (%s). %s", request.method, request.url, exc, UNRETRIED_HINT)


def warn_unretried(request: Any) -> None:
    """Log :data:`UNRETRIED_HINT` when an async ``Auth`` flow is closed while
    ``request``, a :func:`retryable` one (a poll), is unanswered: its connection failed
    (or the call was cancelled) and the flow cannot see the error to annotate it."""
    if request is not None and request.extensions.get(RETRYABLE):
        log.warning("%s %s got no answer. %s", request.method, request.url, UNRETRIED_HINT)


def backoff(failures: int, *, random: Callable[[], float] = _random.random) -> float:
    """Seconds to wait after ``failures`` consecutive failures (1, 2, ...): exponential
    (a ceiling of :data:`BACKOFF_BASE` doubling per failure, at most :data:`BACKOFF_CAP`)
    with jitter (between half the ceiling and the ceiling), so that the agents a restart
    disconnected at once do not all come back at once."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(max(failures - 1, 0), 32))
    return ceiling / 2 + random() * ceiling / 2


class ReconnectingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A transport that answers a :func:`retryable` request whose connection failed with
    :func:`failure_response`, and sends everything else through ``inner`` unchanged.

    ``inner`` is any httpx or httpx2 transport, sync or async; ``None`` builds the default
    transport of the first request's library (httpx or httpx2) on first use, for the
    interface used (sync or async), with ``options`` (:data:`TRANSPORT_OPTIONS`: what a
    client's own default transport is built with)."""

    def __init__(self, inner: Any = None, **options: Any) -> None:
        self.inner = inner
        self._options = {k: v for k, v in options.items() if k in TRANSPORT_OPTIONS}

    def _transport(self, request: Any, kind: str) -> Any:
        if self.inner is None:
            self.inner = getattr(_library_of(request), kind)(**self._options)
        return self.inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response: httpx.Response = self._transport(request, "HTTPTransport").handle_request(
                request
            )
        except Exception as exc:
            failed = failure_response(request, exc)
            if failed is None:
                raise
            return failed  # type: ignore[no-any-return]
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        inner = self._transport(request, "AsyncHTTPTransport")
        try:
            response: httpx.Response = await inner.handle_async_request(request)
        except Exception as exc:
            failed = failure_response(request, exc)
            if failed is None:
                raise
            return failed  # type: ignore[no-any-return]
        return response

    def __enter__(self) -> ReconnectingTransport:
        if self.inner is not None and hasattr(self.inner, "__enter__"):
            self.inner.__enter__()
        return self

    async def __aenter__(self) -> ReconnectingTransport:
        if self.inner is not None and hasattr(self.inner, "__aenter__"):
            await self.inner.__aenter__()
        return self

    def close(self) -> None:
        if self.inner is not None and hasattr(self.inner, "close"):
            self.inner.close()

    async def aclose(self) -> None:
        if self.inner is not None and hasattr(self.inner, "aclose"):
            await self.inner.aclose()


__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "FAILURE",
    "FAILURE_STATUS",
    "RETRYABLE",
    "RETRY_STATUSES",
    "TRANSPORT_OPTIONS",
    "UNRETRIED_HINT",
    "ReconnectingTransport",
    "backoff",
    "failure_of",
    "failure_response",
    "note_unretried",
    "retryable",
    "transient",
    "warn_unretried",
]
