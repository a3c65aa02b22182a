"""Fixtures for the prompt surfaces: an agent (:class:`support.agent.Agent`) behind
``httpx.Client`` (``mode`` ``"sync"``: run in a worker thread) or ``httpx.AsyncClient``
(``"async"``), ``pause``, a real, short wait between its polls, and ``lab``, a JupyterLab
server on loopback (:class:`support.notebook.JupyterLab`)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.agent import Agent
from support.notebook import JupyterLab

from aauth_agents.agent import client_options


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_agent(mode: str) -> AsyncIterator[Callable[..., Agent]]:
    made: list[Agent] = []

    def make(auth: Any, mapping: dict[str, Any]) -> Agent:
        agent = Agent(mode, auth, mapping, max_redirects=client_options()["max_redirects"])
        made.append(agent)
        return agent

    yield make
    for agent in made:
        await agent.aclose()


@pytest.fixture
def pause(mode: str) -> Any:
    """A real, short wait between polls: the person acts while the agent polls."""
    if mode == "sync":
        return lambda seconds: time.sleep(0.01)

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(0.01)

    return sleep


@pytest.fixture
def lab() -> Iterator[JupyterLab]:
    """JupyterLab serving ``lab.root``, in a temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="aauth-lab-", ignore_cleanup_errors=True) as tmp:
        (Path(tmp) / "notebooks").mkdir()
        server = JupyterLab(Path(tmp) / "notebooks", Path(tmp))
        try:
            server.wait_ready()
            yield server
        finally:
            server.stop()
