"""The examples that need the MCP SDK (an MCP server behind ``protect_mcp``, an
``aauth_mcp_session`` client, a stdio host using ``aauth-agents mcp-proxy``) run and end
with their expected line; scripts/test.sh runs this file on both SDK lines (1.x in
``.venv``, 2.x in ``.venv-mcp2``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.examples import EXPECTED, Runs, selected

NAMES = sorted(name for name, expected in EXPECTED.items() if expected.mcp)


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest) -> Iterator[Runs]:
    started = Runs(selected(request))
    yield started
    started.close()


@pytest.mark.parametrize("name", NAMES)
def test_the_mcp_example_runs(runs: Runs, name: str) -> None:
    runs.check(name)
