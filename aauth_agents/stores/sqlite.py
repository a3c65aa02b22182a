"""SQLite stores (stdlib :mod:`sqlite3`): one database file shared by the stores and by
several processes on one host. The store classes run on any
:class:`~aauth_agents.stores.sql.SQLDatabase`: the same statements serve PostgreSQL
(:class:`~aauth_agents.stores.postgres.PostgresDatabase`, ``Stores.postgres(url)``).

Async safety: every statement is a short, indexed, single-row (or bounded) operation. The sync
methods run it directly; the ``a``-prefixed twins run the same method in a worker thread
(:func:`anyio.to_thread.run_sync`), so a slow disk or a lock held by another process never
blocks the event loop. One connection per :class:`SQLiteDatabase`, opened with
``check_same_thread=False`` and serialized by a lock; WAL journaling and a busy timeout let
processes share the file. Each write is a single statement, so a compare-and-set
(:meth:`SQLitePendingStore.replace`) is atomic across threads and processes.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any, ClassVar, ParamSpec, TypeVar

import anyio.to_thread

from ..clock import Clock, system_clock
from ..httpsig.verify import ReplayKey
from .base import (
    REVOKED_AGENT,
    REVOKED_PERSON,
    REVOKED_TOKEN,
    PendingRecord,
    PersonTokenRecord,
)
from .sql import POSTGRESQL, SQLITE, SQLDatabase, batch_delete, purge_in_batches
from .states import OPEN

P = ParamSpec("P")
T = TypeVar("T")

#: The open states as an SQL list of literals (constants of :mod:`.states`): a partial index
#: and the queries it serves must name them the same way for SQLite to use the index.
_OPEN_SQL = ", ".join(f"'{state}'" for state in sorted(OPEN))

SCHEMA = """
CREATE TABLE IF NOT EXISTS aauth_pending (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    agent_jkt TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    purge_at REAL NOT NULL,
    interaction_id TEXT UNIQUE,
    code TEXT,
    code_attempts INTEGER NOT NULL,
    data TEXT NOT NULL,
    version INTEGER NOT NULL,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS aauth_pending_purge ON aauth_pending (purge_at);
CREATE TABLE IF NOT EXISTS aauth_revoked (
    kind TEXT NOT NULL,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (kind, a, b)
);
CREATE INDEX IF NOT EXISTS aauth_revoked_until ON aauth_revoked (until);
CREATE TABLE IF NOT EXISTS aauth_known_tokens (
    iss TEXT NOT NULL,
    jti TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (iss, jti)
);
CREATE INDEX IF NOT EXISTS aauth_known_tokens_until ON aauth_known_tokens (until);
CREATE TABLE IF NOT EXISTS aauth_person_tokens (
    agent_jkt TEXT NOT NULL,
    ps TEXT NOT NULL,
    sub TEXT NOT NULL,
    mission_s256 TEXT NOT NULL,
    jti TEXT NOT NULL,
    tenant TEXT,
    exp REAL NOT NULL,
    PRIMARY KEY (agent_jkt, ps, sub, mission_s256)
);
CREATE INDEX IF NOT EXISTS aauth_person_tokens_exp ON aauth_person_tokens (exp);
CREATE TABLE IF NOT EXISTS aauth_replay (
    key TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS aauth_replay_expiry ON aauth_replay (expires_at);
CREATE TABLE IF NOT EXISTS aauth_attempts (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    until REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS aauth_attempts_until ON aauth_attempts (until);
"""

#: Each owner's open records in list order, so that a page of them is read in order and
#: stops at its limit. (An index on (owner, state, created_at) would not do: with two open
#: states SQLite reads and sorts all of the owner's open rows.) ``state`` is in it too, so
#: the count reads the index alone: SQLite checks the query's ``state IN`` on every row and
#: would otherwise look each one up in the table.
OPEN_INDEX = (
    "CREATE INDEX IF NOT EXISTS aauth_pending_listed ON aauth_pending "
    f"(owner, created_at, id, expires_at, state) WHERE state IN ({_OPEN_SQL})"
)
#: The indexes :data:`OPEN_INDEX` replaced, dropped from files made before.
OLD_INDEXES = ("aauth_pending_owner", "aauth_pending_open")


class SQLiteDatabase:
    """One SQLite file (or ``":memory:"``) and the connection the stores share."""

    dialect = SQLITE
    IntegrityError: type[Exception] = sqlite3.IntegrityError

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        timeout: float = 5.0,
        lock: threading.RLock | None = None,
    ) -> None:
        self.path = str(path)
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, check_same_thread=False, isolation_level=None
        )
        #: Held for each statement. Another connection of this process to the same file
        #: may share it (``lock``): its writers then queue here, woken as soon as the
        #: lock is free, instead of in SQLite's busy handler, which sleeps in steps up to
        #: 100 ms and finds the file locked again by a writer that never stops to let it in.
        self._lock = lock if lock is not None else threading.RLock()
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._conn.executescript(SCHEMA)
            self._migrate()

    def _migrate(self) -> None:
        """Bring a file created by an older version up to date: ``aauth_pending.owner``
        (added later; ``NULL`` -- no owner -- for records made before)."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(aauth_pending)")}
        if "owner" not in columns:
            try:
                self._conn.execute("ALTER TABLE aauth_pending ADD COLUMN owner TEXT")
            except sqlite3.OperationalError as exc:  # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise
        for index in OLD_INDEXES:
            self._conn.execute(f"DROP INDEX IF EXISTS {index}")
        self._conn.execute(OPEN_INDEX)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def _in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def purge_expired_batch(db: SQLDatabase, table: str, column: str, now: float, limit: int) -> int:
    """Delete at most ``limit`` rows of ``table`` whose ``column`` (an indexed expiry) is
    ``<= now``, the longest expired first, in one statement; returns how many."""
    sql = batch_delete(db.dialect, table, f"{column} <= ?", column)
    return int(db.execute(sql, (now, limit)).rowcount)


def expired_batches(
    db: SQLDatabase, tables: Sequence[tuple[str, str]], now: float
) -> list[Callable[[int], int]]:
    """For each ``(table, expiry column)`` of ``tables``, the delete of one batch of its
    expired rows (``delete(limit)``: :func:`purge_expired_batch`), to run batch after batch
    (:func:`~aauth_agents.stores.sql.purge_in_batches` or ``apurge_in_batches``)."""
    return [functools.partial(purge_expired_batch, db, t, c, now) for t, c in tables]


def purge_expired(db: SQLDatabase, tables: Sequence[tuple[str, str]], now: float) -> int:
    """Delete the expired rows of each ``(table, expiry column)`` of ``tables``, in bounded
    batches (:func:`~aauth_agents.stores.sql.purge_in_batches`), each statement committed
    on its own; returns how many."""
    return sum(purge_in_batches(delete) for delete in expired_batches(db, tables, now))


def _record(row: Any) -> PendingRecord | None:
    if row is None:
        return None
    return PendingRecord(
        id=row[0],
        kind=row[1],
        state=row[2],
        agent_jkt=row[3],
        created_at=row[4],
        expires_at=row[5],
        purge_at=row[6],
        interaction_id=row[7],
        code=row[8],
        code_attempts=row[9],
        data=PendingRecord.load_data(row[10]),
        version=row[11],
        owner=row[12],
    )


_PENDING_COLUMNS = (
    "id, kind, state, agent_jkt, created_at, expires_at, purge_at, "
    "interaction_id, code, code_attempts, data, version, owner"
)


class SQLitePendingStore:
    """:class:`~aauth_agents.stores.PendingStore` in table ``aauth_pending``."""

    #: Each table purged and its indexed expiry column.
    EXPIRING: ClassVar[tuple[tuple[str, str], ...]] = (("aauth_pending", "purge_at"),)

    def __init__(self, db: SQLDatabase) -> None:
        self.db = db

    def create(self, record: PendingRecord) -> None:
        try:
            self.db.execute(
                f"INSERT INTO aauth_pending ({_PENDING_COLUMNS}) "  # noqa: S608 (constants)
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.kind,
                    record.state,
                    record.agent_jkt,
                    record.created_at,
                    record.expires_at,
                    record.purge_at,
                    record.interaction_id,
                    record.code,
                    record.code_attempts,
                    record.data_json(),
                    record.version,
                    record.owner,
                ),
            )
        except self.db.IntegrityError as exc:
            raise KeyError(f"pending record {record.id!r} exists") from exc

    def get(self, record_id: str) -> PendingRecord | None:
        return _record(
            self.db.fetchone(
                f"SELECT {_PENDING_COLUMNS} FROM aauth_pending WHERE id = ?",  # noqa: S608
                (record_id,),
            )
        )

    def get_by_interaction(self, interaction_id: str) -> PendingRecord | None:
        return _record(
            self.db.fetchone(
                f"SELECT {_PENDING_COLUMNS} FROM aauth_pending WHERE interaction_id = ?",  # noqa: S608
                (interaction_id,),
            )
        )

    def replace(self, record: PendingRecord) -> PendingRecord | None:
        # The owner is set once: a record without one may be claimed, never handed on.
        rows = self.db.fetchall(
            "UPDATE aauth_pending SET kind = ?, state = ?, agent_jkt = ?, created_at = ?, "
            "expires_at = ?, purge_at = ?, code = ?, code_attempts = ?, data = ?, "
            "owner = COALESCE(owner, ?), version = version + 1 WHERE id = ? AND version = ? "
            "RETURNING owner",
            (
                record.kind,
                record.state,
                record.agent_jkt,
                record.created_at,
                record.expires_at,
                record.purge_at,
                record.code,
                record.code_attempts,
                record.data_json(),
                record.owner,
                record.id,
                record.version,
            ),
        )
        if len(rows) != 1:
            return None
        return record.evolve(version=record.version + 1, owner=rows[0][0])

    def delete(self, record_id: str) -> None:
        self.db.execute("DELETE FROM aauth_pending WHERE id = ?", (record_id,))

    def open_for_owner(
        self, owner: str, now: float, limit: int = 100, offset: int = 0
    ) -> list[PendingRecord]:
        rows = self.db.fetchall(
            f"SELECT {_PENDING_COLUMNS} FROM aauth_pending WHERE owner = ? "  # noqa: S608
            f"AND state IN ({_OPEN_SQL}) AND expires_at > ? ORDER BY created_at, id "
            "LIMIT ? OFFSET ?",
            (owner, now, max(0, limit), max(0, offset)),
        )
        return [r for r in map(_record, rows) if r is not None]

    def count_open_for_owner(self, owner: str, now: float) -> int:
        row = self.db.fetchone(
            "SELECT COUNT(*) FROM aauth_pending WHERE owner = ? "  # noqa: S608
            f"AND state IN ({_OPEN_SQL}) AND expires_at > ?",
            (owner, now),
        )
        return int(row[0])

    def purge(self, now: float) -> int:
        return purge_expired(self.db, self.EXPIRING, now)

    async def acreate(self, record: PendingRecord) -> None:
        await _in_thread(self.create, record)

    async def aget(self, record_id: str) -> PendingRecord | None:
        return await _in_thread(self.get, record_id)

    async def aget_by_interaction(self, interaction_id: str) -> PendingRecord | None:
        return await _in_thread(self.get_by_interaction, interaction_id)

    async def areplace(self, record: PendingRecord) -> PendingRecord | None:
        return await _in_thread(self.replace, record)

    async def adelete(self, record_id: str) -> None:
        await _in_thread(self.delete, record_id)

    async def aopen_for_owner(
        self, owner: str, now: float, limit: int = 100, offset: int = 0
    ) -> list[PendingRecord]:
        return await _in_thread(self.open_for_owner, owner, now, limit, offset)

    async def acount_open_for_owner(self, owner: str, now: float) -> int:
        return await _in_thread(self.count_open_for_owner, owner, now)

    async def apurge(self, now: float) -> int:
        return await _in_thread(self.purge, now)


