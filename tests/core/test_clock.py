"""Every: the recurring-chore schedule behind the servers' housekeeping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.clock import Every, FrozenClock


def test_due_once_per_interval_from_creation() -> None:
    clock = FrozenClock(1000)
    every = Every(clock, 600)
    assert every.due() is None
    clock.advance(599)
    assert every.due() is None
    clock.advance(1)
    assert every.due() == 1600
    assert every.due() is None  # the next one is 600 s away from when this one ran
    clock.advance(5000)  # a long quiet spell: one pass, not eight
    assert every.due() == 6600 and every.due() is None
    assert every.next == 7200


def test_zero_is_never_and_negative_is_refused() -> None:
    clock = FrozenClock(0)
    never = Every(clock, 0)
    clock.advance(10**9)
    assert never.due() is None
    with pytest.raises(ValueError):
        Every(clock, -1)


@given(
    st.integers(min_value=1, max_value=10_000),
    st.lists(st.integers(min_value=0, max_value=5_000), max_size=40),
)
def test_never_due_twice_within_an_interval(interval: int, steps: list[int]) -> None:
    clock = FrozenClock(0)
    every = Every(clock, interval)
    last = 0.0  # creation counts as the previous pass
    for step in steps:
        clock.advance(step)
        now = every.due()
        if now is not None:
            assert now - last >= interval
            last = now
        else:
            assert clock() - last < interval
