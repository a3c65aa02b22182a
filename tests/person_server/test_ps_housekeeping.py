"""Housekeeping at scale (issue 16): purges run in bounded batches, each its own short
statement or transaction sized to a time budget, with a pause after each, on SQLite and
PostgreSQL; a new browser session clears a bounded number of old ones; every purge query
and the revocation retry query is served by an index; the SQLite write-ahead log is
truncated after a purge."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.ps import World, make_world
from support.purge import PS_TABLES, STORE_TABLES, counts, fill

from aauth_agents.servers.person_server.database import PSDatabase
from aauth_agents.servers.person_server.server import PersonServer
from aauth_agents.servers.person_server.state import UNNOTIFIED
from aauth_agents.servers.person_server.ui_sessions import ROOM_BATCH, UISessions
from aauth_agents.stores import SQLiteDatabase
from aauth_agents.stores.sql import (
    PURGE_BATCH,
    PURGE_BUDGET,
    PURGE_FIRST,
    PURGE_MIN,
    SQLITE,
    apurge_in_batches,
    batch_delete,
    next_batch,
    purge_in_batches,
)

ROWS = 2 * PURGE_BATCH + PURGE_BATCH // 2  # several batches per table
LIVE = 7


def _spy(obj: Any, seen: list[tuple[str, Sequence[Any]]]) -> None:
    """Record every statement ``obj.execute`` runs."""
    execute: Callable[..., Any] = obj.execute

    def recording(sql: str, params: Sequence[Any] = ()) -> Any:
        seen.append((sql, tuple(params)))
        return execute(sql, params)

    obj.execute = recording


def _count_transactions(ps: PersonServer) -> list[int]:
    opened = [0]
    transaction = ps.db.transaction

    @contextmanager
    def counting() -> Iterator[Any]:
        opened[0] += 1
        with transaction() as conn:
            yield conn

    ps.db.transaction = counting  # type: ignore[method-assign]
    return opened


async def test_purge_deletes_in_bounded_batches(bare: World) -> None:
    """A purge of more rows than a batch takes several DELETEs per table, each limited to
    one batch, and keeps every live row -- on both engines."""
    ps = bare.start(purge_interval=0)
    now = bare.clock()
    fill(ps, ROWS, now - 10)
    fill(ps, LIVE, now + 3600, prefix="live")
    seen: list[tuple[str, Sequence[Any]]] = []
    _spy(ps._stores_db, seen)
    if ps.db.stores_database() is not ps._stores_db or not ps.db.threaded:
        _spy(ps.db, seen)  # SQLite: the PS tables have a connection of their own
    transactions = _count_transactions(ps)
    purged = await ps.purge()
    assert purged == ROWS * (len(PS_TABLES) + len(STORE_TABLES))
    assert counts(ps) == dict.fromkeys([*PS_TABLES, *STORE_TABLES], LIVE)
    deletes = [(sql, params) for sql, params in seen if sql.startswith("DELETE")]
    for table in [*PS_TABLES, *STORE_TABLES]:
        if table == "ps_ui_sessions":
            continue  # in transactions, with their links (below)
        mine = [params for sql, params in deletes if sql.startswith(f"DELETE FROM {table} ")]
        assert len(mine) >= 3, table
        assert mine[0][-1] == PURGE_FIRST, table
        assert all(PURGE_MIN <= params[-1] <= PURGE_BATCH for params in mine), table
    # The browser sessions: one transaction per batch, their links gone with them.
    assert transactions[0] >= 3
    assert ps.db.fetchone("SELECT COUNT(*) FROM ps_ui_session_links")[0] == 0


def test_ui_session_purge_takes_a_batch_per_transaction(tmp_path: Path) -> None:
    db = PSDatabase(tmp_path / "ps.db")
    sessions = UISessions(db)
    db.execute(
        "INSERT INTO ps_ui_sessions (id_s256, csrf, login_seq, created_at, last_seen, "
        "expires_at) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        "WHERE i < ?) SELECT 's' || i, 'c', 0, 1.0, 1.0, 1.0 FROM n",
        (ROWS,),
    )
    selected: list[int] = []
    transaction = db.transaction

    @contextmanager
    def counting() -> Iterator[Any]:
        with transaction() as conn:
            selected.append(0)
            yield conn

    db.transaction = counting  # type: ignore[method-assign]
    assert sessions.purge(2.0) == ROWS
    assert len(selected) >= 3
    assert sessions.count() == 0
    db.close()


def _sessions_with_links(db: PSDatabase, n: int, expires_at: float, prefix: str) -> None:
    db.execute(
        "INSERT INTO ps_ui_sessions (id_s256, csrf, login_seq, created_at, last_seen, "
        "expires_at) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        "WHERE i < ?) SELECT ? || i, 'c', 0, 1.0, 1.0, ? FROM n",
        (n, prefix, expires_at),
    )
    db.execute(
        "INSERT INTO ps_ui_session_links (session_s256, pending_id, arrived, linked_at) "
        "SELECT id_s256, 'p', 0, 1.0 FROM ps_ui_sessions WHERE id_s256 LIKE ? || '%'",
        (prefix,),
    )


class _SpyConnection:
    def __init__(self, conn: Any, seen: list[tuple[str, Sequence[Any]]]) -> None:
        self.conn, self.seen = conn, seen

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self.seen.append((sql, tuple(params)))
        return self.conn.execute(sql, params)


def test_ui_session_purge_deletes_a_batch_in_two_statements(tmp_path: Path) -> None:
    """A batch of expired sessions goes in one statement, their links in one more: not two
    statements a session, and the live sessions and their links stay."""
    db = PSDatabase(tmp_path / "ps.db")
    _sessions_with_links(db, 150, 1.0, "old")
    _sessions_with_links(db, LIVE, 100.0, "live")
    seen: list[tuple[str, Sequence[Any]]] = []
    transaction = db.transaction

    @contextmanager
    def spying() -> Iterator[Any]:
        with transaction() as conn:
            yield _SpyConnection(conn, seen)

    db.transaction = spying  # type: ignore[method-assign]
    assert UISessions(db).purge(2.0) == 150
    deletes = [sql for sql, _ in seen if sql.startswith("DELETE")]
    assert len(deletes) == 4  # two batches (100, then the 50 left), two statements each
    assert db.fetchone("SELECT COUNT(*) FROM ps_ui_sessions")[0] == LIVE
    assert db.fetchone("SELECT COUNT(*) FROM ps_ui_session_links")[0] == LIVE
    db.close()


@pytest.mark.parametrize("signed_in", [False, True])
def test_a_new_session_clears_a_bounded_number_of_expired_ones(
    tmp_path: Path, signed_in: bool
) -> None:
    """Creating a session (or signing in) with a backlog of expired sessions removes at most
    ``ROOM_BATCH`` of them: the request never pays for the backlog, housekeeping does."""
    db = PSDatabase(tmp_path / "ps.db")
    sessions = UISessions(db)
    _sessions_with_links(db, 500, 1.0, "old")
    session = sessions.create(10.0, 60.0, 10_000)
    if signed_in:
        sessions.sign_in(session, "alice", 11.0, 60.0, 10_000)
    left = 500 - ROOM_BATCH * (2 if signed_in else 1)
    assert sessions.count() == left + 1
    assert db.fetchone("SELECT COUNT(*) FROM ps_ui_session_links")[0] == left
    assert sessions.purge(12.0) == left
    assert sessions.count() == 1
    db.close()


def test_a_full_store_makes_room_for_a_new_session_first_from_the_expired(
    tmp_path: Path,
) -> None:
    """At the bound, the sessions dropped for a new one are the expired ones first, even
    signed-in ones beyond what one request clears, before any live anonymous session."""
    db = PSDatabase(tmp_path / "ps.db")
    sessions = UISessions(db)
    live = sessions.create(1.0, 1000.0, 100)  # anonymous, live
    db.execute(
        "INSERT INTO ps_ui_sessions (id_s256, csrf, account, login_seq, created_at, "
        "last_seen, expires_at) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
        "FROM n WHERE i < 99) SELECT 'gone' || i, 'c', 'bob', 1, 2.0, 2.0, 3.0 FROM n",
    )
    assert sessions.count() == 100
    for n in range(3):
        sessions.create(10.0 + n, 1000.0, 100)
    assert sessions.count() <= 100
    assert sessions.load(live.id, 20.0, 1000.0) is not None
    db.close()


def test_purge_batches_are_sized_to_the_budget_and_paused() -> None:
    """Each batch is sized from the time the last one took, to about the budget (at most
    twice the last, within the bounds), and the purge pauses as long after each full one."""
    clock = [0.0]
    per_row = PURGE_BUDGET / 400  # 400 rows fit the budget
    rows = [5000]
    limits: list[int] = []
    pauses: list[float] = []

    def delete(limit: int) -> int:
        limits.append(limit)
        done = min(limit, rows[0])
        rows[0] -= done
        clock[0] += done * per_row
        return done

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        clock[0] += seconds

    assert purge_in_batches(delete, timer=lambda: clock[0], pause=pause) == 5000
    assert limits[:3] == [PURGE_FIRST, 2 * PURGE_FIRST, 400]
    assert set(limits[2:]) == {400}
    assert len(pauses) == len(limits) - 1
    assert pauses == pytest.approx([n * per_row for n in limits[:-1]])
    assert next_batch(1000, 10.0) == PURGE_MIN
    assert next_batch(PURGE_BATCH, 0.0) == PURGE_BATCH
    assert next_batch(PURGE_BATCH, PURGE_BUDGET / 100) == PURGE_BATCH


async def test_async_purge_batches_pause_on_the_loop() -> None:
    """The event loop's purge sizes its batches the same way and awaits its pauses."""
    rows = [PURGE_FIRST * 3]
    limits: list[int] = []
    pauses: list[float] = []

    async def delete(limit: int) -> int:
        limits.append(limit)
        done = min(limit, rows[0])
        rows[0] -= done
        return done

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    ticks = iter(float(n) * PURGE_BUDGET / 4 for n in range(100))
    total = await apurge_in_batches(delete, timer=lambda: next(ticks), pause=pause)
    assert total == PURGE_FIRST * 3
    assert limits == [PURGE_FIRST, 2 * PURGE_FIRST, 4 * PURGE_FIRST]
    assert pauses == pytest.approx([PURGE_BUDGET / 4] * 2)