class SQLiteRevocationStore:
    """:class:`~aauth_agents.stores.RevocationStore` in tables ``aauth_revoked`` and
    ``aauth_known_tokens``."""

    #: Each table purged and its indexed expiry column.
    EXPIRING: ClassVar[tuple[tuple[str, str], ...]] = (
        ("aauth_revoked", "until"),
        ("aauth_known_tokens", "until"),
    )

    def __init__(self, db: SQLDatabase) -> None:
        self.db = db

    def _revoke(self, kind: str, a: str, b: str, until: float) -> bool:
        existed = self.db.fetchone(
            "SELECT 1 FROM aauth_revoked WHERE kind = ? AND a = ? AND b = ?", (kind, a, b)
        )
        self.db.execute(
            "INSERT INTO aauth_revoked (kind, a, b, until) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, a, b) DO UPDATE SET until = CASE WHEN "
            "excluded.until > aauth_revoked.until THEN excluded.until ELSE aauth_revoked.until END",
            (kind, a, b, until),
        )
        return existed is None

    def revoke_token(self, iss: str, jti: str, until: float) -> bool:
        return self._revoke(REVOKED_TOKEN, iss, jti, until)

    def revoke_agent(self, agent: str, until: float) -> bool:
        return self._revoke(REVOKED_AGENT, agent, "", until)

    def revoke_person(self, iss: str, sub: str, until: float) -> bool:
        return self._revoke(REVOKED_PERSON, iss, sub, until)

    def is_revoked(
        self,
        *,
        now: float,
        token: tuple[str, str] | None = None,
        agents: Sequence[str] = (),
        person: tuple[str, str] | None = None,
    ) -> str | None:
        clauses: list[str] = []
        params: list[Any] = []
        if token is not None:
            clauses.append("(kind = ? AND a = ? AND b = ?)")
            params += [REVOKED_TOKEN, *token]
        for agent in agents:
            clauses.append("(kind = ? AND a = ? AND b = '')")
            params += [REVOKED_AGENT, agent]
        if person is not None:
            clauses.append("(kind = ? AND a = ? AND b = ?)")
            params += [REVOKED_PERSON, *person]
        if not clauses:
            return None
        where = " OR ".join(clauses)  # placeholders only; values are bound
        row = self.db.fetchone(
            f"SELECT kind FROM aauth_revoked WHERE until > ? AND ({where}) "  # noqa: S608
            "ORDER BY CASE kind WHEN 'token' THEN 0 WHEN 'agent' THEN 1 ELSE 2 END LIMIT 1",
            [now, *params],
        )
        return None if row is None else str(row[0])

    def remember_token(self, iss: str, jti: str, until: float) -> None:
        self.db.execute(
            "INSERT INTO aauth_known_tokens (iss, jti, until) VALUES (?, ?, ?) "
            "ON CONFLICT (iss, jti) DO UPDATE SET until = CASE WHEN excluded.until > "
            "aauth_known_tokens.until THEN excluded.until ELSE aauth_known_tokens.until END",
            (iss, jti, until),
        )

    def is_known(self, iss: str, jti: str, *, now: float) -> bool:
        row = self.db.fetchone(
            "SELECT 1 FROM aauth_known_tokens WHERE iss = ? AND jti = ? AND until > ? "
            "UNION ALL SELECT 1 FROM aauth_revoked WHERE kind = ? AND a = ? AND b = ? "
            "AND until > ? LIMIT 1",
            (iss, jti, now, REVOKED_TOKEN, iss, jti, now),
        )
        return row is not None

    def purge(self, now: float) -> int:
        return purge_expired(self.db, self.EXPIRING, now)

    async def arevoke_token(self, iss: str, jti: str, until: float) -> bool:
        return await _in_thread(self.revoke_token, iss, jti, until)

    async def arevoke_agent(self, agent: str, until: float) -> bool:
        return await _in_thread(self.revoke_agent, agent, until)

    async def arevoke_person(self, iss: str, sub: str, until: float) -> bool:
        return await _in_thread(self.revoke_person, iss, sub, until)

    async def ais_revoked(
        self,
        *,
        now: float,
        token: tuple[str, str] | None = None,
        agents: Sequence[str] = (),
        person: tuple[str, str] | None = None,
    ) -> str | None:
        return await _in_thread(self.is_revoked, now=now, token=token, agents=agents, person=person)

    async def aremember_token(self, iss: str, jti: str, until: float) -> None:
        await _in_thread(self.remember_token, iss, jti, until)

    async def ais_known(self, iss: str, jti: str, *, now: float) -> bool:
        return await _in_thread(self.is_known, iss, jti, now=now)

    async def apurge(self, now: float) -> int:
        return await _in_thread(self.purge, now)


