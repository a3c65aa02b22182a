"""Fixtures for the agent tests: every scenario runs with httpx.Client, httpx.AsyncClient
and httpx2.AsyncClient (``AAuth.httpx2()``, the MCP SDK 2.x line's HTTP library)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from support.agent import Agent, World

from aauth_agents.agent import AAuth


@pytest.fixture(params=["sync", "async", "httpx2"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
async def make_agent(mode: str) -> AsyncIterator[Callable[..., Agent]]:
    made: list[Agent] = []

    def make(auth: AAuth, mapping: dict[str, Any], **client: Any) -> Agent:
        agent = Agent(mode, auth, mapping, **client)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        await agent.aclose()
