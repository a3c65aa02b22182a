"""scale-out: what shared state costs per request, measured as work per CPU-second.

Run: ``python benchmarks/bench_scale.py [resource | ps]`` (one row, or both). This machine
has two cores and the load generator needs one, so raw throughput of two workers says
little; what shared state costs is seen in the CPU time each request takes. Both rows serve
through ``aauth-agents serve``'s worker machinery
(:func:`aauth_agents.cli.workers.serve_workers`: a supervisor and N worker processes on one
socket) in a child process, and count requests served per CPU-second of the server processes
(the supervisor and its workers, summed from ``/proc``; Redis or PostgreSQL themselves are
reported beside, not counted):

* ``resource``: an endpoint behind :class:`AAuthMiddleware` requiring an auth token, each
  request new (path, query, signature), verified in full; 2 workers with every store in Redis
  vs 1 worker on memory stores. Goal >= 0.8x.
* ``person server``: ``POST /token`` as ``ps-token-rate`` sends it (50 agents, each token
  request with a fresh resource token, verified in full, the auth token minted and
  recorded); 2 workers on PostgreSQL vs 1 worker on SQLite. Goal >= 0.7x.

The two set-ups of a row run side by side and are measured in alternating rounds; the
median ratio is reported. Needs ``redis-server`` and PostgreSQL (Debian packages): the
benchmark starts private ones on loopback (tests/support/services.py) and stops them.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import httpx  # noqa: E402

from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request  # noqa: E402
from aauth_agents.keys import PrivateKey  # noqa: E402
from aauth_agents.tokens import mint_auth_token  # noqa: E402

PS = "https://ps.example"
RESOURCE = "https://resource.example"
RESOURCE_GOAL = 0.8
PS_GOAL = 0.7
ROUNDS = 9  # the person server row's
RESOURCE_REQUESTS = 500
RESOURCE_ROUNDS = 21
PS_TOKENS = 600
CONNECTIONS = 16
AGENTS = 20
TICKS = os.sysconf("SC_CLK_TCK")


# -- the servers (child processes) ------------------------------------------------------------


def build_resource(options: Mapping[str, Any]) -> Any:
    """A worker's app: the protected endpoint, stores in memory or in Redis."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from aauth_agents.cli.workers import Built
    from aauth_agents.resource import (
        AAuthMiddleware,
        AAuthResource,
        AccessRule,
        ResourceConfig,
        RoutePolicy,
    )
    from aauth_agents.stores import Stores
    from aauth_agents.tokens import DWK_PERSON, StaticIssuerKeys

    redis = options.get("redis")
    stores = Stores.redis(redis) if redis else Stores.memory()
    resource = AAuthResource(
        ResourceConfig(
            identifier=RESOURCE,
            signing_key=PrivateKey.from_jwk(options["resource_key"]),
            issuer_keys=StaticIssuerKeys({(PS, DWK_PERSON): [options["ps_jwk"]]}),
            scope_descriptions={"data.read": "Read"},
            stores=stores,
        )
    )

    async def endpoint(request: Any) -> JSONResponse:
        return JSONResponse({"items": [1, 2, 3], "n": request.path_params["n"]})

    app = Starlette(routes=[Route("/data/{n}", endpoint)])
    app.add_middleware(
        AAuthMiddleware,
        resource=resource,
        policy=RoutePolicy({"/data/{n}": AccessRule.auth("data.read")}),
    )
    connection = getattr(stores.pending, "conn", None)
    return Built(app, connection.aclose if connection is not None else None)


def build_ps(options: Mapping[str, Any]) -> Any:
    """A worker's app: the person server of ``ps-token-rate`` on SQLite or PostgreSQL."""
    from bench_ps import AP
    from bench_ps import RESOURCE as PS_RESOURCE

    from aauth_agents.cli.workers import Built
    from aauth_agents.servers.person_server import (
        AutoApprove,
        PersonServerConfig,
        create_person_server,
    )
    from aauth_agents.tokens import DWK_AGENT, DWK_RESOURCE, StaticIssuerKeys

    keys = StaticIssuerKeys(
        {(AP, DWK_AGENT): [options["ap_jwk"]], (PS_RESOURCE, DWK_RESOURCE): [options["rs_jwk"]]}
    )
    config = PersonServerConfig(
        issuer=PS,
        database=options["database"],
        issuer_keys=keys,
        policy=AutoApprove(),
        default_person="bench",
        password_log2_n=14,
        database_threads=True,
    )
    app = create_person_server(config)
    ps = app.state.person_server
    return Built(app, ps.aclose)