class SQLitePersonTokenStore:
    """:class:`~aauth_agents.stores.PersonTokenStore` in table ``aauth_person_tokens``."""

    #: Each table purged and its indexed expiry column.
    EXPIRING: ClassVar[tuple[tuple[str, str], ...]] = (("aauth_person_tokens", "exp"),)

    def __init__(self, db: SQLDatabase) -> None:
        self.db = db

    def put(self, record: PersonTokenRecord) -> None:
        self.db.execute(
            "INSERT INTO aauth_person_tokens "
            "(agent_jkt, ps, sub, mission_s256, jti, tenant, exp) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (agent_jkt, ps, sub, mission_s256) DO UPDATE SET jti = excluded.jti, "
            "tenant = excluded.tenant, exp = excluded.exp",
            (
                record.agent_jkt,
                record.ps,
                record.sub,
                record.mission_s256 or "",
                record.jti,
                record.tenant,
                record.exp,
            ),
        )

    def find(
        self, agent_jkt: str, ps: str, sub: str, mission_s256: str | None, *, now: float
    ) -> PersonTokenRecord | None:
        row = self.db.fetchone(
            "SELECT jti, tenant, exp FROM aauth_person_tokens WHERE agent_jkt = ? AND ps = ? "
            "AND sub = ? AND mission_s256 = ? AND exp > ?",
            (agent_jkt, ps, sub, mission_s256 or "", now),
        )
        if row is None:
            return None
        return PersonTokenRecord(
            agent_jkt=agent_jkt,
            ps=ps,
            sub=sub,
            jti=row[0],
            exp=row[2],
            mission_s256=mission_s256 or None,
            tenant=row[1],
        )

    def purge(self, now: float) -> int:
        return purge_expired(self.db, self.EXPIRING, now)

    async def aput(self, record: PersonTokenRecord) -> None:
        await _in_thread(self.put, record)

    async def afind(
        self, agent_jkt: str, ps: str, sub: str, mission_s256: str | None, *, now: float
    ) -> PersonTokenRecord | None:
        return await _in_thread(self.find, agent_jkt, ps, sub, mission_s256, now=now)

    async def apurge(self, now: float) -> int:
        return await _in_thread(self.purge, now)


