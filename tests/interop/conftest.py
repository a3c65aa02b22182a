"""The Node.js peers as pytest fixtures: @hellocoop/httpsig 2.x (``node_peer``), @hellocoop/mockin
2.x (``mockin_server``, ``mockin``; :mod:`support.interop`), our person server behind mockin's
interface (``aauth_ps_server``; :mod:`support.ps_backend`), and the parties the agent scenarios
set up around either (``mode``, ``setup``, ``resource_url``; :mod:`support.mockin`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from support.interop import Mockin, NodePeer
from support.mockin import Setup

from aauth_agents.servers import LoopbackServer


@pytest.fixture(scope="session")
def node_peer() -> Iterator[NodePeer]:
    peer = NodePeer()
    yield peer
    peer.close()


# -- @hellocoop/mockin 2.x: a real -11 person server --------------------------------------------


@pytest.fixture(scope="session")
def mockin_server() -> Iterator[Mockin]:
    server = Mockin()
    yield server
    server.close()


@pytest.fixture
def mockin(mockin_server: Mockin) -> Iterator[Mockin]:
    """mockin with its defaults restored before each test."""
    mockin_server.reset()
    yield mockin_server


# -- our person server behind the same interface (tests/support/ps_backend.py) ----------------


@pytest.fixture(scope="session")
def aauth_ps_server() -> Iterator[Any]:
    """Our PS on loopback as ``https://ps.example``, laid out like mockin (one per session;
    ``reset()`` gives each test a fresh PS)."""
    from support.ps_backend import AAuthPS

    server = AAuthPS()
    yield server
    server.close()


# -- the agent scenarios' parties, around mockin or our PS (support/mockin.py) -----------------


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def setup(mockin: Any, mode: str) -> Iterator[Setup]:
    yield Setup(mockin, mode)


@pytest.fixture
async def resource_url(setup: Setup) -> AsyncIterator[str]:
    with LoopbackServer(setup.resource.app) as server:
        yield server.url
        for client in setup.clients:
            if isinstance(client, httpx.Client):
                client.close()
            else:
                await client.aclose()