def _serve(kind: str, options: Mapping[str, Any]) -> int:
    """The child process: ``serve_workers`` until SIGTERM, the port printed once served."""
    from aauth_agents.cli.workers import AppFactory, serve_workers

    build = build_resource if kind == "resource" else build_ps
    if kind == "ps":
        _create_account(options)

    def announce(port: int) -> None:
        print(port, flush=True)

    return serve_workers(
        AppFactory(build, options),
        workers=int(options["workers"]),
        host="127.0.0.1",
        port=0,
        announce=announce,
    )


def _create_account(options: Mapping[str, Any]) -> None:
    """The person every token is issued for, created once before the workers start."""
    from aauth_agents.servers.person_server import PersonServer, PersonServerConfig
    from aauth_agents.tokens import StaticIssuerKeys

    ps = PersonServer(
        PersonServerConfig(
            issuer=PS,
            database=options["database"],
            issuer_keys=StaticIssuerKeys({}),
            password_log2_n=14,
        )
    )
    try:
        if not ps.accounts.exists("bench"):
            ps.accounts.create_account("bench", "benchmark password")
    finally:
        ps.close()


# -- measuring (the parent) -------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and every live descendant (``/proc``)."""
    from support.scale import child_pids

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone meanwhile
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / TICKS
    return own + sum(_cpu_seconds(child) for child in child_pids(pid))