#: A replay check: one upsert on the primary key, storing the key unless a live entry holds it.
REPLAY_CHECK = (
    "INSERT INTO aauth_replay (key, expires_at) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE aauth_replay.expires_at < ?"
)
#: A bounded purge of expired entries, oldest first, through the expiry index.
REPLAY_PURGE = (
    "DELETE FROM aauth_replay WHERE rowid IN (SELECT rowid FROM aauth_replay "
    "WHERE expires_at < ? ORDER BY expires_at LIMIT ?)"
)
#: The same on each engine: rows by their physical address (PostgreSQL's ``ctid``).
_REPLAY_PURGE = {SQLITE: REPLAY_PURGE, POSTGRESQL: REPLAY_PURGE.replace("rowid", "ctid")}


def _replay_key(key: ReplayKey) -> str:
    # Thumbprints, @method and @authority contain no NUL; @path cannot either (the request
    # model refuses control characters), so NUL is an unambiguous separator.
    return "\x00".join(str(part) for part in key)


class SQLiteReplayCache:
    """:class:`~aauth_agents.stores.ReplayStore` (and httpsig ``ReplayCache``) in table
    ``aauth_replay``; shared by every process using the file. A check is one upsert on the
    primary key. Expired entries are overwritten, and purged every ``purge_every`` stores
    through the expiry index, at most ``2 * purge_every`` at a time: twice the inflow, so a
    backlog drains while no check pays for more than a bounded batch."""

    def __init__(
        self, db: SQLDatabase, *, clock: Clock = system_clock, purge_every: int = 1000
    ) -> None:
        self.db = db
        self.clock = clock
        self.purge_every = purge_every
        self._writes = 0
        self._purge = _REPLAY_PURGE[db.dialect]

    def check_and_store(self, key: ReplayKey, expires_at: float) -> bool:
        now = self.clock()
        cursor = self.db.execute(REPLAY_CHECK, (_replay_key(key), expires_at, now))
        self._writes += 1
        if self.purge_every and self._writes % self.purge_every == 0:
            self.db.execute(self._purge, (now, 2 * self.purge_every))
        return cursor.rowcount == 1

    async def acheck_and_store(self, key: ReplayKey, expires_at: float) -> bool:
        return await _in_thread(self.check_and_store, key, expires_at)


