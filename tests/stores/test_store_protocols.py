"""One protocol suite, run against the memory, the SQLite (a real file in tmp_path), the
Redis (a real, emptied redis-server) and the PostgreSQL (a fresh database) backends.

Sync and async methods are both exercised: the async twins of the SQLite stores run in a
worker thread and must observe the same state.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aauth_agents.clock import FrozenClock
from aauth_agents.stores import (
    COMPLETED,
    EXECUTING,
    INTERACTING,
    PENDING,
    AttemptStore,
    Event,
    MemoryReplayStore,
    PendingRecord,
    PendingStore,
    PersonTokenRecord,
    PersonTokenStore,
    ReplayStore,
    RevocationStore,
    SQLiteDatabase,
    SQLiteReplayCache,
    Stores,
    advance,
)
from aauth_agents.stores.sqlite import REPLAY_CHECK, REPLAY_PURGE

NOW = 1_730_217_600.0


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    clock = FrozenClock(NOW)
    if request.param == "memory":
        yield Stores.memory(clock=clock)
    elif request.param == "redis":
        yield Stores.redis(request.getfixturevalue("redis_url"), clock=clock)
    elif request.param == "postgres":
        bundle = Stores.postgres(request.getfixturevalue("postgres_url"), clock=clock)
        yield bundle
        bundle.close()
    else:
        yield Stores.sqlite(tmp_path / "aauth.sqlite3", clock=clock)


def record(record_id: str = "p1", **kw: object) -> PendingRecord:
    args: dict[str, object] = {
        "id": record_id,
        "kind": "approval",
        "state": PENDING,
        "agent_jkt": "jkt-1",
        "created_at": NOW,
        "expires_at": NOW + 600,
        "purge_at": NOW + 600,
        "data": {"scope": "read", "nested": {"a": [1, 2]}},
    }
    args.update(kw)
    return PendingRecord(**args)  # type: ignore[arg-type]


def test_backends_satisfy_the_protocols(stores: Stores) -> None:
    assert isinstance(stores.pending, PendingStore)
    assert isinstance(stores.revocations, RevocationStore)
    assert isinstance(stores.person_tokens, PersonTokenStore)
    assert isinstance(stores.replay, ReplayStore)
    assert isinstance(stores.attempts, AttemptStore)


# -- pending ----------------------------------------------------------------------------------


def test_pending_create_get_and_duplicate(stores: Stores) -> None:
    pending = stores.pending
    pending.create(record(interaction_id="i1", code="ABCD1234"))
    got = pending.get("p1")
    assert got is not None and got.data["nested"] == {"a": [1, 2]}
    assert got.code == "ABCD1234" and got.version == 0
    assert pending.get_by_interaction("i1") == got
    assert pending.get("missing") is None and pending.get_by_interaction("nope") is None
    with pytest.raises(KeyError):
        pending.create(record())
    assert pending.get("p1") == got  # the failed create changed nothing


def test_pending_replace_is_compare_and_set(stores: Stores) -> None:
    pending = stores.pending
    pending.create(record())
    first = pending.get("p1")
    assert first is not None
    moved = pending.replace(advance(first, Event.CLAIM))
    assert moved is not None and moved.version == 1 and moved.state == EXECUTING
    # a second writer holding the old version loses and changes nothing
    assert pending.replace(advance(first, Event.WITHDRAW)) is None
    assert pending.get("p1") == moved
    assert pending.replace(record("gone")) is None


def test_pending_delete_and_purge(stores: Stores) -> None:
    pending = stores.pending
    pending.create(record("old", purge_at=NOW - 1, interaction_id="i-old"))
    pending.create(record("new", purge_at=NOW + 1))
    assert pending.purge(NOW) == 1
    assert pending.get("old") is None and pending.get_by_interaction("i-old") is None
    assert pending.get("new") is not None
    pending.delete("new")
    assert pending.get("new") is None
    pending.delete("never-existed")


def test_only_one_of_many_concurrent_replaces_wins(stores: Stores) -> None:
    stores.pending.create(record())
    snapshot = stores.pending.get("p1")
    assert snapshot is not None
    wins: list[PendingRecord] = []

    def attempt() -> None:
        result = stores.pending.replace(advance(snapshot, Event.CLAIM))
        if result is not None:
            wins.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1


async def test_pending_async_twins(stores: Stores) -> None:
    pending = stores.pending
    await pending.acreate(record(interaction_id="i1"))
    got = await pending.aget("p1")
    assert got is not None and await pending.aget_by_interaction("i1") == got
    results = await asyncio.gather(*(pending.areplace(advance(got, Event.CLAIM)) for _ in range(8)))
    assert sum(r is not None for r in results) == 1
    assert pending.get("p1") is not None and pending.get("p1").state == EXECUTING  # type: ignore[union-attr]
    await pending.adelete("p1")
    assert await pending.aget("p1") is None
    assert await pending.apurge(NOW) == 0


async def test_a_per_call_record_survives_its_life(stores: Stores) -> None:
    """A per-call record (R3 §Per-Call Proposals) as the resource writes it -- the held
    call, the proposal's bytes, who may read them, the retained result -- reads back
    unchanged from either store at every step: held, claimed once, completed."""
    document = '{"vocabulary":"urn:aauth:vocabulary:mcp","display":{"summary":"Löschen ✓"}}'
    data = {
        "held": {
            "method": "POST",
            "path": "/mcp",
            "raw_path": "/mcp",
            "query_string": "",
            "headers": [["content-type", "application/json"]],
            "body": "e30=",
            "root_path": "",
        },
        "scopes": ["files.write"],
        "tool": "delete_file",
        "digested": ["text"],
        "r3_uri": "https://resource.example/aauth/r3/p1",
        "r3_s256": "A" * 43,
        "readers": [["https://ps.example", "aauth-person.json"]],
        "proposal": base64.b64encode(document.encode()).decode(),
        "mission_s256": None,
        "rt_exp": NOW + 300.5,
    }
    pending = stores.pending
    await pending.acreate(record(kind="per-call", data=data))
    held = await pending.aget("p1")
    assert held is not None and held.data == data and held.kind == "per-call"
    assert base64.b64decode(held.data["proposal"]).decode() == document
    claims = [
        advance(held, Event.CLAIM, data=dict(held.data, completed_by=["iss", "jti"]))
        for _ in range(4)
    ]
    won = [r for r in await asyncio.gather(*(pending.areplace(c) for c in claims)) if r]
    assert len(won) == 1
    result = {
        "status": 200,
        "headers": [["content-type", "application/json"]],
        "body": "eyJvayI6dHJ1ZX0=",
    }
    data = dict(won[0].data, result=result, held=None)
    done = await pending.areplace(advance(won[0], Event.DELIVER, purge_at=NOW + 3600, data=data))
    assert done is not None
    again = pending.get("p1")
    assert again == done and again.data["result"] == result and again.data["held"] is None
    assert again.data["completed_by"] == ["iss", "jti"] and again.data["readers"] == data["readers"]


def test_pending_open_for_owner(stores: Stores) -> None:
    """Only the owner's records that still wait (pending or interacting, not past
    ``expires_at``), oldest first; an owner, once set, never changes."""
    pending = stores.pending
    pending.create(record("b", owner="alice", created_at=NOW + 2))
    pending.create(record("a", owner="alice", created_at=NOW + 1, state=INTERACTING))
    pending.create(record("c", owner="alice", state=COMPLETED))
    pending.create(record("d", owner="alice", expires_at=NOW))
    pending.create(record("e", owner="bob"))
    pending.create(record("f"))
    assert [r.id for r in pending.open_for_owner("alice", NOW)] == ["a", "b"]
    assert [r.id for r in pending.open_for_owner("alice", NOW, limit=1)] == ["a"]
    assert [r.id for r in pending.open_for_owner("bob", NOW)] == ["e"]
    assert pending.open_for_owner("carol", NOW) == []
    got = pending.get("b")
    assert got is not None and got.owner == "alice"
    # A replace never moves a record to another person.
    moved = pending.replace(got.evolve(owner="bob"))
    assert moved is not None and moved.owner == "alice"
    assert pending.get("b").owner == "alice"  # type: ignore[union-attr]
    # A record without an owner is claimed once, by the first replace that names one.
    unowned = pending.get("f")
    assert unowned is not None and unowned.owner is None
    assert pending.open_for_owner("carol", NOW) == []
    claimed = pending.replace(unowned.evolve(owner="carol"))
    assert claimed is not None and claimed.owner == "carol"
    again = pending.replace(claimed.evolve(owner="bob"))
    assert again is not None and again.owner == "carol"
    assert pending.replace(again.evolve(owner=None)).owner == "carol"  # type: ignore[union-attr]
    assert [r.id for r in pending.open_for_owner("carol", NOW)] == ["f"]
    done = pending.get("b")
    assert done is not None and pending.replace(advance(done, Event.CLAIM)) is not None
    assert [r.id for r in pending.open_for_owner("alice", NOW)] == ["a"]
    assert [r.id for r in pending.open_for_owner("bob", NOW)] == ["e"]


async def test_pending_open_for_owner_async(stores: Stores) -> None:
    await stores.pending.acreate(record("x", owner="alice"))
    assert [r.id for r in await stores.pending.aopen_for_owner("alice", NOW)] == ["x"]
    assert await stores.pending.aopen_for_owner("alice", NOW + 600) == []


def test_sqlite_file_without_the_owner_column_is_migrated(tmp_path: Path) -> None:
    """A database created before ``owner`` existed keeps its records and gains the column."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as raw:
        raw.executescript("""
            CREATE TABLE aauth_pending (
                id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,
                agent_jkt TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
                purge_at REAL NOT NULL, interaction_id TEXT UNIQUE, code TEXT,
                code_attempts INTEGER NOT NULL, data TEXT NOT NULL, version INTEGER NOT NULL);
            INSERT INTO aauth_pending VALUES ('old', 'approval', 'pending', 'jkt', 1730217600,
                1730218200, 1730218200, 'i-old', 'ABCD', 0, '{"a":1}', 3);
        """)
    raw.close()
    stores = Stores.sqlite(path)
    old = stores.pending.get("old")
    assert old is not None and old.owner is None and old.version == 3 and old.data == {"a": 1}
    assert stores.pending.open_for_owner("alice", NOW) == []
    stores.pending.create(record("new", owner="alice"))
    assert [r.id for r in stores.pending.open_for_owner("alice", NOW)] == ["new"]
    assert stores.pending.replace(old) is not None
    # A second opening (another process) finds the column there already.
    again = Stores.sqlite(path)
    assert again.pending.get("new").owner == "alice"  # type: ignore[union-attr]


