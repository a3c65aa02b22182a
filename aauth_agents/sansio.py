"""Running sans-I/O flows: the one effect driver and the one single-flight helper.

A flow is a generator: it yields an effect, receives the effect's result, and finally
returns a value. Discovery (:class:`~aauth_agents.discovery.DiscoveryCache`) yields
fetches; the agent (:mod:`aauth_agents.agent.effects`) yields sends, reads, sleeps, prompts
and events. Both run on the drivers here:

* :func:`drive` / :func:`adrive` -- run a flow, executing each effect with ``execute`` (a
  function / a coroutine function). An effect for which ``outward`` returns something other
  than ``None`` leaves the driver instead: the driver yields that to its own caller and
  sends the caller's answer into the flow (the shape of httpx's ``Auth.sync_auth_flow`` /
  ``async_auth_flow``). An exception raised while executing an effect is thrown into the
  flow at the point that yielded it; the flow decides.
* :func:`run` / :func:`arun` -- a flow with no outward effects, run to completion.
* :class:`ThreadFlights` / :class:`AsyncFlights` -- single flight: concurrent calls with
  the same key share one execution (threads / tasks). :meth:`ThreadFlights.run` and
  :meth:`AsyncFlights.run` wrap a call; a flow joins with ``join`` and waits on the
  :class:`Flight` itself (the agent's ``JoinFlight`` / ``WaitFlight`` effects).

The bottom of the package: it imports nothing from it, so every layer may use it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import anyio

T = TypeVar("T")

#: Executes one effect (the sync drivers).
Execute = Callable[[Any], Any]
#: Executes one effect (the async drivers).
AsyncExecute = Callable[[Any], Awaitable[Any]]
#: What of an effect leaves the driver (``None``: the driver executes it).
Outward = Callable[[Any], Any]


def drive(
    flow: Generator[Any, Any, T],
    execute: Execute,
    outward: Outward | None = None,
    before: Callable[[], Any] | None = None,
) -> Generator[Any, Any, T]:
    """Run ``flow``, executing its effects with ``execute``; yields what ``outward`` picks
    out of an effect and sends back the answer. Returns the flow's value. ``before`` is
    called first (its error is not the flow's: it propagates)."""
    value: Any = None
    error: BaseException | None = None
    try:
        if before is not None:
            before()
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                return cast(T, stop.value)
            value, error = None, None
            try:
                out = None if outward is None else outward(effect)
                if out is not None:
                    value = yield out
                else:
                    value = execute(effect)
            except Exception as exc:  # handed to the flow, which decides
                error = exc
    finally:
        flow.close()


@dataclass
class Result:
    """Where :func:`adrive` puts the flow's value (an async generator returns none)."""

    value: Any = None


async def adrive(
    flow: Generator[Any, Any, Any],
    execute: AsyncExecute,
    outward: Outward | None = None,
    result: Result | None = None,
    before: Callable[[], Awaitable[Any]] | None = None,
) -> AsyncGenerator[Any, Any]:
    """:func:`drive` for async code; the flow's value is stored in ``result``."""
    value: Any = None
    error: BaseException | None = None
    try:
        if before is not None:
            await before()
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                if result is not None:
                    result.value = stop.value
                return
            value, error = None, None
            try:
                out = None if outward is None else outward(effect)
                if out is not None:
                    value = yield out
                else:
                    value = await execute(effect)
            except Exception as exc:
                error = exc
    finally:
        flow.close()


def run(flow: Generator[Any, Any, T], execute: Execute) -> T:
    """Run ``flow`` to completion, executing every effect with ``execute``."""
    driver = drive(flow, execute)
    try:
        next(driver)
    except StopIteration as stop:
        return cast(T, stop.value)
    raise AssertionError("a flow driven without outward effects yielded")  # pragma: no cover


async def arun(flow: Generator[Any, Any, T], execute: AsyncExecute) -> T:
    """:func:`run` for an async ``execute``."""
    result = Result()
    async for _ in adrive(flow, execute, result=result):  # pragma: no cover
        raise AssertionError("a flow driven without outward effects yielded")
    return cast(T, result.value)


# -- single flight ---------------------------------------------------------------------------


@dataclass
class Outcome(Generic[T]):
    """How a shared call ended: a value, an error, or ``retry`` when the leader was
    cancelled or closed (followers then try for themselves)."""

    value: Any = None
    error: BaseException | None = None
    retry: bool = False

    def get(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class Flight:
    """One call in progress, shared by its leader and any followers."""

    def __init__(self, registry: _Registry[Any], key: Hashable) -> None:
        self._registry = registry
        self.key = key
        self.outcome: Outcome[Any] = Outcome()

    def finish(self, *, value: Any = None, error: BaseException | None = None) -> None:
        """Called once by the leader; wakes the followers."""
        self._registry.remove(self.key, self)
        if error is not None and not isinstance(error, Exception):
            self.outcome = Outcome(retry=True)  # cancelled / closed: not a result to share
        else:
            self.outcome = Outcome(value=value, error=error)
        self._signal()

    def _signal(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class ThreadFlight(Flight):
    """A :class:`Flight` whose followers are threads."""

    def __init__(self, registry: _Registry[Any], key: Hashable) -> None:
        super().__init__(registry, key)
        self._event = threading.Event()

    def _signal(self) -> None:
        self._event.set()

    def wait(self) -> Outcome[Any]:
        self._event.wait()
        return self.outcome


class AsyncFlight(Flight):
    """A :class:`Flight` whose followers are tasks."""

    def __init__(self, registry: _Registry[Any], key: Hashable) -> None:
        super().__init__(registry, key)
        self._event = anyio.Event()

    def _signal(self) -> None:
        self._event.set()

    async def wait(self) -> Outcome[Any]:
        await self._event.wait()
        return self.outcome


F = TypeVar("F", bound=Flight)


class _Registry(Generic[F]):
    def __init__(self, make: type[F]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._flights: dict[Hashable, F] = {}

    def join(self, key: Hashable) -> tuple[F, bool]:
        """``(flight, True)`` for the caller who must do the work, ``(flight, False)`` for a
        follower who waits for it."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = self._make(self, key)
            return flight, True

    def remove(self, key: Hashable, flight: Flight) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]

    def __len__(self) -> int:
        return len(self._flights)


class ThreadFlights(_Registry[ThreadFlight]):
    """Single flight across threads: one call per key at a time, its outcome shared."""

    def __init__(self) -> None:
        super().__init__(ThreadFlight)

    def run(self, key: Hashable, call: Callable[[], T]) -> T:
        """``call()`` once for every thread that asks with ``key`` while it runs."""
        while True:
            flight, leader = self.join(key)
            if leader:
                try:
                    value = call()
                except BaseException as exc:
                    flight.finish(error=exc)
                    raise
                flight.finish(value=value)
                return value
            outcome = flight.wait()
            if not outcome.retry:
                return cast(T, outcome.get())


class AsyncFlights(_Registry[AsyncFlight]):
    """Single flight across tasks: one call per key at a time, its outcome shared."""

    def __init__(self) -> None:
        super().__init__(AsyncFlight)

    async def run(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()`` once for every task that asks with ``key`` while it runs."""
        while True:
            flight, leader = self.join(key)
            if leader:
                try:
                    value = await call()
                except BaseException as exc:
                    flight.finish(error=exc)
                    raise
                flight.finish(value=value)
                return value
            outcome = await flight.wait()
            if not outcome.retry:
                return cast(T, outcome.get())


__all__ = [
    "AsyncExecute",
    "AsyncFlight",
    "AsyncFlights",
    "Execute",
    "Flight",
    "Outcome",
    "Outward",
    "Result",
    "ThreadFlight",
    "ThreadFlights",
    "adrive",
    "arun",
    "drive",
    "run",
]
