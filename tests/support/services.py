"""Real Redis and PostgreSQL servers on loopback for the tests (Debian's ``redis-server`` and
``postgresql`` packages; ``scripts/test.sh`` installs them).

``scripts/test.sh`` starts one of each for the whole run (``python tests/support/services.py
up DIR`` prints the ``export`` lines, ``down DIR`` stops them) and the fixtures of
``tests/conftest.py`` use them through ``AAUTH_TEST_REDIS_URL`` / ``AAUTH_TEST_POSTGRES_URL``;
run without them (plain ``pytest``), the fixtures start their own. A test that restarts or
kills a server starts a private one with :class:`RedisServer` / :class:`PostgresServer`.
A missing binary FAILS the test that needs it, never skips it.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class MissingServiceError(RuntimeError):
    """The Debian package a test needs is not installed."""


class RedisServer:
    """``redis-server`` on 127.0.0.1 in ``directory``: no persistence, or with ``durable``
    an append-only file synced on every write (what survives a restart is what Redis
    acknowledged)."""

    def __init__(
        self, directory: str | os.PathLike[str], port: int | None = None, *, durable: bool = False
    ) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise MissingServiceError("redis-server is missing (apt-get install -y redis-server)")
        self.directory = Path(directory)
        self.port = port or free_port()
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        assert self.binary is not None
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes" if self.durable else "no",
                "--appendfsync",
                "always",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


class PostgresServer:
    """A PostgreSQL cluster of its own in ``directory``, listening on 127.0.0.1 only, trust
    authentication for the ``postgres`` role (loopback, tests only). As root, the server runs
    as Debian's ``postgres`` user (PostgreSQL refuses to run as root)."""

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, port: int | None = None
    ) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        bindir = Path(found[-1]).parent if found else None
        if bindir is None and shutil.which("initdb"):
            bindir = Path(shutil.which("initdb") or "").parent
        if bindir is None:
            raise MissingServiceError("PostgreSQL is missing (apt-get install -y postgresql)")
        self.bindir = bindir
        # Its own directory under the system's temporary one unless given: the postgres user
        # must reach it, and pytest's base temporary directory is private to root.
        self.directory = Path(directory or tempfile.mkdtemp(prefix="aauth-pg-"))
        self.data = self.directory / "data"
        self.port = port or free_port()
        self._as: list[str] = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        done = subprocess.run([*self._as, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.decode(errors='replace')}")

    def start(self) -> PostgresServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.directory, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            self._run(
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                "--auth=trust", "--no-sync", "-E", "UTF8",
            )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.directory} -c fsync=off "
            "-c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.directory / "log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        _wait_port(self.port)
        return self

    def stop(self, mode: str = "fast") -> None:
        """``fast`` (clients disconnected, clean shutdown) or ``immediate`` (as a crash)."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _up(directory: Path) -> None:
    redis = RedisServer(directory / "redis").start()
    assert redis.process is not None
    (directory / "redis.pid").write_text(str(redis.process.pid))
    postgres = PostgresServer(directory / "postgres").start()
    print(f"export AAUTH_TEST_REDIS_URL={redis.url}")
    print(f"export AAUTH_TEST_POSTGRES_URL={postgres.url()}")
    print(f"export AAUTH_TEST_POSTGRES_DIR={postgres.directory}")


def _down(directory: Path) -> None:
    pid_file = directory / "redis.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
    if (directory / "postgres").exists():
        server = PostgresServer(directory / "postgres")
        server.stop()


if __name__ == "__main__":
    # python tests/support/services.py up|down DIR   (scripts/test.sh)
    command, where = sys.argv[1], Path(sys.argv[2])
    if command == "up":
        where.mkdir(parents=True, exist_ok=True)
        # The redis-server started here outlives this process: detach it from our stdout.
        _up(where)
    else:
        _down(where)
