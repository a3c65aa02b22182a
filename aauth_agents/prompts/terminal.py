"""The person's prompts at a terminal.

With a terminal (the output stream and stdin are TTYs), an interaction shows the link and its
code, a QR code of the link (segno) for a phone, "press Enter to open your browser", and a
live status line (waiting, the person reached the page, approved, declined, expired) with the
time left. A clarification shows the question with numbered options; the person types a
number or an answer of their own, within the server's timeout. Ctrl-C cancels: the request
is withdrawn at the agent's next poll (§Cancel Request) and the agent raises
:class:`~aauth_agents.agent.RequestCancelledError`; a second Ctrl-C stops the program at once.

Without a terminal (a pipe, CI, a service, a notebook's stderr) it never prompts and never
reads stdin: it writes one JSON object per line on the output stream (stderr by default) --
``{"event": "aauth.interaction", "link": ..., "code": ...}``, ``{"event": "aauth.status",
"status": "approved", ...}``, ``{"event": "aauth.clarification", ...}`` -- or, with
``json_lines=False``, the same as plain sentences for a person to read; and it cancels any
clarification, since nobody can answer it.

::

    auth = AAuth(identity, prompts=TerminalPrompts())

It is also what an :class:`~aauth_agents.agent.AAuth` given no prompt at all uses, as
``TerminalPrompts(json_lines=False)``: the person is always shown where to go.
"""

from __future__ import annotations

import json
import select
import signal
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from types import FrameType
from typing import IO, Any

from .base import (
    ClarificationPrompt,
    InteractionPrompt,
    Prompt,
    Prompts,
    _minutes,
)

