"""What the Redis backend adds to the protocol suite (test_store_protocols.py runs that against
Redis too): atomicity across connections (as two worker processes hold them), keys that expire
by themselves, prefixes that keep deployments apart, and a Redis that stops, restarts, hangs
or is still loading -- answered with StoreUnavailableError (503), and working again after.

Every test runs against a real redis-server: the run's one (``redis_url``, emptied), or a
private one on its own port for the tests that stop it.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.services import RedisServer

from aauth_agents.clock import FrozenClock
from aauth_agents.stores import (
    EXECUTING,
    INTERACTING,
    PENDING,
    Event,
    PendingRecord,
    PersonTokenRecord,
    Stores,
    StoreUnavailableError,
    advance,
)
from aauth_agents.stores.redis import RedisConnection, RedisPendingStore

NOW = 1_730_217_600.0


def record(record_id: str = "p1", **kw: object) -> PendingRecord:
    args: dict[str, object] = {
        "id": record_id,
        "kind": "approval",
        "state": PENDING,
        "agent_jkt": "jkt-1",
        "created_at": NOW,
        "expires_at": NOW + 600,
        "purge_at": NOW + 3600,
        "data": {"scope": "read"},
    }
    args.update(kw)
    return PendingRecord(**args)  # type: ignore[arg-type]


@pytest.fixture
def two(redis_url: str) -> Iterator[tuple[Stores, Stores]]:
    """Two Stores on two connections to one Redis: two worker processes of one server."""
    clock = FrozenClock(NOW)
    one, other = Stores.redis(redis_url, clock=clock), Stores.redis(redis_url, clock=clock)
    yield one, other
    for stores in (one, other):
        stores.pending.conn.close()  # type: ignore[attr-defined]


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        yield client


# -- atomic across connections ------------------------------------------------------------------


def test_one_of_many_replaces_wins_across_threads_and_connections(
    two: tuple[Stores, Stores],
) -> None:
    """24 threads, half on each connection, all holding version 0, all claim at once: one
    claim lands, the record moved exactly once."""
    one, other = two
    one.pending.create(record())
    snapshot = other.pending.get("p1")
    assert snapshot is not None
    barrier = threading.Barrier(24)
    wins: list[PendingRecord] = []

    def attempt(stores: Stores) -> None:
        barrier.wait()
        result = stores.pending.replace(advance(snapshot, Event.CLAIM))
        if result is not None:
            wins.append(result)

    threads = [threading.Thread(target=attempt, args=(two[n % 2],)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    stored = one.pending.get("p1")
    assert stored == wins[0] and stored.version == 1 and stored.state == EXECUTING


_CLAIMER = """
import sys, threading, time
from aauth_agents.clock import FrozenClock
from aauth_agents.stores import Event, Stores, advance
stores = Stores.redis(sys.argv[1], clock=FrozenClock(float(sys.argv[2])))
snapshot = stores.pending.get("p1")
stores.pending.conn.call("INCR", "ready")
while stores.pending.conn.call("GET", "go") is None:  # start together
    time.sleep(0.005)
wins = []
def claim():
    if stores.pending.replace(advance(snapshot, Event.CLAIM)) is not None:
        wins.append(1)
