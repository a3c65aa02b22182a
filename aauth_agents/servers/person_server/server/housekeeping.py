"""Housekeeping: forgetting what no longer needs keeping (§Deferred Responses: pending
records past their lifetime; §Person Token Endpoint: records of issued tokens past
retention; §Token Revocation: expired revocations; §JWKS Discovery and Caching: retired keys).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

from ....stores.sql import PURGE_BATCH, apurge_in_batches
from ....stores.sqlite import (
    SQLiteAttemptStore,
    SQLitePendingStore,
    SQLiteRevocationStore,
    expired_batches,
)
from ..ui_sessions import UISessions
from .core import ServerCore, log

P = ParamSpec("P")
T = TypeVar("T")


async def _off_loop(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn`` in a worker thread whatever ``database_threads`` says (the checkpoint
    after a purge writes the whole log back: the loop must keep serving requests)."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


class Housekeeping(ServerCore):
    """:meth:`purge`, and :meth:`housekeeping` to run it in the background when due."""

    async def purge(self) -> int:
        """Forget what no longer needs keeping: pending records past ``purge_at``, person
        token records past retention, expired auth-token and agent-token records, expired
        revocations, attempt counts of ended windows, retired keys no longer published,
        expired browser sessions.

        Every table is purged in bounded batches, each its own short statement or
        transaction sized to a few milliseconds and followed by a pause as long
        (:func:`~aauth_agents.stores.sql.apurge_in_batches`), and each batch runs where a
        request's statements run (:meth:`run`: on the event loop by default, between
        requests, never waiting for a thread that holds the database; in a worker thread
        with ``database_threads`` or PostgreSQL): requests served meanwhile wait for one
        batch at most. After a purge of many rows the SQLite write-ahead log is copied back
        without blocking anyone and truncated (:meth:`PSDatabase.checkpoint
        <aauth_agents.servers.person_server.database.PSDatabase.checkpoint>`)."""
        now = self.clock()
        count = 0
        for delete in self._purge_batches(now):
            count += await apurge_in_batches(functools.partial(self._run_batch, delete))
        if not isinstance(self.attempts, SQLiteAttemptStore):
            count += await self.attempts.apurge(now)
        count += await self.run(self.keys.purge)
        if count >= PURGE_BATCH:
            await _off_loop(self.db.checkpoint)
        return count

    async def _run_batch(self, delete: Callable[[int], int], limit: int) -> int:
        return await self.run(delete, limit)

    def _purge_batches(self, now: float) -> list[Callable[[int], int]]:
        """The one-batch deletes of every table :meth:`purge` trims (the attempt counts'
        only when they are in this database)."""
        stores: list[SQLitePendingStore | SQLiteRevocationStore | SQLiteAttemptStore] = [
            self.pending,
            self.revocations,
        ]
        if isinstance(self.attempts, SQLiteAttemptStore):
            stores.append(self.attempts)
        return [
            *(d for s in stores for d in expired_batches(s.db, s.EXPIRING, now)),
            *self.state.purge_batches(now),
            UISessions(self.db).purge_batch(now),
        ]

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
