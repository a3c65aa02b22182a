"""What the caller's callbacks and prompt surfaces receive and return.

``on_interaction(url, code)`` -- take the person to ``{url}?code={code}`` (open a browser,
print it, render a QR code). Completion is learned by polling; the return value is ignored
unless it is :data:`CANCEL` (withdraw the request now) or a :class:`PendingControl` (checked
before every poll: its ``cancel_requested`` withdraws the request).

``on_clarification(question, options, timeout)`` -- answer a question the person (through
the PS) or a server asked (§Clarification Chat). Return one of:

* a ``str`` or :class:`Answer` -- POSTed as ``action: clarification_response``;
* :class:`UpdatedRequest` -- a new resource token, POSTed as ``action: updated_request``;
* :data:`CANCEL` (or ``None``) -- the pending request is withdrawn with ``DELETE``
  (§Cancel Request) and :class:`~aauth_agents.agent.errors.RequestCancelledError` raised.

Both callbacks may be plain functions or coroutine functions; with ``httpx.AsyncClient``
they are awaited, with ``httpx.Client`` a coroutine is run to completion in its own loop.

A *prompt surface* (:class:`PromptSurface`; ``AAuth(..., prompts=...)``, the surfaces of
:mod:`aauth_agents.prompts`) receives the same two moments with their context, as an
:class:`InteractionRequest` and a :class:`ClarificationRequest`, and every
:class:`~aauth_agents.agent.events.FlowEvent` of the flow (to show the status: waiting,
approved, denied, expired).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, runtime_checkable
from urllib.parse import urlencode

from ..protocol.errors import ConfigurationError


@dataclass(frozen=True)
class Answer:
    """A clarification response: Markdown text for the person."""

    text: str


@dataclass(frozen=True)
class UpdatedRequest:
    """§Updated Request: replace the pending request with a new resource token (same
    ``iss`` and ``agent_jkt``), with an optional justification shown to the person."""

    resource_token: str = field(repr=False)
    justification: str | None = None


@dataclass(frozen=True)
class Cancel:
    """§Cancel Request: withdraw the pending request."""

    reason: str | None = None


#: The cancellation value a clarification callback may return.
CANCEL = Cancel()

ClarificationResult: TypeAlias = str | Answer | UpdatedRequest | Cancel | None
InteractionCallback: TypeAlias = Callable[[str, str], Any]
ClarificationCallback: TypeAlias = Callable[
    [str, Sequence[str] | None, int | None],
    ClarificationResult | Awaitable[ClarificationResult],
]


@dataclass(frozen=True)
class InteractionRequest:
    """§Interaction Required: the person must visit ``url`` with ``code``.

    ``pending_url`` is the pending request the agent polls meanwhile (``Location``);
    ``resource`` the resource the request is for (``None`` for a governance call);
    ``justification`` what the agent told the PS; ``expires_in`` the seconds the agent keeps
    polling (its ``max_poll_seconds`` left), ``None`` when unknown."""

    url: str
    code: str
    pending_url: str
    resource: str | None = None
    justification: str | None = None
    expires_in: float | None = None

    @property
    def link(self) -> str:
        """``{url}?code={code}``, the address the person opens."""
        return f"{self.url}?{urlencode({'code': self.code})}"


@dataclass(frozen=True)
class ClarificationRequest:
    """§Clarification Required: ``question`` (Markdown) for the agent, with the discrete
    ``options`` and the ``timeout`` (seconds) the server gave, if any."""

    question: str
    pending_url: str
    options: tuple[str, ...] | None = None
    timeout: int | None = None
    resource: str | None = None


class FutureAnswer:
    """An answer that arrives later, from any thread: what a handler returns when the person
    answers somewhere else (a notebook widget, a chat message). The flow's sync driver waits
    for it blocking its thread; the async driver awaits it without blocking the event loop;
    :meth:`set` may be called from any thread, once (later calls are ignored)."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = []

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def set(self, value: Any) -> bool:
        """Deliver ``value``; False when an answer was already delivered."""
        with self._lock:
            if self._done.is_set():
                return False
            self._value = value
            self._done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future, value)
        return True

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the answer arrives; ``TimeoutError`` after ``timeout`` seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError("no answer arrived in time")
        return self._value

    def __await__(self) -> Generator[Any, None, Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if self._done.is_set():
                future.set_result(self._value)
            else:
                self._waiters.append((loop, future))
        return (yield from future.__await__())


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


@runtime_checkable
class PendingControl(Protocol):
    """What an interaction handler may return to keep a say while the agent polls: when
    ``cancel_requested`` becomes true, the agent withdraws the request (§Cancel Request)
    before its next poll. The first polls are then kept short (``Prefer: wait`` of at most
    :data:`~aauth_agents.agent.flow.CONTROLLED_WAIT` seconds, for
    :data:`~aauth_agents.agent.flow.CONTROLLED_POLLS` polls), so a cancel takes effect
    within seconds; later ones are long again. ``finish(outcome)`` is called once when the
    agent stops waiting, however it stops (a :class:`~aauth_agents.agent.events.PendingEnded`
    outcome, or ``aborted`` when the request was abandoned: a network error, an interrupt);
    it must not block."""

    @property
    def cancel_requested(self) -> bool: ...

    def finish(self, outcome: str) -> None: ...


class PromptSurface(Protocol):
    """Where the person is asked (``AAuth(..., prompts=...)``): ``interaction`` shows an
    interaction (it may return :data:`CANCEL` or a :class:`PendingControl`),
    ``clarification`` answers a question (any :data:`ClarificationResult`, or an awaitable
    of one), ``event`` sees every step of the flow. Sync or async; called from the thread
    or task that runs the request."""

    def interaction(self, request: InteractionRequest) -> Any: ...

    def clarification(
        self, request: ClarificationRequest
    ) -> ClarificationResult | Awaitable[ClarificationResult]: ...

    def event(self, event: Any) -> None: ...


def interaction_handler(callback: InteractionCallback) -> Callable[[InteractionRequest], Any]:
    """An ``on_interaction(url, code)`` callback as a handler of :class:`InteractionRequest`."""

    def handle(request: InteractionRequest) -> Any:
        return callback(request.url, request.code)

    return handle


def clarification_handler(
    callback: ClarificationCallback,
) -> Callable[[ClarificationRequest], Any]:
    """An ``on_clarification(question, options, timeout)`` callback as a handler of
    :class:`ClarificationRequest`."""

    def handle(request: ClarificationRequest) -> Any:
        return callback(request.question, request.options, request.timeout)

    return handle


def normalize_clarification(result: object) -> Answer | UpdatedRequest | Cancel:
    """The action a callback's return value stands for."""
    if result is None:
        return CANCEL
    if isinstance(result, str):
        return Answer(result)
    if isinstance(result, (Answer, UpdatedRequest, Cancel)):
        return result
    raise ConfigurationError(
        "on_clarification must return a str, Answer, UpdatedRequest or CANCEL, "
        f"not {type(result).__name__}"
    )


__all__ = [
    "CANCEL",
    "Answer",
    "Cancel",
    "ClarificationCallback",
    "ClarificationRequest",
    "ClarificationResult",
    "FutureAnswer",
    "InteractionCallback",
    "InteractionRequest",
    "PendingControl",
    "PromptSurface",
    "UpdatedRequest",
    "clarification_handler",
    "interaction_handler",
    "normalize_clarification",
]
