"""The injectable clock: every time-dependent check takes one (ARCHITECTURE.md, Conventions)."""

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


class Every:
    """A recurring chore on a :data:`Clock` (the servers' housekeeping): :meth:`due` says
    whether ``interval`` seconds have passed since the last time it said so, the first time
    ``interval`` seconds after creation. ``interval`` 0 means never."""

    def __init__(self, clock: Clock, interval: float) -> None:
        if interval < 0:
            raise ValueError("interval must be 0 (never) or positive")
        self.clock, self.interval = clock, interval
        self.next = clock() + interval

    def due(self) -> float | None:
        """The current time when the chore is due (the next one is then ``interval`` away),
        else ``None``."""
        if not self.interval:
            return None
        now = self.clock()
        if now < self.next:
            return None
        self.next = now + self.interval
        return now