threads = [threading.Thread(target=claim) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(wins))
"""


def test_one_of_many_replaces_wins_across_processes(redis_url: str, raw: redis.Redis) -> None:
    """Two worker processes, eight threads each, all claiming version 0: one claim lands."""
    stores = Stores.redis(redis_url, clock=FrozenClock(NOW))
    stores.pending.create(record())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, redis_url, repr(NOW)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    while raw.get("ready") != "2" and all(proc.poll() is None for proc in procs):
        time.sleep(0.01)
    raw.set("go", "1")
    outputs = [proc.communicate(timeout=60)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert sum(int(out) for out in outputs) == 1
    assert stores.pending.get("p1").version == 1  # type: ignore[union-attr]


async def test_one_of_many_async_replaces_wins_across_connections(
    two: tuple[Stores, Stores],
) -> None:
    one, other = two
    await one.pending.acreate(record())
    snapshot = await other.pending.aget("p1")
    assert snapshot is not None
    claim = advance(snapshot, Event.CLAIM)
    results = await asyncio.gather(*(two[n % 2].pending.areplace(claim) for n in range(20)))
    assert sum(r is not None for r in results) == 1
    assert (await other.pending.aget("p1")).version == 1  # type: ignore[union-attr]


def test_ids_and_interaction_ids_stay_unique_across_connections(
    two: tuple[Stores, Stores],
) -> None:
    """Concurrent creates of one id, or of one interaction id: one record, the others
    KeyError, and a refused create leaves nothing behind."""
    barrier = threading.Barrier(12)
    created: list[str] = []

    def create(n: int) -> None:
        barrier.wait()
        same_id = record("same", interaction_id=f"i-{n}")
        same_interaction = record(f"r{n}", interaction_id="shared")
        for candidate in (same_id, same_interaction):
            try:
                two[n % 2].pending.create(candidate)
            except KeyError:
                continue
            created.append(candidate.id)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert created.count("same") == 1 and len(created) == 2
    one, other = two
    winner = one.pending.get("same")
    assert winner is not None and winner.interaction_id is not None
    assert other.pending.get_by_interaction(winner.interaction_id) == winner
    shared = other.pending.get_by_interaction("shared")
    assert shared is not None and shared.id in created
    losers = [f"r{n}" for n in range(12) if f"r{n}" != shared.id]
    assert all(one.pending.get(rid) is None for rid in losers)


def test_a_replay_seen_through_one_connection_is_refused_through_the_other(
    two: tuple[Stores, Stores],
) -> None:
    one, other = two
    assert one.replay is not None and other.replay is not None
    key = ("jkt", int(NOW), "POST", "resource.example", "/tools/call")
    assert one.replay.check_and_store(key, NOW + 60) is True
    assert other.replay.check_and_store(key, NOW + 60) is False
    assert one.replay.check_and_store(key, NOW + 60) is False


async def test_revocations_and_attempts_are_shared(two: tuple[Stores, Stores]) -> None:
    one, other = two
    await one.revocations.arevoke_agent("aauth:bot@ap.example", NOW + 60)
    assert await other.revocations.ais_revoked(now=NOW, agents=["aauth:bot@ap.example"]) == "agent"
    assert other.revocations.revoke_agent("aauth:bot@ap.example", NOW + 90) is False
    hits = await asyncio.gather(
        *(two[n % 2].attempts.ahit("signin:alice", now=NOW, window=60) for n in range(30))
    )
    assert sorted(hits) == list(range(1, 31))
    assert one.attempts.count("signin:alice", now=NOW) == 30


def test_the_same_stores_serve_several_event_loops(redis_url: str) -> None:
    """An asyncio client is bound to its loop: each loop gets its own, so a store used from
    two ``asyncio.run`` calls (or two threads' loops) keeps working."""
    stores = Stores.redis(redis_url, clock=FrozenClock(NOW))
    asyncio.run(stores.pending.acreate(record()))
    assert asyncio.run(stores.pending.aget("p1")) is not None
    assert asyncio.run(stores.attempts.ahit("k", now=NOW, window=5)) == 1
    assert asyncio.run(stores.attempts.ahit("k", now=NOW, window=5)) == 2


# -- keys: prefixed, expiring, indexed ----------------------------------------------------------


def _write_everything(stores: Stores) -> None:
    """One write through every method that writes."""
    pending = stores.pending
    pending.create(record("a", interaction_id="ia", owner="alice", code="ABCD1234"))
    pending.create(record("b", owner="alice", state=INTERACTING))
    pending.create(record("c", interaction_id="ic"))
    moved = pending.replace(pending.get("c").evolve(owner="bob"))  # type: ignore[union-attr]
    assert moved is not None
    rev = stores.revocations
    rev.revoke_token("https://ps.example", "j", NOW + 60)
    rev.revoke_agent("jkt-1", NOW + 60)
    rev.revoke_person("https://ps.example", "s", NOW + 60)
    rev.remember_token("https://ps.example", "k", NOW + 60)
    stores.person_tokens.put(
        PersonTokenRecord("jkt-1", "https://ps.example", "s", "pt", NOW + 60, tenant="t")
    )
    assert stores.replay is not None
    stores.replay.check_and_store(("jkt", int(NOW), "POST", "r.example", "/"), NOW + 60)
    stores.attempts.hit("signin:alice", now=NOW, window=60)


def test_every_key_expires_by_itself(two: tuple[Stores, Stores], raw: redis.Redis) -> None:
    """No key is written without a TTL, and none lives much past its time (+ the grace)."""
    one, _ = two
    _write_everything(one)
    keys = list(raw.scan_iter("*"))
    assert len(keys) >= 15
    for key in keys:
        ttl = raw.pttl(key)
        assert 0 < ttl <= (3600 + 60) * 1000, (key, ttl)
    assert 0 < raw.pttl('aauth:replay:["jkt",1730217600,"POST","r.example","/"]') <= 60_000


def test_entries_for_ever_still_expire_some_day(
    two: tuple[Stores, Stores], raw: redis.Redis
) -> None:
    one, _ = two
    assert one.revocations.revoke_agent("jkt-1", float("inf"))
    assert one.revocations.is_revoked(now=NOW + 1e12, agents=["jkt-1"]) == "agent"
    assert one.replay is not None
    assert one.replay.check_and_store(("j", 1, "POST", "r", "/"), float("inf"))
    assert not one.replay.check_and_store(("j", 1, "POST", "r", "/"), float("inf"))
    assert all(raw.pttl(key) > 0 for key in raw.scan_iter("*"))


def test_prefixes_keep_deployments_apart(redis_url: str, raw: redis.Redis) -> None:
    a = Stores.redis(redis_url, prefix="tenant-a:", clock=FrozenClock(NOW))
    b = Stores.redis(redis_url, prefix="tenant-b:", clock=FrozenClock(NOW))
    _write_everything(a)
    assert all(key.startswith("tenant-a:") for key in raw.scan_iter("*"))
    assert b.pending.get("a") is None and b.pending.get_by_interaction("ia") is None
    assert b.pending.open_for_owner("alice", NOW) == []
    assert b.revocations.is_revoked(now=NOW, agents=["jkt-1"]) is None
    assert not b.revocations.is_known("https://ps.example", "k", now=NOW)
    assert b.person_tokens.find("jkt-1", "https://ps.example", "s", None, now=NOW) is None
    assert b.attempts.count("signin:alice", now=NOW) == 0
    assert b.replay is not None
    assert b.replay.check_and_store(("jkt", int(NOW), "POST", "r.example", "/"), NOW + 60)
    assert b.purge(NOW + 7200) == 0
    assert a.purge(NOW + 7200) == 9  # 3 records, 4 revocation entries, 1 person token, 1 window


def test_records_leave_the_owner_index_with_their_open_state(
    two: tuple[Stores, Stores], raw: redis.Redis
) -> None:
    one, _ = two
    one.pending.create(record("x", owner="alice"))
    index = "aauth:pending-owner:alice"
    assert raw.zscore(index, "x") == NOW
    got = one.pending.get("x")
    assert got is not None
    denied = one.pending.replace(advance(got, Event.DENY))
    assert denied is not None and raw.zscore(index, "x") is None
    # A record Redis expired (its key gone) is dropped from the index by the next reader.
    one.pending.create(record("y", owner="alice"))
    raw.delete("aauth:pending:y")
    assert one.pending.open_for_owner("alice", NOW) == []
    assert raw.zcard(index) == 0


def test_purge_forgets_index_entries_of_keys_redis_expired(
    two: tuple[Stores, Stores], raw: redis.Redis
) -> None:
    one, _ = two
    one.pending.create(record("gone", interaction_id="ig", purge_at=NOW + 10))
    one.revocations.revoke_token("https://ps.example", "j", NOW + 10)
    for key in ("aauth:pending:gone", 'aauth:revoked:["token","https://ps.example","j"]'):
        raw.delete(key)  # as Redis does when the TTL runs out
    assert one.purge(NOW + 10) == 0  # nothing left to forget...
    assert raw.zcard("aauth:pending-purge") == 0  # ...and the indexes no longer name them
    assert raw.zcard("aauth:revocations-purge") == 0


def test_writes_prune_index_entries_past_the_grace(redis_url: str, raw: redis.Redis) -> None:
    """Without any purge the indexes stay bounded: a write drops index entries whose keys
    Redis has dropped (their time + grace passed)."""
    clock = FrozenClock(NOW)
    stores = Stores.redis(redis_url, clock=clock)
    for n in range(20):
        stores.revocations.remember_token("https://ps.example", f"j{n}", NOW + 1)
        stores.attempts.hit(f"k{n}", now=NOW, window=1)
    assert raw.zcard("aauth:revocations-purge") == 20
    clock.advance(120)
    stores.revocations.remember_token("https://ps.example", "later", NOW + 200)
    stores.attempts.hit("later", now=NOW + 120, window=60)
    assert raw.zrange("aauth:revocations-purge", 0, -1) == ['known:["https://ps.example","later"]']
    assert raw.zrange("aauth:attempts-purge", 0, -1) == ["attempts:later"]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**53), 2**53)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=16,
    ),
    text=st.text(),
    times=st.tuples(st.floats(0, 4e9), st.floats(0, 4e9), st.floats(NOW, 4e9)),
    owner=st.none() | st.text(),
)
def test_pending_records_round_trip_exactly(
    redis_url: str, data: object, text: str, times: tuple[float, float, float], owner: str | None
) -> None:
    """Any JSON data, any text in the string fields, any float times (a purge_at still
    ahead): a record reads back equal after create and after a replace (floats are stored
    exactly, not to the ms)."""
    import uuid

    store = RedisPendingStore(RedisConnection(redis_url, clock=FrozenClock(NOW)))
    created_at, expires_at, purge_at = times
    record_id = uuid.uuid4().hex
    rec = record(
        record_id,
        kind=text,
        agent_jkt=text,
        interaction_id=text + record_id,
        code=text,
        owner=owner,
        data={"v": data, "t": text},
        created_at=created_at,
        expires_at=expires_at,
        purge_at=purge_at,
    )
    store.create(rec)
    assert store.get(rec.id) == rec
    assert store.get_by_interaction(text + record_id) == rec
    replaced = store.replace(rec.evolve(code=None, data={"w": data}, code_attempts=3))
    assert replaced is not None and store.get(rec.id) == replaced
    assert replaced.code is None and replaced.owner == owner and replaced.version == 1
    store.delete(rec.id)
    store.conn.close()


