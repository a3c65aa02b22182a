"""The proxy's stdio side: the channel to the MCP host, and the person's prompts through it.

:class:`HostChannel` writes every message for the host, as one line of JSON-RPC each, from
one writer thread fed by a bounded queue; nothing else in the process writes to the host's
stdout. It also sends the proxy's own requests to the host (ids the host could not have
seen: ``aauth-proxy-...``) and matches the host's answers to them.

:class:`HostPrompts` is the :class:`~aauth_agents.agent.callbacks.PromptSurface` of the
proxy's :class:`~aauth_agents.agent.AAuth`:

* an interaction (the person must approve at their person server) -- when the host declared
  URL-mode elicitation (MCP 2025-11-25, ``capabilities.elicitation.url``), an
  ``elicitation/create`` request with ``mode: "url"`` and the interaction link; when the
  person declines or dismisses it, the agent withdraws the request; when the interaction
  ends, ``notifications/elicitation/complete``. Otherwise a ``notifications/message`` log
  message with the link and its code, and the link opened in the browser (``webbrowser``,
  which honours ``$BROWSER``). Always a line on stderr too.
* a clarification (the person asks the agent a question at the PS) -- a form-mode
  ``elicitation/create`` with one ``answer`` field (a choice when the question has
  options) when the host declared elicitation; otherwise the request is withdrawn, and the
  host and stderr are told why.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import secrets
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Coroutine
from typing import IO, Any

from ...prompts.base import ClarificationPrompt, InteractionPrompt, Prompt, Prompts
from ...protocol.errors import ConfigurationError
from .wire import Json, Response, serialize

log = logging.getLogger("aauth_agents.integrations.mcp_proxy")

#: Messages waiting for the writer thread (the host reading slowly holds the proxy back).
OUTBOX_SIZE = 256
#: The proxy's own requests to the host (elicitations) open at once.
MAX_HOST_REQUESTS = 64
_STOP = object()


class HostRefused(Exception):
    """The host answered one of the proxy's requests with a JSON-RPC error, or could not be
    asked (too many open requests, the connection is closing)."""


class HostChannel:
    """The proxy's connection to the host (see the module docstring).

    ``client_capabilities`` are the host's, from its ``initialize``; ``initialized`` turns
    true with its ``notifications/initialized`` (no request goes to the host before)."""

    def __init__(self) -> None:
        self.client_capabilities: Json = {}
        self.initialized = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._outbox: queue.Queue[object] = queue.Queue(OUTBOX_SIZE)
        self._writer: threading.Thread | None = None
        self._pending: dict[str, asyncio.Future[Response]] = {}
        self._prefix = f"aauth-proxy-{secrets.token_hex(4)}-"
        self._counter = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.gone = asyncio.Event()  # the host stopped reading (stdout closed)
        self._closing = False

    # -- what the host can do ----------------------------------------------------------------

    def _elicitation(self) -> Json | None:
        elicitation = self.client_capabilities.get("elicitation")
        return elicitation if isinstance(elicitation, dict) and self.initialized else None

    @property
    def url_elicitation(self) -> bool:
        """The host takes ``elicitation/create`` in URL mode."""
        elicitation = self._elicitation()
        return elicitation is not None and isinstance(elicitation.get("url"), dict)

    @property
    def form_elicitation(self) -> bool:
        """The host takes form-mode ``elicitation/create`` (an empty ``elicitation``
        capability means form mode, MCP 2025-11-25)."""
        elicitation = self._elicitation()
        if elicitation is None:
            return False
        return isinstance(elicitation.get("form"), dict) or not (
            "form" in elicitation or "url" in elicitation
        )

    def declared_form_elicitation(self) -> bool:
        """Whether the host's ``initialize`` declared form-mode elicitation (before it is
        initialized: for the capabilities the agent declares)."""
        elicitation = self.client_capabilities.get("elicitation")
        if not isinstance(elicitation, dict):
            return False
        return isinstance(elicitation.get("form"), dict) or not (
            "form" in elicitation or "url" in elicitation
        )

    # -- running ---------------------------------------------------------------------------------

    def start(self, stdout: IO[bytes], loop: asyncio.AbstractEventLoop) -> None:
        """Start the writer thread on ``stdout`` (the only writer it has)."""
        self.loop = loop
        self._writer = threading.Thread(
            target=self._write, args=(stdout,), name="aauth-mcp-stdout", daemon=True
        )
        self._writer.start()

    def _write(self, stdout: IO[bytes]) -> None:
        while True:
            data = self._outbox.get()
            if data is _STOP:
                return
            assert isinstance(data, bytes)
            try:
                view = memoryview(data)
                while view:  # an unbuffered file may take part of it, or none (non-blocking)
                    written = stdout.write(view)
                    if written is None:
                        time.sleep(0.01)
                    else:
                        view = view[written:]
                stdout.flush()
            except (OSError, ValueError) as exc:  # the host closed our stdout
                log.warning("the host stopped reading: %s", exc)
                loop = self.loop
                if loop is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(self.gone.set)
                return

    async def send(self, message: Json) -> None:
        """Queue ``message`` for the host; waits while the queue is full."""
        data = serialize(message)
        while True:
            if self.gone.is_set():
                return
            try:
                self._outbox.put_nowait(data)
                return
            except queue.Full:
                await asyncio.sleep(0.01)

    def send_nowait(self, message: Json) -> None:
        """Queue ``message`` if there is room (a cancellation notice, at shutdown)."""
        try:
            self._outbox.put_nowait(serialize(message))
        except queue.Full:
            log.info("the host's queue is full: %s dropped", message.get("method"))

    async def notify(self, method: str, params: Json) -> None:
        await self.send({"jsonrpc": "2.0", "method": method, "params": params})

    async def log_message(self, level: str, text: str) -> None:
        """A ``notifications/message`` for the host (logger ``aauth``)."""
        await self.notify(
            "notifications/message", {"level": level, "logger": "aauth", "data": text}
        )

    async def request(self, method: str, params: Json) -> Json:
        """Send the host a request of the proxy's own; its ``result``. Raises
        :class:`HostRefused` for an error answer; when cancelled, tells the host
        (``notifications/cancelled``)."""
        if self._closing or self.loop is None or len(self._pending) >= MAX_HOST_REQUESTS:
            raise HostRefused("the host cannot be asked now")
        id = f"{self._prefix}{next(self._counter)}"
        future: asyncio.Future[Response] = self.loop.create_future()
        self._pending[id] = future
        try:
            await self.send({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
            response = await future
        except asyncio.CancelledError:
            if not self._closing:
                self.send_nowait(
                    {
                        "jsonrpc": "2.0",
                        "method": "notifications/cancelled",
                        "params": {"requestId": id, "reason": "no longer needed"},
                    }
                )
            raise
        finally:
            self._pending.pop(id, None)
        if response.is_error:
            error = response.raw.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            raise HostRefused(str(message or "the host refused"))
        return response.result

    def resolve(self, response: Response) -> bool:
        """Deliver ``response`` if it answers one of the proxy's requests."""
        if not isinstance(response.id, str):
            return False
        future = self._pending.get(response.id)
        if future is None:
            return False
        if not future.done():
            future.set_result(response)
        return True

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coroutine`` as a task of the channel (cancelled by :meth:`aclose`)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a proxy task failed", exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        """Cancel every task and every request of the proxy's still open."""
        self._closing = True
        for future in self._pending.values():
            future.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def aclose(self, timeout: float = 2.0) -> None:
        """Write what is queued (at most ``timeout`` seconds) and stop the writer."""
        await self.cancel_tasks()
        if self._writer is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.gone.is_set():
            try:
                self._outbox.put_nowait(_STOP)
                break
            except queue.Full:
                await asyncio.sleep(0.01)
        while self._writer.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


