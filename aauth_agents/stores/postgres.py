"""PostgreSQL (psycopg 3 and its pool) under the SQL stores and the servers' databases:
what several processes, on one host or many, share.

:class:`PostgresDatabase` is the :class:`~aauth_agents.stores.sql.SQLDatabase` of a
``postgresql://`` URL: a :class:`psycopg_pool.ConnectionPool` of autocommit connections,
each checked before it is handed out (:func:`check_connection`: after PostgreSQL restarts,
the pool reconnects and the next request succeeds), every statement the same SQL the SQLite
backend runs (:func:`~aauth_agents.stores.sql.to_postgres`). Each store operation is one
statement, so a compare-and-set (``UPDATE ... WHERE version = ?``) is atomic across
processes as it is in SQLite. :meth:`PostgresDatabase.transaction` takes a
transaction-scoped advisory lock: like SQLite's ``BEGIN IMMEDIATE``, one read-then-write
unit at a time, across every process.

A database that cannot be reached, shuts down, or answers too slowly raises
:class:`~aauth_agents.stores.StoreUnavailableError` (``503``, ``Retry-After``): an
interrupted transaction was rolled back by the server, nothing was half written, and the
caller may retry. The schema is created at start, idempotently, by as many processes at
once as there are (``CREATE ... IF NOT EXISTS`` under an advisory lock).

This module imports psycopg; the package imports it only when a URL asks for PostgreSQL
(the ``postgres`` extra: ``pip install 'aauth-agents[postgres]'``).
"""

from __future__ import annotations

import re
import select
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.types.string
from psycopg_pool import ConnectionPool

from .base import StoreUnavailableError
from .sql import POSTGRESQL, postgres_ddl, to_postgres
from .sqlite import OLD_INDEXES, OPEN_INDEX, SCHEMA

#: Advisory lock keys: creating a schema, and :meth:`PostgresDatabase.transaction`.
SCHEMA_LOCK = 0x6161_7574_6801
WRITE_LOCK = 0x6161_7574_6802

#: The shared stores' tables (:mod:`.sqlite`'s schema with PostgreSQL's types).
STORES_SCHEMA = (
    postgres_ddl(SCHEMA)
    + "".join(f"DROP INDEX IF EXISTS {index};\n" for index in OLD_INDEXES)
    + OPEN_INDEX
    + ";\n"
)

_UNAVAILABLE = (psycopg.OperationalError,)  # PoolTimeout, AdminShutdown, QueryCanceled...


_ESCAPED = re.compile("\x01([\x01\x02])")
_TEXT_DUMPER: Any = psycopg.types.string.StrDumperUnknown
_TEXT_LOADER: Any = psycopg.types.string.TextLoader


class _NulDumper(_TEXT_DUMPER):  # type: ignore[misc]
    """Text as PostgreSQL can hold it: it refuses NUL, which SQLite and the store protocols
    allow. NUL is written as U+0001 U+0002 and U+0001 itself as U+0001 U+0001 (an injective
    escape: equality, and so every key and lookup, is kept; only text holding either
    character pays for it)."""

    def dump(self, obj: str) -> Any:
        if "\x00" in obj or "\x01" in obj:
            obj = obj.replace("\x01", "\x01\x01").replace("\x00", "\x01\x02")
        return super().dump(obj)


class _NulLoader(_TEXT_LOADER):  # type: ignore[misc]
    """Reads back what :class:`_NulDumper` wrote."""

    def load(self, data: Any) -> str:
        text: str = super().load(data)
        if "\x01" in text:
            text = _ESCAPED.sub(lambda m: "\x01" if m[1] == "\x01" else "\x00", text)
        return text


def check_connection(conn: psycopg.Connection[Any]) -> None:
    """The pool's check of a connection it is about to hand out, a round trip only when in
    doubt. An idle connection whose socket has nothing to read is taken as sound: when
    PostgreSQL shuts down or restarts (fast, or immediate as in a crash) each server process
    says so or closes its socket, which makes the socket readable, and then (or for a
    connection not idle, or known broken) the empty round trip of
    :meth:`ConnectionPool.check_connection <psycopg_pool.ConnectionPool.check_connection>`
    decides, raising for a broken one (the pool replaces it). A round trip per checkout
    would double the round trips of a one-statement operation."""
    pgconn = conn.pgconn
    if (
        pgconn.status == psycopg.pq.ConnStatus.OK
        and pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    ):
        poll = select.poll()
        poll.register(pgconn.socket, select.POLLIN)
        if not poll.poll(0):
            return
    ConnectionPool.check_connection(conn)


