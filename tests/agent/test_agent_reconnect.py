"""A person server killed (SIGKILL) and restarted while agents poll: their waits survive.

Real parts on loopback: ``aauth-agents serve ps`` as a subprocess on a fixed port with its
state under ``--data`` and its default policy (the person is asked), an agent provider and
the demo resource on uvicorn, the person's pages driven over HTTP. An agent's request goes
pending; the PS is killed while the agent long-polls; it restarts on the same port with the
same data; the person approves on the pages; the agent's original call completes -- through
``AAuth.client()`` (the httpx ``Auth`` flow, the transport turns the connection error into a
value) and through governance calls on a plain ``httpx.AsyncClient`` (the async runner does).

A plain ``httpx.Client(auth=AAuth(...))`` cannot repeat the poll (httpx closes an ``Auth``
flow on a transport error rather than throwing it in): its call fails, and the error says
how to fix that (``UNRETRIED_HINT``: a note on the sync client's error, a warning logged for
an async client).
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from support.cli import cli_env
from support.scale import eventually
from support.services import free_port
from support.ui import csrf

from aauth_agents.agent import AAuth, AgentIdentity, Polling, Reconnecting
from aauth_agents.agent.events import FlowEvent
from aauth_agents.agent.reconnect import UNRETRIED_HINT
from aauth_agents.network import LocalNetwork
from aauth_agents.servers.agent_provider import (
    AgentProviderClient,
    AgentProviderConfig,
    AgentProviderServer,
)
from aauth_agents.servers.demo_resource import demo_resource
from aauth_agents.servers.loopback import LoopbackServer

PS = "https://ps.example"
AP = "https://agent.example"
RES = "https://resource.example"
PASSWORD = "correct horse battery staple"
TRANSPORT_ERRORS = {"RemoteProtocolError", "ReadError", "ConnectError", "ConnectTimeout"}


class PersonServerProcess:
    """``aauth-agents serve ps`` on ``port`` with its state in ``data``: started, killed
    with SIGKILL, started again on the same port; stopped (bounded) by :meth:`stop`."""

    def __init__(self, home: Path, port: int, maps: dict[str, str]) -> None:
        self.home, self.port = home, port
        self.url = f"http://127.0.0.1:{port}"
        self.args = [
            *("--issuer", PS, "--port", str(port), "--data", str(home / "ps-data")),
            *("--person", "alice"),
            *(arg for identifier, url in maps.items() for arg in ("--map", f"{identifier}={url}")),
        ]
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aauth_agents.cli", "serve", "ps", *self.args],
            env=cli_env(self.home, {"AAUTH_AGENTS_PASSWORD": PASSWORD}),
            cwd=self.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None

        def pump() -> None:
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=30)
            except queue.Empty:
                pytest.fail("serve ps printed no URL in 30 s")
            if line is None:
                pytest.fail("serve ps exited")
            if f"listening on {self.url}" in line:
                return

    def kill(self) -> None:
        """SIGKILL: no shutdown, connections cut, whatever was in flight lost."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


class Parties:
    """The agent provider and the demo resource on uvicorn, the PS as a subprocess, and
    the one network every party and the agent reach each other through."""

    def __init__(self, home: Path) -> None:
        self.network = LocalNetwork(strict=True)
        self.ap = AgentProviderServer(AgentProviderConfig(issuer=AP, ps=PS, name="Agents"))
        self.servers = [LoopbackServer(self.ap.app()).start()]
        self.network.add(AP, self.servers[0].url)
        resource = demo_resource(RES, issuer_keys=self.network.discovery())
        self.servers.append(LoopbackServer(resource).start())
        self.network.add(RES, self.servers[1].url)
        self.ps = PersonServerProcess(
            home, free_port(), {AP: self.servers[0].url, RES: self.servers[1].url}
        )
        self.network.add(PS, self.ps.url)

    def enroll(self, agent_id: str) -> AgentIdentity:
        code = self.ap.create_enrollment(agent_id)
        with httpx.Client(transport=self.network.transport(), timeout=30) as client:
            return AgentProviderClient(AP, client).enroll(code)

    def close(self) -> None:
        self.ps.stop()
        for server in reversed(self.servers):
            server.stop()
        self.ap.close()

    def approve(self, link: str) -> None:
        """The person, in a browser: opens the interaction link, signs in, approves."""
        with httpx.Client(base_url=self.ps.url, timeout=30) as browser:
            browser.get("/signin")  # (a browser that has been here: the link joins its session)
            opened = browser.get(httpx.URL(link).raw_path.decode())
            assert opened.status_code == 303, opened.text
            consent = httpx.URL(opened.headers["location"]).raw_path.decode()
            form = browser.get(f"/signin?next={consent}")
            signed_in = browser.post(
                "/signin",
                data={
                    "csrf": csrf(form),
                    "username": "alice",
                    "password": PASSWORD,
                    "next": consent,
                },
                headers={"origin": self.ps.url},
            )
            assert signed_in.status_code == 303, signed_in.text
            page = browser.get(consent)
            assert 'id="approve"' in page.text, page.text
            approved = browser.post(
                consent,
                data={"csrf": csrf(page), "action": "approve"},
                headers={"origin": self.ps.url},
            )
            assert approved.status_code == 303, approved.text


@pytest.fixture
def parties(tmp_path: Path) -> Iterator[Parties]:
    world = Parties(tmp_path)
    try:
        world.ps.start()
        yield world
    finally:
        world.close()