# -- Redis unavailable --------------------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def _unavailable(call: Callable[[], object]) -> StoreUnavailableError:
    with pytest.raises(StoreUnavailableError) as caught:
        call()
    error = caught.value
    assert error.status == 503 and error.headers() == {"Retry-After": "1"}
    return error


async def _aunavailable(awaitable: Awaitable[object]) -> None:
    with pytest.raises(StoreUnavailableError):
        await awaitable


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
async def test_redis_restarted_mid_run(private_redis: RedisServer, sig: int) -> None:
    """Calls while Redis is down fail with StoreUnavailableError (sync and async, reads and
    scripts); once it is back on the same port the next calls work, scripts loaded anew."""
    stores = Stores.redis(private_redis.url, clock=FrozenClock(NOW))
    stores.pending.create(record())
    await stores.pending.acreate(record("p2"))
    assert stores.attempts.hit("k", now=NOW, window=60) == 1
    private_redis.stop(sig)
    _unavailable(lambda: stores.pending.get("p1"))
    _unavailable(lambda: stores.pending.create(record("p3")))
    _unavailable(lambda: stores.attempts.hit("k", now=NOW, window=60))
    await _aunavailable(stores.pending.aget("p1"))
    await _aunavailable(stores.revocations.arevoke_agent("a", NOW + 60))
    assert stores.replay is not None
    await _aunavailable(stores.replay.acheck_and_store(("j", 1, "POST", "r", "/"), NOW + 60))
    private_redis.start()  # same port; no persistence, so it comes back empty
    assert stores.pending.get("p1") is None
    stores.pending.create(record("p3"))
    assert await stores.pending.aget("p3") is not None
    assert stores.attempts.hit("k", now=NOW, window=60) == 1
    assert await stores.revocations.arevoke_agent("a", NOW + 60) is True
    stores.pending.conn.close()  # type: ignore[attr-defined]


