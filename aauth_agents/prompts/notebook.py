"""The person's prompts in a Jupyter notebook: one widget per prompt (ipywidgets), shown in the
output of the cell that runs the agent (``pip install 'aauth-agents[notebook]'``).

::

    auth = AAuth(identity, prompts=NotebookPrompts())
    async with auth.async_client() as client:
        response = await client.get("https://resource.example/files")

An interaction shows the link as a button (a plain link opening a new tab: it needs no
kernel), the code in large type, a QR code of the link for a phone, the resource and the
agent's justification, a status line with the time left (waiting, the person reached the
page), then the outcome (approved, declined, expired, cancelled, ...); *Cancel request*
withdraws the request at the agent's next poll. A clarification shows the question
(untrusted Markdown, rendered sanitized), a button per option or a text box with *Send*, and
*Cancel*, with the time left of the server's timeout; unanswered by then, the request is
withdrawn. All other text is escaped; a prompt never holds a token or a key.

Who hears a click
-----------------
Opening the link needs no kernel, so approving works however the agent runs. A button click
(Cancel, an option, Send) reaches the kernel as a ``comm_msg``; its callback runs on
whichever kernel thread handles the message and hands the answer to the waiting agent
thread-safely (a :class:`~aauth_agents.agent.FutureAnswer`, or the cancel flag the agent checks
before each poll). Which thread that is depends on the cell (tested with ipykernel 7.4,
ipywidgets 8.1, JupyterLab 4.6):

* **An async cell** -- ``await client.get(...)`` with ``auth.async_client()``: heard with any
  frontend. ipykernel 7.4 dispatches a comm message that arrives on the main shell while an
  async cell awaits (earlier releases held it until the cell ended, ipykernel#646); one that
  arrives on a subshell runs on that subshell's thread.
* **A sync cell** -- ``client.get(...)`` with ``auth.client()`` blocks the main shell until the
  request is done, so a click must be handled on another thread: a kernel subshell
  (ipykernel >= 7). JupyterLab >= 4.4 and Notebook >= 7.4 send comm messages on a subshell
  when the kernel has them (setting *Kernel Comms over subshells*; by default one subshell
  per comm target). But ipykernel 7.4 hands a message for a comm to the subshell that last
  *sent* on that comm (``Comm._reply_subshell_for``) -- for a widget displayed by a cell, the
  main shell, where the click would wait for the blocked cell (a plain ipywidgets button is
  not heard). So NotebookPrompts has the messages of its own buttons and text box handled
  where the frontend sent them (it replaces that routing for these widgets only, when the
  kernel has it): the callback runs on the subshell's thread and the blocked agent gets the
  answer.
* **A sync cell without subshells** -- a frontend that sends comm messages on the main shell
  (the classic Notebook < 7, JupyterLab with comms over subshells disabled) or a kernel
  without subshells (ipykernel < 7): a click is heard only when the cell ends. *Cancel*
  then comes too late, and a clarification goes unanswered until the server's timeout
  withdraws the request (the agent raises :class:`~aauth_agents.agent.RequestCancelledError`)
  -- without a timeout, until the cell is interrupted. The remedy: an async cell, or the
  blocking call run in a worker thread from an async cell,
  ``await asyncio.to_thread(client.get, url)`` (``to_thread`` carries the cell's context,
  so the widget still appears in that cell).
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..protocol.errors import ConfigurationError
from ..servers.markdown import render_markdown
from .base import MAX_OPEN, ClarificationPrompt, InteractionPrompt, Prompt, Prompts, _minutes

_LINK_STYLE = (
    "display:inline-block;padding:8px 18px;border-radius:4px;background:#1565c0;color:#fff;"
    "font-weight:600;text-decoration:none"
)
_INERT_STYLE = (
    "display:inline-block;padding:8px 18px;border-radius:4px;background:#9e9e9e;color:#fff;"
    "font-weight:600"
)
_CODE_STYLE = "font:700 2em monospace;letter-spacing:0.12em;margin:6px 0"
_MARKS = {"approved": "✔", "answered": "✔"}


def _widgets() -> Any:
    try:
        import ipywidgets
    except ImportError as exc:
        raise ConfigurationError(
            "NotebookPrompts needs ipywidgets: pip install 'aauth-agents[notebook]'"
        ) from exc
    return ipywidgets


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def _heard_where_sent(data: object, sent_on: str | None) -> str | None:
    return sent_on


def _hear_where_sent(widget: Any) -> None:
    """Have the kernel handle ``widget``'s messages on the subshell the frontend sent them
    on, instead of where the widget last sent from (see the module docstring). Does
    nothing outside a kernel, or with a kernel without that routing."""
    comm = getattr(widget, "comm", None)
    if comm is not None and hasattr(comm, "_reply_subshell_for"):
        comm._reply_subshell_for = _heard_where_sent


def status_html(prompt: Prompt, note: str = "") -> str:
    """The status line: the status, the time left while waiting, and ``note``."""
    parts = [_text(prompt.status_text)]
    remaining = prompt.remaining()
    if not prompt.finished and remaining is not None:
        parts.append(f"{_minutes(remaining)} left")
    if note and not prompt.finished:
        parts.append(_text(note))
    mark = _MARKS.get(prompt.status, "✘") + " " if prompt.finished else ""
    return (
        f'<div class="aauth-status" data-status="{_text(prompt.status)}">'
        f"{mark}{' · '.join(parts)}</div>"
    )


class _View:
    """A prompt's widget: ``widget`` (the whole), ``status`` (the status line) and the
    ``controls`` disabled once the prompt is finished. The status line follows the prompt's
    status changes and, while time is counted, a ticker thread (every ``refresh`` seconds)
    that stops when the prompt is finished."""

    def __init__(self, prompt: Prompt, refresh: float) -> None:
        self.prompt = prompt
        self.refresh = refresh
        self.ipywidgets = _widgets()
        self.status = self.ipywidgets.HTML(status_html(prompt))
        self.controls: list[Any] = []
        self.note = ""
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self.ticker: threading.Thread | None = None
        self.widget: Any = None

    def _control(self, control: Any, on_click: Callable[[Any], None] | None = None) -> Any:
        if on_click is not None:
            control.on_click(on_click)
        _hear_where_sent(control)
        self.controls.append(control)
        return control

    def _box(self, children: list[Any], kind: str) -> Any:
        box = self.ipywidgets.VBox(children)
        box.add_class("aauth-prompt")
        box.add_class(f"aauth-{kind}")
        return box

    def start(self) -> None:
        """Follow the prompt (render now, then on each change and tick)."""
        self.prompt.subscribe(self._changed)
        if not self.prompt.finished and self.prompt.remaining() is not None:
            self.ticker = threading.Thread(target=self._tick, name="aauth-countdown", daemon=True)
            self.ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.refresh):
            self.render()

    def _changed(self, prompt: Prompt) -> None:
        with self._lock:
            if prompt.finished:
                self._stop.set()
                for control in self.controls:
                    control.disabled = True
                self.finished()
            self.render()

    def render(self) -> None:
        with self._lock:
            self.status.value = status_html(self.prompt, self.note)

    def say(self, note: str) -> None:
        with self._lock:
            self.note = note
            self.render()

    def finished(self) -> None:
        """What else changes when the prompt is finished (called once, under the lock)."""


class InteractionView(_View):
    """The widget of an :class:`~aauth_agents.prompts.InteractionPrompt`."""

    prompt: InteractionPrompt

    def __init__(
        self, prompt: InteractionPrompt, *, qr: bool = True, qr_scale: int = 4, refresh: float = 1.0
    ) -> None:
        super().__init__(prompt, refresh)
        w = self.ipywidgets
        where = f" at <b>{_text(prompt.resource)}</b>" if prompt.resource else ""
        self.title = w.HTML(f"<b>The agent needs your approval</b>{where}.")
        self.link = w.HTML(self._link_html(active=True))
        self.code = w.HTML(
            "Check that the page shows the code "
            f'<div class="aauth-code" style="{_CODE_STYLE}">{_text(prompt.code)}</div>'
        )
        said = prompt.justification
        self.justification = w.HTML(
            f'The agent says: <span class="aauth-justification">{_text(said)}</span>'
            if said
            else ""
        )
        self.cancel = self._control(w.Button(description="Cancel request"), self._cancel)
        left = w.VBox(
            [self.title, self.link, self.code, self.justification, self.status, self.cancel]
        )
        self.qr = w.HTML(_qr_svg(prompt.link, qr_scale) if qr else "")
        self.widget = self._box([w.HBox([left, self.qr])], "interaction")

    def _link_html(self, *, active: bool) -> str:
        link = self.prompt.link
        label = f"Open {_text(self.prompt.url)}"
        if active and link.startswith(("https://", "http://")):
            return (
                f'<a class="aauth-link" href="{_text(link)}" target="_blank" '
                f'rel="noopener noreferrer" style="{_LINK_STYLE}">{label}</a>'
            )
        return f'<span class="aauth-link" style="{_INERT_STYLE}">{label}</span>'

    def _cancel(self, _button: Any) -> None:
        self.prompt.cancel()
        self.cancel.disabled = True
        self.say("cancelling: the request is withdrawn at the agent's next poll")

    def finished(self) -> None:
        self.link.value = self._link_html(active=False)


class ClarificationView(_View):
    """The widget of a :class:`~aauth_agents.prompts.ClarificationPrompt`."""

    prompt: ClarificationPrompt

    def __init__(self, prompt: ClarificationPrompt, *, refresh: float = 1.0) -> None:
        super().__init__(prompt, refresh)
        w = self.ipywidgets
        where = f" (for {_text(prompt.resource)})" if prompt.resource else ""
        self.title = w.HTML(f"<b>The person asks the agent</b>{where}:")
        self.question = w.HTML(
            f'<div class="aauth-question">{render_markdown(prompt.question)}</div>'
        )
        self.options = [
            self._control(w.Button(description=option), self._chose(option))
            for option in prompt.options or ()
        ]
        self.text: Any = None
        self.send: Any = None
        answer: list[Any] = [w.HBox(self.options)]
        if not self.options:
            self.text = self._control(w.Textarea(placeholder="Your answer (Markdown)"))
            self.send = self._control(w.Button(description="Send"), self._send)
            answer = [self.text, self.send]
        self.cancel = self._control(w.Button(description="Cancel"), self._cancel)
        self.widget = self._box(
            [self.title, self.question, *answer, self.status, self.cancel], "clarification"
        )

    def _chose(self, option: str) -> Callable[[Any], None]:
        return lambda _button: self.prompt.answer(option)

    def _send(self, _button: Any) -> None:
        text = str(self.text.value)
        if not text.strip():
            self.say("type an answer first")
            return
        self.prompt.answer(text)

    def _cancel(self, _button: Any) -> None:
        self.prompt.cancel("the person cancelled in the notebook")


def _qr_svg(link: str, scale: int) -> str:
    import segno

    svg: str = segno.make(link, error="m").svg_inline(
        scale=scale, border=4, dark="#000", light="#fff"
    )
    return f'<div class="aauth-qr" title="QR code of the link">{svg}</div>'


class NotebookPrompts(Prompts):
    """Prompts as notebook widgets (see the module docstring).

    ``qr`` -- show a QR code of the link (``qr_scale`` pixels a module); ``refresh`` --
    seconds between countdown updates; ``clock`` -- monotonic time, for the countdowns.
    ``views`` holds the views of the latest prompts (their ``widget`` may be displayed
    again)."""

    def __init__(
        self,
        *,
        qr: bool = True,
        qr_scale: int = 4,
        refresh: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock=clock)
        _widgets()  # missing ipywidgets fails here, not at the first prompt
        self.qr = qr
        self.qr_scale = qr_scale
        self.refresh = refresh
        self.views: deque[_View] = deque(maxlen=MAX_OPEN)

    def show_interaction(self, prompt: InteractionPrompt) -> None:
        self._show(
            InteractionView(prompt, qr=self.qr, qr_scale=self.qr_scale, refresh=self.refresh)
        )

    def show_clarification(self, prompt: ClarificationPrompt) -> None:
        self._show(ClarificationView(prompt, refresh=self.refresh))

    def _show(self, view: _View) -> None:
        from IPython import display as ipython

        display: Callable[[Any], object] = ipython.display  # untyped in IPython
        view.start()
        self.views.append(view)
        display(view.widget)


__all__ = ["ClarificationView", "InteractionView", "NotebookPrompts", "status_html"]
