"""The pending-record state machine: the table is the only way a record changes state."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.stores import (
    APPROVED,
    COMPLETED,
    DENIED,
    EXECUTING,
    FAILED,
    INTERACTING,
    OPEN,
    PENDING,
    PENDING_STATES,
    Event,
    InvalidTransitionError,
    PendingRecord,
    advance,
    public_state,
    release,
)
from aauth_agents.stores.states import CODE_ENDS, TRANSITIONS


def record(state: str = PENDING) -> PendingRecord:
    return PendingRecord(
        id="p1",
        kind="interaction",
        state=state,
        agent_jkt="jkt",
        created_at=0.0,
        expires_at=600.0,
        purge_at=4200.0,
        code="ABCD",
    )


@given(st.sampled_from(sorted(PENDING_STATES)), st.sampled_from(list(Event)))
def test_a_move_follows_the_table_or_raises_and_changes_nothing(state: str, event: Event) -> None:
    before = record(state)
    following = TRANSITIONS[state].get(event)
    if following is None:
        with pytest.raises(InvalidTransitionError) as raised:
            advance(before, event, code=None)
        assert raised.value.code == "server_error" and raised.value.status == 500
        assert before.state == state and before.code == "ABCD"
    else:
        after = advance(before, event, code=None)
        assert (after.state, after.code, after.version) == (following, None, before.version)


@given(st.sampled_from(sorted(PENDING_STATES)), st.sampled_from(list(Event)))
def test_the_code_lives_until_the_request_is_decided(state: str, event: Event) -> None:
    """§Interaction Code Format: the code correlates while the request can still be decided
    (arriving and claiming keep it) and is consumed by any move to a decided or ended state,
    whatever the caller passes."""
    following = TRANSITIONS[state].get(event)
    if following is None:
        return
    after = advance(record(state), event, code="ABCD")
    assert after.code == (None if following in CODE_ENDS else "ABCD")


def test_arriving_keeps_the_code_and_the_decision_consumes_it() -> None:
    interacting = advance(advance(record(), Event.ARRIVE), Event.ARRIVE)
    assert (interacting.state, interacting.code) == (INTERACTING, "ABCD")
    claimed = advance(interacting, Event.CLAIM)
    assert claimed.code == "ABCD" and release(claimed, interacting).code == "ABCD"
    for event in (Event.APPROVE, Event.DENY, Event.FAIL, Event.WITHDRAW):
        assert advance(interacting, event).code is None
    assert advance(claimed, Event.APPROVE).code is None
    assert CODE_ENDS == PENDING_STATES - OPEN - {EXECUTING}


def test_the_protocol_paths() -> None:
    interacting = advance(record(), Event.ARRIVE)
    assert interacting.state == INTERACTING
    approved = advance(interacting, Event.APPROVE)
    executing = advance(approved, Event.CLAIM)
    assert executing.state == EXECUTING
    assert advance(executing, Event.DELIVER).state == COMPLETED
    assert advance(advance(record(), Event.DENY), Event.DELIVER).state == COMPLETED
    assert advance(advance(record(), Event.FAIL), Event.DELIVER).state == COMPLETED


def test_a_terminal_record_never_moves() -> None:
    for event in Event:
        with pytest.raises(InvalidTransitionError):
            advance(record(COMPLETED), event)


def test_decisions_need_an_open_record() -> None:
    for state in PENDING_STATES - OPEN:
        for event in (Event.ARRIVE, Event.DENY):
            with pytest.raises(InvalidTransitionError):
                advance(record(state), event)


def test_the_state_changes_only_through_advance() -> None:
    with pytest.raises(TypeError):
        record().evolve(state=APPROVED)
    assert record().evolve(code=None).state == PENDING


def test_release_returns_a_claim_to_where_it_was() -> None:
    for state in (PENDING, INTERACTING, APPROVED):
        before = record(state)
        claimed = advance(before, Event.CLAIM)
        assert release(claimed, before).state == state
    with pytest.raises(InvalidTransitionError):
        release(record(PENDING), record(PENDING))
    with pytest.raises(InvalidTransitionError):
        release(record(EXECUTING), record(DENIED))


def test_public_names() -> None:
    assert public_state(EXECUTING) == "interacting"
    assert [public_state(s) for s in (PENDING, APPROVED, DENIED, FAILED, COMPLETED)] == [
        "pending",
        "approved",
        "denied",
        "failed",
        "completed",
    ]
