"""Prompts for chat apps (Gradio, Chainlit, Streamlit, a Slack bot): an async iterator of the
moments the person must act, each with a Markdown rendering and ``answer`` / ``cancel``.

::

    prompts = ChatPrompts()
    auth = AAuth(identity, prompts=prompts)

    async for prompt in prompts:                 # in the chat app's event loop
        await post_to_chat(prompt.markdown)      # the link and code, or the question
        if isinstance(prompt, ClarificationPrompt):
            prompt.answer(await next_user_message())   # or prompt.cancel()

The agent may run anywhere (another task, another thread, a sync client): prompts are handed
over thread-safely, and an answer reaches the waiting agent from whichever thread calls
:meth:`~aauth_agents.prompts.ClarificationPrompt.answer`. An interaction prompt's
:meth:`~aauth_agents.prompts.InteractionPrompt.cancel` withdraws the request; its status
(and :attr:`~aauth_agents.prompts.Prompt.markdown`) follows the request, and
:meth:`~aauth_agents.prompts.Prompt.subscribe` tells the app when to refresh the message.
The chat app needs to know nothing of AAuth.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from .base import ClarificationPrompt, InteractionPrompt, Prompt, Prompts


class _Subscriber:
    """One iteration: a queue on the loop that iterates, fed from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Prompt] = asyncio.Queue()

    def put(self, prompt: Prompt) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, prompt)
        except RuntimeError:  # that loop is closed: the iteration is over
            pass


class ChatPrompts(Prompts):
    """Pending prompts as an async iterator (see the module docstring). Each ``async for``
    receives the prompts still open when it starts, then every new one, in order; several
    iterations may run at once (each sees every prompt)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._subscribers: list[_Subscriber] = []
        self._shown: list[Prompt] = []
        self._chat_lock = threading.Lock()

    @property
    def open(self) -> list[Prompt]:
        """The prompts shown and not finished yet, oldest first."""
        with self._chat_lock:
            self._shown = [prompt for prompt in self._shown if not prompt.finished]
            return list(self._shown)

    def show_interaction(self, prompt: InteractionPrompt) -> None:
        self._publish(prompt)

    def show_clarification(self, prompt: ClarificationPrompt) -> None:
        self._publish(prompt)

    def _publish(self, prompt: Prompt) -> None:
        with self._chat_lock:
            self._shown = [p for p in self._shown if not p.finished] + [prompt]
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.put(prompt)

    async def __aiter__(self) -> AsyncIterator[Prompt]:
        subscriber = _Subscriber(asyncio.get_running_loop())
        with self._chat_lock:
            backlog = [prompt for prompt in self._shown if not prompt.finished]
            self._subscribers.append(subscriber)
        try:
            for prompt in backlog:
                yield prompt
            while True:
                yield await subscriber.queue.get()
        finally:
            with self._chat_lock:
                self._subscribers.remove(subscriber)


__all__ = ["ChatPrompts"]
