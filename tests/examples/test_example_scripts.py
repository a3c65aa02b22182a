"""Every script in examples/ runs by itself and ends with the line it promises: exit 0, the
expected last line (:data:`support.examples.EXPECTED`), all parties on loopback. The
scripts that need the MCP SDK are in test_mcp_example_scripts.py (run on both SDK lines);
every other script, a new one included, runs here -- and fails until it has an expected
line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.examples import EXPECTED, Runs, scripts, selected

NAMES = [name for name in scripts() if not (name in EXPECTED and EXPECTED[name].mcp)]


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest) -> Iterator[Runs]:
    started = Runs(selected(request))
    yield started
    started.close()


@pytest.mark.parametrize("name", NAMES)
def test_the_example_runs(runs: Runs, name: str) -> None:
    runs.check(name)


def test_every_expected_line_belongs_to_an_example() -> None:
    assert set(EXPECTED) == set(scripts())
