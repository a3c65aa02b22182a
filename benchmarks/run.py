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
import gc
import statistics
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
#: Issue 16: AAuth's own logic over the floor (issue 3's x1.3 of a plain request, restated).
CLIENT_OVERHEAD_GOAL = 1.1


def _resource_app() -> Starlette:
    """An ordinary JSON endpoint (it does not verify: the client's cost is measured)."""
    metadata = {"issuer": RESOURCE, "name": "benchmark resource"}

    async def well_known(request: Request) -> Response:
        return JSONResponse(metadata)

    async def api(request: Request) -> Response:
        return JSONResponse({"items": [1, 2, 3], "next": None})

    return Starlette(
        routes=[
            Route("/.well-known/aauth-resource.json", well_known),
            Route("/api/items/{n}", api),
        ]
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


def _urls(n: int) -> list[str]:
    """``n`` different request targets (path and query vary, as real traffic's do)."""
    return [f"{RESOURCE}/api/items/{i}?page={i % 7}" for i in range(n)]


def _sync_timer(client: httpx.Client) -> Callable[[list[str]], float]:
    def run(urls: list[str]) -> float:
        start = time.thread_time()
        for url in urls:
            client.get(url).raise_for_status()
        return time.thread_time() - start

    return run


def _async_timer(
    client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop
) -> Callable[[list[str]], float]:
    async def many(urls: list[str]) -> float:
        start = time.thread_time()
        for url in urls:
            (await client.get(url)).raise_for_status()
        return time.thread_time() - start

    def run(urls: list[str]) -> float:
        return loop.run_until_complete(many(urls))

    return run


def _median_ratios(
    timers: dict[str, Callable[[list[str]], float]], batch: int, rounds: int
) -> dict[str, float]:
    """The median over ``rounds`` of each contender's time over ``aauth``'s in that round.
    Each round gives every contender the same ``batch`` new URLs, in a rotating order, and
    times this thread's CPU (what another process does to the machine is not counted);
    the garbage collector runs between timings, not inside them."""
    ratios: dict[str, list[float]] = {name: [] for name in timers}
    names = list(timers)
    for r in range(rounds):
        urls = [url + f"&r={r}" for url in _urls(batch)]
        order = names[r % len(names) :] + names[: r % len(names)]
        took = {}
        for name in order:
            gc.collect()
            gc.disable()
            try:
                took[name] = timers[name](urls)
            finally:
                gc.enable()
        for name in names:
            ratios[name].append(took["aauth"] / took[name])
    return {name: statistics.median(values) for name, values in ratios.items()}


class _Floor(httpx.Auth):
    """Reference only: what any signing client pays, with none of AAuth's logic -- the
    signature headers (fixed values) and one signature over a base as long as AAuth's,
    which names this request's method and URL."""

    requires_request_body = True
    requires_response_body = True

    def __init__(self, headers: dict[str, str], key: PrivateKey, base_length: int) -> None:
        self.headers, self.key = headers, key
        self.padding = "x" * max(0, base_length - 64)

    def auth_flow(self, request: httpx.Request) -> Any:
        for name, value in self.headers.items():
            request.headers[name] = value
        self.key.sign(f"{request.method} {request.url}\n{self.padding}".encode())
        yield request


def _report_client(kind: str, ratios: dict[str, float]) -> int:
    missed = report(
        f"client-overhead {kind}",
        ratios["floor"],
        "the floor (headers + 1 signature)",
        CLIENT_OVERHEAD_GOAL,
    )
    print(f"{'  vs a plain request (reported)':38} x{ratios['plain']:5.2f}")
    print(f"{'  floor vs a plain request':38} x{ratios['plain'] / ratios['floor']:5.2f}")
    return missed


def client_overhead(batch: int = 20, rounds: int = 101) -> int:
    """A request through AAuth with every token cached against the floor (the same signature
    headers and one signature, none of AAuth's logic) and against a plain httpx request, all
    to the same in-process app, for httpx.Client and httpx.AsyncClient; every request
    different (path, query, so a new signature each time)."""
    app = _resource_app()
    auth = _warm_auth()
    missed = 0

    sync_clients = {
        name: httpx.Client(transport=MappedTransport({RESOURCE: app}, strict=True), auth=a)
        for name, a in (("plain", None), ("aauth", auth))
    }
    signed = sync_clients["aauth"].get(_urls(1)[0])  # caches the resource metadata
    floor_headers = {
        k: v
        for k, v in signed.request.headers.items()
        if k in ("signature-key", "signature-input", "signature", "aauth-capabilities")
    }
    base_length = sum(len(v) for v in floor_headers.values())
    floor = _Floor(floor_headers, auth.identity.key, base_length)
    sync_clients["floor"] = httpx.Client(
        transport=MappedTransport({RESOURCE: app}, strict=True), auth=floor
    )
    try:
        timers = {n: _sync_timer(c) for n, c in sync_clients.items()}
        missed += _report_client("httpx.Client", _median_ratios(timers, batch, rounds))
    finally:
        for client in sync_clients.values():
            client.close()

    loop = asyncio.new_event_loop()
    try:
        async_clients = {
            name: httpx.AsyncClient(
                transport=AsyncMappedTransport({RESOURCE: app}, strict=True), auth=a
            )
            for name, a in (("plain", None), ("aauth", auth), ("floor", floor))
        }
        for client in async_clients.values():
            loop.run_until_complete(client.get(_urls(1)[0]))
        timers = {n: _async_timer(c, loop) for n, c in async_clients.items()}
        missed += _report_client("httpx.AsyncClient", _median_ratios(timers, batch, rounds))
        for client in async_clients.values():
            loop.run_until_complete(client.aclose())
    finally:
        loop.close()
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
    "state-growth-purge": lambda: __import__("bench_purge").benchmark(),
    "scale-out": lambda: __import__("bench_scale").benchmark(),
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
