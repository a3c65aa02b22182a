"""The effects the sans-I/O agent flow yields, and the two drivers that execute them.

The flow (:mod:`aauth_agents.agent.flow`) is a generator: it yields an effect and receives
its result. It never touches a socket, a clock-driven sleep or a callback itself:

* :class:`Send` -- send this ``httpx.Request``; the result is the ``httpx.Response``, its
  body not read (a stream the caller may receive as it arrives);
* :class:`Read` -- read this response's body (the flow reads only what it inspects: a
  challenge, a pending response, a PS's JSON), or the body of the request it signs;
* :class:`Sleep` -- wait this many seconds;
* :class:`Invoke` -- call a caller's callback (``on_interaction``, ``on_clarification``);
  the result is its return value, awaited when it is awaitable and the driver is async (a
  :class:`~aauth_agents.agent.callbacks.FutureAnswer` is waited for by either driver);
* :class:`Emit` -- hand a :class:`~aauth_agents.agent.events.FlowEvent` to ``on_event`` (or
  to the ``hook`` it names: a parent agent's, for the PS calls it makes for a sub-agent);
* :class:`JoinFlight` / :class:`WaitFlight` -- single flight: join the call in progress for a
  key (the result says whether this flow leads it) and wait for a leader to finish.

:func:`drive_sync` executes effects with blocking calls and threads;
:func:`drive_async` with awaits and tasks -- both on the package's one driver
(:func:`aauth_agents.sansio.drive` / :func:`~aauth_agents.sansio.adrive`, which discovery
runs on too), :class:`Send` being the effect that leaves it. Both are generators of the
requests to send, the shape ``httpx.Auth.sync_auth_flow`` / ``async_auth_flow`` need;
:func:`run_sync` and :func:`run_async` send those requests with a client themselves
(governance calls). :func:`sync_resource_flow` / :func:`async_resource_flow` are the auth
flows of a resource request: in the steady state (credentials cached) they sign and send
with no flow to drive, and hand the response to the flow only when it needs one. An error
from an effect is thrown into the flow at the point that yielded it -- but the connection
failure of a request the flow marked safe to repeat (a poll), which comes back as a value
(:mod:`aauth_agents.agent.reconnect`), as it does through the transport of every client
:func:`~aauth_agents.agent.client_options` builds.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast

import anyio
import httpx

from ..protocol.errors import ConfigurationError
from ..sansio import (
    AsyncFlight,
    AsyncFlights,
    Flight,
    Result,
    ThreadFlight,
    ThreadFlights,
    adrive,
    drive,
)
from .callbacks import FutureAnswer
from .events import FlowEvent
from .reconnect import failure_response, note_unretried, warn_unretried

if TYPE_CHECKING:
    from .flow import AgentFlow

log = logging.getLogger("aauth_agents.agent")

T = TypeVar("T")

EventHook: TypeAlias = Callable[[FlowEvent], None]


@dataclass(frozen=True, slots=True)
class Send:
    request: httpx.Request


@dataclass(frozen=True, slots=True)
class Read:
    response: httpx.Response | httpx.Request  # (a request: the body the flow will sign)


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Invoke:
    func: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Emit:
    event: FlowEvent
    hook: EventHook | None = None  # None: the runtime's on_event


@dataclass(frozen=True, slots=True)
class JoinFlight:
    key: Hashable


@dataclass(frozen=True, slots=True)
class WaitFlight:
    flight: Flight


Effect: TypeAlias = Send | Read | Sleep | Invoke | Emit | JoinFlight | WaitFlight
#: A flow: yields effects, receives their results, returns a ``T``.
Flow: TypeAlias = Generator[Effect, Any, T]

SleepFunction: TypeAlias = Callable[[float], Any]


@dataclass
class Runtime:
    """What the drivers need besides the flow: the sleep function (``None``: ``time.sleep``
    / ``anyio.sleep``), the event hook and the single-flight registries."""

    sleep: SleepFunction | None = None
    on_event: EventHook | None = None
    thread_flights: ThreadFlights = field(default_factory=ThreadFlights)
    async_flights: AsyncFlights = field(default_factory=AsyncFlights)


def _emit(runtime: Runtime, event: FlowEvent, hook: EventHook | None = None) -> None:
    hook = hook or runtime.on_event
    if hook is None:
        return
    try:
        hook(event)
    except Exception:  # an observer must not break the flow
        log.exception("on_event raised; ignored")


def _run_blocking(awaitable: Awaitable[T]) -> T:
    """Complete a coroutine a callback returned, from sync code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        raise ConfigurationError(
            "an async callback cannot be awaited by httpx.Client inside a running event "
            "loop; use httpx.AsyncClient"
        )

    async def wait() -> T:
        return await awaitable

    return asyncio.run(wait())


def _sync_step(runtime: Runtime, effect: Effect) -> Any:
    """Execute every effect except Send (sync)."""
    if isinstance(effect, Read):
        return effect.response.read()
    if isinstance(effect, Emit):
        _emit(runtime, effect.event, effect.hook)
        return None
    if isinstance(effect, Sleep):
        if effect.seconds > 0 or runtime.sleep is not None:
            result = (runtime.sleep or time.sleep)(effect.seconds)
            if inspect.isawaitable(result):
                _run_blocking(result)
        return None
    if isinstance(effect, Invoke):
        result = effect.func(*effect.args)
        if isinstance(result, FutureAnswer):  # answered from another thread: wait for it here
            return result.wait()
        return _run_blocking(result) if inspect.isawaitable(result) else result
    if isinstance(effect, JoinFlight):
        return runtime.thread_flights.join(effect.key)
    if isinstance(effect, WaitFlight):
        return cast(ThreadFlight, effect.flight).wait()
    raise TypeError(f"unknown effect {effect!r}")


