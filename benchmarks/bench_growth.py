"""state-growth: a protected POST with full stores against the same POST with empty stores.

Run: ``python benchmarks/bench_growth.py``. Cost must not grow with what is stored (issue 16):
for each backend, two resources are served in this run over real HTTP (uvicorn on loopback,
one keep-alive ``httpx`` client each), identical but for their stores -- one empty, one
holding 100,000 replay entries, 100,000 revocations (tokens, agents and persons) and 100,000
remembered tokens, all live for the whole run. Each timed request is a state-changing POST
that differs from the last (its path and ``created`` vary, its body and signature are new),
so every one is verified in full and checked against (and stored in) the replay cache, as
real traffic is; requests are signed before timing, so the ratio measures the server.
Baseline and subject alternate request by request (which goes first alternates too) in
many short rounds, and the median of the rounds' ratios is reported.

Rows: the memory stores (the replay cache sized to hold every entry), the memory stores at
the replay cache's default cap of 10,000 (full: every check evicts the oldest entry), and
the SQLite stores (a file each). Goal: >= 0.9 of the empty stores' rate.

Row ``state-growth PS token``: two person servers as ``bench_ps`` runs one (a child process
each, uvicorn on loopback, SQLite file in a temporary directory, auto-approve), one empty and
one whose database holds 100,000 issued auth tokens (:func:`bench_ps.fill_auth_tokens`).
Each timed ``POST /token`` is new (a fresh resource token, a new signature), verified in full,
minted and recorded; requests to the two alternate one by one (which goes first alternates)
in many short rounds, and the median of the rounds' rate ratios is reported. Goal: >= 0.9
of the empty PS's rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import bench_ps
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.keys import PrivateKey
from aauth_agents.resource import (
    AAuthMiddleware,
    AAuthResource,
    AccessRule,
    ResourceConfig,
    RoutePolicy,
)
from aauth_agents.servers import LoopbackServer
from aauth_agents.stores import (
    MemoryPendingStore,
    MemoryPersonTokenStore,
    MemoryReplayStore,
    MemoryRevocationStore,
    SQLiteDatabase,
    SQLitePendingStore,
    SQLitePersonTokenStore,
    SQLiteReplayCache,
    SQLiteRevocationStore,
    Stores,
)
from aauth_agents.tokens import DWK_PERSON, StaticIssuerKeys, mint_auth_token
from aauth_agents.transport import AsyncMappedTransport, MappedTransport

PS = "https://ps.example"
RESOURCE = "https://resource.example"
GOAL = 0.9
FILL = 100_000
DEFAULT_CAP = 10_000
ROUNDS = 101
REQUESTS = 40
#: Issued auth tokens in the full PS's database, its agents, and the rounds of its row.
TOKENS = 100_000
TOKEN_AGENTS = 4
TOKEN_ROUNDS = 41
TOKEN_REQUESTS = 20


async def _create(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["n"]}, status_code=201)


def _memory_stores(cap: int) -> Stores:
    return Stores(
        pending=MemoryPendingStore(),
        revocations=MemoryRevocationStore(),
        person_tokens=MemoryPersonTokenStore(),
        replay=MemoryReplayStore(max_entries=cap),
    )


def _fill(stores: Stores, replay_entries: int, records: int) -> None:
    """Live entries the benchmark's requests never match: other agents' signatures, other
    tokens, agents and persons revoked, other tokens remembered."""
    until = time.time() + 3600
    assert stores.replay is not None
    for n in range(replay_entries):
        stores.replay.check_and_store(
            (f"jkt-{n}", int(until), "POST", "resource.example", f"digest-{n}"), until
        )
    revocations = stores.revocations
    for n in range(records):
        if n % 3 == 0:
            revocations.revoke_token(PS, f"revoked-{n}", until)
        elif n % 3 == 1:
            revocations.revoke_agent(f"aauth:agent-{n}@agent.example", until)
        else:
            revocations.revoke_person(PS, f"person-{n}", until)
        revocations.remember_token(PS, f"known-{n}", until)


def _sqlite_stores(db: SQLiteDatabase) -> Stores:
    return Stores(
        pending=SQLitePendingStore(db),
        revocations=SQLiteRevocationStore(db),
        person_tokens=SQLitePersonTokenStore(db),
        replay=SQLiteReplayCache(db),
    )


def _app(stores: Stores, ps_key: PrivateKey) -> Starlette:
    resource = AAuthResource(
        ResourceConfig(
            identifier=RESOURCE,
            signing_key=PrivateKey.generate("Ed25519", kid="res-1"),
            issuer_keys=StaticIssuerKeys({(PS, DWK_PERSON): [ps_key.public_key]}),
            scope_descriptions={"data.write": "Write"},
            stores=stores,
        )
    )
    app = Starlette(routes=[Route("/items/{n}", _create, methods=["POST"])])
    app.add_middleware(
        AAuthMiddleware,
        resource=resource,
        policy=RoutePolicy({("POST", "/items/{n}"): AccessRule.auth("data.write")}),
    )
    return app


class _Agent:
    """Signs POSTs that differ from each other: path, body, ``created`` and signature."""

    def __init__(self, ps_key: PrivateKey) -> None:
        self.key = PrivateKey.generate("Ed25519")
        token = mint_auth_token(
            ps_key,
            iss=PS,
            aud=RESOURCE,
            ps=PS,
            sub="person-1",
            cnf=self.key.public_key,
            scope="data.write",
        )
        self.signature_key = SignatureKey.from_jwt(token)
        self.counter = itertools.count()

    def batch(self, n: int) -> list[tuple[str, bytes, dict[str, str]]]:
        now = int(time.time())
        out = []
        for _ in range(n):
            i = next(self.counter)
            url, body = f"{RESOURCE}/items/{i}", b'{"n": %d}' % i
            headers = {"host": "resource.example", "content-type": "application/json"}
            request = HttpRequest("POST", url, headers, body)
            signed = sign_request(
                request, key=self.key, signature_key=self.signature_key, created=now - i % 20
            )
            out.append((url, body, headers | signed))
        return out


def _post(client: httpx.Client, request: tuple[str, bytes, dict[str, str]]) -> float:
    url, body, headers = request
    start = time.perf_counter()
    response = client.post(url, content=body, headers=headers)
    seconds = time.perf_counter() - start
    if response.status_code != 201:
        raise RuntimeError(f"unexpected {response.status_code}: {response.text}")
    return seconds


def growth_ratio(empty: Stores, full: Stores, rounds: int = ROUNDS) -> float:
    """Rate with ``full`` stores over the rate with ``empty`` ones: the median of the rounds'
    ratios. In a round each side sends a fresh batch, one request each in turn (which goes
    first alternates), so both meet the same machine."""
    ps_key = PrivateKey.generate("Ed25519", kid="ps-1")
    agents = {name: _Agent(ps_key) for name in ("empty", "full")}
    ratios = []
    with ExitStack() as stack:
        clients = {}
        for name, stores in (("empty", empty), ("full", full)):
            server = stack.enter_context(LoopbackServer(_app(stores, ps_key)))
            transport = MappedTransport({RESOURCE: server.url})
            clients[name] = stack.enter_context(httpx.Client(transport=transport))
        for name in clients:  # warm up both
            for request in agents[name].batch(REQUESTS):
                _post(clients[name], request)
        for _ in range(rounds):
            batches = {name: agents[name].batch(REQUESTS) for name in clients}
            seconds = {"empty": 0.0, "full": 0.0}
            for i in range(REQUESTS):
                for name in ("empty", "full") if i % 2 == 0 else ("full", "empty"):
                    seconds[name] += _post(clients[name], batches[name][i])
            ratios.append(seconds["empty"] / seconds["full"])
    return statistics.median(ratios)


def _backends() -> Iterator[tuple[str, Stores, Stores]]:
    """(row label, empty stores, full stores) for each backend, filled just before use."""
    cap = 2 * FILL  # holds every entry of the run: nothing is evicted
    empty, full = _memory_stores(cap), _memory_stores(cap)
    _fill(full, FILL, FILL)
    yield "memory", empty, full
    empty, full = _memory_stores(DEFAULT_CAP), _memory_stores(DEFAULT_CAP)
    _fill(full, DEFAULT_CAP, FILL)
    yield "memory, 10k cap", empty, full
    # On tmpfs when there is one: a commit's fsync costs the same whatever the file holds,
    # and a shared disk's latency would drown what this row measures.
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        empty_db = SQLiteDatabase(Path(tmp) / "empty.sqlite3")
        full_db = SQLiteDatabase(Path(tmp) / "full.sqlite3")
        full = _sqlite_stores(full_db)
        full_db.execute("BEGIN")  # one transaction for the setup, through the stores' API
        _fill(full, FILL, FILL)
        full_db.execute("COMMIT")
        yield "SQLite", _sqlite_stores(empty_db), full
        empty_db.close()
        full_db.close()


async def _token_ratio(
    urls: dict[str, str], resource_key: PrivateKey, ap_key: PrivateKey, rounds: int
) -> float:
    """The full PS's ``POST /token`` rate over the empty one's: the median of the rounds'
    ratios (each round sends each PS a fresh batch, one request each in turn)."""
    agents = {name: [bench_ps.Agent(ap_key, n) for n in range(TOKEN_AGENTS)] for name in urls}
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=AsyncMappedTransport({bench_ps.PS: url}, strict=True), timeout=60
                )
            )
            for name, url in urls.items()
        }
        for name, team in agents.items():
            for agent in team:
                await bench_ps.get_person_token(clients[name], agent)

        async def send(name: str, n: int) -> float:
            agent = agents[name][n % TOKEN_AGENTS]
            content, headers = bench_ps.token_request(agent, resource_key)
            start = time.perf_counter()
            await bench_ps._send(clients[name], "/token", content, headers)
            return time.perf_counter() - start

        for name in urls:  # warm up both
            for n in range(TOKEN_REQUESTS):
                await send(name, n)
        ratios = []
        for _ in range(rounds):
            seconds = {"empty": 0.0, "full": 0.0}
            for n in range(TOKEN_REQUESTS):
                for name in ("empty", "full") if n % 2 == 0 else ("full", "empty"):
                    seconds[name] += await send(name, n)
            ratios.append(seconds["empty"] / seconds["full"])
    return statistics.median(ratios)


def ps_token_growth(fill: int = TOKENS, rounds: int = TOKEN_ROUNDS) -> float:
    """The rate of ``POST /token`` at a PS holding ``fill`` issued auth tokens over the rate
    at an empty one, both served in this run (``bench_ps``'s child process each)."""
    ap_key = PrivateKey.generate("Ed25519", kid="ap-1")
    resource_key = PrivateKey.generate("Ed25519", kid="res-1")
    context = multiprocessing.get_context("spawn")
    with ExitStack() as stack:
        urls = {}
        for name, count in (("empty", 0), ("full", fill)):
            directory = stack.enter_context(tempfile.TemporaryDirectory())
            parent, child = context.Pipe()
            jwks = (ap_key.public_key.to_jwk(), resource_key.public_key.to_jwk())
            process = context.Process(
                target=bench_ps._serve, daemon=True, args=(directory, *jwks, child, count)
            )
            process.start()
            stack.callback(_stop, process, parent)
            if not parent.poll(300):
                raise RuntimeError("a person server did not start")
            urls[name] = parent.recv()
        return asyncio.run(_token_ratio(urls, resource_key, ap_key, rounds))


def _stop(process: multiprocessing.process.BaseProcess, conn: Any) -> None:
    conn.send("stop")
    process.join(30)
    if process.is_alive():
        process.kill()


def _row(label: str, ratio: float) -> bool:
    ok = ratio >= GOAL
    print(
        f"{label:38} x{ratio:5.2f} of {'the same with empty stores':30} "
        f"goal >= x{GOAL:<4} {'ok' if ok else 'MISSED'}"
    )
    return ok


def benchmark() -> int:
    """Print the rows for ``benchmarks/run.py``; the number of goals missed."""
    missed = 0
    for label, empty, full in _backends():
        missed += 0 if _row(f"state-growth POST ({label})", growth_ratio(empty, full)) else 1
    label = f"state-growth PS token ({TOKENS // 1000}k issued)"
    missed += 0 if _row(label, ps_token_growth()) else 1
    return missed


if __name__ == "__main__":
    sys.exit(benchmark())


__all__ = ["benchmark", "growth_ratio", "ps_token_growth"]
