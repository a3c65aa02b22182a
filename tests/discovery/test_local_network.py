"""The local network (:mod:`aauth_agents.network`) and the development stack on it
(:class:`~aauth_agents.servers.dev.DevStack`): parties added after everything was built --
an app on loopback and an in-process ASGI app -- are reached by the agent and by the person
server, and the network file carries them to other processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from aauth_agents.agent import AAuth
from aauth_agents.network import ENV_NETWORK, LocalNetwork
from aauth_agents.protocol.errors import ConfigurationError
from aauth_agents.resource import AccessRule
from aauth_agents.resource.policy import requires
from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.dev import DevStack, parse_app_option, protect


def notes_api() -> FastAPI:
    """A FastAPI app as a newcomer writes it: one rule, no AAuth wiring."""
    app = FastAPI()

    @app.get("/notes")
    @requires(AccessRule.auth("notes.read"))
    async def notes(request: Request) -> dict[str, Any]:
        return {"notes": ["buy milk"], "token": request.state.aauth.kind}

    return app


def calendar_app() -> Starlette:
    @requires(AccessRule.auth("calendar.read"))
    async def events(request: StarletteRequest) -> JSONResponse:
        return JSONResponse({"events": ["standup"], "token": request.state.aauth.kind})

    return Starlette(routes=[Route("/events", events)])


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevStack]:
    with DevStack(tmp_path / "keys", port=0, demo=False) as stack:
        yield stack


def test_two_apps_added_after_construction_are_reached_with_consent(dev: DevStack) -> None:
    assert dev.stack is not None
    stack = dev.stack
    # Added after the stack, its PS, its discovery and the agent's network were built.
    notes_origin = dev.add("https://notes.example", notes_api())  # on loopback
    stack.network.add(  # in-process: no port at all
        "https://calendar.example",
        protect(calendar_app(), "https://calendar.example", stack.discovery()),
    )
    asked: list[str] = []

    def person(url: str, code: str) -> None:
        asked.append(url)
        stack.approve(url, code)  # signs in as the local person and approves

    auth = AAuth(dev.agent.identity(), network=stack.network, on_interaction=person)
    with auth.client() as client:  # the network's transport: no transport given
        notes = client.get("https://notes.example/notes")
        events = client.get("https://calendar.example/events")
    assert notes.status_code == 200, notes.text
    assert notes.json() == {"notes": ["buy milk"], "token": "auth"}
    assert events.status_code == 200, events.text
    assert events.json() == {"events": ["standup"], "token": "auth"}
    # The person was asked (once per resource's scope) at links a browser here reaches.
    ps_origin = stack.mapping["https://ps.example"]
    assert asked and all(url.startswith(ps_origin + "/") for url in asked)
    # The loopback app is in the network file for other processes; the in-process one not.
    parties = json.loads(dev.network_file.read_text())["parties"]
    assert parties["https://notes.example"] == notes_origin
    assert "https://calendar.example" not in parties
    assert LocalNetwork.load(dev.network_file)["https://notes.example"] == notes_origin


def test_a_party_added_to_the_file_by_another_process_is_reached(tmp_path: Path) -> None:
    file = tmp_path / "network.json"
    running = LocalNetwork(file=file)  # e.g. the PS of `aauth-agents dev`
    running.save(file)
    transport = running.transport()
    app = Starlette(routes=[Route("/", lambda r: JSONResponse({"host": r.headers["host"]}))])
    with LoopbackServer(app) as server, httpx.Client(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):  # not mapped yet: not there
            client.get("https://late.example/")
        LocalNetwork.load(file).add("https://late.example", server.url)  # another process
        assert client.get("https://late.example/").json() == {"host": "late.example"}
        assert running.browser_url("https://late.example/x?code=A") == f"{server.url}/x?code=A"


def test_egress_admits_loopback_for_mapped_hosts_only() -> None:
    network = LocalNetwork({"https://ps.example": "http://127.0.0.1:9"})
    egress = network.egress()
    assert [str(a) for a in egress.admit("https://ps.example/.well-known/x")] == ["127.0.0.1"]
    with pytest.raises(OSError):
        egress.admit("https://other.example/.well-known/x")  # added later: admitted then
    network.add("https://other.example", "http://127.0.0.1:10")
    assert [str(a) for a in egress.admit("https://other.example/x")] == ["127.0.0.1"]
    with pytest.raises(OSError):  # not mapped: public addresses only
        egress.admit("https://localhost/x")


def test_the_environment_names_the_network(tmp_path: Path) -> None:
    assert LocalNetwork.from_env({}) is None
    with pytest.raises(ConfigurationError):
        LocalNetwork.from_env({ENV_NETWORK: str(tmp_path / "missing.json")})
    LocalNetwork({"https://ps.example": "http://127.0.0.1:9"}).save(tmp_path / "n.json")
    network = LocalNetwork.from_env({ENV_NETWORK: str(tmp_path / "n.json")})
    assert network is not None and network.origins() == {"https://ps.example": "http://127.0.0.1:9"}


def test_app_options() -> None:
    assert parse_app_option("my_api:app") == ("https://my-api.example", "my_api:app")
    assert parse_app_option("https://api.example=pkg.main:app") == (
        "https://api.example",
        "pkg.main:app",
    )
    for bad in ("module", "http://x.example=m:a", "https://x.example/=m:a"):
        with pytest.raises(ValueError):
            parse_app_option(bad)


def test_aauth_reads_the_network_from_the_environment_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aauth_agents.agent.provider import init_local_agent
    from aauth_agents.agent.storage import DirectoryKeyStore

    agent = init_local_agent(DirectoryKeyStore(tmp_path / "keys"), "aauth:me@agent.example")
    file = LocalNetwork({"https://ps.example": "http://127.0.0.1:9"}).save(tmp_path / "n.json")
    monkeypatch.setenv(ENV_NETWORK, str(file))
    picked = AAuth(agent.identity())
    assert picked.network is not None and picked.network.file == file
    assert picked.derive().network is picked.network
    assert AAuth(agent.identity(), trust_env=False).network is None
    explicit = LocalNetwork()
    assert AAuth(agent.identity(), network=explicit).network is explicit
    monkeypatch.setenv(ENV_NETWORK, str(tmp_path / "gone.json"))
    with pytest.raises(ConfigurationError):  # a variable naming nothing is a mistake
        AAuth(agent.identity())