async def _async_step(runtime: Runtime, effect: Effect) -> Any:
    """Execute every effect except Send (async)."""
    if isinstance(effect, Read):
        return await effect.response.aread()
    if isinstance(effect, Emit):
        _emit(runtime, effect.event, effect.hook)
        return None
    if isinstance(effect, Sleep):
        if runtime.sleep is None:
            if effect.seconds > 0:
                await anyio.sleep(effect.seconds)
        else:
            result = runtime.sleep(effect.seconds)
            if inspect.isawaitable(result):
                await result
        return None
    if isinstance(effect, Invoke):
        result = effect.func(*effect.args)
        return await result if inspect.isawaitable(result) else result
    if isinstance(effect, JoinFlight):
        return runtime.async_flights.join(effect.key)
    if isinstance(effect, WaitFlight):
        return await cast(AsyncFlight, effect.flight).wait()
    raise TypeError(f"unknown effect {effect!r}")


def _request_of(effect: Effect) -> httpx.Request | None:
    """A :class:`Send` leaves the driver: the HTTP client sends its request."""
    return effect.request if type(effect) is Send else None


def drive_sync(
    flow: Flow[T], runtime: Runtime, read: httpx.Request | None = None
) -> Generator[httpx.Request, httpx.Response, T]:
    """Run ``flow``; yields each request to send and receives its response (httpx's
    ``sync_auth_flow`` shape). Returns the flow's value. ``read`` is a request whose body
    is read first (the one the flow was made for)."""
    return drive(
        flow, partial(_sync_step, runtime), _request_of, read.read if read is not None else None
    )


def drive_async(
    flow: Flow[Any],
    runtime: Runtime,
    result: Result | None = None,
    read: httpx.Request | None = None,
) -> AsyncGenerator[httpx.Request, httpx.Response]:
    """:func:`drive_sync` for async code (httpx's ``async_auth_flow`` shape). An async
    generator cannot return a value: it is stored in ``result``."""
    before = read.aread if read is not None else None
    return adrive(flow, partial(_async_step, runtime), _request_of, result, before)


def sync_resource_flow(
    flow: AgentFlow, runtime: Runtime, request: httpx.Request
) -> Generator[httpx.Request, httpx.Response, Any]:
    """An auth flow (httpx's ``sync_auth_flow`` shape) sending ``request`` to its resource:
    in the steady state (:meth:`AgentFlow.steady`) signed and sent with no flow to drive,
    the response handed to the flow only when it is not the caller's as it is; otherwise
    the flow on :func:`drive_sync`."""
    request.read()
    signed = flow.steady(request)
    try:
        if signed is None:
            return (yield from drive_sync(flow.resource_request(request), runtime))
        response = yield request
        if flow.settled(signed, response):
            return response
        return (yield from drive_sync(flow.resource_response(request, signed, response), runtime))
    except GeneratorExit as closed:  # httpx closes the flow on the error of what it sent
        note_unretried(closed.__context__)  # a poll's: say how to have it repeated
        raise


async def async_resource_flow(
    flow: AgentFlow, runtime: Runtime, request: httpx.Request
) -> AsyncGenerator[httpx.Request, httpx.Response]:
    """:func:`sync_resource_flow` for ``httpx.AsyncClient``."""
    await request.aread()
    signed = flow.steady(request)
    if signed is None:
        driver = drive_async(flow.resource_request(request), runtime)
    else:
        response = yield request
        if flow.settled(signed, response):
            return
        driver = drive_async(flow.resource_response(request, signed, response), runtime)
    try:
        outgoing = await driver.__anext__()
        while True:
            try:
                incoming = yield outgoing
            except GeneratorExit:  # closed on the error of ``outgoing`` (unseen here)
                warn_unretried(outgoing)
                raise
            except Exception as exc:  # thrown into the flow, as the driver's caller would
                outgoing = await driver.athrow(exc)
            else:
                outgoing = await driver.asend(incoming)
    except StopAsyncIteration:
        return
    finally:
        await driver.aclose()


def run_sync(flow: Flow[T], client: httpx.Client, runtime: Runtime) -> T:
    """Run ``flow`` to completion, sending its requests with ``client`` (without the
    client's own ``auth``: the flow signs what it sends)."""
    driver = drive_sync(flow, runtime)
    try:
        request = next(driver)
        while True:
            try:
                response = client.send(request, auth=None)
            except Exception as exc:
                failed = failure_response(request, exc)  # (a poll: the flow retries it)
                request = driver.throw(exc) if failed is None else driver.send(failed)
            else:
                request = driver.send(response)
    except StopIteration as stop:
        return cast(T, stop.value)
    finally:
        driver.close()


async def run_async(flow: Flow[T], client: httpx.AsyncClient, runtime: Runtime) -> T:
    """Run ``flow`` to completion, sending its requests with ``client``."""
    result = Result()
    driver = drive_async(flow, runtime, result)
    try:
        request = await driver.__anext__()
        while True:
            try:
                response = await client.send(request, auth=None)
            except Exception as exc:
                failed = failure_response(request, exc)
                if failed is None:
                    request = await driver.athrow(exc)
                else:
                    request = await driver.asend(failed)
            else:
                request = await driver.asend(response)
    except StopAsyncIteration:
        return cast(T, result.value)
    finally:
        await driver.aclose()


__all__ = [
    "Effect",
    "Emit",
    "Flow",
    "Invoke",
    "JoinFlight",
    "Read",
    "Runtime",
    "Send",
    "Sleep",
    "WaitFlight",
    "async_resource_flow",
    "drive_async",
    "drive_sync",
    "run_async",
    "run_sync",
    "sync_resource_flow",
]