async def test_ps_purge_runs_its_batches_where_requests_run(bare: World) -> None:
    """A SQLite PS (statements inline on the event loop by default) purges on the loop, a
    batch at a time between requests, not in a thread the loop would wait for; with
    PostgreSQL each batch goes to a worker thread, as requests' statements do."""
    ps = bare.start(purge_interval=0)
    fill(ps, ROWS, bare.clock() - 10)
    threads: set[str] = set()
    for db in {id(ps.db): ps.db, id(ps._stores_db): ps._stores_db}.values():
        execute: Callable[..., Any] = db.execute

        def recording(sql: str, params: Sequence[Any] = (), execute: Any = execute) -> Any:
            if sql.startswith("DELETE"):
                threads.add(threading.current_thread().name)
            return execute(sql, params)

        db.execute = recording
    await ps.purge()
    loop_only = {threading.current_thread().name}
    assert (threads == loop_only) is not ps.db.threaded


def test_the_stores_of_a_ps_queue_on_its_lock(tmp_path: Path) -> None:
    """The shared stores' connection of a SQLite PS and the PS's own take turns on one
    lock: a writer of one never sleeps in SQLite's busy handler behind the other's."""
    db = PSDatabase(tmp_path / "ps.db")
    stores = db.stores_database()
    assert isinstance(stores, SQLiteDatabase)
    assert stores._lock is db._lock
    stores.close()
    db.close()