# -- revocations -------------------------------------------------------------------------------


def test_revocation_by_token_agent_and_person(stores: Stores) -> None:
    rev = stores.revocations
    assert rev.is_revoked(now=NOW, token=("https://ps.example", "j1")) is None
    assert rev.revoke_token("https://ps.example", "j1", NOW + 60) is True
    assert rev.revoke_token("https://ps.example", "j1", NOW + 30) is False  # already there
    assert rev.is_revoked(now=NOW, token=("https://ps.example", "j1")) == "token"
    # keyed by (iss, jti): the same jti from another issuer is a different token
    assert rev.is_revoked(now=NOW, token=("https://other.example", "j1")) is None
    rev.revoke_agent("aauth:bot@ap.example", NOW + 60)
    assert rev.is_revoked(now=NOW, agents=["jkt-x", "aauth:bot@ap.example"]) == "agent"
    rev.revoke_person("https://ps.example", "sub-1", NOW + 60)
    assert rev.is_revoked(now=NOW, person=("https://ps.example", "sub-1")) == "person"
    assert rev.is_revoked(now=NOW, person=("https://other.example", "sub-1")) is None
    # entries lapse at their "until"
    assert rev.is_revoked(now=NOW + 60, token=("https://ps.example", "j1")) is None
    assert rev.is_revoked(now=NOW) is None