class Server:
    """One set-up, served by a child process until :meth:`stop`."""

    def __init__(self, kind: str, options: Mapping[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, json.dumps(dict(options))],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the {kind} server did not start")
        self.url = f"http://127.0.0.1:{int(line)}"

    def cpu(self) -> float:
        return _cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _per_cpu_second(server: Server, send: Any) -> float:
    """Requests ``send()`` got served per CPU-second of ``server``'s processes."""
    before = server.cpu()
    served = send()
    return served / max(server.cpu() - before, 1 / TICKS)


# -- the resource row -------------------------------------------------------------------------


class _ResourceLoad:
    """``AGENTS`` agents, each with its own key and auth token, taking turns: each request
    new (path, query, signature), each caller seen again a moment later, as at a busy
    resource."""

    def __init__(self) -> None:
        self.ps_key = PrivateKey.generate("Ed25519", kid="ps-1")
        self.agents = []
        for n in range(AGENTS):
            key = PrivateKey.generate("Ed25519")
            token = mint_auth_token(
                self.ps_key,
                iss=PS,
                aud=RESOURCE,
                ps=PS,
                sub=f"person-{n}",
                cnf=key.public_key,
                scope="data.read",
                lifetime=3600,
            )
            self.agents.append((key, SignatureKey.from_jwt(token)))
        self.numbers = iter(range(10**9))

    def batch(self, count: int) -> list[tuple[str, dict[str, str]]]:
        out = []
        for _ in range(count):
            n = next(self.numbers)
            key, signature_key = self.agents[n % AGENTS]
            url = f"{RESOURCE}/data/{n}?page={n % 7}"
            request = HttpRequest("GET", url, {"host": "resource.example"})
            out.append((url, sign_request(request, key=key, signature_key=signature_key)))
        return out

    def send(self, server: Server, count: int) -> int:
        requests = self.batch(count)
        return asyncio.run(_send_all(server.url, requests))


async def _send_all(url: str, requests: list[tuple[str, dict[str, str]]]) -> int:
    from aauth_agents.transport import AsyncMappedTransport

    queue = list(reversed(requests))
    served = 0

    async def connection() -> None:
        nonlocal served
        async with httpx.AsyncClient(
            transport=AsyncMappedTransport({RESOURCE: url}, strict=True),
            limits=httpx.Limits(max_connections=1),
            timeout=60,
        ) as client:
            while queue:
                target, headers = queue.pop()
                response = await client.get(target, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text}")
                served += 1

    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return served


Summary = tuple[float, float, float]


def _summary(rates: list[dict[int, float]], single: Server, shared: Server) -> Summary:
    """``(median ratio shared / single, median single rate, median shared rate)``."""
    return (
        statistics.median(r[id(shared)] / r[id(single)] for r in rates),
        statistics.median(r[id(single)] for r in rates),
        statistics.median(r[id(shared)] for r in rates),
    )


def resource_row(redis_url: str) -> Summary:
    load = _ResourceLoad()
    common = {
        "resource_key": PrivateKey.generate("Ed25519", kid="res-1").to_jwk(private=True),
        "ps_jwk": load.ps_key.public_key.to_jwk(),
    }
    single = Server("resource", {**common, "workers": 1})
    shared = Server("resource", {**common, "workers": 2, "redis": redis_url})
    try:
        for server in (single, shared):  # warm up: imports, caches, connections
            load.send(server, 200)
        rates: list[dict[int, float]] = []
        for n in range(RESOURCE_ROUNDS):
            pair = (single, shared) if n % 2 else (shared, single)
            rates.append(
                {
                    id(s): _per_cpu_second(s, lambda s=s: load.send(s, RESOURCE_REQUESTS))
                    for s in pair
                }
            )
        return _summary(rates, single, shared)
    finally:
        single.stop()
        shared.stop()


# -- the person server row --------------------------------------------------------------------


def ps_row(postgres_url: str) -> Summary:
    import bench_ps

    ap_key = PrivateKey.generate("Ed25519", kid="ap-1")
    resource_key = PrivateKey.generate("Ed25519", kid="res-1")
    common = {"ap_jwk": ap_key.public_key.to_jwk(), "rs_jwk": resource_key.public_key.to_jwk()}
    with tempfile.TemporaryDirectory() as directory:
        single = Server("ps", {**common, "workers": 1, "database": directory})
        shared = Server("ps", {**common, "workers": 2, "database": postgres_url})
        try:

            def send(server: Server, count: int) -> int:
                team = [bench_ps.Agent(ap_key, i) for i in range(bench_ps.AGENTS)]
                _, latencies, _ = asyncio.run(bench_ps._run(server.url, team, resource_key, count))
                return len(latencies)

            for server in (single, shared):  # warm up: imports, caches, pooled connections
                send(server, 200)
            rates: list[dict[int, float]] = []
            for n in range(ROUNDS):
                pair = (single, shared) if n % 2 else (shared, single)
                rates.append(
                    {id(s): _per_cpu_second(s, lambda s=s: send(s, PS_TOKENS)) for s in pair}
                )
            return _summary(rates, single, shared)
        finally:
            single.stop()
            shared.stop()


@contextmanager
def _services() -> Iterator[tuple[str, str]]:
    from support.services import PostgresServer, RedisServer

    with tempfile.TemporaryDirectory() as directory:
        redis = RedisServer(directory).start()
        postgres = PostgresServer().start()
        try:
            yield redis.url, postgres.create_database("bench")
        finally:
            redis.stop()
            postgres.stop()
            import shutil

            shutil.rmtree(postgres.directory, ignore_errors=True)


def benchmark(only: str | None = None) -> int:
    """Print the rows for ``benchmarks/run.py`` (both, or ``only`` one: ``resource`` or
    ``ps``); the number of missed goals."""
    rows = []
    with _services() as (redis_url, postgres_url):
        if only in (None, "resource"):
            rows.append(
                (
                    "scale-out resource",
                    resource_row(redis_url),
                    "1 worker, memory stores",
                    RESOURCE_GOAL,
                    "2 workers, Redis",
                )
            )
        if only in (None, "ps"):
            rows.append(
                (
                    "scale-out person server",
                    ps_row(postgres_url),
                    "1 worker, SQLite",
                    PS_GOAL,
                    "2 workers, PostgreSQL",
                )
            )
    missed = 0
    for name, (ratio, base_rate, rate), baseline, goal, subject in rows:
        ok = ratio >= goal
        missed += not ok
        print(
            f"{name:38} x{ratio:5.2f} of {baseline:30} goal >= x{goal:<4} "
            f"{'ok' if ok else 'MISSED'}"
        )
        print(
            f"  requests per server CPU-second: {base_rate:7.0f} ({baseline}), "
            f"{rate:7.0f} ({subject})"
        )
    return missed


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        sys.exit(_serve(sys.argv[2], json.loads(sys.argv[3])))
    if len(sys.argv) > 1 and sys.argv[1] not in ("resource", "ps"):
        sys.exit("usage: bench_scale.py [resource | ps]")
    sys.exit(benchmark(sys.argv[1] if len(sys.argv) > 1 else None))
