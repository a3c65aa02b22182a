"""Several worker processes, for the scale-out tests (tests/scale): ``aauth-agents serve ...
--workers N`` as a real subprocess whose workers a test can list and kill, the person
approving at a PS through its pages over HTTP (each request may reach another worker), and
waiting for something to become true within a generous bound."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

from support.cli import pump_until_listening, start_serve
from support.ui import csrf

T = TypeVar("T")

#: The bound on "eventually" (seconds): generous, never a measurement.
EVENTUALLY = 30.0
#: Seconds N workers may take to start: each imports the package and builds its app, and on
#: a loaded two-core machine that is slow.
STARTUP = 240.0


def eventually(probe: Callable[[], T | None], timeout: float = EVENTUALLY, what: str = "") -> T:
    """``probe()`` once it returns something other than ``None``/``False``; fails after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what or probe}")
        time.sleep(0.05)


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _socket_inodes(port: int) -> set[str]:
    """Inodes of the established TCP connections whose local port is ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(fields[9])
    return inodes


@dataclass
class ServedWorkers:
    """A running ``aauth-agents serve ... --workers N``: its URL, what it printed, the
    parent process."""

    url: str
    lines: list[str]
    process: subprocess.Popen[str]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def workers(self) -> set[int]:
        """The worker processes alive now (multiprocessing's spawned children)."""
        return {
            pid
            for pid in child_pids(self.process.pid)
            if b"spawn_main" in _cmdline(pid) and alive(pid)
        }

    def serving(self) -> set[int]:
        """The workers holding an established connection on the listening port now."""
        inodes = _socket_inodes(self.port)
        holding = set()
        for pid in self.workers():
            try:
                links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
            except OSError:
                continue
            if any(f"socket:[{inode}]" in links for inode in inodes):
                holding.add(pid)
        return holding


@contextmanager
def serve_workers(
    party: str, args: Sequence[str], home: Path, env: Mapping[str, str] | None = None
) -> Iterator[ServedWorkers]:
    """``aauth-agents serve PARTY ARGS`` (with ``--workers``) until the block ends; then
    SIGTERM, and every worker must be gone within 15 s."""
    with serve_together([(party, args)], home, env) as [served]:
        yield served


@contextmanager
def serve_together(
    commands: Sequence[tuple[str, Sequence[str]]],
    home: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[list[ServedWorkers]]:
    """:func:`serve_workers` for several commands, started at the same time (each worker
    imports the package: on two cores, starting one after the other doubles the wait)."""
    processes = [(party, start_serve(party, args, home, env)) for party, args in commands]
    workers: set[int] = set()
    try:
        served = []
        for party, process in processes:
            url, lines = pump_until_listening(process, party, timeout=STARTUP)
            served.append(ServedWorkers(url, lines, process))
        for each in served:
            workers |= each.workers()
        yield served
        for each in served:
            workers |= each.workers()
    finally:
        for _, process in processes:
            process.terminate()
        for party, process in processes:
            _stopped(party, process)
    left = [pid for pid in workers if alive(pid)]
    assert not left, f"workers still running after the parent stopped: {left}"


def _stopped(party: str, process: subprocess.Popen[str]) -> None:
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
        pytest.fail(f"serve {party} did not stop within 15 s of SIGTERM")
    finally:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# -- the person, at the PS's pages -------------------------------------------------------------


def approve_in_pages(ps_url: str, link: str, code: str, username: str, password: str) -> None:
    """The person opens the interaction link in a browser (``ps_url``, loopback http),
    signs in and approves on the consent page -- every request a new connection, so any
    worker may answer each."""
    path = urlsplit(link).path
    origin = {"origin": ps_url}
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=ps_url, limits=limits, timeout=30) as browser:
        browser.get("/signin").raise_for_status()  # a session first, as a returning browser
        opened = browser.get(path, params={"code": code})
        assert opened.status_code == 303, opened.text
        consent = opened.headers["location"]
        form = browser.get("/signin", params={"next": consent})
        signed = browser.post(
            "/signin",
            data={"csrf": csrf(form), "username": username, "password": password, "next": consent},
            headers=origin,
        )
        assert signed.status_code == 303, signed.text
        page = browser.get(consent)
        assert 'id="approve"' in page.text, page.text
        approved = browser.post(
            consent, data={"csrf": csrf(page), "action": "approve"}, headers=origin
        )
        assert approved.status_code in (200, 303), approved.text