def test_known_tokens_and_purge(stores: Stores) -> None:
    rev = stores.revocations
    assert not rev.is_known("https://ps.example", "j1", now=NOW)
    rev.remember_token("https://ps.example", "j1", NOW + 10)
    assert rev.is_known("https://ps.example", "j1", now=NOW)
    assert not rev.is_known("https://ps.example", "j1", now=NOW + 10)
    rev.revoke_token("https://ps.example", "j2", NOW + 10)
    assert rev.is_known("https://ps.example", "j2", now=NOW)  # revoked counts as known
    assert rev.purge(NOW + 10) == 2
    assert not rev.is_known("https://ps.example", "j2", now=NOW)


async def test_revocation_async_twins(stores: Stores) -> None:
    rev = stores.revocations
    assert await rev.arevoke_token("https://ps.example", "j", NOW + 5)
    assert await rev.arevoke_agent("jkt-1", NOW + 5)
    assert await rev.arevoke_person("https://ps.example", "s", NOW + 5)
    assert await rev.ais_revoked(now=NOW, agents=["jkt-1"]) == "agent"
    assert await rev.ais_revoked(now=NOW, token=("https://ps.example", "j")) == "token"
    await rev.aremember_token("https://as.example", "k", NOW + 5)
    assert await rev.ais_known("https://as.example", "k", now=NOW)
    assert await rev.apurge(NOW + 5) == 4


# -- person tokens ----------------------------------------------------------------------------


