"""Where the person is asked: the moments an agent needs its person (an interaction link with
its code, a clarification question), shown in a terminal, a notebook or a chat, or handed to
a LangGraph interrupt.

* :class:`Prompts` -- the base, with the two prompt objects :class:`InteractionPrompt` and
  :class:`ClarificationPrompt` (:mod:`.base`);
* :class:`TerminalPrompts` -- the link, a QR code, the browser on Enter, a live status
  line, questions answered at the keyboard, Ctrl-C to cancel; JSON lines on stderr when
  there is no terminal (:mod:`.terminal`);
* :class:`ChatPrompts` -- an async iterator of prompts for any chat UI (:mod:`.chat`).

Each is given to an agent as ``AAuth(identity, prompts=surface)`` (or as its
``on_interaction`` / ``on_clarification`` callbacks). LangGraph interrupts are a pending
mode of the LangChain tools (:mod:`aauth_agents.integrations.langchain`).
"""

from __future__ import annotations

from .base import STATUS_TEXT, ClarificationPrompt, InteractionPrompt, Prompt, Prompts
from .chat import ChatPrompts
from .terminal import TerminalPrompts

__all__ = [
    "STATUS_TEXT",
    "ChatPrompts",
    "ClarificationPrompt",
    "InteractionPrompt",
    "Prompt",
    "Prompts",
    "TerminalPrompts",
]
