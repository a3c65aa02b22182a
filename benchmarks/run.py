"""Run the named benchmarks and compare each ratio with its goal.

Usage: ``python benchmarks/run.py [NAME ...]`` -- every benchmark when no name is given;
``--list`` prints the names. Each benchmark prints its rows (a ratio against a baseline
measured in the same run, ARCHITECTURE.md "Speed", and its goal) and returns how many goals it
missed; the runner exits 1 when any goal was missed.

To add a benchmark, write a function returning the number of missed goals and add one line
to :data:`BENCHMARKS`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aauth_agents.agent import AAuth, AgentIdentity
from aauth_agents.agent.state import HeldToken
from aauth_agents.clock import FrozenClock
from aauth_agents.keys import ED25519, ES256, PrivateKey
from aauth_agents.tokens import StaticIssuerKeys, mint_agent_token, mint_auth_token
from aauth_agents.transport import AsyncMappedTransport, MappedTransport


def report(name: str, ratio: float, baseline: str, goal: float) -> int:
    """Print one row; 1 when ``ratio`` misses ``goal``."""
    ok = ratio <= goal
    print(f"{name:38} x{ratio:5.2f} of {baseline:30} goal <= x{goal:<4} {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


# -- httpsig (benchmarks/bench_httpsig.py) --------------------------------------------------


def httpsig() -> int:
    """sign_request, verification and agent tokens against raw Ed25519 / ES256."""
    from bench_httpsig import bench

    return sum(bench(alg) for alg in (ED25519, ES256))


# -- client-overhead --------------------------------------------------------------------------

RESOURCE = "https://resource.example"
PS = "https://ps.example"
NOW = 1_730_217_600.0
CLIENT_OVERHEAD_GOAL = 1.3


def _resource_app() -> Starlette:
    """An ordinary JSON endpoint (it does not verify: the client's cost is measured)."""
    metadata = {"issuer": RESOURCE, "name": "benchmark resource"}

    async def well_known(request: Request) -> Response:
        return JSONResponse(metadata)

    async def api(request: Request) -> Response:
        return JSONResponse({"items": [1, 2, 3], "next": None})

    return Starlette(
        routes=[Route("/.well-known/aauth-resource.json", well_known), Route("/api/items", api)]
    )


def _warm_auth() -> AAuth:
    """An AAuth whose caches hold everything: resource metadata (fetched by a first request)
    and an auth token for the resource, so each measured request is signed and sent once."""
    return _warm_party()[0]


def _warm_party(scope: str = "data.read", clock: Any = None) -> tuple[AAuth, StaticIssuerKeys]:
    """:func:`_warm_auth` (on ``clock``, a frozen one by default), and the issuer keys a
    resource verifying its tokens needs (the agent provider's and the PS's)."""
    clock = clock if clock is not None else FrozenClock(NOW)
    provider, ps = PrivateKey.generate(kid="ap-1"), PrivateKey.generate(kid="ps-1")
    agent = PrivateKey.generate()
    agent_token = mint_agent_token(
        provider,
        iss="https://agent.example",
        sub="aauth:bench@agent.example",
        cnf=agent.public_key,
        ps=PS,
        lifetime=24 * 3600,
        clock=clock,
    )
    auth = AAuth(AgentIdentity(agent, agent_token, clock=clock), clock=clock)
    auth_token = mint_auth_token(
        ps,
        iss=PS,
        aud=RESOURCE,
        ps=PS,
        sub="person-1",
        cnf=agent.public_key,
        scope=scope,
        clock=clock,
    )
    auth.flow.public_key  # noqa: B018 - registers the signing key with the caches
    auth.state.put_auth_token(RESOURCE, None, HeldToken.from_raw("auth", auth_token))
    keys = StaticIssuerKeys(
        {
            ("https://agent.example", "aauth-agent.json"): [provider.public_key],
            (PS, "aauth-person.json"): [ps.public_key],
        }
    )
    return auth, keys


def _sync_timer(client: httpx.Client) -> Callable[[int], float]:
    url = f"{RESOURCE}/api/items"

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            client.get(url).raise_for_status()
        return time.perf_counter() - start

    return run


def _async_timer(
    client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop
) -> Callable[[int], float]:
    url = f"{RESOURCE}/api/items"

    async def many(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            (await client.get(url)).raise_for_status()
        return time.perf_counter() - start

    def run(n: int) -> float:
        return loop.run_until_complete(many(n))

    return run


def _interleaved(
    timers: dict[str, Callable[[int], float]], batch: int, batches: int
) -> dict[str, float]:
    """Per-request time of each contender: the fastest of ``batches`` batches, the
    contenders measured in alternation (noise from other processes only ever adds time)."""
    best = {name: float("inf") for name in timers}
    for _ in range(batches):
        for name, run in timers.items():
            best[name] = min(best[name], run(batch) / batch)
    return best


class _Floor(httpx.Auth):
    """Reference only: the same signature headers, fixed, plus one Ed25519 signature per
    request -- what any signing client pays, with none of AAuth's logic."""

    requires_request_body = True
    requires_response_body = True

    def __init__(self, headers: dict[str, str], key: PrivateKey) -> None:
        self.headers, self.key = headers, key

    def auth_flow(self, request: httpx.Request) -> Any:
        for name, value in self.headers.items():
            request.headers[name] = value
        self.key.sign(request.headers["signature-key"].encode())
        yield request


def client_overhead(batch: int = 50, batches: int = 40) -> int:
    """A request through AAuth with every token cached vs the same request through a plain
    httpx client, against the same in-process app, for httpx.Client and httpx.AsyncClient.
    The "floor" row (no goal) shows what fixed signature headers and one Ed25519 signature
    cost by themselves."""
    app = _resource_app()
    auth = _warm_auth()
    url = f"{RESOURCE}/api/items"
    missed = 0

    sync_clients = {
        name: httpx.Client(transport=MappedTransport({RESOURCE: app}, strict=True), auth=a)
        for name, a in (("plain", None), ("aauth", auth))
    }
    signed = sync_clients["aauth"].get(url)  # caches the resource metadata
    floor_headers = {
        k: v
        for k, v in signed.request.headers.items()
        if k in ("signature-key", "signature-input", "signature", "aauth-capabilities")
    }
    floor = _Floor(floor_headers, auth.identity.key)
    sync_clients["floor"] = httpx.Client(
        transport=MappedTransport({RESOURCE: app}, strict=True), auth=floor
    )
    try:
        times = _interleaved({n: _sync_timer(c) for n, c in sync_clients.items()}, batch, batches)
    finally:
        for client in sync_clients.values():
            client.close()
    missed += report(
        "client-overhead httpx.Client",
        times["aauth"] / times["plain"],
        "a plain httpx.Client request",
        CLIENT_OVERHEAD_GOAL,
    )
    print(f"{'  floor (headers + 1 signature)':38} x{times['floor'] / times['plain']:5.2f}")

    loop = asyncio.new_event_loop()
    try:
        async_clients = {
            name: httpx.AsyncClient(
                transport=AsyncMappedTransport({RESOURCE: app}, strict=True), auth=a
            )
            for name, a in (("plain", None), ("aauth", auth), ("floor", floor))
        }
        for client in async_clients.values():
            loop.run_until_complete(client.get(url))
        times = _interleaved(
            {n: _async_timer(c, loop) for n, c in async_clients.items()}, batch, batches
        )
        for client in async_clients.values():
            loop.run_until_complete(client.aclose())
    finally:
        loop.close()
    missed += report(
        "client-overhead httpx.AsyncClient",
        times["aauth"] / times["plain"],
        "a plain httpx.AsyncClient request",
        CLIENT_OVERHEAD_GOAL,
    )
    print(f"{'  floor (headers + 1 signature)':38} x{times['floor'] / times['plain']:5.2f}")
    return missed


#: Name -> benchmark. A benchmark prints its rows and returns the number of missed goals.
BENCHMARKS: dict[str, Callable[[], int]] = {
    "httpsig": httpsig,
    "client-overhead": client_overhead,
    "protected-endpoint-rate": lambda: __import__("bench_resource").benchmark(),
    "ps-token-rate": lambda: __import__("bench_ps").benchmark(),
    "tool-overhead": lambda: __import__("bench_tools").benchmark(),
    "mcp-call-overhead": lambda: __import__("bench_mcp").benchmark(),
    "state-growth": lambda: __import__("bench_growth").benchmark(),
    "state-growth-dashboard": lambda: __import__("bench_dashboard").benchmark(),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BENCHMARKS))
        return 0
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    missed = 0
    for name in args.names or list(BENCHMARKS):
        print(f"== {name}")
        missed += BENCHMARKS[name]()
    print(f"\n{'all goals met' if not missed else f'{missed} goal(s) missed'}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