#: Seconds within which the status thread acts on a Ctrl-C.
_SIGNAL_CHECK = 0.2
_SPINNER_UNICODE = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_SPINNER_ASCII = "-\\|/"
_MARKS = {"approved": ("✔", "+"), "answered": ("✔", "+")}


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class TerminalPrompts(Prompts):
    """Prompts at a terminal (see the module docstring).

    ``stream`` -- where prompts are written (default ``sys.stderr``, keeping stdout for the
    program's output); ``stdin`` -- where answers are read (default ``sys.stdin``);
    ``interactive`` -- force the terminal (``True``) or the JSON-lines form (``False``);
    by default, both streams must be TTYs. ``qr`` -- draw the QR code; ``open_browser`` --
    offer Enter to open the link (``webbrowser``, which honours ``$BROWSER``);
    ``refresh`` -- seconds between status-line redraws. ``json_lines`` -- without a
    terminal, write JSON lines (for a program) or plain sentences (``False``, for a person
    reading a log or a notebook cell)."""

    def __init__(
        self,
        *,
        stream: IO[str] | None = None,
        stdin: IO[str] | None = None,
        interactive: bool | None = None,
        qr: bool = True,
        open_browser: bool = True,
        refresh: float = 1.0,
        json_lines: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock=clock)
        self.stream = stream if stream is not None else sys.stderr
        self.stdin = stdin if stdin is not None else sys.stdin
        if interactive is None:
            interactive = _isatty(self.stream) and _isatty(self.stdin)
        self.interactive = interactive
        self.qr = qr
        self.open_browser = open_browser
        self.refresh = refresh
        self.json_lines = json_lines
        encoding = (getattr(self.stream, "encoding", None) or "").lower().replace("-", "")
        self.unicode = encoding.startswith("utf")
        self._write_lock = threading.RLock()
        self._active: list[Prompt] = []  # unfinished prompts shown here, oldest first
        self._asking: ClarificationPrompt | None = None  # the question being typed
        self._ticker: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._wake = threading.Event()
        self._previous_sigint: Any = None
        self._cancelling = False  # a Ctrl-C asked to cancel (set by the signal handler)
        self._cancelled = False  # ... and the status thread did

    # -- showing -----------------------------------------------------------------------------

    def show_interaction(self, prompt: InteractionPrompt) -> None:
        if not self.interactive:
            self._announce(prompt)
            return
        self._track(prompt)  # Ctrl-C cancels from the moment the prompt shows
        lines = ["", *_interaction_lines(prompt)]
        self._write("\n".join(lines) + "\n")
        if self.qr:
            self._write(_qr(prompt.link))
        hints = ["Press Enter to open it in your browser"] if self.open_browser else []
        hints.append("Ctrl-C cancels the request")
        self._write("  " + " · ".join(hints) + "\n")
        prompt.subscribe(self._on_change)
        self._start()

    def show_clarification(self, prompt: ClarificationPrompt) -> None:
        if not self.interactive:
            if self.json_lines:
                self._json(
                    "aauth.clarification",
                    prompt,
                    question=prompt.question,
                    options=list(prompt.options) if prompt.options else None,
                    timeout=prompt.request.timeout,
                )
                prompt.subscribe(self._json_status)
            else:
                self._write(
                    "The person asked the agent a question, and there is no terminal to "
                    "answer it at: the request is withdrawn.\n"
                )
            prompt.cancel("no terminal to answer the question at")
            return
        lines = [
            "",
            "The person asks the agent:",
            *(f"  {line}" for line in prompt.question.splitlines() or [""]),
        ]
        for number, option in enumerate(prompt.options or (), 1):
            lines.append(f"  {number}) {option}")
        remaining = prompt.remaining()
        within = f" within {_minutes(remaining)}" if remaining is not None else ""
        choose = "a number or your own words" if prompt.options else "your answer"
        self._track(prompt)
        with self._write_lock:
            self._asking = prompt
            self._clear_line()
            self._write(
                "\n".join(lines) + f"\nType {choose}{within} (an empty line or Ctrl-C cancels): "
            )
        prompt.subscribe(self._on_change)
        self._start()

    # -- following a prompt ------------------------------------------------------------------

    def _track(self, prompt: Prompt) -> None:
        with self._write_lock:
            self._active.append(prompt)
            self._cancelling = self._cancelled = False
        self._install_sigint()

    def _on_change(self, prompt: Prompt) -> None:
        if not prompt.finished:
            self._wake.set()
            return
        with self._write_lock:
            if prompt not in self._active:
                return
            self._active.remove(prompt)
            if self._asking is prompt:
                self._asking = None
                if prompt.status != "answered":
                    self._write("\n")
            self._clear_line()
            mark = _MARKS.get(prompt.status, ("✘", "x"))[0 if self.unicode else 1]
            what = "Your answer was sent" if prompt.status == "answered" else prompt.status_text
            self._write(f"{mark} {what}.\n")
        self._wake.set()

    def _start(self) -> None:
        """The status line and the keyboard reader, while prompts are open."""
        with self._write_lock:
            if self._ticker is None or not self._ticker.is_alive():
                self._ticker = threading.Thread(target=self._tick, name="aauth-status", daemon=True)
                self._ticker.start()
            if self._reader is None or not self._reader.is_alive():
                self._reader = threading.Thread(target=self._read, name="aauth-stdin", daemon=True)
                self._reader.start()

    def _tick(self) -> None:
        """Redraw the status line of the newest interaction until none is left, and carry
        out a Ctrl-C (the signal handler only raises a flag: it may interrupt this very
        stream's write, or a lock's holder, in the main thread)."""
        frames = _SPINNER_UNICODE if self.unicode else _SPINNER_ASCII
        frame = 0
        drawn = 0.0
        while True:
            if self._cancelling and not self._cancelled:
                self._cancelled = True
                self._cancel_open()
            with self._write_lock:
                if not self._active:
                    return
                shown = [p for p in self._active if isinstance(p, InteractionPrompt)]
                due = time.monotonic() - drawn >= self.refresh
                if shown and self._asking is None and due:
                    drawn = time.monotonic()
                    prompt = shown[-1]
                    remaining = prompt.remaining()
                    left = f" · {_minutes(remaining)} left" if remaining is not None else ""
                    cancelling = " · cancelling" if prompt.cancel_requested else ""
                    self._clear_line()
                    self._write(
                        f"{frames[frame % len(frames)]} {prompt.status_text}{left}{cancelling}"
                    )
                    frame += 1
            self._wake.wait(min(self.refresh, _SIGNAL_CHECK))
            self._wake.clear()

    def _cancel_open(self) -> None:
        with self._write_lock:
            active = [p for p in self._active if not p.finished]
            self._clear_line()
            self._write("Cancelling: the request is being withdrawn (Ctrl-C again to stop now).\n")
        for prompt in active:
            prompt.cancel("the person pressed Ctrl-C")

    def _read(self) -> None:
        """Read lines while a prompt is open: an answer to the question being asked, or
        Enter to open the newest link. Only waits on stdin while prompts are open, so no
        input is taken from the program once they are done."""
        while True:
            with self._write_lock:
                if not self._active:
                    return
            try:
                ready, _, _ = select.select([self.stdin], [], [], 0.2)
            except (OSError, ValueError, TypeError):  # no selectable stdin: no keyboard input
                return
            if not ready:
                continue
            line = self.stdin.readline()
            if line == "":  # end of input
                return
            self._line(line.rstrip("\r\n"))

    def _line(self, text: str) -> None:
        with self._write_lock:
            asking = self._asking
            links = [p for p in self._active if isinstance(p, InteractionPrompt)]
        if asking is not None:
            answer = text.strip()
            options = asking.options or ()
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                answer = options[int(answer) - 1]
            if answer:
                asking.answer(answer)
            else:
                asking.cancel("the person cancelled at the terminal")
            return
        if links and self.open_browser:
            prompt = links[-1]
            with self._write_lock:
                self._clear_line()
                self._write(f"Opening {prompt.url} in your browser...\n")
            try:
                webbrowser.open(prompt.link)
            except Exception as exc:  # no browser: the link is on screen
                self._write(f"Could not open a browser ({exc}); open the link above.\n")

    # -- Ctrl-C ------------------------------------------------------------------------------

    def _install_sigint(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        with self._write_lock:
            if self._previous_sigint is not None:
                return
            try:
                self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)
            except ValueError:  # not the main interpreter
                self._previous_sigint = None

    def _restore_sigint(self) -> None:
        previous, self._previous_sigint = self._previous_sigint, None
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        """The first Ctrl-C while prompts are open raises a flag the status thread acts on
        (no lock, no write here); a second one, or one with nothing open, stops."""
        if self._cancelling or not self._active:
            self._restore_sigint()
            raise KeyboardInterrupt
        self._cancelling = True

    # -- output ------------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        with self._write_lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # the terminal went away
                pass

    def _clear_line(self) -> None:
        if self.interactive:
            self._write("\r\x1b[2K")

    def _announce(self, prompt: InteractionPrompt) -> None:
        """An interaction without a terminal: a JSON line, or plain sentences; then each
        change of its status."""
        if not self.json_lines:
            self._write("\n".join(_interaction_lines(prompt)) + "\n")
            prompt.subscribe(self._plain_status)
            return
        self._json(
            "aauth.interaction",
            prompt,
            link=prompt.link,
            url=prompt.url,
            code=prompt.code,
            justification=prompt.justification,
            expires_in=_round(prompt.remaining()),
        )
        prompt.subscribe(self._json_status)

    def _plain_status(self, prompt: Prompt) -> None:
        if prompt.status not in ("waiting", "asked"):  # (announced with the prompt itself)
            self._write(f"{prompt.status_text}.\n")

    def _json(self, event: str, prompt: Prompt, **fields: Any) -> None:
        record = {
            "event": event,
            "pending_url": prompt.pending_url or None,
            "resource": prompt.resource,
            **fields,
        }
        self._write(json.dumps({k: v for k, v in record.items() if v is not None}) + "\n")

    def _json_status(self, prompt: Prompt) -> None:
        if prompt.status in ("waiting", "asked"):
            return  # announced with the prompt itself
        self._json("aauth.status", prompt, kind=prompt.kind, status=prompt.status)


def _interaction_lines(prompt: InteractionPrompt) -> list[str]:
    """What the person reads of an interaction: where to go, the code to check there, why."""
    where = f" at {prompt.resource}" if prompt.resource else ""
    lines = [
        f"The agent needs your approval{where}.",
        f"  Open:  {prompt.link}",
        f"  Code:  {prompt.code}",
    ]
    if prompt.justification:
        lines.append(f"  Why:   {prompt.justification}")
    return lines


def _round(value: float | None) -> int | None:
    return None if value is None else int(value + 0.5)


def _qr(link: str) -> str:
    """The link as a QR code of half-block characters (two modules per line)."""
    import io

    import segno

    out = io.StringIO()
    segno.make(link, error="m").terminal(out=out, compact=True)
    return out.getvalue()


__all__ = ["TerminalPrompts"]
