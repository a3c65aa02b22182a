"""The audit hook: ``issued``, ``verified``, ``denied``, ``revoked`` (and the 202 life cycle:
``challenged``, ``pending``, ``resolved``, ``rejected``, ``completed``, ``expired``), each with
its reason.

Events go to the configured hook and to ``logging.getLogger("aauth_agents.resource")``.
Details name tokens by ``(iss, jti)``, keys by thumbprint and people by ``(iss, sub)``; a
token, a session token or a key never appears in an event or a log line. A hook that raises
is logged and otherwise ignored: auditing never changes a response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock, system_clock

logger = logging.getLogger("aauth_agents.resource")

ISSUED = "issued"
VERIFIED = "verified"
DENIED = "denied"
REVOKED = "revoked"
CHALLENGED = "challenged"
PENDING = "pending"
RESOLVED = "resolved"
REJECTED = "rejected"
COMPLETED = "completed"
EXPIRED = "expired"

_LEVELS = {DENIED: logging.WARNING, REVOKED: logging.WARNING, VERIFIED: logging.DEBUG}


@dataclass(frozen=True)
class ResourceEvent:
    """One audit event. ``reason`` is a stable code (``insufficient_scope``,
    ``invalid_jwt``, ``resource_token``, ``endpoint``...); ``detail`` the specifics, e.g.
    the scopes an agent lacked -- which the agent itself is never told."""

    kind: str
    reason: str
    at: float
    detail: Mapping[str, Any] = field(default_factory=dict)


#: Receives each :class:`ResourceEvent` the resource reports (audit); it must not raise.
EventHook = Callable[[ResourceEvent], None]


class EventSink:
    """Delivers events to the hook and the log."""

    def __init__(self, hook: EventHook | None = None, *, clock: Clock = system_clock) -> None:
        self.hook = hook
        self.clock = clock

    def listening(self, kind: str) -> bool:
        """Whether an event of ``kind`` goes anywhere (a hook, or the log at its level): a
        hot path skips building the event's detail when not."""
        return self.hook is not None or logger.isEnabledFor(_LEVELS.get(kind, logging.INFO))

    def emit(self, kind: str, reason: str, **detail: Any) -> None:
        level = _LEVELS.get(kind, logging.INFO)
        if self.hook is None and not logger.isEnabledFor(level):
            return
        event = ResourceEvent(kind, reason, self.clock(), detail)
        logger.log(
            level,
            "%s %s %s",
            kind,
            reason,
            " ".join(f"{k}={v}" for k, v in detail.items() if v is not None),
        )
        if self.hook is not None:
            try:
                self.hook(event)
            except Exception:
                logger.exception("the AAuth event hook raised; the event was %s", kind)


__all__ = [
    "CHALLENGED",
    "COMPLETED",
    "DENIED",
    "EXPIRED",
    "ISSUED",
    "PENDING",
    "REJECTED",
    "RESOLVED",
    "REVOKED",
    "VERIFIED",
    "EventHook",
    "EventSink",
    "ResourceEvent",
]
