"""Housekeeping: forgetting what no longer needs keeping (§Deferred Responses: pending
records past their lifetime; §Person Token Endpoint: records of issued tokens past
retention; §Token Revocation: expired revocations; §JWKS Discovery and Caching: retired keys).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

from ....stores.sql import PURGE_BATCH
from ..ui_sessions import UISessions
from .core import ServerCore, log

P = ParamSpec("P")
T = TypeVar("T")


async def _off_loop(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn`` in a worker thread whatever ``database_threads`` says: a purge may delete
    many rows, and the loop must keep serving requests meanwhile."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


class Housekeeping(ServerCore):
    """:meth:`purge`, and :meth:`housekeeping` to run it in the background when due."""

    async def purge(self) -> int:
        """Forget what no longer needs keeping: pending records past ``purge_at``, person
        token records past retention, expired auth-token and agent-token records, expired
        revocations, attempt counts of ended windows, retired keys no longer published,
        expired browser sessions.

        Every purge runs in a worker thread and deletes in bounded batches, each its own
        short transaction sized to a few milliseconds and followed by a pause as long
        (:func:`~aauth_agents.stores.sql.purge_in_batches`): requests served meanwhile wait
        for one batch at most, on the lock the PS's connections share, never in SQLite's
        busy handler. After a purge of many rows the SQLite write-ahead log is copied back
        without blocking anyone and truncated (:meth:`PSDatabase.checkpoint
        <aauth_agents.servers.person_server.database.PSDatabase.checkpoint>`)."""
        now = self.clock()
        count = await _off_loop(self.pending.purge, now)
        count += await _off_loop(self.revocations.purge, now)
        count += await self.attempts.apurge(now)
        count += await _off_loop(self.state.purge, now)
        count += await self.run(self.keys.purge)
        count += await _off_loop(UISessions(self.db).purge, now)
        if count >= PURGE_BATCH:
            await _off_loop(self.db.checkpoint)
        return count

    def housekeeping(self) -> None:
        """Start :meth:`purge` in the background once ``purge_interval`` seconds have passed
        since the last pass, so a long-running PS does not keep every record it ever wrote.
        Called by the app after each protocol request: cheap when nothing is due."""
        if self._purges.due() is not None:
            self._spawn(self._purge_logged())

    async def _purge_logged(self) -> None:
        try:
            count = await self.purge()
        except Exception:
            log.exception("housekeeping failed")
            return
        if count:
            log.info("housekeeping forgot %d expired records", count)


__all__ = ["Housekeeping"]