def person(**kw: object) -> PersonTokenRecord:
    args: dict[str, object] = {
        "agent_jkt": "jkt-1",
        "ps": "https://ps.example",
        "sub": "s1",
        "jti": "pt-1",
        "exp": NOW + 100,
        "mission_s256": None,
        "tenant": None,
    }
    args.update(kw)
    return PersonTokenRecord(**args)  # type: ignore[arg-type]


def test_person_token_records(stores: Stores) -> None:
    store = stores.person_tokens
    assert store.find("jkt-1", "https://ps.example", "s1", None, now=NOW) is None
    store.put(person())
    store.put(person(jti="pt-m", mission_s256="m" * 43, tenant="acme"))
    assert store.find("jkt-1", "https://ps.example", "s1", None, now=NOW) == person()
    found = store.find("jkt-1", "https://ps.example", "s1", "m" * 43, now=NOW)
    assert found == person(jti="pt-m", mission_s256="m" * 43, tenant="acme")
    store.put(person(jti="pt-2"))  # the latest presentation wins
    assert store.find("jkt-1", "https://ps.example", "s1", None, now=NOW).jti == "pt-2"  # type: ignore[union-attr]
    # another key, another PS namespace: nothing
    assert store.find("jkt-2", "https://ps.example", "s1", None, now=NOW) is None
    assert store.find("jkt-1", "https://other.example", "s1", None, now=NOW) is None
    assert store.find("jkt-1", "https://ps.example", "s1", None, now=NOW + 100) is None
    assert store.purge(NOW + 100) == 2


async def test_person_token_async_twins(stores: Stores) -> None:
    await stores.person_tokens.aput(person())
    assert (
        await stores.person_tokens.afind("jkt-1", "https://ps.example", "s1", None, now=NOW)
        == person()
    )
    assert await stores.person_tokens.apurge(NOW + 1000) == 1


# -- replay -------------------------------------------------------------------------------------


def test_replay_store(stores: Stores) -> None:
    replay = stores.replay
    assert replay is not None
    key = ("jkt", int(NOW), "POST", "resource.example", "/x")
    assert replay.check_and_store(key, NOW + 60) is True
    assert replay.check_and_store(key, NOW + 60) is False
    assert (
        replay.check_and_store(("jkt", int(NOW), "POST", "resource.example", "/y"), NOW + 60)
        is True
    )


async def test_replay_store_async_and_expiry(stores: Stores) -> None:
    replay = stores.replay
    assert replay is not None
    key = ("jkt", int(NOW), "DELETE", "resource.example", "/x")
    assert await replay.acheck_and_store(key, NOW - 1) is True  # already expired entry
    assert await replay.acheck_and_store(key, NOW + 60) is True  # expired entries are reusable
    assert await replay.acheck_and_store(key, NOW + 60) is False


@settings(max_examples=100)
@given(
    backend=st.sampled_from(["memory", "sqlite"]),
    steps=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from("abcdef"), st.integers(-2, 10)),
        max_size=50,
    ),
)
def test_replay_store_agrees_with_a_model(backend: str, steps: list[tuple[int, str, int]]) -> None:
    """Below the memory cache's cap, and always in SQLite (purging every few checks here), a
    key is refused exactly while the window it was last stored with is open."""
    clock = FrozenClock(NOW)
    replay: ReplayStore = (
        MemoryReplayStore(clock=clock)
        if backend == "memory"
        else SQLiteReplayCache(SQLiteDatabase(":memory:"), clock=clock, purge_every=3)
    )
    live: dict[str, float] = {}
    for seconds, name, lifetime in steps:
        clock.advance(seconds)
        key = ("jkt", int(NOW), "POST", "resource.example", name)
        refused = live.get(name, -1.0) >= clock()
        assert replay.check_and_store(key, clock() + lifetime) is not refused
        if not refused:
            live[name] = clock() + lifetime


def test_sqlite_replay_statements_use_indexes() -> None:
    """A check is a primary-key upsert and the purge walks the expiry index: no statement
    scans the table, however many entries it holds."""
    db = SQLiteDatabase(":memory:")
    for sql, params in ((REPLAY_CHECK, ("k", NOW, NOW)), (REPLAY_PURGE, (NOW, 10))):
        plan = " | ".join(row[-1] for row in db.fetchall("EXPLAIN QUERY PLAN " + sql, params))
        assert "SCAN" not in plan, plan
    purge_plan = db.fetchall("EXPLAIN QUERY PLAN " + REPLAY_PURGE, (NOW, 10))
    assert any("INDEX aauth_replay_expiry" in row[-1] for row in purge_plan)
    db.close()


