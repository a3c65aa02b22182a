"""An owner's open pending records page by page (the person's "Waiting for you" list), on the
memory, SQLite and Redis backends: oldest first, each exactly once across the pages, counted,
never another owner's; on SQLite read in index order and stopped at the limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aauth_agents.clock import FrozenClock
from aauth_agents.stores import (
    COMPLETED,
    INTERACTING,
    PENDING,
    Event,
    PendingRecord,
    SQLiteDatabase,
    SQLitePendingStore,
    Stores,
    advance,
)

NOW = 1_730_217_600.0


@pytest.fixture(params=["memory", "sqlite", "redis"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    clock = FrozenClock(NOW)
    if request.param == "memory":
        yield Stores.memory(clock=clock)
    elif request.param == "redis":
        yield Stores.redis(request.getfixturevalue("redis_url"), clock=clock)
    else:
        yield Stores.sqlite(tmp_path / "aauth.sqlite3", clock=clock)


def record(record_id: str, owner: str | None, created_at: float, **kw: object) -> PendingRecord:
    args: dict[str, object] = {
        "id": record_id,
        "kind": "approval",
        "state": PENDING,
        "agent_jkt": "jkt-1",
        "created_at": created_at,
        "expires_at": NOW + 600,
        "purge_at": NOW + 600,
        "data": {"n": record_id},
        "owner": owner,
    }
    args.update(kw)
    return PendingRecord(**args)  # type: ignore[arg-type]


def fill(stores: Stores) -> list[str]:
    """37 open records for alice (created in scrambled order, some at the same instant,
    some interacting), and records that must never be listed for her; her ids in list order."""
    mine: list[tuple[float, str]] = []
    for n in range(37):
        at = NOW - 1000 + (n * 7919) % 37 // 2  # repeats: ties are broken by id
        rid = f"a{n:02}"
        state = INTERACTING if n % 5 == 0 else PENDING
        stores.pending.create(record(rid, "alice", at, state=state))
        mine.append((at, rid))
    stores.pending.create(record("bob-1", "bob", NOW - 2000))
    stores.pending.create(record("done", "alice", NOW - 3000, state=COMPLETED))
    stores.pending.create(record("late", "alice", NOW - 3000, expires_at=NOW))
    stores.pending.create(record("nobody", None, NOW - 3000))
    return [rid for _, rid in sorted(mine)]


def test_pages_cover_every_open_record_once_in_order(stores: Stores) -> None:
    expected = fill(stores)
    pending = stores.pending
    assert pending.count_open_for_owner("alice", NOW) == 37
    for size in (1, 5, 10, 37, 50):
        seen: list[str] = []
        for offset in range(0, 40, size):
            seen += [r.id for r in pending.open_for_owner("alice", NOW, size, offset)]
        assert seen == expected, size
    assert pending.open_for_owner("alice", NOW, 10, 37) == []
    assert pending.open_for_owner("alice", NOW, 0) == []
    # Nonsense bounds are read as nothing skipped and nothing listed, never an error.
    assert [r.id for r in pending.open_for_owner("alice", NOW, 3, -5)] == expected[:3]
    assert pending.open_for_owner("alice", NOW, -1) == []


def test_each_owner_sees_only_their_own(stores: Stores) -> None:
    fill(stores)
    pending = stores.pending
    assert [r.id for r in pending.open_for_owner("bob", NOW)] == ["bob-1"]
    assert pending.count_open_for_owner("bob", NOW) == 1
    assert pending.open_for_owner("carol", NOW) == []
    assert pending.count_open_for_owner("carol", NOW) == 0


def test_the_list_follows_claims_decisions_deletes_and_purges(stores: Stores) -> None:
    """The owner's list (the memory store's index of it) changes with every way a record
    becomes or stops being one of the owner's open records."""
    pending = stores.pending
    pending.create(record("x", None, NOW - 3))
    pending.create(record("y", "carol", NOW - 2))
    pending.create(record("z", "carol", NOW - 1, purge_at=NOW - 1))
    unowned = pending.get("x")
    assert unowned is not None
    claimed = pending.replace(advance(unowned, Event.ARRIVE, owner="carol"))
    assert claimed is not None
    assert [r.id for r in pending.open_for_owner("carol", NOW)] == ["x", "y", "z"]
    decided = pending.get("y")
    assert decided is not None and pending.replace(advance(decided, Event.DENY)) is not None
    assert [r.id for r in pending.open_for_owner("carol", NOW)] == ["x", "z"]
    assert pending.purge(NOW) == 1
    assert [r.id for r in pending.open_for_owner("carol", NOW)] == ["x"]
    pending.delete("x")
    assert pending.open_for_owner("carol", NOW) == []
    assert pending.count_open_for_owner("carol", NOW) == 0
    # Past expires_at a record is no longer listed, though not yet purged.
    pending.create(record("w", "carol", NOW, expires_at=NOW + 5))
    assert pending.count_open_for_owner("carol", NOW + 4) == 1
    assert pending.count_open_for_owner("carol", NOW + 5) == 0


async def test_async_twins_page_and_count(stores: Stores) -> None:
    expected = fill(stores)
    got = await stores.pending.aopen_for_owner("alice", NOW, 4, 8)
    assert [r.id for r in got] == expected[8:12]
    assert await stores.pending.acount_open_for_owner("alice", NOW) == 37


def test_sqlite_reads_the_page_in_index_order(tmp_path: Path) -> None:
    """The owner's page is read from the partial index in list order and stops at its limit:
    SQLite neither scans the table nor sorts the owner's rows."""
    db = SQLiteDatabase(tmp_path / "plan.sqlite3")
    store = SQLitePendingStore(db)
    for n in range(50):
        store.create(record(f"r{n}", f"owner-{n % 3}", NOW - n))
    plans = []
    for method in (store.open_for_owner, store.count_open_for_owner):
        statements: list[str] = []
        db._conn.set_trace_callback(statements.append)
        method("owner-1", NOW)
        db._conn.set_trace_callback(None)
        [sql] = statements
        plans.append(" ".join(row[3] for row in db.fetchall("EXPLAIN QUERY PLAN " + sql)))
    for plan in plans:
        assert "INDEX aauth_pending_listed" in plan, plan
        assert "TEMP B-TREE" not in plan and "SCAN" not in plan, plan
    # The count reads the index alone, never the table: its cost per record is an entry.
    assert "USING COVERING INDEX aauth_pending_listed" in plans[1], plans[1]
