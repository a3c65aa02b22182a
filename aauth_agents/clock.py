"""The injectable clock: every time-dependent check takes one (DESIGN.md, Conventions)."""

from __future__ import annotations

import time
from collections.abc import Callable

#: Returns the current Unix time in seconds.
Clock = Callable[[], float]


def system_clock() -> float:
    """Wall-clock Unix time; the default :data:`Clock`."""
    return time.time()


class FrozenClock:
    """A settable clock for tests and simulations."""

    def __init__(self, now: float = 1_730_217_600.0):
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