#: One attempt: a new window when none is live, else one more in it; the count after it.
ATTEMPT_HIT = (
    "INSERT INTO aauth_attempts (key, count, until) VALUES (?, 1, ?) "
    "ON CONFLICT (key) DO UPDATE SET "
    "count = CASE WHEN aauth_attempts.until <= ? THEN 1 ELSE aauth_attempts.count + 1 END, "
    "until = CASE WHEN aauth_attempts.until <= ? THEN excluded.until "
    "ELSE aauth_attempts.until END "
    "RETURNING count"
)


class SQLiteAttemptStore:
    """:class:`~aauth_agents.stores.AttemptStore` in table ``aauth_attempts``: one upsert per
    attempt, shared by every process using the file."""

    #: Each table purged and its indexed expiry column.
    EXPIRING: ClassVar[tuple[tuple[str, str], ...]] = (("aauth_attempts", "until"),)

    def __init__(self, db: SQLDatabase) -> None:
        self.db = db

    def hit(self, key: str, *, now: float, window: float) -> int:
        row = self.db.fetchone(ATTEMPT_HIT, (key, now + window, now, now))
        return int(row[0])

    def count(self, key: str, *, now: float) -> int:
        row = self.db.fetchone(
            "SELECT count FROM aauth_attempts WHERE key = ? AND until > ?", (key, now)
        )
        return int(row[0]) if row else 0

    def clear(self, key: str) -> None:
        self.db.execute("DELETE FROM aauth_attempts WHERE key = ?", (key,))

    def purge(self, now: float) -> int:
        return purge_expired(self.db, self.EXPIRING, now)

    async def ahit(self, key: str, *, now: float, window: float) -> int:
        return await _in_thread(self.hit, key, now=now, window=window)

    async def acount(self, key: str, *, now: float) -> int:
        return await _in_thread(self.count, key, now=now)

    async def aclear(self, key: str) -> None:
        await _in_thread(self.clear, key)

    async def apurge(self, now: float) -> int:
        return await _in_thread(self.purge, now)


__all__ = [
    "OLD_INDEXES",
    "OPEN_INDEX",
    "SCHEMA",
    "SQLiteAttemptStore",
    "SQLiteDatabase",
    "SQLitePendingStore",
    "SQLitePersonTokenStore",
    "SQLiteReplayCache",
    "SQLiteRevocationStore",
    "expired_batches",
    "purge_expired",
    "purge_expired_batch",
]
