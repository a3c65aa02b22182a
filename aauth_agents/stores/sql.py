"""One SQL text for two engines: what the SQL stores and the servers' databases need of a
database, and the small translation that runs SQLite's SQL on PostgreSQL.

The statements are written once, in the portable subset both engines share (``INSERT ...
ON CONFLICT DO NOTHING / DO UPDATE``, ``RETURNING``, ``CASE`` instead of the two-argument
``max``), with ``?`` placeholders. :func:`to_postgres` rewrites the placeholders for
psycopg (``%s``); :func:`postgres_ddl` rewrites a schema's types (``REAL`` is a 4-byte
float in PostgreSQL: ``DOUBLE PRECISION``; ``BLOB``: ``BYTEA``; ``INTEGER``: ``BIGINT``;
``INTEGER PRIMARY KEY AUTOINCREMENT``: an identity column). The few statements that differ
beyond that (SQLite's ``rowid``, ``json_each``) are chosen by :attr:`SQLDatabase.dialect`.

A database is a :class:`SQLDatabase`: :class:`~aauth_agents.stores.sqlite.SQLiteDatabase`
(the embedded default) or :class:`~aauth_agents.stores.postgres.PostgresDatabase`
(``postgresql://`` URLs; psycopg is imported only then).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

#: Rows one purge statement deletes at most: each batch is its own short transaction, so a
#: request waiting for the database lock waits for one batch, never for a whole purge.
PURGE_BATCH = 1000
#: Rows the first statement of a purge deletes; the next ones are sized to
#: :data:`PURGE_BUDGET` from the time the last one took.
PURGE_FIRST = 100
#: Rows a purge statement deletes at least, however slow the last one was.
PURGE_MIN = 100
#: How long one purge statement should hold the database, seconds: what a request that finds
#: a purge running waits, at most about, before its own statement runs.
PURGE_BUDGET = 0.005


#: ``IN`` the keys of one JSON array parameter, per engine (SQLite's ``json_each``,
#: PostgreSQL's ``jsonb_array_elements_text``): a statement's text never depends on how many.
IN_KEYS = {
    SQLITE: "IN (SELECT value FROM json_each(?))",
    POSTGRESQL: "IN (SELECT jsonb_array_elements_text(?::jsonb))",
}


class Cursor(Protocol):
    """What a statement returns: its rows and the count of rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """A connection inside a transaction (``sqlite3.Connection`` or its PostgreSQL twin)."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any: ...


class SQLDatabase(Protocol):
    """A database the SQL stores run on: one statement at a time, each atomic."""

    #: :data:`SQLITE` or :data:`POSTGRESQL`.
    dialect: str
    #: The engine's exception for a violated unique or primary key.
    IntegrityError: type[Exception]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    def close(self) -> None: ...


def is_postgres_url(location: str | os.PathLike[str]) -> bool:
    """A ``postgresql://`` or ``postgres://`` URL (anything else is a SQLite path)."""
    text = os.fspath(location)
    return isinstance(text, str) and text.startswith(("postgresql://", "postgres://"))


def redact_url(location: str) -> str:
    """``location`` fit for a log line: a URL's password replaced by ``***``."""
    if not is_postgres_url(location):
        return location
    parts = urllib.parse.urlsplit(location)
    if parts.password is None:
        return location
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


