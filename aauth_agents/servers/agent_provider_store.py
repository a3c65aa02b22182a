"""What the agent provider remembers, in SQLite (§Agent Token, §Sub-Agents, §Token
Revocation): enrolment codes, enrolled agents and sub-agents (:class:`AgentRecord`), and the
agent tokens it issued, which :meth:`~.agent_provider.AgentProviderServer.revoke_agent` asks
each PS to revoke (:class:`RevocationOutcome`, :class:`RevocationResult`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


__all__ = ["AgentRecord", "RevocationOutcome", "RevocationResult"]
