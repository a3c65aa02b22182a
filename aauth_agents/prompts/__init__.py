"""Where the person is asked: the moments an agent needs its person (an interaction link with
its code, a clarification question), shown in a terminal, a notebook or a chat, or handed to
a LangGraph interrupt.

* :class:`Prompts` -- the base, with the two prompt objects :class:`InteractionPrompt` and
  :class:`ClarificationPrompt` (:mod:`.base`);
* :class:`TerminalPrompts` -- the link, a QR code, the browser on Enter, a live status
  line, questions answered at the keyboard, Ctrl-C to cancel; JSON lines on stderr when
  there is no terminal (:mod:`.terminal`);
* :class:`NotebookPrompts` -- a widget per prompt in the cell that runs the agent: the link
  as a button, the code, a QR code, a live status, the question with its options or a text
  box, Cancel (:mod:`.notebook`; needs ``aauth-agents[notebook]``, imported on first use);
* :class:`ChatPrompts` -- an async iterator of prompts for any chat UI (:mod:`.chat`).

Each is given to an agent as ``AAuth(identity, prompts=surface)`` (or as its
``on_interaction`` / ``on_clarification`` callbacks). LangGraph interrupts are a pending
mode of the LangChain tools (:mod:`aauth_agents.integrations.langchain`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import STATUS_TEXT, ClarificationPrompt, InteractionPrompt, Prompt, Prompts
from .chat import ChatPrompts
from .terminal import TerminalPrompts

if TYPE_CHECKING:
    from .notebook import NotebookPrompts


def __getattr__(name: str) -> Any:
    """``NotebookPrompts`` on first use: importing this package never needs ipywidgets."""
    if name == "NotebookPrompts":
        from .notebook import NotebookPrompts

        return NotebookPrompts
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "STATUS_TEXT",
    "ChatPrompts",
    "ClarificationPrompt",
    "InteractionPrompt",
    "NotebookPrompts",
    "Prompt",
    "Prompts",
    "TerminalPrompts",
]
