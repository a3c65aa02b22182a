"""The requests one call has left pending at a server (§Deferred Responses), so that the
call can be resumed or withdrawn later.

The flow records the pending URL (``Location``) of every request it polls, under a key that
names what made it (``("ps", "POST", token_endpoint)``, ``("resource", "GET", url)``), and
forgets it once a final response arrives. A call given a :class:`PendingRequests`
(``AAuth.derive(pending=...)``) therefore:

* resumes: run again, the flow polls the recorded URL instead of asking again (a LangGraph
  node re-run after an interrupt continues the same consent, it does not start a second);
* can be withdrawn: :meth:`~aauth_agents.agent.AAuth.withdraw` sends ``DELETE`` to every
  recorded URL (§Cancel Request) -- after Ctrl-C, or when the person cancels.

Thread-safe; nothing here does I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any


class PendingRequests:
    """Pending URLs by key, with how to sign a request to each (the flow's party)."""

    def __init__(self) -> None:
        self._open: dict[Hashable, tuple[str, Any]] = {}
        self._lock = threading.Lock()

    def location(self, key: Hashable) -> str | None:
        """The pending URL recorded for ``key``, if any."""
        with self._lock:
            entry = self._open.get(key)
        return entry[0] if entry is not None else None

    def remember(self, key: Hashable, location: str, party: Any) -> None:
        with self._lock:
            self._open[key] = (location, party)

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._open.pop(key, None)

    def entries(self) -> list[tuple[Hashable, str, Any]]:
        """Every recorded ``(key, location, party)``, oldest first."""
        with self._lock:
            return [(key, location, party) for key, (location, party) in self._open.items()]

    @property
    def locations(self) -> list[str]:
        """The pending URLs still open."""
        return [location for _, location, _ in self.entries()]

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def __repr__(self) -> str:
        return f"PendingRequests({self.locations!r})"


__all__ = ["PendingRequests"]
