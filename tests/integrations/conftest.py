"""Fixtures for the integration tests: the parties of :mod:`support.mcp`, with the in-repo
person server or @hellocoop/mockin (the same :class:`support.interop.Mockin` runner the
interop tests use; never skipped: without Node it fails and says why)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.interop import Mockin
from support.mcp import World, world_for

from aauth_agents.integrations.mcp_sdk import MCP2

#: Tests of what only the MCP SDK 2.x line has (scripts/test.sh runs them in .venv-mcp2).
collect_ignore = [] if MCP2 else ["test_mcp2_stateless_input.py"]


@pytest.fixture(scope="session")
def mockin_server() -> Iterator[Any]:
    server = Mockin()
    yield server
    server.close()


@pytest.fixture
def mockin(mockin_server: Any) -> Iterator[Any]:
    mockin_server.reset()
    yield mockin_server


@pytest.fixture(params=["in-repo", "mockin"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    """The parties, with each person server in turn."""
    mockin = request.getfixturevalue("mockin") if request.param == "mockin" else None
    with world_for(request.param, mockin) as w:
        yield w


@pytest.fixture
def local_world() -> Iterator[World]:
    """The parties with the in-repo person server."""
    with world_for("in-repo") as w:
        yield w
