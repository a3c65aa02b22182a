"""Housekeeping at scale (issue 16): purges run in bounded batches, each its own short
statement or transaction, on SQLite and PostgreSQL; every purge query and the revocation
retry query is served by an index; the SQLite write-ahead log is truncated after a purge."""

from __future__ import annotations

import os
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
from aauth_agents.servers.person_server.ui_sessions import UISessions
from aauth_agents.stores import SQLiteDatabase
from aauth_agents.stores.sql import PURGE_BATCH, SQLITE, batch_delete

ROWS = 2 * PURGE_BATCH + PURGE_BATCH // 2  # three batches per table
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
            continue  # deleted one by one with their links, a batch per transaction
        mine = [params for sql, params in deletes if sql.startswith(f"DELETE FROM {table} ")]
        assert len(mine) == 3, table
        assert all(params[-1] == PURGE_BATCH for params in mine), table
    assert transactions[0] >= 3  # the browser sessions: one transaction per batch


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
    assert len(selected) == 3
    assert sessions.count() == 0
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
    sessions = "SELECT id_s256 FROM ps_ui_sessions WHERE expires_at < ? ORDER BY expires_at LIMIT ?"
    assert "SCAN" not in _plan(ps_db, sessions, (1.0, 10))
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
