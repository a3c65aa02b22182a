"""Stores a resource keeps its state in, behind small protocols, in memory, SQLite, Redis
and PostgreSQL.

* :class:`PendingStore` -- pending records of ``202`` flows, compare-and-set updates.
* :class:`RevocationStore` -- revocations by ``(iss, jti)``, by agent and by person, and the
  tokens a resource has accepted.
* :class:`PersonTokenStore` -- the person token each agent key presented.
* :class:`ReplayStore` -- signatures seen within the validity window.
* :class:`AttemptStore` -- attempts counted per key in fixed windows (limits).

:class:`Stores` bundles one of each: ``Stores.memory()``, ``Stores.sqlite(path)`` (one host),
``Stores.redis(url)`` or ``Stores.postgres(url)`` (every worker and host serving one
identifier shares it; the ``redis`` / ``postgres`` extra, imported only then). Every method
has an ``a``-prefixed async twin; see :mod:`aauth_agents.stores.sqlite` for how the SQLite
backend stays safe to call from async code (the same SQL runs on PostgreSQL:
:mod:`aauth_agents.stores.sql`), and :mod:`aauth_agents.stores.redis` for what is atomic
in Redis and how keys expire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike

from ..clock import Clock, system_clock
from ..protocol.errors import ConfigurationError
from .base import (
    REVOKED_AGENT,
    REVOKED_PERSON,
    REVOKED_TOKEN,
    AttemptStore,
    PendingRecord,
    PendingStore,
    PersonTokenRecord,
    PersonTokenStore,
    ReplayStore,
    RevocationStore,
    StoreUnavailableError,
)
from .memory import (
    MemoryAttemptStore,
    MemoryPendingStore,
    MemoryPersonTokenStore,
    MemoryReplayStore,
    MemoryRevocationStore,
)
from .sql import SQLDatabase
from .sqlite import (
    SQLiteAttemptStore,
    SQLiteDatabase,
    SQLitePendingStore,
    SQLitePersonTokenStore,
    SQLiteReplayCache,
    SQLiteRevocationStore,
)
from .states import (
    APPROVED,
    COMPLETED,
    DENIED,
    EXECUTING,
    FAILED,
    INTERACTING,
    LIVE,
    OPEN,
    PENDING,
    PENDING_STATES,
    Event,
    InvalidTransitionError,
    advance,
    public_state,
    release,
)


@dataclass
class Stores:
    """One store of each kind. ``replay`` is optional: without it no replay cache is kept
    (§Freshness and Replay makes one a MAY). ``attempts`` counts what limits count."""

    pending: PendingStore
    revocations: RevocationStore
    person_tokens: PersonTokenStore
    replay: ReplayStore | None = None
    attempts: AttemptStore = field(default_factory=lambda: MemoryAttemptStore())
    #: What :meth:`close` releases (the connections a class method opened).
    closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @classmethod
    def memory(cls, *, replay: bool = True, clock: Clock = system_clock) -> Stores:
        return cls(
            pending=MemoryPendingStore(),
            revocations=MemoryRevocationStore(),
            person_tokens=MemoryPersonTokenStore(),
            replay=MemoryReplayStore(clock=clock) if replay else None,
            attempts=MemoryAttemptStore(),
        )

    @classmethod
    def sqlite(
        cls, path: str | PathLike[str], *, replay: bool = True, clock: Clock = system_clock
    ) -> Stores:
        return cls._sql(SQLiteDatabase(path), replay=replay, clock=clock)

    @classmethod
    def _sql(
        cls,
        db: SQLDatabase,
        *,
        replay: bool,
        clock: Clock,
        closers: list[Callable[[], None]] | None = None,
    ) -> Stores:
        """Every store on ``db``: one SQL text for SQLite and PostgreSQL."""
        return cls(
            pending=SQLitePendingStore(db),
            revocations=SQLiteRevocationStore(db),
            person_tokens=SQLitePersonTokenStore(db),
            replay=SQLiteReplayCache(db, clock=clock) if replay else None,
            attempts=SQLiteAttemptStore(db),
            closers=closers or [],
        )

    @classmethod
    def redis(
        cls,
        url: str,
        *,
        prefix: str = "aauth:",
        replay: bool = True,
        clock: Clock = system_clock,
    ) -> Stores:
        """Every store in the Redis at ``url`` (``redis://host:6379/0``), keys starting with
        ``prefix``; needs the ``redis`` extra. ``clock`` sets how long keys live and is the
        replay cache's."""
        try:
            from .redis import (
                RedisAttemptStore,
                RedisConnection,
                RedisPendingStore,
                RedisPersonTokenStore,
                RedisReplayCache,
                RedisRevocationStore,
            )
        except ImportError as exc:
            raise ConfigurationError(
                "stores in Redis need redis-py: pip install 'aauth-agents[redis]'"
            ) from exc

        conn = RedisConnection(url, prefix=prefix, clock=clock)
        return cls(
            pending=RedisPendingStore(conn),
            revocations=RedisRevocationStore(conn),
            person_tokens=RedisPersonTokenStore(conn),
            replay=RedisReplayCache(conn, clock=clock) if replay else None,
            attempts=RedisAttemptStore(conn),
        )

    @classmethod
    def postgres(cls, url: str, *, replay: bool = True, clock: Clock = system_clock) -> Stores:
        """The SQL stores in the PostgreSQL database at ``url`` (its tables created if
        missing), shared by every process using it. Needs the ``postgres`` extra."""
        from .postgres import PostgresDatabase

        db = PostgresDatabase(url)
        return cls._sql(db, replay=replay, clock=clock, closers=[db.close])

    def close(self) -> None:
        """Release the connections the stores hold (a PostgreSQL pool's threads)."""
        while self.closers:
            self.closers.pop()()

    def purge(self, now: float) -> int:
        """Forget expired entries everywhere; returns how many."""
        return (
            self.pending.purge(now)
            + self.revocations.purge(now)
            + self.person_tokens.purge(now)
            + self.attempts.purge(now)
        )

    async def apurge(self, now: float) -> int:
        return (
            await self.pending.apurge(now)
            + await self.revocations.apurge(now)
            + await self.person_tokens.apurge(now)
            + await self.attempts.apurge(now)
        )


__all__ = [
    "APPROVED",
    "COMPLETED",
    "DENIED",
    "EXECUTING",
    "FAILED",
    "INTERACTING",
    "LIVE",
    "OPEN",
    "PENDING",
    "PENDING_STATES",
    "REVOKED_AGENT",
    "REVOKED_PERSON",
    "REVOKED_TOKEN",
    "AttemptStore",
    "Event",
    "InvalidTransitionError",
    "MemoryAttemptStore",
    "MemoryPendingStore",
    "MemoryPersonTokenStore",
    "MemoryReplayStore",
    "MemoryRevocationStore",
    "PendingRecord",
    "PendingStore",
    "PersonTokenRecord",
    "PersonTokenStore",
    "ReplayStore",
    "RevocationStore",
    "SQLiteAttemptStore",
    "SQLiteDatabase",
    "SQLitePendingStore",
    "SQLitePersonTokenStore",
    "SQLiteReplayCache",
    "SQLiteRevocationStore",
    "StoreUnavailableError",
    "Stores",
    "advance",
    "public_state",
    "release",
]
