"""PostgreSQL shared by several processes (issue 15): the stores' compare-and-set and the
PS's read-then-write transactions hold across pools, the schema can be created by many
processes at once, and a PostgreSQL restart fails requests cleanly (``503``) and heals
by itself, leaving no half-written transaction behind."""

from __future__ import annotations

import multiprocessing
import shutil
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support.services import PostgresServer

from aauth_agents.keys import PrivateKey
from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.agent_provider import (
    AgentProviderClient,
    AgentProviderConfig,
    AgentProviderServer,
)
from aauth_agents.servers.person_server.database import PostgresPSDatabase, open_database
from aauth_agents.servers.person_server.state import BindingConflictError, PSState
from aauth_agents.stores import (
    EXECUTING,
    PENDING,
    Event,
    PendingRecord,
    SQLitePendingStore,
    Stores,
    StoreUnavailableError,
    advance,
)
from aauth_agents.stores.postgres import PostgresDatabase
from aauth_agents.transport import MappedTransport

NOW = 1_730_217_600.0


def record(record_id: str) -> PendingRecord:
    return PendingRecord(
        id=record_id,
        kind="approval",
        state=PENDING,
        agent_jkt="jkt",
        created_at=NOW,
        expires_at=NOW + 600,
        purge_at=NOW + 600,
        data={},
    )


def _race(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run every worker at once (a barrier releases them together); their results."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = workers[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_pools_race_a_compare_and_set_and_one_wins(postgres_url: str) -> None:
    """Two processes' pools (two databases objects) replace one record at the same version:
    exactly one replace succeeds, every round."""
    one, two = PostgresDatabase(postgres_url), PostgresDatabase(postgres_url)
    stores = [SQLitePendingStore(one), SQLitePendingStore(two)]
    for n in range(20):
        stores[0].create(record(f"p{n}"))
        seen = [s.get(f"p{n}") for s in stores]
        assert seen[0] == seen[1] and seen[0] is not None
        claims = [advance(r, Event.CLAIM) for r in seen if r is not None]
        pairs = zip(stores, claims, strict=True)
        results = _race([lambda s=s, c=c: s.replace(c) for s, c in pairs])
        assert sum(r is not None for r in results) == 1, results
        final = stores[1].get(f"p{n}")
        assert final is not None and final.state == EXECUTING and final.version == 1
    one.close()
    two.close()


def test_two_person_servers_race_to_bind_one_agent(postgres_url: str) -> None:
    """Two PS workers bind one agent to two people at once: one binding is made, the other
    is refused as a conflict (never a 500 from a duplicate key)."""
    states = [PSState(open_database(postgres_url)) for _ in range(2)]
    for n in range(10):
        agent = f"aauth:a{n}@agents.example"
        results = _race(
            [
                lambda s=s, who=who, agent=agent: s.bind(
                    "https://agents.example", agent, who, "default", NOW
                )
                for s, who in zip(states, ("alice", "bob"), strict=True)
            ]
        )
        made = [r for r in results if isinstance(r, tuple)]
        refused = [r for r in results if isinstance(r, BindingConflictError)]
        assert len(made) == 1 and made[0][1] is True and len(refused) == 1, results
    for state in states:
        state.db.close()


def _open(url: str) -> str:
    PostgresPSDatabase(url).close()
    return "ok"


def test_many_processes_create_the_schema_at_once(postgres_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        assert pool.map(_open, [postgres_url] * 4) == ["ok"] * 4
    db = open_database(postgres_url)
    tables = db.fetchall(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    assert {"aauth_pending", "ps_accounts", "ps_mission_log"} <= {t for (t,) in tables}
    db.close()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, to stop and restart."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.directory, ignore_errors=True)


def test_a_postgres_restart_fails_calls_cleanly_then_heals(
    private_postgres: PostgresServer,
) -> None:
    url = private_postgres.create_database("restart")
    stores = Stores.postgres(url)
    stores.revocations.revoke_token("https://ps.example", "j1", NOW + 60)
    db = PostgresPSDatabase(url)
    private_postgres.stop()
    with pytest.raises(StoreUnavailableError) as info:
        stores.revocations.is_revoked(now=NOW, token=("https://ps.example", "j1"))
    assert info.value.status == 503 and info.value.headers() == {"Retry-After": "1"}
    with pytest.raises(StoreUnavailableError):
        stores.pending.create(record("during"))
    with pytest.raises(StoreUnavailableError):
        with db.transaction() as conn:
            conn.execute("SELECT 1")
    private_postgres.start()
    # The pool checks each connection it hands out: the first call after the restart works.
    assert stores.revocations.is_revoked(now=NOW, token=("https://ps.example", "j1")) == "token"
    stores.pending.create(record("after"))
    assert stores.pending.get("after") is not None and stores.pending.get("during") is None
    assert db.fetchone("SELECT COUNT(*) FROM ps_accounts") == (0,)
    db.close()
    stores.close()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_idle_connections_broken_by_a_restart_never_reach_a_call(
    private_postgres: PostgresServer, mode: str
) -> None:
    """PostgreSQL restarts (cleanly, or as after a crash) while the pool's connections are
    idle, no call meanwhile: each call after it still works, none is handed a connection
    the restart broke (the pool's check, which does not ask the server every time, sees
    them)."""
    url = private_postgres.create_database("idle")
    db = PostgresDatabase(url, min_size=4, max_size=4)
    held = [db.pool.getconn() for _ in range(4)]  # every connection used, then idle
    for conn in held:
        conn.execute("SELECT 1")
        db.pool.putconn(conn)
    private_postgres.restart(mode)
    for n in range(8):
        assert db.fetchone("SELECT ?::int", (n,)) == (n,)
    assert db.execute("CREATE TABLE IF NOT EXISTS after (n INT)").rowcount == -1
    db.close()


def test_a_transaction_cut_by_a_restart_is_rolled_back(
    private_postgres: PostgresServer,
) -> None:
    url = private_postgres.create_database("cut")
    db = PostgresPSDatabase(url)
    with pytest.raises(StoreUnavailableError):
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO ps_bindings (agent_iss, agent_id, account, created_at, how) "
                "VALUES (?, ?, ?, ?, ?)",
                ("https://a.example", "aauth:x@a.example", "alice", NOW, "default"),
            )
            private_postgres.restart("immediate")  # a crash between two statements
            conn.execute("DELETE FROM ps_consents WHERE account = ?", ("alice",))
    assert db.fetchall("SELECT agent_id FROM ps_bindings") == []
    db.close()


def test_an_agent_provider_answers_503_while_postgres_is_down(
    private_postgres: PostgresServer,
) -> None:
    url = private_postgres.create_database("ap")
    ap = AgentProviderServer(
        AgentProviderConfig(issuer="https://agent.example", ps="https://ps.example", database=url)
    )
    code = ap.create_enrollment("aauth:assistant@agent.example")
    with (
        LoopbackServer(ap.app()) as server,
        httpx.Client(
            transport=MappedTransport({"https://agent.example": server.url}, strict=True),
            timeout=30,
        ) as http,
    ):
        client = AgentProviderClient("https://agent.example", http)
        key = PrivateKey.generate()
        identity = client.enroll(code, key)
        private_postgres.stop()
        with pytest.raises(Exception) as info:
            client.refresh(key, identity.agent_token)
        assert getattr(info.value, "status", None) == 503
        assert getattr(info.value, "code", None) == "temporarily_unavailable"
        private_postgres.start()
        assert client.refresh(key, identity.agent_token)
    ap.close()
