"""Housekeeping: forgetting what no longer needs keeping (§Deferred Responses: pending
records past their lifetime; §Person Token Endpoint: records of issued tokens past
retention; §Token Revocation: expired revocations; §JWKS Discovery and Caching: retired keys).
"""

from __future__ import annotations

from ..ui_sessions import UISessions
from .core import ServerCore, log


class Housekeeping(ServerCore):
    """:meth:`purge`, and :meth:`housekeeping` to run it in the background when due."""

    async def purge(self) -> int:
        """Forget what no longer needs keeping: pending records past ``purge_at``, person
        token records past retention, expired auth-token and agent-token records, expired
        revocations, attempt counts of ended windows, retired keys no longer published,
        expired browser sessions."""
        now = self.clock()
        count = await self.run(self.pending.purge, now)
        count += await self.run(self.revocations.purge, now)
        count += await self.attempts.apurge(now)
        count += await self.run(self.state.purge, now)
        count += await self.run(self.keys.purge)
        count += await self.run(UISessions(self.db).purge, now)
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
