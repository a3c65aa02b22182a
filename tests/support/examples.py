"""Run the scripts in examples/ as a person would: each a real subprocess of this Python,
in a clean environment (:func:`support.cli.cli_env`: the checkout under test stays the one
imported), bounded in time; several at once, since most of their time is spent waiting.

:data:`EXPECTED` says, for every script, the last line it must print and whether it needs
the MCP SDK (those run again on the 2.x line: scripts/test.sh ``MCP_TESTS``). A script not
listed there fails its test (tests/examples/test_example_scripts.py)."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.cli import cli_env

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: Seconds one example may take: each finishes by itself, in seconds on an idle machine.
TIMEOUT = 120


@dataclass(frozen=True)
class Expected:
    last_line: str  # a regular expression the whole last line of stdout matches
    mcp: bool = False


EXPECTED: dict[str, Expected] = {
    "token_chain.py": Expected(r"auth token: +scope \('files\.read',\) for person .+"),
    "agent_httpx.py": Expected(
        r"ok: the agent read and wrote files as aauth:assistant@agent\.example"
    ),
    "fastapi_resource.py": Expected(
        r"ok: https://notes\.example served 2 notes to the agent of person \w+"
    ),
    "langchain_tool.py": Expected(r"ok: the model read welcome\.txt through two AAuth tools"),
    "langgraph_interrupts.py": Expected(r"ok: the graph resumed after 2 consent interrupts"),
    "governed_tool.py": Expected(r"ok: 1 of 2 notes sent, 1 audit record"),
    "mcp_server.py": Expected(
        r"ok: three MCP tool calls, the last approved call by call", mcp=True
    ),
    "mcp_client.py": Expected(r"ok: the MCP session wrote and read back notes\.txt", mcp=True),
    "mcp_proxy.py": Expected(
        r"ok: the stdio host listed aauth:me@laptop\.example's files through mcp-proxy",
        mcp=True,
    ),
}


def scripts() -> list[str]:
    """Every example script, by file name."""
    return sorted(path.name for path in EXAMPLES.glob("*.py"))


def run(name: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as home:
        return subprocess.run(
            [sys.executable, str(EXAMPLES / name)],
            env=cli_env(Path(home)),
            cwd=home,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )


def selected(request: pytest.FixtureRequest) -> list[str]:
    """The scripts the tests of ``request``'s module that were collected (``-k`` respected)
    run: their ``name`` parameters."""
    return [
        item.callspec.params["name"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    ]


class Runs:
    """The given scripts, started at once (a few at a time), each awaited by its test."""

    def __init__(self, names: Iterable[str], workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="example")
        self._runs: dict[str, Future[subprocess.CompletedProcess[str]]] = {
            name: self._pool.submit(run, name) for name in names
        }

    def check(self, name: str) -> None:
        """The script exited 0 and its last line of output is the expected one."""
        assert name in EXPECTED, f"examples/{name}: add its expected last line to EXPECTED"
        done = self._runs[name].result()
        report = f"examples/{name} (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        assert done.returncode == 0, report
        lines = done.stdout.strip().splitlines()
        assert lines, report
        assert re.fullmatch(EXPECTED[name].last_line, lines[-1]), report

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
