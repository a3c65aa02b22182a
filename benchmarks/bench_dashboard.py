"""state-growth (dashboard): the first page of a person's dashboard costs the same however much
the person has.

Run: ``python benchmarks/bench_dashboard.py [--rounds N]``. One real PS with the person's
pages (:func:`~aauth_agents.servers.person_server.ui.create_person_server_with_ui`, SQLite file
in a temporary directory) holds two people: ``many`` with 1,000 agents (each with a
remembered consent and a live auth token), 1,000 requests waiting and 1,000 missions (three
log entries each), and ``one`` with one of each, made the same way. Both are signed in
(a real session cookie) and ``GET /dashboard`` runs through the ASGI app (httpx
``ASGITransport``), interleaved in many short rounds; each round's ratio of the two
per-request times is taken and the median reported. Goal (issue 16): the first page of
``many`` in <= 2x the time of ``one``. The PS has no discovery, so agents and sites are
shown by identifier.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from aauth_agents.protocol.mission import mission_s256
from aauth_agents.servers.person_server import PersonServerConfig, person_server_of
from aauth_agents.servers.person_server.pending import PendingRequest
from aauth_agents.servers.person_server.policy import AUTH_TOKEN, PERMISSION
from aauth_agents.servers.person_server.server import PersonServer
from aauth_agents.servers.person_server.state import ACTIVE, IssuedAuthToken, Mission
from aauth_agents.servers.person_server.ui import create_person_server_with_ui
from aauth_agents.stores import PendingRecord
from aauth_agents.tokens import StaticIssuerKeys

PS = "https://ps.example"
AP = "https://agents.example"
RESOURCE = "https://resource.example"
ORIGIN = "http://127.0.0.1"
PASSWORD = "correct horse battery staple"
MANY = 1000
#: The first page of a person with MANY of each in at most GOAL x one with one of each.
GOAL = 2.0


async def _fill(ps: PersonServer, account: str, count: int, now: float) -> None:
    """``count`` agents (consent, live token), waiting requests and missions for ``account``."""
    for n in range(count):
        agent_id = f"aauth:{account}-{n}@agents.example"
        at = now - 10_000 + n
        await ps.run(ps.state.bind, AP, agent_id, account, "configured", at)
        await ps.run(
            ps.state.remember_consent,
            account,
            AP,
            agent_id,
            RESOURCE,
            AUTH_TOKEN,
            None,
            ["read"],
            at,
        )
        token = IssuedAuthToken(
            f"jti-{account}-{n}", RESOURCE, "sub", account, agent_id, agent_id, None, "read", at,
            now + 3600,
        )  # fmt: skip
        await ps.run(ps.state.record_auth_token, token)
        req = PendingRequest(
            PERMISSION, AP, agent_id, {}, "approval",
            {"action": f"send report {n}", "description": f"The **weekly** report number {n}."},
            account=account,
        )  # fmt: skip
        record = PendingRecord.open(
            f"p-{account}-{n}", req.kind, "jkt", at, 86_400, data=req.to_json(), owner=account
        )
        await ps.run(ps.pending.create, record)
        blob = f'{{"description":"Mission {n} of {account}: *tidy* the [docs](https://docs.example)."}}'
        s256 = mission_s256(blob.encode())
        mission = Mission(
            s256, AP, agent_id, account, blob.encode(), ACTIVE, None, None, (), None, at
        )
        await ps.run(ps.state.create_mission, mission)
        for kind, entry in (
            ("approved", b'{"type":"approved"}'),
            ("auth_token", b'{"type":"auth_token","resource":"https://resource.example"}'),
            ("audit", b'{"type":"audit","action":"edit","description":"Fixed *typos*."}'),
        ):
            await ps.run(ps.state.append_log, s256, kind, entry, at)


async def signed_in(app: object, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN)  # type: ignore[arg-type]
    form = await client.get("/signin?next=/dashboard")
    found = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert found is not None
    signed = await client.post(
        "/signin",
        data={"csrf": found.group(1), "username": username, "password": PASSWORD},
        headers={"origin": ORIGIN},
    )
    assert signed.status_code == 303, signed.text
    return client


async def _per_request(client: httpx.AsyncClient, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        response = await client.get("/dashboard")
        assert response.status_code == 200, response.status_code
    return (time.perf_counter() - start) / n


async def measure(rounds: int, per_round: int) -> tuple[float, float, float, int, int]:
    """The median ratio, the median per-request times (many, one) and the page sizes."""
    with tempfile.TemporaryDirectory() as tmp:
        config = PersonServerConfig(
            issuer=PS,
            issuer_keys=StaticIssuerKeys({}),
            database=str(Path(tmp) / "ps.sqlite3"),
            password_log2_n=14,
        )
        app = create_person_server_with_ui(config)
        ps = person_server_of(app)
        now = float(ps.clock())
        for account, count in (("many", MANY), ("one", 1)):
            ps.accounts.create_account(account, PASSWORD)
            await _fill(ps, account, count, now)
        many, one = await signed_in(app, "many"), await signed_in(app, "one")
        sizes = [len((await c.get("/dashboard")).content) for c in (many, one)]
        for client in (many, one):  # warm up
            await _per_request(client, per_round)
        ratios, times_many, times_one = [], [], []
        for n in range(rounds):
            order = (many, one) if n % 2 == 0 else (one, many)
            took = {id(c): await _per_request(c, per_round) for c in order}
            times_many.append(took[id(many)])
            times_one.append(took[id(one)])
            ratios.append(took[id(many)] / took[id(one)])
        await many.aclose()
        await one.aclose()
    return (
        statistics.median(ratios),
        statistics.median(times_many),
        statistics.median(times_one),
        sizes[0],
        sizes[1],
    )


def benchmark(rounds: int = 60, per_round: int = 4) -> int:
    """Print the row; 1 when the goal is missed."""
    ratio, t_many, t_one, size_many, size_one = asyncio.run(measure(rounds, per_round))
    ok = ratio <= GOAL
    name, baseline = "state-growth: dashboard first page", "one agent/request/mission"
    print(f"{name:38} x{ratio:5.2f} of {baseline:30} goal <= x{GOAL:<4} {'ok' if ok else 'MISSED'}")
    print(
        f"{'':38} {MANY} of each: {t_many * 1000:.2f} ms, {size_many / 1024:.0f} KiB; "
        f"one of each: {t_one * 1000:.2f} ms, {size_one / 1024:.0f} KiB"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    raise SystemExit(benchmark(args.rounds))