def _agent(parties: Parties, name: str) -> tuple[AAuth, queue.Queue[str], list[FlowEvent]]:
    links: queue.Queue[str] = queue.Queue()
    events: list[FlowEvent] = []
    auth = AAuth(
        parties.enroll(f"aauth:{name}@agent.example"),
        network=parties.network,
        on_interaction=lambda url, code: links.put(f"{url}?code={code}"),
        on_event=events.append,
        max_poll_seconds=120,  # (a failing test's agent stops by itself)
        trust_env=False,
    )
    return auth, links, events


def _restart_while_polling(parties: Parties, links: queue.Queue[str], events: list[Any]) -> None:
    """Once the agent long-polls its pending request: kill the PS, see the agent reconnect,
    start the PS again (same port, same data), and approve as the person."""
    link = links.get(timeout=60)
    eventually(lambda: any(isinstance(e, Polling) for e in events), 60, "the agent to poll")
    time.sleep(0.3)  # (the long poll is in flight)
    parties.ps.kill()
    eventually(
        lambda: any(isinstance(e, Reconnecting) for e in events), 60, "the agent to reconnect"
    )
    parties.ps.start()
    parties.approve(link)


def _reconnected(events: list[Any]) -> list[str]:
    reasons = [e.reason for e in events if isinstance(e, Reconnecting)]
    assert reasons and set(reasons) <= TRANSPORT_ERRORS | {"HTTP 502", "HTTP 503"}, reasons
    return reasons


def test_a_resource_call_survives_a_ps_killed_and_restarted(parties: Parties) -> None:
    """``AAuth.client()``: the person-token request at the PS goes pending, the PS dies."""
    auth, links, events = _agent(parties, "assistant")
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            with auth.client() as client:
                outcome["response"] = client.get(f"{RES}/profile")
        except BaseException as exc:  # (reported below)
            outcome["error"] = exc

    agent = threading.Thread(target=call, daemon=True)
    agent.start()
    _restart_while_polling(parties, links, events)
    agent.join(timeout=120)
    assert not agent.is_alive()
    assert "error" not in outcome, repr(outcome.get("error"))
    response = outcome["response"]
    assert response.status_code == 200, response.text
    assert any(reason in TRANSPORT_ERRORS for reason in _reconnected(events))


def test_a_governance_call_survives_a_ps_killed_and_restarted(parties: Parties) -> None:
    """A mission proposal through a plain ``httpx.AsyncClient`` (the async runner)."""
    auth, links, events = _agent(parties, "planner")
    outcome: dict[str, Any] = {}

    async def propose() -> None:
        async with httpx.AsyncClient(
            transport=parties.network.async_transport(), timeout=60
        ) as client:
            outcome["approval"] = await auth.async_governance(client).propose_mission(
                "Plan a trip", resources=[RES]
            )

    def call() -> None:
        try:
            anyio.run(propose)
        except BaseException as exc:
            outcome["error"] = exc

    agent = threading.Thread(target=call, daemon=True)
    agent.start()
    _restart_while_polling(parties, links, events)
    agent.join(timeout=120)
    assert not agent.is_alive()
    assert "error" not in outcome, repr(outcome.get("error"))
    assert outcome["approval"].s256 and auth.mission_s256 == outcome["approval"].s256
    assert any(reason in TRANSPORT_ERRORS for reason in _reconnected(events))


def _kill_while_polling(parties: Parties, links: queue.Queue[str], events: list[Any]) -> None:
    links.get(timeout=60)
    eventually(lambda: any(isinstance(e, Polling) for e in events), 60, "the agent to poll")
    time.sleep(0.3)  # (the long poll is in flight)
    parties.ps.kill()


def test_a_plain_client_says_how_to_ride_out_a_restart(
    parties: Parties, caplog: pytest.LogCaptureFixture
) -> None:
    """``httpx.Client(auth=auth)`` / ``httpx.AsyncClient(auth=auth)`` without
    ``ReconnectingTransport``: the PS killed under the long poll ends the call with the
    connection error, which names the fix."""
    auth, links, events = _agent(parties, "plain")
    outcome: dict[str, BaseException] = {}

    def call() -> None:
        try:
            with httpx.Client(auth=auth, transport=parties.network.transport()) as client:
                client.get(f"{RES}/profile")
        except BaseException as exc:
            outcome["sync"] = exc

    agent = threading.Thread(target=call, daemon=True)
    agent.start()
    _kill_while_polling(parties, links, events)
    agent.join(timeout=60)
    assert isinstance(outcome.get("sync"), httpx.TransportError), repr(outcome.get("sync"))
    assert UNRETRIED_HINT in getattr(outcome["sync"], "__notes__", ())
    assert not any(isinstance(e, Reconnecting) for e in events)

    parties.ps.start()
    auth, links, events = _agent(parties, "plain-async")

    async def acall() -> None:
        transport = parties.network.async_transport()
        async with httpx.AsyncClient(auth=auth, transport=transport) as client:
            await client.get(f"{RES}/profile")

    def run() -> None:
        try:
            anyio.run(acall)
        except BaseException as exc:
            outcome["async"] = exc

    agent = threading.Thread(target=run, daemon=True)
    agent.start()
    _kill_while_polling(parties, links, events)
    agent.join(timeout=60)
    assert isinstance(outcome.get("async"), httpx.TransportError), repr(outcome.get("async"))
    hints = [r for r in caplog.records if UNRETRIED_HINT in r.getMessage()]
    assert hints and hints[0].levelname == "WARNING"