class _Rows:
    """A statement's rows, read before its connection went back to the pool."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rowcount: int, rows: list[Any]) -> None:
        self.rowcount = rowcount
        self._rows = rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows


class PostgresConnection:
    """A pooled connection inside a transaction; runs the SQLite-dialect SQL the callers
    write (the counterpart of the ``sqlite3.Connection`` a SQLite transaction yields)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        if parameters:
            return self.raw.execute(to_postgres(sql), parameters)
        return self.raw.execute(sql.encode())  # no placeholders: sent as written


class PostgresDatabase:
    """One PostgreSQL database and the pool of connections the stores share.

    ``schema`` is created at start (default: the shared stores' tables; a server passes its
    own on top). ``timeout`` bounds waiting for a connection (and connecting);
    ``statement_timeout`` each statement, seconds. ``max_size`` connections at most: one per
    worker thread that may run database work at once. ``check``: each connection is checked
    before it is handed out (:func:`check_connection`: its socket polled, an empty round
    trip when in doubt), so none broken by a PostgreSQL restart reaches a request; without
    it, each broken pooled connection fails one request (503) and is replaced."""

    dialect = POSTGRESQL
    IntegrityError: type[Exception] = psycopg.IntegrityError

    def __init__(
        self,
        url: str,
        *,
        schema: str = STORES_SCHEMA,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 3.0,
        statement_timeout: float = 10.0,
        check: bool = True,
    ) -> None:
        self.url = url
        self._statement_timeout = int(statement_timeout * 1000)
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(timeout))},
            configure=self._configure,
            check=self._check if check else None,
            # Give up a failed reconnection soon: the next request that finds the pool short
            # connects afresh, so the first request after PostgreSQL is back succeeds
            # (instead of waiting out an exponential backoff grown during the outage).
            reconnect_timeout=timeout,
            name="aauth-agents",
            open=False,
        )
        try:
            with self._unavailable():
                self.pool.open(wait=True, timeout=timeout)
            self.ensure_schema(schema)
        except BaseException:
            self.pool.close()
            raise

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.adapters.register_dumper(str, _NulDumper)
        conn.adapters.register_loader("text", _NulLoader)
        conn.execute(f"SET statement_timeout = {self._statement_timeout}".encode())

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """:func:`check_connection`; a connection found broken means PostgreSQL restarted,
        and then every connection idle in the pool is broken too: all are replaced at once
        (:meth:`ConnectionPool.check <psycopg_pool.ConnectionPool.check>`), so the caller's
        next try, after the pool's back-off, is handed a new one, not the next broken one."""
        try:
            check_connection(conn)
        except psycopg.Error:
            self.pool.check()
            raise

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        try:
            yield
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"PostgreSQL is unavailable: {exc}") from exc

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit); connection failures raise
        :class:`~aauth_agents.stores.StoreUnavailableError`."""
        with self._unavailable(), self.pool.connection() as conn:
            yield conn

    def ensure_schema(self, script: str) -> None:
        """Create what ``script`` creates unless it exists, while other processes may be
        doing the same (serialized by an advisory lock held to the end of the transaction)."""
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(script.encode())

    @contextmanager
    def transaction(self) -> Iterator[PostgresConnection]:
        """One read-then-write unit: ``BEGIN``, the write lock, ... ``COMMIT`` (``ROLLBACK``
        on error). Two processes never interleave two such units (SQLite's ``BEGIN
        IMMEDIATE``), so a read inside one still holds when it writes."""
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield PostgresConnection(conn)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Rows:
        """One statement, committed; its changed-row count and any rows it returned."""
        with self.connection() as conn:
            cursor = PostgresConnection(conn).execute(sql, params)
            return _Rows(cursor.rowcount, cursor.fetchall() if cursor.description else [])

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self.connection() as conn:
            return PostgresConnection(conn).execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.connection() as conn:
            return PostgresConnection(conn).execute(sql, params).fetchall()

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> PostgresDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["STORES_SCHEMA", "PostgresConnection", "PostgresDatabase", "check_connection"]
