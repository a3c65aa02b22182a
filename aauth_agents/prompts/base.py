"""Where the person is asked: one small abstraction every surface shares.

Two moments need the person while an agent waits on a pending request:

* an interaction (§Interaction Required) -- an :class:`InteractionPrompt`: the link with its
  code, the resource, the justification, the time left, and a status that follows the
  request (``waiting``, ``interacting``, then ``approved``, ``denied``, ``expired``,
  ``cancelled``, ...). It is the flow's :class:`~aauth_agents.agent.callbacks.PendingControl`:
  :meth:`InteractionPrompt.cancel` withdraws the request at the agent's next poll;
* a clarification (§Clarification Chat) -- a :class:`ClarificationPrompt`: the question and
  its options; :meth:`ClarificationPrompt.answer` or :meth:`~ClarificationPrompt.cancel`,
  from any thread. The agent waits for the answer (a :class:`~aauth_agents.agent.FutureAnswer`),
  at most the ``timeout`` the server gave; past it the request is withdrawn.

:class:`Prompts` implements :class:`~aauth_agents.agent.callbacks.PromptSurface` on these:
``AAuth(identity, prompts=surface)``, or ``on_interaction=surface.on_interaction`` and
``on_clarification=surface.on_clarification``. A surface only says how a prompt is shown
(:meth:`Prompts.show_interaction`, :meth:`Prompts.show_clarification`) and follows it with
:meth:`Prompt.subscribe`. The surfaces: :class:`~aauth_agents.prompts.TerminalPrompts`,
:class:`~aauth_agents.prompts.NotebookPrompts`, :class:`~aauth_agents.prompts.ChatPrompts`.

Every prompt is thread-safe: the agent may run in one thread or event loop and the person
answer from another (a widget's comm thread, a chat handler, a terminal reader).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

from ..agent.callbacks import (
    CANCEL,
    Answer,
    Cancel,
    ClarificationRequest,
    FutureAnswer,
    InteractionRequest,
)
from ..agent.events import FlowEvent, PendingEnded, Polling, Reconnecting
from ..protocol.errors import ConfigurationError

log = logging.getLogger("aauth_agents.prompts")

#: What each status means, for the person.
STATUS_TEXT: dict[str, str] = {
    "waiting": "Waiting for you to decide",
    "interacting": "You opened the page; waiting for your decision",
    "reconnecting": "The agent lost its connection to the server; reconnecting",
    "approved": "Approved",
    "denied": "Declined",
    "abandoned": "Left without a decision",
    "expired": "Expired",
    "gone": "No longer valid",
    "cancelled": "Cancelled",
    "failed": "Failed",
    "aborted": "The agent stopped waiting",
    "asked": "Waiting for your answer",
    "answered": "Answered",
}
#: Statuses after which nothing changes.
FINAL = frozenset(STATUS_TEXT) - {"waiting", "interacting", "reconnecting", "asked"}
#: Prompts a surface keeps track of at once (a flow that never ends must not grow it).
MAX_OPEN = 64

Listener = Callable[["Prompt"], None]


class Prompt:
    """One moment the person is asked about. ``status`` changes are announced to the
    :meth:`subscribe`\\ d listeners, from whichever thread made them."""

    kind: ClassVar[str] = "prompt"

    def __init__(
        self,
        pending_url: str,
        resource: str | None,
        expires_in: float | None,
        clock: Callable[[], float],
    ) -> None:
        self.pending_url = pending_url
        self.resource = resource
        self.clock = clock
        self.expires_at = clock() + expires_in if expires_in is not None else None
        self.status = "waiting"
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    @property
    def status_text(self) -> str:
        return STATUS_TEXT.get(self.status, self.status)

    def remaining(self) -> float | None:
        """Seconds until the agent stops waiting (``None``: no limit known)."""
        if self.expires_at is None:
            return None
        return max(0.0, self.expires_at - self.clock())

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(prompt)`` on every status change (and once now)."""
        with self._lock:
            self._listeners.append(listener)
        self._notify([listener])

    def _set_status(self, status: str) -> bool:
        with self._lock:
            if self.status in FINAL or status == self.status:
                return False
            self.status = status
            listeners = list(self._listeners)
        self._notify(listeners)
        return True

    def _notify(self, listeners: Sequence[Listener]) -> None:
        for listener in listeners:
            try:
                listener(self)
            except Exception:  # a display must not break the agent
                log.exception("a prompt listener raised; ignored")

    def cancel(self, reason: str | None = None) -> None:
        raise NotImplementedError

    @property
    def markdown(self) -> str:
        """The prompt as Markdown, for a chat message or a notebook."""
        raise NotImplementedError