def test_sqlite_replay_purge_is_bounded_and_drains_a_backlog() -> None:
    clock = FrozenClock(NOW)
    db = SQLiteDatabase(":memory:")
    replay = SQLiteReplayCache(db, clock=clock, purge_every=10)

    def count() -> int:
        return int(db.fetchone("SELECT count(*) FROM aauth_replay")[0])

    for n in range(100):
        assert replay.check_and_store(("jkt", n, "POST", "r", "/"), NOW + 1)
    clock.advance(2)  # all 100 expired
    for n in range(10):
        assert replay.check_and_store(("jkt", n, "POST", "r", "/x"), NOW + 60)
    assert count() == 100 - 20 + 10  # one purge, of at most 2 * purge_every entries
    for n in range(10, 60):
        assert replay.check_and_store(("jkt", n, "POST", "r", "/x"), NOW + 60)
    assert count() == 60  # the backlog drained; every live entry kept
    assert not replay.check_and_store(("jkt", 0, "POST", "r", "/x"), NOW + 60)
    db.close()


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    ),
    text=st.text(max_size=40),
)
def test_pending_data_round_trips_any_json(stores: Stores, data: object, text: str) -> None:
    """Whatever JSON a record holds, and whatever text its fields carry, comes back equal."""
    import uuid

    record_id = uuid.uuid4().hex
    stores.pending.create(record(record_id, data={"v": data, "t": text}, code=text or None))
    got = stores.pending.get(record_id)
    assert got is not None and got.data == {"v": data, "t": text} and got.code == (text or None)


def test_sqlite_file_is_shared_between_connections(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    one, two = Stores.sqlite(path), Stores.sqlite(path)
    one.revocations.revoke_token("https://ps.example", "j", NOW + 60)
    one.pending.create(record())
    assert two.revocations.is_revoked(now=NOW, token=("https://ps.example", "j")) == "token"
    snapshot = two.pending.get("p1")
    assert snapshot is not None
    assert one.pending.replace(snapshot) is not None
    assert two.pending.replace(snapshot) is None  # CAS across connections
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM aauth_pending").fetchone() == (1,)


def test_sqlite_database_context_manager(tmp_path: Path) -> None:
    with SQLiteDatabase(tmp_path / "x.sqlite3") as db:
        assert db.fetchone("SELECT 1") == (1,)
    memory = SQLiteDatabase(":memory:")
    assert memory.fetchone("SELECT count(*) FROM aauth_replay") == (0,)
    memory.close()


async def test_stores_purge_everything(stores: Stores) -> None:
    stores.pending.create(record(purge_at=NOW))
    stores.revocations.revoke_token("https://ps.example", "j", NOW)
    stores.person_tokens.put(person(exp=NOW))
    stores.attempts.hit("k", now=NOW - 10, window=10)
    assert stores.purge(NOW) == 4
    assert await stores.apurge(NOW) == 0


# -- attempts ---------------------------------------------------------------------------------


def test_attempts_count_in_fixed_windows(stores: Stores) -> None:
    attempts = stores.attempts
    assert attempts.count("a", now=NOW) == 0
    assert [attempts.hit("a", now=NOW + i, window=60) for i in range(3)] == [1, 2, 3]
    assert attempts.hit("b", now=NOW, window=60) == 1  # keys count apart
    assert attempts.count("a", now=NOW + 59) == 3
    assert attempts.count("a", now=NOW + 60) == 0  # the window opened by the first ended
    assert attempts.hit("a", now=NOW + 61, window=60) == 1
    attempts.clear("a")
    assert attempts.count("a", now=NOW + 61) == 0
    assert attempts.count("b", now=NOW + 1) == 1


async def test_attempts_async_twins(stores: Stores) -> None:
    attempts = stores.attempts
    assert await attempts.ahit("a", now=NOW, window=5) == 1
    assert attempts.hit("a", now=NOW + 1, window=5) == 2
    assert await attempts.acount("a", now=NOW + 1) == 2
    await attempts.aclear("a")
    assert await attempts.acount("a", now=NOW + 1) == 0
    await attempts.ahit("a", now=NOW, window=5)
    assert await attempts.apurge(NOW + 5) == 1


def test_concurrent_attempts_are_all_counted(stores: Stores) -> None:
    def hit() -> None:
        for _ in range(25):
            stores.attempts.hit("shared", now=NOW, window=60)

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores.attempts.count("shared", now=NOW) == 100
