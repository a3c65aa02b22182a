"""Run ``aauth-agents`` as a real subprocess with a controlled environment."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "aauth-agents"


def cli_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: HOME and the XDG directories inside ``home``; nothing from the
    caller's key configuration leaks in (``PYTHONPATH`` does: it says which package is
    tested)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "LANG": "C.UTF-8",
        # the package under test: a checkout run with PYTHONPATH=$PWD imports itself
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        # keyring never reaches a real keychain from the tests unless a test says so
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    env.update(extra or {})
    return {k: v for k, v in env.items() if v}


def run_cli(
    args: Sequence[str],
    home: Path,
    *,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "aauth_agents.cli", *args],
        env=cli_env(home, env),
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=home,
        check=False,
    )


LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def pump_until_listening(
    process: subprocess.Popen[str], party: str, timeout: float = 60
) -> tuple[str, list[str]]:
    """Read ``process``'s stdout (in a thread that keeps reading) until its listening line
    and what follows it; its URL and the lines. Fails when it exits first, or after
    ``timeout`` seconds."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    url = None
    deadline = time.monotonic() + timeout
    while url is None:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            line = "" if process.poll() is None else None
            if line == "" and time.monotonic() < deadline:
                continue
        if not line:
            assert process.stderr is not None
            stderr = process.stderr.read() if process.poll() is not None else ""
            pytest.fail(f"serve {party} printed no URL ({process.poll()=}): {seen} {stderr}")
        seen.append(line)
        match = LISTENING.search(line)
        if match:
            url = match.group(1)
    while True:  # the lines printed with the URL
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
    return url, seen


def start_serve(
    party: str,
    args: Sequence[str],
    home: Path,
    env: Mapping[str, str] | None = None,
    *,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[str]:
    """``aauth-agents serve PARTY ARGS`` started in ``home``, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "aauth_agents.cli", "serve", party, *args],
        env=cli_env(home, env),
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec_fn,
    )


@contextmanager
def serve(
    party: str,
    args: Sequence[str],
    home: Path,
    env: Mapping[str, str] | None = None,
    *,
    open_files: int | None = None,
    started: list[subprocess.Popen[str]] | None = None,
) -> Iterator[tuple[str, list[str]]]:
    """Start ``aauth-agents serve PARTY ARGS``; yield its URL and the stdout lines printed up
    to and including the listening line and what follows it; terminate it afterwards (it must
    stop within 15 s of SIGTERM). ``open_files``: the process's open-file limit (as on a
    machine with the usual ``ulimit -n``); ``started`` receives the process."""

    def limit_open_files() -> None:
        if open_files is not None:
            import resource

            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))

    process = start_serve(
        party, args, home, env, preexec_fn=limit_open_files if open_files is not None else None
    )
    if started is not None:
        started.append(process)
    try:
        yield pump_until_listening(process, party)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            pytest.fail(f"serve {party} did not stop within 15 s of SIGTERM")
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert process.returncode is not None
