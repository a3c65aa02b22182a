"""Errors the person server's layers share (§Deferred Responses, §Mission Status Errors).

:class:`InteractionError` is what the person's side (:mod:`.interactions`) raises for an
operation the protocol does not allow; the functions build the polling and mission errors
every layer answers alike.
"""

from __future__ import annotations

from ...protocol.errors import ProtocolError
from .state import Mission


class InteractionError(ProtocolError):
    """A UI operation the protocol does not allow (wrong state, limit reached, ...)."""


class WrongCodeError(InteractionError):
    """A code that does not match the interaction it names (which exists and was open):
    a guess, counted against the interaction (``code_attempts``) and, by the UI, against
    the client address. An interaction that does not exist is a plain
    :class:`InteractionError` (``invalid_code`` alike on the wire)."""


def gone(detail: str = "the pending request is finished") -> ProtocolError:
    """§Pending URL Security: once a terminal response was sent, the pending URL is 410."""
    return ProtocolError(detail, code="gone", status=410)


def not_found(detail: str = "no such pending request") -> ProtocolError:
    return ProtocolError(detail, code="not_found", status=404)


def mission_terminated(mission: Mission) -> ProtocolError:
    """§Mission Status Errors."""
    return ProtocolError(
        "the mission has ended",
        code="mission_terminated",
        mission_status="terminated",
        termination_reason=mission.termination_reason or "revoked",
    )


__all__ = ["InteractionError", "WrongCodeError", "gone", "mission_terminated", "not_found"]