def _plan(db: Any, sql: str, params: Sequence[Any]) -> str:
    return " | ".join(row[-1] for row in db.fetchall("EXPLAIN QUERY PLAN " + sql, params))


def test_purge_and_retry_queries_use_indexes() -> None:
    """Every purge statement reads its batch from an expiry index, and the revoked tokens
    still to notify come from a partial index: no statement scans a table."""
    ps_db = PSDatabase(":memory:")
    stores_db = SQLiteDatabase(":memory:")
    expiring = {
        **{t: "retain_until" if t == "ps_person_tokens" else "exp" for t in PS_TABLES},
        "ps_ui_sessions": "expires_at",
        "aauth_pending": "purge_at",
        "aauth_revoked": "until",
        "aauth_known_tokens": "until",
        "aauth_person_tokens": "exp",
        "aauth_attempts": "until",
    }
    for table, column in expiring.items():
        db: Any = ps_db if table.startswith("ps_") else stores_db
        sql = batch_delete(SQLITE, table, f"{column} <= ?", column)
        plan = _plan(db, sql, (1.0, PURGE_BATCH))
        assert "SCAN" not in plan, (table, plan)
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (table, plan)
    sessions = batch_delete(SQLITE, "ps_ui_sessions", "expires_at < ?", "expires_at")
    assert "SCAN" not in _plan(ps_db, sessions + " RETURNING id_s256", (1.0, 10))
    unnotified = _plan(ps_db, f"SELECT jti FROM ps_auth_tokens WHERE {UNNOTIFIED}", (1.0,))
    assert "ps_auth_tokens_unnotified" in unnotified, unnotified
    ps_db.close()
    stores_db.close()


async def test_purge_truncates_the_write_ahead_log(tmp_path: Path) -> None:
    """After a purge of many rows the SQLite WAL is checkpointed and truncated, not left at
    its high-water mark."""
    world = make_world()
    world.database = str(tmp_path / "ps.db")
    ps = world.start(purge_interval=0)
    try:
        fill(ps, ROWS, world.clock() - 10)
        wal = Path(world.database + "-wal")
        assert wal.exists() and os.path.getsize(wal) > 0
        assert await ps.purge() >= ROWS
        assert os.path.getsize(wal) == 0
        assert counts(ps) == dict.fromkeys([*PS_TABLES, *STORE_TABLES], 0)
    finally:
        await world.close()


@pytest.mark.parametrize("n", [0, 1, PURGE_BATCH - 1, PURGE_BATCH, PURGE_BATCH + 1])
def test_store_purge_counts_at_batch_edges(n: int) -> None:
    from aauth_agents.stores import SQLiteAttemptStore

    db = SQLiteDatabase(":memory:")
    db.execute(
        "INSERT INTO aauth_attempts (key, count, until) WITH RECURSIVE n(i) AS "
        "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) SELECT 'k' || i, 1, 1.0 FROM n",
        (n,),
    )
    if n == 0:
        db.execute("DELETE FROM aauth_attempts")
    assert SQLiteAttemptStore(db).purge(2.0) == n
    assert db.fetchone("SELECT COUNT(*) FROM aauth_attempts")[0] == 0
    db.close()
