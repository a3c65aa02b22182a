"""The person server's database: a SQLite file (one connection) or PostgreSQL (a pool shared
by every worker process), short transactions, async via a thread.

The PS keeps what the protocol obliges it to remember (§Person Token Endpoint: retained
person-token records; §Agent-Person Binding; §Directed Identifiers; §Mission, §Mission Log;
§Token Revocation: which auth tokens went to which resource for which agent), and the
browser sessions of its pages (:mod:`.ui_sessions`), in tables of its own, next to the
shared stores of :mod:`aauth_agents.stores` (pending records, revocations), which open their
own connection to the same file.

Every method of :class:`PSDatabase` is synchronous and short; callers on the event loop go
through :meth:`PSDatabase.run`, which executes a whole unit of work (one transaction) in a
worker thread so a slow disk never blocks the loop. ``":memory:"`` gives a private in-memory
database (tests, throwaway servers). A file is created ``0600``: it holds signing keys and
password hashes.

:func:`open_database` picks the engine: a ``postgresql://`` URL gives a
:class:`PostgresPSDatabase` (:mod:`aauth_agents.stores.postgres`), whose tables, and the
shared stores' beside them, are created by whichever worker starts first; its
:meth:`~PSDatabase.transaction` holds an advisory lock, so a read-then-write unit (binding an
agent, adopting a signing key) is serialized across processes as ``BEGIN IMMEDIATE`` does
in SQLite. Statements are written once, in SQLite's dialect (:mod:`aauth_agents.stores.sql`).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import anyio.to_thread

from ...stores.sql import POSTGRESQL, SQLITE, Connection, SQLDatabase, is_postgres_url, postgres_ddl
from ...stores.sqlite import SQLiteDatabase

if TYPE_CHECKING:
    from ...stores.postgres import PostgresDatabase

P = ParamSpec("P")
T = TypeVar("T")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ps_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ps_signing_keys (
    kid TEXT PRIMARY KEY,
    public_jwk TEXT NOT NULL,
    private_jwk TEXT,
    created_at REAL NOT NULL,
    retired_at REAL,
    publish_until REAL
);
CREATE TABLE IF NOT EXISTS ps_accounts (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    claims TEXT NOT NULL,
    tenant TEXT,
    created_at REAL NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ps_bindings (
    agent_iss TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    account TEXT NOT NULL,
    created_at REAL NOT NULL,
    how TEXT NOT NULL,
    PRIMARY KEY (agent_iss, agent_id)
);
DROP INDEX IF EXISTS ps_bindings_account;
CREATE INDEX IF NOT EXISTS ps_bindings_listed
    ON ps_bindings (account, created_at, agent_iss, agent_id);
CREATE TABLE IF NOT EXISTS ps_subjects (
    account TEXT NOT NULL,
    resource TEXT NOT NULL,
    sub TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    PRIMARY KEY (account, resource)
);
CREATE TABLE IF NOT EXISTS ps_consents (
    account TEXT NOT NULL,
    agent_iss TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    kind TEXT NOT NULL,
    mission_s256 TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (account, agent_iss, agent_id, resource, kind, mission_s256, scope)
);
CREATE TABLE IF NOT EXISTS ps_person_tokens (
    jti TEXT PRIMARY KEY,
    aud TEXT NOT NULL,
    sub TEXT NOT NULL,
    account TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    mission_s256 TEXT,
    tenant TEXT,
    iat REAL NOT NULL,
    exp REAL NOT NULL,
    retain_until REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ps_person_tokens_retain ON ps_person_tokens (retain_until);
CREATE INDEX IF NOT EXISTS ps_person_tokens_agent ON ps_person_tokens (requested_by, aud);
CREATE TABLE IF NOT EXISTS ps_auth_tokens (
    jti TEXT PRIMARY KEY,
    aud TEXT NOT NULL,
    sub TEXT NOT NULL,
    account TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    mission_s256 TEXT,
    scope TEXT,
    iat REAL NOT NULL,
    exp REAL NOT NULL,
    revoked_at REAL,
    notified_at REAL,
    notify_error TEXT
);
CREATE INDEX IF NOT EXISTS ps_auth_tokens_agent ON ps_auth_tokens (agent_id);
CREATE INDEX IF NOT EXISTS ps_auth_tokens_requested ON ps_auth_tokens (requested_by);
CREATE INDEX IF NOT EXISTS ps_auth_tokens_mission ON ps_auth_tokens (mission_s256);
CREATE INDEX IF NOT EXISTS ps_auth_tokens_exp ON ps_auth_tokens (exp);
CREATE INDEX IF NOT EXISTS ps_auth_tokens_unnotified ON ps_auth_tokens (exp)
    WHERE revoked_at IS NOT NULL AND notified_at IS NULL;
CREATE TABLE IF NOT EXISTS ps_missions (
    s256 TEXT PRIMARY KEY,
    agent_iss TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    account TEXT NOT NULL,
    blob BLOB NOT NULL,
    state TEXT NOT NULL,
    termination_reason TEXT,
    expires_at REAL,
    capabilities TEXT NOT NULL,
    agent_capabilities TEXT,
    created_at REAL NOT NULL,
    terminated_at REAL
);
CREATE INDEX IF NOT EXISTS ps_missions_agent ON ps_missions (agent_id);
DROP INDEX IF EXISTS ps_missions_account;
CREATE INDEX IF NOT EXISTS ps_missions_listed ON ps_missions (account, created_at, s256);
CREATE TABLE IF NOT EXISTS ps_mission_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    s256 TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    entry BLOB NOT NULL,
    entry_s256 TEXT
);
CREATE INDEX IF NOT EXISTS ps_mission_log_s256 ON ps_mission_log (s256, seq);
CREATE TABLE IF NOT EXISTS ps_agent_tokens (
    iss TEXT NOT NULL,
    jti TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    exp REAL NOT NULL,
    PRIMARY KEY (iss, jti)
);
CREATE INDEX IF NOT EXISTS ps_agent_tokens_exp ON ps_agent_tokens (exp);
CREATE TABLE IF NOT EXISTS ps_ui_sessions (
    id_s256 TEXT PRIMARY KEY,
    csrf TEXT NOT NULL,
    account TEXT,
    login_seq INTEGER NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ps_ui_sessions_seen ON ps_ui_sessions (last_seen);
CREATE INDEX IF NOT EXISTS ps_ui_sessions_expiry ON ps_ui_sessions (expires_at);
CREATE TABLE IF NOT EXISTS ps_ui_session_links (
    session_s256 TEXT NOT NULL,
    pending_id TEXT NOT NULL,
    interaction_id TEXT,
    callback TEXT,
    arrived INTEGER NOT NULL,
    linked_at REAL NOT NULL,
    PRIMARY KEY (session_s256, pending_id)
);
"""


