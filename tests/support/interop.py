"""The independent Node.js implementations the interop tests run against, each as a process.

* :class:`NodePeer` -- @hellocoop/httpsig 2.x: one long-lived ``node harness.mjs``; the
  bridge runs the package's own ``fetch()`` (``dryRun``) and ``verify()``.
* :class:`Mockin` -- @hellocoop/mockin 2.x: a real -11 person server on 127.0.0.1 acting as
  ``https://ps.example`` (the interop and the integration tests use it).

Both live in ``tests/interop`` (``harness.mjs``, ``node_modules``). Neither is ever skipped:
when Node or the npm packages are missing the tests fail and say how to install them (the
README's test command does).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

#: tests/interop: the bridge and the npm packages.
HERE = Path(__file__).parents[1] / "interop"


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


# -- @hellocoop/mockin 2.x: a real -11 person server --------------------------------------------

MOCKIN_ISSUER = "https://ps.example"


class Mockin:
    """A mockin process on 127.0.0.1 acting as ``https://ps.example``.

    ``mapping`` is what a :class:`~aauth_agents.transport.MappedTransport` needs to reach it;
    ``configure(**settings)`` is ``PUT /mock/aauth`` (``auto_approve``, ``requirement``,
    ``person_requirement``, ``error``, ``error_endpoint``, ``trusted_servers``, ...);
    ``trust(issuer, metadata, jwks)`` preloads an agent provider's or resource's metadata and
    JWKS so mockin need not fetch them; ``reset()`` restores mockin's defaults.
    """

    def __init__(self) -> None:
        import socket
        import time

        import httpx

        node = shutil.which("node")
        server = HERE / "node_modules" / "@hellocoop" / "mockin" / "src" / "server.js"
        if node is None or not server.is_file():
            pytest.fail(
                "run `npm ci --prefix tests/interop` first (the README's test command does)"
            )
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        env = {
            "PATH": os.environ.get("PATH", ""),
            "ISSUER": MOCKIN_ISSUER,
            "PORT": str(self.port),
            "IP": "127.0.0.1",
        }
        self._proc = subprocess.Popen(
            [node, str(server)],
            cwd=HERE,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.mapping = {MOCKIN_ISSUER: self.url}
        self._http = httpx.Client(base_url=self.url, timeout=10)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self._http.get("/mock/aauth").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.fail("mockin did not start")
            time.sleep(0.05)
        self._trusted: dict[str, Any] = {}

    def configure(self, **settings: Any) -> dict[str, Any]:
        response = self._http.put("/mock/aauth", json=settings)
        response.raise_for_status()
        config: dict[str, Any] = response.json()
        return config

    def trust(self, issuer: str, metadata: dict[str, Any], jwks: dict[str, Any]) -> None:
        self._trusted[issuer] = {"metadata": metadata, "jwks": jwks}
        self.configure(trusted_servers=self._trusted)

    def reset(self) -> None:
        self._http.delete("/mock").raise_for_status()  # resets the AAuth mock too
        self._trusted = {}
        self.configure(trusted_servers={})

    def consent(self, code: str) -> int:
        """What the person's browser does when mockin waits for consent (``auto_approve=False``)."""
        return self._http.get(
            "/aauth/consent", params={"code": code}, headers={"Host": "ps.example"}
        ).status_code

    def close(self) -> None:
        self._http.close()
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
