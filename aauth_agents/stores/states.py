"""The life of a pending record, as a state machine (§Deferred Responses, §Deferred Response
State Machine; the PS's pending requests of §Person Server follow the same one).

Modelled on h11's ``_state.py``: the states are the constants below, :data:`TRANSITIONS` says
which :class:`Event` moves a record from which state to which, and :func:`advance` is the one
function that changes a record's state; it raises :class:`InvalidTransitionError` on a move
the table does not allow. The state strings appear in this module only; a resource and a
person server test states with the constants and the sets (:data:`OPEN`, ...) below.

::

    PENDING ──ARRIVE──▶ INTERACTING          (the signed-in person is at the interaction page)
    PENDING / INTERACTING ──APPROVE──▶ APPROVED ──CLAIM──▶ EXECUTING ──DELIVER──▶ COMPLETED
    PENDING / INTERACTING ──DENY──▶ DENIED ──DELIVER──▶ COMPLETED
    PENDING / INTERACTING ──CLAIM──▶ EXECUTING ──APPROVE──▶ APPROVED  (the PS applying a decision)
    PENDING ──CLAIM──▶ EXECUTING ──DELIVER──▶ COMPLETED  (a held call an auth token completes)
    any live state ──FAIL──▶ FAILED ──DELIVER──▶ COMPLETED
    any state but COMPLETED ──WITHDRAW──▶ COMPLETED   (§Cancel Request)

An interaction code (§Interaction Code Format) lives as long as the request can still be
decided: ``ARRIVE`` and ``CLAIM`` keep it (the person may re-open the link; a claim may be
released), and :func:`advance` drops it on every move to a decided or ended state
(:data:`CODE_ENDS`), so a code is consumed by the decision and rejected ever after.

``EXECUTING`` is held by exactly one party at a time (stores replace records by
compare-and-set on ``version``): a poll executing the held invocation (§Deferred Delivery),
or a PS applying the person's decision. :func:`release` undoes a claim whose work failed.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..protocol.errors import ProtocolError

if TYPE_CHECKING:
    from .base import PendingRecord

#: Waiting: for the person, an approver, or an auth token.
PENDING = "pending"
#: The person is at the interaction page (the code still correlates).
INTERACTING = "interacting"
#: Resolved; the next poll completes it.
APPROVED = "approved"
#: Rejected; the next poll answers 403 denied.
DENIED = "denied"
#: One party is acting on the record right now.
EXECUTING = "executing"
#: The terminal response was sent (a stored result may be replayed).
COMPLETED = "completed"
#: A terminal failure (too many wrong codes, expired, an error to deliver).
FAILED = "failed"
#: Every state of a pending record.
PENDING_STATES = frozenset({PENDING, INTERACTING, APPROVED, DENIED, EXECUTING, COMPLETED, FAILED})

#: Waiting for a decision: the person may still approve, deny or be asked.
OPEN = frozenset({PENDING, INTERACTING})
#: Not yet terminal and not decided against: a pending lifetime still applies.
LIVE = frozenset({PENDING, INTERACTING, APPROVED, EXECUTING})
#: Decided or ended: a record entering one of these states no longer has an interaction code.
CODE_ENDS = frozenset({APPROVED, DENIED, COMPLETED, FAILED})


class Event(enum.Enum):
    """What happens to a pending record."""

    ARRIVE = "arrive"  # the person engaged with the interaction (the code stays until decided)
    APPROVE = "approve"  # the person, an approver or a policy said yes
    DENY = "deny"  # ... said no
    CLAIM = "claim"  # one party takes the record to act on it exactly once
    DELIVER = "deliver"  # the terminal response was sent, or the held result stored
    FAIL = "fail"  # expired, too many wrong codes, abandoned, an error to deliver
    WITHDRAW = "withdraw"  # the agent cancelled the request (§Cancel Request)


_E = Event
#: (state, event) -> next state; a pair that is missing is an illegal move.
TRANSITIONS: Mapping[str, Mapping[Event, str]] = {
    PENDING: {
        _E.ARRIVE: INTERACTING,
        _E.APPROVE: APPROVED,
        _E.DENY: DENIED,
        _E.CLAIM: EXECUTING,
        _E.FAIL: FAILED,
        _E.WITHDRAW: COMPLETED,
    },
    INTERACTING: {
        _E.ARRIVE: INTERACTING,
        _E.APPROVE: APPROVED,
        _E.DENY: DENIED,
        _E.CLAIM: EXECUTING,
        _E.FAIL: FAILED,
        _E.WITHDRAW: COMPLETED,
    },
    APPROVED: {
        _E.CLAIM: EXECUTING,
        _E.DELIVER: COMPLETED,
        _E.FAIL: FAILED,
        _E.WITHDRAW: COMPLETED,
    },
    DENIED: {_E.DELIVER: COMPLETED, _E.WITHDRAW: COMPLETED},
    EXECUTING: {
        _E.APPROVE: APPROVED,
        _E.DELIVER: COMPLETED,
        _E.FAIL: FAILED,
        _E.WITHDRAW: COMPLETED,
    },
    FAILED: {_E.DELIVER: COMPLETED, _E.WITHDRAW: COMPLETED},
    COMPLETED: {},
}

#: How a state is named to people and API clients: a record being acted on still shows as
#: the interaction in progress.
_PUBLIC_NAMES = {state: state for state in PENDING_STATES} | {EXECUTING: INTERACTING}


class InvalidTransitionError(ProtocolError):
    """A move :data:`TRANSITIONS` does not allow: a bug, answered as ``server_error``."""

    def __init__(self, state: str, event: Event) -> None:
        super().__init__(f"a {state} request cannot {event.value}", code="server_error")
        self.state = state
        self.event = event


def advance(record: PendingRecord, event: Event, **changes: Any) -> PendingRecord:
    """``record`` moved by ``event`` (with ``changes`` to its other fields), or
    :class:`InvalidTransitionError`. The store's compare-and-set decides whether it lands.
    A move into :data:`CODE_ENDS` consumes the interaction code (§Interaction Code Format:
    single use; any later presentation is ``invalid_code``)."""
    following = TRANSITIONS.get(record.state, {}).get(event)
    if following is None:
        raise InvalidTransitionError(record.state, event)
    if following in CODE_ENDS:
        changes["code"] = None
    return replace(record, state=following, **changes)


def release(claimed: PendingRecord, before: PendingRecord) -> PendingRecord:
    """Undo a :attr:`Event.CLAIM` whose work failed: ``claimed`` back in ``before``'s state."""
    if claimed.state != EXECUTING or EXECUTING not in TRANSITIONS[before.state].values():
        raise InvalidTransitionError(claimed.state, Event.CLAIM)
    return replace(claimed, state=before.state)


def public_state(state: str) -> str:
    """The name of ``state`` shown to the person and to API clients."""
    return _PUBLIC_NAMES.get(state, state)


__all__ = [
    "APPROVED",
    "CODE_ENDS",
    "COMPLETED",
    "DENIED",
    "EXECUTING",
    "FAILED",
    "INTERACTING",
    "LIVE",
    "OPEN",
    "PENDING",
    "PENDING_STATES",
    "TRANSITIONS",
    "Event",
    "InvalidTransitionError",
    "advance",
    "public_state",
    "release",
]
