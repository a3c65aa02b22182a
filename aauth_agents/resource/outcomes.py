"""What the resource decides about a request, before any framework sees it.

* :class:`Allow` -- run the application with this caller;
* :class:`~aauth_agents.protocol.reply.Reply` -- send this response (an error, a challenge,
  a 202, a published document);
* :class:`Execute` -- a poll (or a per-call tool's call re-sent with its approval) completed
  a held invocation: run ``held`` with ``caller``, then hand the response to
  :meth:`AAuthResource.complete <aauth_agents.resource.AAuthResource.complete>` (which
  stores it, §Deferred Delivery).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.reply import Reply
from ..stores import PendingRecord
from .caller import Caller
from .held import HeldRequest


@dataclass(frozen=True)
class Allow:
    """Let the request through; ``caller`` is ``None`` on public routes."""

    caller: Caller | None


@dataclass(frozen=True)
class Execute:
    """Run the held invocation ``held`` as ``caller``, then call
    :meth:`AAuthResource.complete`; add ``response_headers`` to its response."""

    caller: Caller
    held: HeldRequest
    record: PendingRecord
    response_headers: tuple[tuple[str, str], ...] = ()


Outcome = Allow | Reply | Execute

__all__ = ["Allow", "Execute", "Outcome", "Reply"]
