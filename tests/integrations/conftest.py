"""Fixtures for the integration tests: the parties of :mod:`mcp_world`, with the in-repo
person server or @hellocoop/mockin (the same ``Mockin`` runner the interop tests use, loaded
from ``tests/interop/conftest.py``; never skipped: without Node it fails and says why)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp_world import World, world_for

from aauth_agents.integrations.mcp_sdk import MCP2

#: Tests of what only the MCP SDK 2.x line has (scripts/test.sh runs them in .venv-mcp2).
collect_ignore = [] if MCP2 else ["test_mcp2_stateless_input.py"]


def _interop() -> Any:
    name = "aauth_interop_conftest"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    path = Path(__file__).parents[1] / "interop" / "conftest.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def mockin_server() -> Iterator[Any]:
    server = _interop().Mockin()
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
