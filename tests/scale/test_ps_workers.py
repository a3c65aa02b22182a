"""``aauth-agents serve ps|ap|resource --workers N`` (issue 15, Workers): N processes on one
socket, sharing their keys and state; refused when nothing is shared; a worker killed with
``kill -9`` is replaced and loses nothing, so an agent waiting for its person finishes
through the other worker after the person approves at the PS's pages (which any worker
serves: sessions and CSRF tokens live in the database); SIGTERM stops every worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.cli import cli_env
from support.scale import ServedWorkers, approve_in_pages, eventually, serve_workers

from aauth_agents.agent import AAuth, LocalAgentProvider
from aauth_agents.cli.workers import closing
from aauth_agents.keys import PrivateKey
from aauth_agents.network import LocalNetwork
from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.agent_provider import AgentProviderClient
from aauth_agents.servers.demo_resource import demo_resource
from aauth_agents.tokens import peek
from aauth_agents.transport import MappedTransport

PS = "https://ps.example"
AP = "https://agents.example"
RES = "https://resource.example"
AGENT = "aauth:worker-test@agents.example"
PERSON, PASSWORD = "alice", "correct horse battery staple"


@pytest.mark.parametrize(
    ("party", "args", "needs"),
    [
        ("resource", ["--issuer", RES], "--redis"),
        ("ps", ["--issuer", PS], "--data DIR or --database"),
        ("ap", ["--issuer", AP], "--data DIR or --database"),
    ],
)
def test_several_workers_need_somewhere_shared(
    party: str, args: list[str], needs: str, tmp_path: Path
) -> None:
    """Each worker would keep its own replay cache, revocations and pending records: a
    replay to another worker accepted, a revocation only one of them hears of."""
    result = subprocess.run(
        [sys.executable, "-m", "aauth_agents.cli", "serve", party, *args, "--workers", "2"],
        env=cli_env(tmp_path),
        capture_output=True,
        timeout=60,
        text=True,
    )
    assert result.returncode == 2
    assert "--workers N > 1 needs" in result.stderr and needs in result.stderr


def _jwks(served: ServedWorkers) -> dict[str, Any]:
    # a new connection per request, so that the kernel hands them to either worker
    with httpx.Client(base_url=served.url, headers={"host": "ps.example"}, timeout=30) as client:
        response = client.get("/.well-known/jwks.json")
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def test_workers_share_the_keys_a_killed_one_is_replaced_sigterm_stops_all(
    tmp_path: Path,
) -> None:
    args = ["--issuer", PS, "--port", "0", "--workers", "2", "--data", str(tmp_path / "ps")]
    with serve_workers("ps", args, tmp_path) as served:
        assert "workers   2 processes" in "".join(served.lines)
        first = served.workers()
        assert len(first) == 2
        keys = [_jwks(served) for _ in range(8)]
        assert all(k == keys[0] for k in keys)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        after = eventually(lambda: _replaced(served, victim), what="a worker in place of it")
        assert after & first == first - {victim}
        assert all(_jwks(served) == keys[0] for _ in range(8))
        with httpx.Client(base_url=served.url, timeout=30) as client:  # the edge limits hold
            huge = client.get("/", headers={"host": "ps.example", "x-big": "a" * 70_000})
        assert huge.status_code == 431
        assert huge.headers["content-type"] == "application/problem+json"
    # serve_workers checked that no worker outlived the parent's SIGTERM


def _replaced(served: ServedWorkers, victim: int) -> set[int] | None:
    """The workers, once there are two again and ``victim`` is not one of them."""
    workers = served.workers()
    return workers if len(workers) == 2 and victim not in workers else None


def test_agent_provider_workers_on_postgresql_spend_a_code_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """``serve ap --workers 2 --database postgresql://...``: the key made once by the
    parent is every worker's; an enrolment code printed once is spent once, whichever
    worker each attempt reaches."""
    args = [
        "--issuer", AP, "--ps", PS, "--port", "0", "--workers", "2",
        "--database", postgres_url, "--enroll", AGENT,
    ]  # fmt: skip
    with serve_workers("ap", args, tmp_path) as served:
        codes = [line.split(": ", 1)[1].strip() for line in served.lines if AGENT in line]
        limits = httpx.Limits(max_keepalive_connections=0)  # each request: any worker
        transport = MappedTransport({AP: served.url}, strict=True)
        with httpx.Client(transport=transport, limits=limits, timeout=30) as http:
            kids = {
                tuple(k["kid"] for k in http.get(AP + "/.well-known/jwks.json").json()["keys"])
                for _ in range(6)
            }
            identity = AgentProviderClient(AP, http).enroll(codes[0])
            with pytest.raises(Exception, match="code"):
                AgentProviderClient(AP, http).enroll(codes[0])
    assert len(codes) == 1 and len(kids) == 1
    assert peek(identity.agent_token)[1]["sub"] == AGENT


# -- a worker killed while the agent waits for its person ---------------------------------------


@dataclass
class World:
    """An agent provider and the demo resource in this process, and the network mapping
    their identifiers (and the PS's, once it runs)."""

    network: LocalNetwork
    provider: LocalAgentProvider

    def ps_args(self, *storage: str) -> list[str]:
        return [
            "--issuer", PS, "--port", "0", "--workers", "2", "--person", PERSON,
            "--map", f"{AP}={self.network.origins()[AP]}",
            "--map", f"{RES}={self.network.origins()[RES]}",
            *storage,
        ]  # fmt: skip


@pytest.fixture
def world() -> Iterator[World]:
    network = LocalNetwork(strict=True)
    provider = LocalAgentProvider(AP, PrivateKey.generate(kid="ap-1"), ps=PS)
    with LoopbackServer(provider.app()) as ap_server:
        network.add(AP, ap_server.url)
        resource = demo_resource(RES, issuer_keys=network.discovery())
        with LoopbackServer(resource) as resource_server:
            network.add(RES, resource_server.url)
            yield World(network, provider)


def _storage(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> list[str]:
    if backend == "sqlite":
        return ["--data", str(tmp_path / "ps")]
    return ["--database", request.getfixturevalue("postgres_url")]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_worker_killed_mid_interaction_the_agent_finishes_through_the_other(
    backend: str, world: World, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The agent asks for a person token (a 202 with an interaction); one PS worker is
    killed; the person signs in and approves at the pages (any worker, and the replacement,
    may answer each request); the agent's polls reach a live worker and it gets its token."""
    env = {"AAUTH_AGENTS_PASSWORD": PASSWORD}
    storage = _storage(backend, tmp_path, request)
    with serve_workers("ps", world.ps_args(*storage), tmp_path, env) as served:
        world.network.add(PS, served.url)
        killed: list[int] = []

        def person(url: str, code: str) -> None:
            victim = min(served.workers())
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
            approve_in_pages(served.url, url, code, PERSON, PASSWORD)

        identity = world.provider.identity(PrivateKey.generate(), AGENT)
        auth = AAuth(identity, on_interaction=person, trust_env=False)
        with httpx.Client(auth=auth, transport=world.network.transport(), timeout=60) as agent:
            profile = agent.get(RES + "/profile")
        assert killed and eventually(lambda: _replaced(served, killed[0]))

    assert profile.status_code == 200, profile.text
    body = profile.json()
    assert body["kind"] == "person" and body["person"]["issuer"] == PS
    assert body["key_thumbprint"] == identity.key.thumbprint()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_worker_holding_the_agents_long_poll_is_killed(
    backend: str, world: World, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Harsher: the worker killed is the one holding the agent's long poll (``Prefer:
    wait``), so the agent's connection dies under it; the agent polls again (a poll is safe
    to repeat), reaches the other worker or the replacement, and collects the token the
    person approved meanwhile."""
    env = {"AAUTH_AGENTS_PASSWORD": PASSWORD}
    storage = _storage(backend, tmp_path, request)
    with serve_workers("ps", world.ps_args(*storage), tmp_path, env) as served:
        world.network.add(PS, served.url)
        killed: list[int] = []
        person_done: list[BaseException | None] = []

        def person(url: str, code: str) -> None:
            def act() -> None:
                try:
                    # the agent's connections are the only ones to the PS now
                    holding = eventually(served.serving, what="the agent's long poll")
                    time.sleep(0.5)  # the poll has begun waiting (not a measurement)
                    victim = min(served.serving() or holding)
                    os.kill(victim, signal.SIGKILL)
                    killed.append(victim)
                    approve_in_pages(served.url, url, code, PERSON, PASSWORD)
                    person_done.append(None)
                except BaseException as exc:
                    person_done.append(exc)

            threading.Thread(target=act, daemon=True).start()

        identity = world.provider.identity(PrivateKey.generate(), AGENT)
        auth = AAuth(identity, on_interaction=person, trust_env=False)
        # AAuth.client: polls through the reconnecting transport (a dropped poll is repeated)
        with auth.client(transport=world.network.transport(), timeout=60) as agent:
            profile = agent.get(RES + "/profile")
        assert person_done == [None]
        assert killed and eventually(lambda: _replaced(served, killed[0]))

    assert profile.status_code == 200, profile.text
    assert profile.json()["key_thumbprint"] == identity.key.thumbprint()


async def test_a_workers_app_closes_what_it_built_at_shutdown() -> None:
    """A worker's person server (its database pool) is closed when uvicorn shuts the
    worker down, before the shutdown is reported complete."""
    closed: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    async def close() -> None:
        closed.append(True)

    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[tuple[str, list[bool]]] = []

    async def receive() -> Any:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append((message["type"], list(closed)))

    await closing(app, close)({"type": "lifespan"}, receive, send)
    assert sent == [("lifespan.startup.complete", []), ("lifespan.shutdown.complete", [True])]