async def test_a_restart_between_calls_goes_unnoticed(private_redis: RedisServer) -> None:
    """Pooled connections the restarted server closed are replaced before use: the first
    call after the restart already works."""
    stores = Stores.redis(private_redis.url, clock=FrozenClock(NOW))
    stores.pending.create(record())
    assert await stores.pending.aget("p1") is not None
    await asyncio.to_thread(private_redis.restart)  # the event loop runs on meanwhile
    assert stores.pending.get("p1") is None
    assert await stores.pending.aget("p1") is None
    stores.pending.create(record())
    assert (await stores.pending.aget("p1")) == stores.pending.get("p1")


class _FakeRedis:
    """A TCP server on loopback that answers every command with ``reply`` (or, with ``None``,
    accepts connections and never answers)."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                if self.reply is not None:
                    conn.sendall(self.reply)
        except OSError:
            return

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.mark.parametrize(
    "reply",
    [None, b"-LOADING Redis is loading the dataset in memory\r\n"],
    ids=["hangs", "loading"],
)
async def test_a_redis_that_hangs_or_is_loading_is_unavailable(reply: bytes | None) -> None:
    """A Redis that never answers (the read timeout) or is still loading its data: 503."""
    fake = _FakeRedis(reply)
    conn = RedisConnection(fake.url, timeout=0.2)
    store = RedisPendingStore(conn)
    try:
        _unavailable(lambda: store.get("p1"))
        _unavailable(lambda: store.create(record()))
        await _aunavailable(store.aget("p1"))
    finally:
        conn.close()
        fake.close()


def test_without_the_redis_extra_only_stores_redis_fails() -> None:
    """``import aauth_agents.stores`` (and the package) needs no redis-py; asking for Redis
    stores without it is a ConfigurationError naming the extra."""
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import aauth_agents, aauth_agents.stores, aauth_agents.resource\n"
        "from aauth_agents.protocol.errors import ConfigurationError\n"
        "aauth_agents.stores.Stores.memory()\n"
        "try:\n"
        "    aauth_agents.stores.Stores.redis('redis://127.0.0.1:1/0')\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "aauth-agents[redis]" in done.stdout
