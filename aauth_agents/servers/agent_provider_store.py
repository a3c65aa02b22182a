"""What the agent provider remembers, in SQLite or PostgreSQL (§Agent Token, §Sub-Agents,
§Token Revocation): enrolment codes, enrolled agents and sub-agents (:class:`AgentRecord`),
and the agent tokens it issued, which
:meth:`~.agent_provider.AgentProviderServer.revoke_agent` asks each PS to revoke
(:class:`RevocationOutcome`, :class:`RevocationResult`).

A ``postgresql://`` URL keeps it in PostgreSQL, shared by several provider processes (the
same statements, :mod:`aauth_agents.stores.sql`); the provider's generated signing key is
kept there too (``ap_meta``), adopted by whichever process starts first. With PostgreSQL
every database call runs in a worker thread (:meth:`_Database.run`), never on the loop.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread

from ..agent.storage import DirectoryKeyStore, read_private_key, write_private_key
from ..keys import ED25519, PrivateKey
from ..protocol.encoding import loads_json_object
from ..stores.sql import is_postgres_url, postgres_ddl

P = ParamSpec("P")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ap_enrollments (
    code TEXT PRIMARY KEY, agent_id TEXT NOT NULL, ps TEXT, expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ap_agents (
    agent_id TEXT PRIMARY KEY, jkt TEXT NOT NULL, jwk TEXT NOT NULL, ps TEXT,
    parent TEXT, created REAL NOT NULL, revoked REAL
);
CREATE TABLE IF NOT EXISTS ap_tokens (
    jti TEXT PRIMARY KEY, agent_id TEXT NOT NULL, ps TEXT, exp REAL NOT NULL,
    revoked REAL
);
CREATE INDEX IF NOT EXISTS ap_tokens_agent ON ap_tokens (agent_id);
"""
#: PostgreSQL only: what every process must share (the generated signing key).
_META = "CREATE TABLE IF NOT EXISTS ap_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);\n"


@dataclass(frozen=True)
class AgentRecord:
    """An enrolled agent (or sub-agent, with ``parent``)."""

    agent_id: str
    thumbprint: str
    ps: str | None
    parent: str | None
    created: float
    revoked: float | None


@dataclass(frozen=True)
class RevocationOutcome:
    """One agent token the provider asked a PS to revoke: ``status`` is the HTTP status the
    PS answered (``None`` when it could not be reached; ``error`` says why). ``ok`` for 200
    (revoked) and 404 (the PS never saw the token: nothing to revoke there). ``answer`` is
    the PS's JSON answer (this package's PS: ``revoked_auth_tokens``, ``notified``)."""

    agent_id: str
    jti: str
    ps: str
    status: int | None
    error: str | None = None
    answer: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status in (200, 404)


@dataclass
class RevocationResult:
    """What :meth:`~.agent_provider.AgentProviderServer.revoke_agent` did (§Token
    Revocation): the agents it revoked and each call it made to a PS."""

    revoked_agents: list[str] = field(default_factory=list)
    calls: list[RevocationOutcome] = field(default_factory=list)


class _Database:
    """The provider's SQLite file: one connection, serialized by a lock."""

    #: Calls leave the event loop (see :meth:`run`).
    threaded = False

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        if path != ":memory:":
            fresh = not Path(path).exists()
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            if fresh:
                os.chmod(path, 0o600)
        else:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.executescript(_SCHEMA)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, tuple(args)).fetchall()

    def transaction(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        with self._lock:
            counts = []
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    counts.append(self._conn.execute(sql, tuple(args)).rowcount)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            return counts

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)``, short database work: inline (SQLite, as before), or in a
        worker thread when :attr:`threaded` (PostgreSQL)."""
        if self.threaded:
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
        return fn(*args, **kwargs)


class _PostgresDatabase(_Database):
    """The provider's tables in PostgreSQL (a pool shared by the provider's threads)."""

    threaded = True

    def __init__(self, url: str) -> None:
        from ..stores.postgres import PostgresDatabase

        self.sql = PostgresDatabase(url, schema=postgres_ddl(_SCHEMA) + _META)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.sql.execute(sql, tuple(args)).fetchall())

    def transaction(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        with self.sql.transaction() as conn:
            return [conn.execute(sql, tuple(args)).rowcount for sql, args in statements]

    def shared_key(self, candidate: str) -> str:
        """The signing key every process uses: ``candidate`` (a private JWK, JSON) unless
        another process stored one first."""
        self.sql.execute(
            "INSERT INTO ap_meta (name, value) VALUES ('signing_key', ?) ON CONFLICT DO NOTHING",
            (candidate,),
        )
        return str(self.sql.fetchone("SELECT value FROM ap_meta WHERE name = 'signing_key'")[0])

    def close(self) -> None:
        self.sql.close()


def _new_key() -> PrivateKey:
    return PrivateKey.generate(ED25519, kid=f"ap-{secrets.token_hex(4)}")


def open_database(
    location: str, key: PrivateKey | None, file_name: str, key_file: str
) -> tuple[_Database, PrivateKey]:
    """The provider's database and signing key. ``location``: a ``postgresql://`` URL (the
    key shared through the database), ``":memory:"`` (a fresh key), or a directory holding
    ``file_name`` and ``key_file``. A configured ``key`` wins."""
    if is_postgres_url(location):
        pg = _PostgresDatabase(location)
        if key is None:
            jwk = pg.shared_key(json.dumps(_new_key().to_jwk(private=True)))
            key = PrivateKey.from_jwk(loads_json_object(jwk.encode()))
        return pg, key
    if location == ":memory:":
        return _Database(location), key or _new_key()
    directory = Path(location)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = _Database(str(directory / file_name))
    store = DirectoryKeyStore(directory)
    if key is None:
        key = read_private_key(store, key_file)
    if key is None:
        key = _new_key()
        write_private_key(store, key_file, key)
    return db, key


__all__ = ["AgentRecord", "RevocationOutcome", "RevocationResult"]