class PSDatabase:
    """The PS tables in one SQLite file (or ``":memory:"``)."""

    dialect = SQLITE
    IntegrityError: type[Exception] = sqlite3.IntegrityError
    #: Every call must leave the event loop (a network database): see ``ServerCore.run``.
    threaded = False

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            file = Path(self.path)
            file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not file.exists():
                # Created owner-only before SQLite opens it: keys and password hashes live here.
                fd = os.open(file, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, check_same_thread=False, isolation_level=None
        )
        self._lock = threading.RLock()
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT INTO ps_meta (name, value) VALUES ('schema', ?) ON CONFLICT DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
        self._closed = False

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error), holding the lock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement in autocommit mode; returns the changed row count."""
        with self._lock:
            return self._conn.execute(sql, params).rowcount

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` -- a short unit of database work -- in a worker thread."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file and truncate it to zero bytes:
        after a purge deleted many rows the log would otherwise stay at its high-water
        mark. First the copy, on a connection of its own (``PRAGMA
        wal_checkpoint(PASSIVE)``: it waits for nobody and nobody waits for it, so
        requests are served meanwhile); then, holding the lock, the truncation (``PRAGMA
        wal_checkpoint(TRUNCATE)``), which only has the pages written since to copy, and is
        given up rather than waited for when another process is reading (the next
        purge truncates). Run it off the event loop. Nothing to do in memory."""
        if self.path == ":memory:":
            return
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            with self._lock:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            conn.close()

    def stores_database(self) -> SQLDatabase:
        """The database the shared stores (pending records, revocations) use: a second
        connection to the same file, sharing this one's lock (two writers of one process
        queue for each other there, not in SQLite's busy handler)."""
        return SQLiteDatabase(self.path, lock=self._lock)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._conn.close()
                self._closed = True


class PostgresPSDatabase(PSDatabase):
    """The PS tables, and the shared stores' tables, in one PostgreSQL database; one pool
    of connections for both (:class:`~aauth_agents.stores.postgres.PostgresDatabase`)."""

    dialect = POSTGRESQL
    threaded = True

    def __init__(self, url: str) -> None:
        from ...stores.postgres import STORES_SCHEMA, PostgresDatabase

        self.path = url
        schema = (
            STORES_SCHEMA
            + postgres_ddl(_SCHEMA)
            + "INSERT INTO ps_meta (name, value) "
            + f"VALUES ('schema', '{SCHEMA_VERSION}') ON CONFLICT DO NOTHING;\n"
        )
        self.sql: PostgresDatabase = PostgresDatabase(url, schema=schema)
        self.IntegrityError = self.sql.IntegrityError
        self._closed = False

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """``BEGIN`` ... ``COMMIT`` under the write lock (:meth:`PostgresDatabase.transaction
        <aauth_agents.stores.postgres.PostgresDatabase.transaction>`)."""
        with self.sql.transaction() as conn:
            yield conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.sql.execute(sql, params).rowcount

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.sql.fetchone(sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.sql.fetchall(sql, params)

    def checkpoint(self) -> None:
        """Nothing: PostgreSQL recycles its own write-ahead log."""

    def stores_database(self) -> SQLDatabase:
        return self.sql

    def close(self) -> None:
        if not self._closed:
            self.sql.close()
            self._closed = True


def open_database(location: str | os.PathLike[str]) -> PSDatabase:
    """The PS database at ``location``: a ``postgresql://`` (or ``postgres://``) URL, a
    SQLite file, or ``":memory:"``."""
    if is_postgres_url(location):
        return PostgresPSDatabase(os.fspath(location))
    return PSDatabase(location)


__all__ = ["SCHEMA_VERSION", "PSDatabase", "PostgresPSDatabase", "open_database"]
