"""``aauth-agents serve ps`` as a real subprocess, attacked as issue 15 found it: password
guesses from one loopback client are counted against its address whatever ``X-Forwarded-For``
claims, and sixty concurrent unauthenticated sign-ins do not grow the process's peak memory
by sixty scrypt hashes (32 MiB each at the default cost): its ``VmHWM`` stays within a few."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from support.cli import run_cli, serve
from support.ui import csrf

PS = "https://ps.example"
MIB = 1024 * 1024


def peak_rss(pid: int) -> int:
    """``VmHWM`` (peak resident set size) of ``pid``, bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB$", status, flags=re.M)
    assert found, status
    return int(found.group(1)) * 1024


def sign_in(client: httpx.Client, url: str, token: str, username: str, **headers: str) -> int:
    response = client.post(
        "/signin",
        data={"csrf": token, "username": username, "password": "guess"},
        headers={"origin": url, **{k.replace("_", "-"): v for k, v in headers.items()}},
    )
    return response.status_code


def test_x_forwarded_for_does_not_reset_the_limit_of_a_loopback_client(tmp_path: Path) -> None:
    args = ["--port", "0", "--issuer", PS, "--data", str(tmp_path / "ps-data")]
    with serve("ps", args, tmp_path) as (url, _), httpx.Client(base_url=url, timeout=60) as client:
        token = csrf(client.get("/signin"))
        for n in range(20):  # each "from" another address, each at another account
            assert sign_in(client, url, token, f"user{n}", x_forwarded_for=f"198.51.100.{n}") == 401
        refused = sign_in(client, url, token, "user99", x_forwarded_for="198.51.100.99")
        assert refused == 429


def test_sixty_concurrent_sign_ins_do_not_grow_the_peak_memory_by_sixty_hashes(
    tmp_path: Path,
) -> None:
    args = ["--port", "0", "--issuer", PS, "--data", str(tmp_path / "ps-data")]
    started: list[subprocess.Popen[str]] = []
    with (
        serve("ps", args, tmp_path, started=started) as (url, _),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        pid = started[0].pid  # one process: it serves itself
        token = csrf(client.get("/signin"))
        assert sign_in(client, url, token, "warm-up") == 401  # one hash's memory, once
        before = peak_rss(pid)
        assert before > 32 * MIB  # the warm-up's hash was counted: this is the serving process
        with (
            httpx.Client(
                base_url=url, timeout=120, limits=httpx.Limits(max_connections=60)
            ) as many,
            ThreadPoolExecutor(60) as pool,
        ):
            token = csrf(many.get("/signin"))
            statuses = list(pool.map(lambda n: sign_in(many, url, token, f"someone{n}"), range(60)))
        grown = peak_rss(pid) - before
    assert set(statuses) <= {401, 429, 503}, statuses
    # Two hashes at once (32 MiB each) plus slack; sixty (or a thread pool's forty) would be
    # well over a gigabyte.
    assert grown < 160 * MIB, f"peak RSS grew by {grown / MIB:.0f} MiB"


def test_a_trusted_proxy_names_the_client_address(tmp_path: Path) -> None:
    """``--trusted-proxy 127.0.0.1``: behind that proxy, each forwarded address has a limit
    of its own (twenty-one guesses from twenty-one addresses are twenty-one 401s)."""
    args = ["--port", "0", "--issuer", PS, "--data", str(tmp_path / "ps-data")]
    args += ["--trusted-proxy", "127.0.0.1"]
    with serve("ps", args, tmp_path) as (url, _), httpx.Client(base_url=url, timeout=60) as client:
        token = csrf(client.get("/signin"))
        statuses = [
            sign_in(client, url, token, f"user{n}", x_forwarded_for=f"198.51.100.{n}")
            for n in range(21)
        ]
    assert statuses == [401] * 21


def test_trusted_proxy_must_be_an_address(tmp_path: Path) -> None:
    result = run_cli(["serve", "ps", "--issuer", PS, "--trusted-proxy", "proxy.example"], tmp_path)
    assert result.returncode == 2
    assert b"not an IP address or CIDR" in result.stderr