# -- the person's prompts ------------------------------------------------------------------------


def interaction_text(prompt: InteractionPrompt, *, with_link: bool) -> str:
    """What the person reads about an interaction (the link only ``with_link``)."""
    where = f" at {prompt.resource}" if prompt.resource else ""
    text = f"The agent needs your approval{where}."
    if with_link:
        text += f" Open {prompt.link} and check that the page shows the code {prompt.code}."
    else:
        text += f" Check that your person server's page shows the code {prompt.code}."
    if prompt.justification:
        text += f" The agent says: {prompt.justification}"
    return text


class HostPrompts(Prompts):
    """The proxy's prompt surface (see the module docstring). ``stream`` is where the
    person's lines go besides the host (stderr); ``open_browser`` opens the link when the
    host cannot show it."""

    def __init__(
        self,
        host: HostChannel,
        *,
        open_browser: bool = True,
        stream: IO[str] | None = None,
        browser: Callable[[str], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock=clock)
        self.host = host
        self.open_browser = open_browser
        self.stream = stream if stream is not None else sys.stderr
        self.browser = browser if browser is not None else webbrowser.open
        self._write_lock = threading.Lock()

    # -- Prompts -------------------------------------------------------------------------------

    def show_interaction(self, prompt: InteractionPrompt) -> None:
        self._write(interaction_text(prompt, with_link=True))
        prompt.subscribe(self._status)
        self._start(self._interaction(prompt))

    def show_clarification(self, prompt: ClarificationPrompt) -> None:
        options = f" (options: {', '.join(prompt.options)})" if prompt.options else ""
        self._write(f"The person asks the agent: {prompt.question}{options}")
        prompt.subscribe(self._status)
        self._start(self._clarification(prompt))

    # -- through the host ------------------------------------------------------------------------

    async def _interaction(self, prompt: InteractionPrompt) -> None:
        finished = self._finished(prompt)
        if self.host.url_elicitation:
            elicitation_id = secrets.token_urlsafe(16)
            try:
                answer = await self._ask(
                    finished,
                    "elicitation/create",
                    {
                        "mode": "url",
                        "message": interaction_text(prompt, with_link=False),
                        "url": prompt.link,
                        "elicitationId": elicitation_id,
                    },
                )
            except HostRefused as exc:
                log.info("the host refused the URL elicitation (%s): telling it instead", exc)
            else:
                if answer is None:  # the interaction ended first
                    return
                if answer.get("action") == "accept":
                    await finished.wait()
                    await self.host.notify(
                        "notifications/elicitation/complete", {"elicitationId": elicitation_id}
                    )
                else:
                    why = "declined" if answer.get("action") == "decline" else "dismissed"
                    self._write(
                        f"The person {why} the link at the host: the agent withdraws the request."
                    )
                    prompt.cancel(f"the person {why} the link at the MCP host")
                return
        await self.host.log_message("warning", interaction_text(prompt, with_link=True))
        if self.open_browser:
            threading.Thread(
                target=self._launch, args=(prompt.link,), name="aauth-browser", daemon=True
            ).start()

    async def _clarification(self, prompt: ClarificationPrompt) -> None:
        finished = self._finished(prompt)
        if self.host.form_elicitation:
            field: Json = {"type": "string", "title": "Your answer"}
            if prompt.options:
                field["enum"] = list(prompt.options)
            message = f"The person asks the agent: {prompt.question}"
            try:
                answer = await self._ask(
                    finished,
                    "elicitation/create",
                    {
                        "message": message,
                        "requestedSchema": {
                            "type": "object",
                            "properties": {"answer": field},
                            "required": ["answer"],
                        },
                    },
                )
            except HostRefused as exc:
                log.info("the host refused the form elicitation (%s)", exc)
            else:
                if answer is None:  # answered elsewhere, or the time ran out
                    return
                content = answer.get("content")
                text = content.get("answer") if isinstance(content, dict) else None
                if answer.get("action") == "accept" and isinstance(text, str):
                    try:
                        prompt.answer(text)
                        return
                    except ConfigurationError:
                        pass  # an empty answer
                self._write("No answer at the host: the agent withdraws the request.")
                prompt.cancel("the question was not answered at the MCP host")
                return
        text = (
            "The person asked the agent a question, and the MCP host cannot show it: "
            "the agent withdraws the request."
        )
        self._write(text)
        await self.host.log_message("warning", text)
        prompt.cancel("the MCP host cannot ask the person")

    async def _ask(self, finished: asyncio.Event, method: str, params: Json) -> Json | None:
        """The host's answer to a request; ``None`` when ``finished`` came first (the
        request is then withdrawn from the host)."""
        asking = asyncio.ensure_future(self.host.request(method, params))
        ended = asyncio.ensure_future(finished.wait())
        try:
            await asyncio.wait({asking, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not asking.done():
                asking.cancel()
        if asking.cancelled():
            return None
        return asking.result()

    # -- helpers ---------------------------------------------------------------------------------

    def _start(self, coroutine: Coroutine[Any, Any, None]) -> None:
        loop = self.host.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is loop:
            self.host.spawn(coroutine)
        elif loop is not None and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._spawned(coroutine), loop)
        else:
            coroutine.close()
            log.warning("no connection to the host: the person was told on stderr only")

    async def _spawned(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self.host.spawn(coroutine)

    def _finished(self, prompt: Prompt) -> asyncio.Event:
        """An event set when ``prompt`` finishes (listeners run on any thread)."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()

        def listen(changed: Prompt) -> None:
            if changed.finished and not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

        prompt.subscribe(listen)
        return event

    def _status(self, prompt: Prompt) -> None:
        if prompt.finished:
            what = "Your answer was sent" if prompt.status == "answered" else prompt.status_text
            self._write(f"{what}.")

    def _launch(self, link: str) -> None:
        try:
            if not self.browser(link):
                self._write("Could not open a browser: open the link above.")
        except Exception as exc:
            self._write(f"Could not open a browser ({exc}): open the link above.")

    def _write(self, text: str) -> None:
        with self._write_lock:
            try:
                self.stream.write(f"aauth-agents: {text}\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass


__all__ = ["HostChannel", "HostPrompts", "HostRefused", "interaction_text"]
