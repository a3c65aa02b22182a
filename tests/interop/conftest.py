"""The Node.js peer (@hellocoop/httpsig 2.x) as a pytest fixture.

The bridge (harness.mjs) runs the package's own ``fetch()`` (``dryRun``) and ``verify()``.
It is never skipped: when Node or the npm packages are missing the tests fail and say how to
install them (the README's test command does).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent


class NodePeer:
    """One long-lived ``node harness.mjs`` process speaking JSON lines."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not installed; the interop tests need Node.js")
        if not (HERE / "node_modules" / "@hellocoop" / "httpsig").is_dir():
            pytest.fail(
                "run `npm ci --prefix tests/interop` first (the README's test command does)"
            )
        self._proc = subprocess.Popen(
            [node, str(HERE / "harness.mjs")],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def call(self, op: str, **payload: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            msg_id = next(self._ids)
            self._proc.stdin.write(json.dumps({"id": msg_id, "op": op, **payload}) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the Node peer exited")
        answer: dict[str, Any] = json.loads(line)
        assert answer["id"] == msg_id
        if "error" in answer:
            raise RuntimeError(f"Node peer error: {answer['error']}")
        return answer

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


@pytest.fixture(scope="session")
def node_peer() -> Iterator[NodePeer]:
    peer = NodePeer()
    yield peer
    peer.close()
