"""What the caller's callbacks receive and return.

``on_interaction(url, code)`` -- take the person to ``{url}?code={code}`` (open a browser,
print it, render a QR code). Its return value is ignored; completion is learned by polling.

``on_clarification(question, options, timeout)`` -- answer a question the person (through
the PS) or a server asked (§Clarification Chat). Return one of:

* a ``str`` or :class:`Answer` -- POSTed as ``action: clarification_response``;
* :class:`UpdatedRequest` -- a new resource token, POSTed as ``action: updated_request``;
* :data:`CANCEL` (or ``None``) -- the pending request is withdrawn with ``DELETE``
  (§Cancel Request) and :class:`~aauth_agents.agent.errors.RequestCancelledError` raised.

Both callbacks may be plain functions or coroutine functions; with ``httpx.AsyncClient``
they are awaited, with ``httpx.Client`` a coroutine is run to completion in its own loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

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
    "ClarificationResult",
    "InteractionCallback",
    "UpdatedRequest",
    "normalize_clarification",
]