@functools.lru_cache(maxsize=2048)
def to_postgres(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled). The statements
    carry no ``?`` or ``%`` inside string literals (values are always bound)."""
    return sql.replace("%", "%%").replace("?", "%s")


def batch_delete(dialect: str, table: str, where: str, order: str) -> str:
    """A bounded ``DELETE`` of the rows of ``table`` matching ``where``, first by ``order``
    (an indexed column, so the batch is read from the index): rows by their physical
    address (SQLite's ``rowid``, PostgreSQL's ``ctid``); its last parameter is the limit.
    ``table``, ``where`` and ``order`` are constants of the caller, never input."""
    row = "ctid" if dialect == POSTGRESQL else "rowid"
    return (
        f"DELETE FROM {table} WHERE {row} IN (SELECT {row} FROM {table} "  # noqa: S608
        f"WHERE {where} ORDER BY {order} LIMIT ?)"
    )


def next_batch(batch: int, took: float, budget: float = PURGE_BUDGET) -> int:
    """The rows the next purge statement should delete for it to take about ``budget``
    seconds, given that ``batch`` rows took ``took``: at most twice the last batch (a fast
    one may have been lucky), within :data:`PURGE_MIN` .. :data:`PURGE_BATCH`."""
    fitting = batch * budget / took if took > 0 else PURGE_BATCH
    return max(PURGE_MIN, min(PURGE_BATCH, 2 * batch, round(fitting)))


class PurgeBatches:
    """The batches of one purge, sans-I/O (the caller deletes and pauses): :attr:`limit`
    is the size of the next batch; :meth:`done` records how many it deleted and how long it
    took, and says how long to pause before the next one (``None``: the purge is over).

    Each batch is sized to take about ``budget`` seconds (:func:`next_batch`), and after each
    full one the purge pauses as long as the batch took: it holds the database at most half
    the time, and a request (or a statement of one) that waited for a batch runs in the
    pause, instead of queueing behind the whole purge."""

    def __init__(self, budget: float = PURGE_BUDGET) -> None:
        self.budget = budget
        self.limit = PURGE_FIRST
        self.total = 0

    def done(self, count: int, took: float) -> float | None:
        self.total += count
        if count < self.limit:
            return None
        self.limit = next_batch(self.limit, took, self.budget)
        return took


def purge_in_batches(
    delete: Callable[[int], int],
    *,
    budget: float = PURGE_BUDGET,
    timer: Callable[[], float] = time.perf_counter,
    pause: Callable[[float], object] = time.sleep,
) -> int:
    """Call ``delete(limit)`` -- one bounded statement or short transaction (a
    :func:`batch_delete`), committed on its own, returning how many rows it deleted --
    batch after batch (:class:`PurgeBatches`) until one deletes fewer than its limit;
    returns how many rows were deleted in all."""
    batches = PurgeBatches(budget)
    while True:
        start = timer()
        count = delete(batches.limit)
        wait = batches.done(count, timer() - start)
        if wait is None:
            return batches.total
        pause(wait)


async def apurge_in_batches(
    delete: Callable[[int], Awaitable[int]],
    *,
    budget: float = PURGE_BUDGET,
    timer: Callable[[], float] = time.perf_counter,
    pause: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> int:
    """:func:`purge_in_batches` for an event loop: ``delete`` is awaited (a server runs each
    batch where it runs a request's statements) and the pauses are ``asyncio.sleep``, so
    requests are served between batches."""
    batches = PurgeBatches(budget)
    while True:
        start = timer()
        count = await delete(batches.limit)
        wait = batches.done(count, timer() - start)
        if wait is None:
            return batches.total
        await pause(wait)


_IDENTITY = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
_DDL = (
    (re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"), _IDENTITY),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
)


def postgres_ddl(script: str) -> str:
    """A SQLite schema script (upper-case type names) with PostgreSQL's types."""
    for pattern, replacement in _DDL:
        script = pattern.sub(replacement, script)
    return script


__all__ = [
    "IN_KEYS",
    "POSTGRESQL",
    "PURGE_BATCH",
    "PURGE_BUDGET",
    "PURGE_FIRST",
    "PURGE_MIN",
    "SQLITE",
    "Connection",
    "Cursor",
    "PurgeBatches",
    "SQLDatabase",
    "apurge_in_batches",
    "batch_delete",
    "is_postgres_url",
    "next_batch",
    "postgres_ddl",
    "purge_in_batches",
    "redact_url",
    "to_postgres",
]