def _minutes(seconds: float) -> str:
    whole = int(seconds + 0.999)
    return f"{whole // 60}:{whole % 60:02d}"


class InteractionPrompt(Prompt):
    """§Interaction Required, shown to the person: open :attr:`link` (``url`` with ``code``)
    and decide there. The agent keeps polling; :meth:`cancel` withdraws the request at its
    next poll (a :class:`~aauth_agents.agent.callbacks.PendingControl`)."""

    kind: ClassVar[str] = "interaction"

    def __init__(
        self, request: InteractionRequest, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(request.pending_url, request.resource, request.expires_in, clock)
        self.request = request
        self._cancel_requested = False

    @property
    def url(self) -> str:
        return self.request.url

    @property
    def code(self) -> str:
        return self.request.code

    @property
    def link(self) -> str:
        return self.request.link

    @property
    def justification(self) -> str | None:
        return self.request.justification

    # -- PendingControl ---------------------------------------------------------------------

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    def finish(self, outcome: str) -> None:
        """Called by the agent when it stops waiting (the request's outcome)."""
        self._set_status(outcome if outcome in STATUS_TEXT else "failed")

    # -- the person ------------------------------------------------------------------------

    def cancel(self, reason: str | None = None) -> None:
        """Withdraw the request: the agent sends ``DELETE`` before its next poll."""
        self._cancel_requested = True

    def note(self, status: str) -> None:
        """``waiting``, ``interacting`` (the person reached the page) or ``reconnecting``
        (the server is unreachable for now: a restart), from the polls."""
        if status in ("waiting", "interacting", "reconnecting"):
            self._set_status(status)

    @property
    def markdown(self) -> str:
        where = f" at {self.resource}" if self.resource else ""
        lines = [
            f"**The agent needs your approval{where}.**",
            "",
            f"Open [{self.url}]({self.link}) and check that it shows the code **{self.code}**.",
        ]
        if self.justification:
            lines += ["", f"The agent says: {self.justification}"]
        remaining = self.remaining()
        if not self.finished and remaining is not None:
            lines += ["", f"_{self.status_text}; {_minutes(remaining)} left._"]
        else:
            lines += ["", f"_{self.status_text}._"]
        return "\n".join(lines)


class ClarificationPrompt(Prompt):
    """§Clarification Required: the person (through the PS) asks the agent ``question``;
    :meth:`answer` replies (Markdown), :meth:`cancel` withdraws the request. Unanswered
    when ``timeout`` runs out, the request is withdrawn (the server would expire it)."""

    kind: ClassVar[str] = "clarification"

    def __init__(
        self, request: ClarificationRequest, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        timeout = float(request.timeout) if request.timeout is not None else None
        super().__init__(request.pending_url, request.resource, timeout, clock)
        self.request = request
        self.status = "asked"
        self.reply = FutureAnswer()
        self._timer: threading.Timer | None = None
        if timeout is not None:
            self._timer = threading.Timer(timeout, self._expire)
            self._timer.daemon = True
            self._timer.start()

    @property
    def question(self) -> str:
        return self.request.question

    @property
    def options(self) -> tuple[str, ...] | None:
        return self.request.options

    def answer(self, text: str | Answer) -> None:
        """Reply with ``text`` (a Markdown string, e.g. one of :attr:`options`)."""
        value = text.text if isinstance(text, Answer) else text
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError("a clarification answer is a non-empty string")
        self._deliver(Answer(value.strip()), "answered")

    def cancel(self, reason: str | None = None) -> None:
        """Withdraw the request instead of answering (§Cancel Request)."""
        self._deliver(Cancel(reason) if reason else CANCEL, "cancelled")

    def _expire(self) -> None:
        self._deliver(Cancel("the clarification was not answered in time"), "expired")

    def _deliver(self, value: Answer | Cancel, status: str) -> None:
        if self.reply.set(value):
            if self._timer is not None:
                self._timer.cancel()
            self._set_status(status)

    @property
    def markdown(self) -> str:
        lines = ["**The person asks the agent:**", "", self.question]
        if self.options:
            lines += ["", "Options: " + ", ".join(f"`{option}`" for option in self.options)]
        remaining = self.remaining()
        if not self.finished and remaining is not None:
            lines += ["", f"_{self.status_text}; {_minutes(remaining)} left._"]
        else:
            lines += ["", f"_{self.status_text}._"]
        return "\n".join(lines)


class Prompts:
    """Base of the prompt surfaces (a :class:`~aauth_agents.agent.callbacks.PromptSurface`).

    It makes the prompt objects, follows the open interaction prompts through the flow's
    events (the person reached the page; the request ended) and hands each new prompt to
    :meth:`show_interaction` / :meth:`show_clarification`, which a surface implements.
    ``clock`` is monotonic time, for the countdowns."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._open: dict[str, InteractionPrompt] = {}
        self._lock = threading.Lock()

    # -- PromptSurface ---------------------------------------------------------------------

    def interaction(self, request: InteractionRequest) -> InteractionPrompt:
        prompt = InteractionPrompt(request, clock=self.clock)
        with self._lock:
            self._open[request.pending_url] = prompt
            while len(self._open) > MAX_OPEN:
                self._open.pop(next(iter(self._open)))
        prompt.subscribe(self._forget_when_finished)
        self.show_interaction(prompt)
        return prompt

    def clarification(self, request: ClarificationRequest) -> FutureAnswer:
        prompt = ClarificationPrompt(request, clock=self.clock)
        self.show_clarification(prompt)
        return prompt.reply

    def event(self, event: FlowEvent) -> None:
        if isinstance(event, Polling):
            prompt = self._open.get(event.url)
            if prompt is not None:
                prompt.note("interacting" if event.status == "interacting" else "waiting")
        elif isinstance(event, Reconnecting):
            prompt = self._open.get(event.url)
            if prompt is not None:
                prompt.note("reconnecting")
        elif isinstance(event, PendingEnded):
            prompt = self._open.get(event.url)
            if prompt is not None:
                prompt.finish(event.outcome)

    # -- the callback forms -----------------------------------------------------------------

    def on_interaction(self, url: str, code: str) -> InteractionPrompt:
        """This surface as an ``on_interaction(url, code)`` callback (without the context a
        surface given as ``prompts=`` receives: resource, time left, status events)."""
        return self.interaction(InteractionRequest(url, code, pending_url=""))

    def on_clarification(
        self, question: str, options: Sequence[str] | None, timeout: int | None
    ) -> FutureAnswer:
        """This surface as an ``on_clarification(question, options, timeout)`` callback."""
        return self.clarification(
            ClarificationRequest(question, "", tuple(options) if options else None, timeout)
        )

    # -- what a surface implements ----------------------------------------------------------

    def show_interaction(self, prompt: InteractionPrompt) -> None:
        raise NotImplementedError

    def show_clarification(self, prompt: ClarificationPrompt) -> None:
        raise NotImplementedError

    # -- bookkeeping -----------------------------------------------------------------------

    def _forget_when_finished(self, prompt: Prompt) -> None:
        if prompt.finished:
            with self._lock:
                if self._open.get(prompt.pending_url) is prompt:
                    del self._open[prompt.pending_url]


__all__ = [
    "FINAL",
    "STATUS_TEXT",
    "ClarificationPrompt",
    "InteractionPrompt",
    "Prompt",
    "Prompts",
]
