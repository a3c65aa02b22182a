"""Audit events of the person server (ARCHITECTURE.md, Conventions: an event hook for audit).

Each event names what happened and to whom -- never a token, a password or a key: ``jti``
values and identifiers only. A hook that raises is logged and ignored; it cannot break a
request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("aauth_agents.ps")

#: Event names.
ISSUED_PERSON_TOKEN = "issued_person_token"  # noqa: S105 (an event name)
ISSUED_AUTH_TOKEN = "issued_auth_token"  # noqa: S105
PENDING = "pending"
INTERACTING = "interacting"
APPROVED = "approved"
DENIED = "denied"
ABANDONED = "abandoned"
EXPIRED = "expired"
WITHDRAWN = "withdrawn"
CLARIFICATION_ASKED = "clarification_asked"
CLARIFICATION_ANSWERED = "clarification_answered"
REQUEST_UPDATED = "request_updated"
BOUND = "bound"
UNBOUND = "unbound"
MISSION_APPROVED = "mission_approved"
MISSION_UPDATED = "mission_updated"
MISSION_TERMINATED = "mission_terminated"
PERMISSION = "permission"
AUDIT = "audit"
REVOKED = "revoked"
REVOCATION_SENT = "revocation_sent"
TAMPERING = "tampering"
REJECTED = "rejected"
KEY_ROTATED = "key_rotated"


@dataclass(frozen=True)
class PSEvent:
    """One audit event. ``agent`` is an agent identifier, ``account`` a username,
    ``resource`` a server identifier, ``mission`` an ``s256``, ``jti`` a token identifier."""

    name: str
    at: float
    agent: str | None = None
    account: str | None = None
    resource: str | None = None
    mission: str | None = None
    jti: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


#: Receives each :class:`PSEvent` the person server reports (audit); it must not raise.
EventHook = Callable[[PSEvent], None]


class EventSink:
    """Calls every hook for every event; a failing hook is logged, never raised."""

    def __init__(self, *hooks: EventHook | None) -> None:
        self.hooks = [h for h in hooks if h is not None]

    def __call__(self, event: PSEvent) -> None:
        for hook in self.hooks:
            try:
                hook(event)
            except Exception:
                log.exception("PS event hook failed on %s", event.name)


__all__ = [
    "ABANDONED",
    "APPROVED",
    "AUDIT",
    "BOUND",
    "CLARIFICATION_ANSWERED",
    "CLARIFICATION_ASKED",
    "DENIED",
    "EXPIRED",
    "INTERACTING",
    "ISSUED_AUTH_TOKEN",
    "ISSUED_PERSON_TOKEN",
    "KEY_ROTATED",
    "MISSION_APPROVED",
    "MISSION_TERMINATED",
    "MISSION_UPDATED",
    "PENDING",
    "PERMISSION",
    "REJECTED",
    "REQUEST_UPDATED",
    "REVOCATION_SENT",
    "REVOKED",
    "TAMPERING",
    "UNBOUND",
    "WITHDRAWN",
    "EventHook",
    "EventSink",
    "PSEvent",
]
