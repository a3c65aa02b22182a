"""The dashboard's reads (§Agent-Person Binding, §Mission Log: the person's view of their
agents and missions), a page at a time: each list is counted and one page of it read, and
what a page shows about its items -- consents, live auth tokens, active missions, recent log
entries -- is read for all of them in one query, never one query per item. Each query is
served by an index on the account (``ps_bindings_listed``, ``ps_missions_listed``) or on
the page's own items, so a page costs the same however much the person has.

Lists of keys go to the database as one JSON array parameter (SQLite's ``json_each``,
PostgreSQL's ``jsonb_array_elements``: the statements that read them are written for each
engine), so a statement's text never depends on the page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ...stores.sql import IN_KEYS, POSTGRESQL, SQLITE
from .database import PSDatabase
from .state import (
    _AT_COLUMNS,
    _MISSION_COLUMNS,
    ACTIVE,
    Binding,
    Consent,
    IssuedAuthToken,
    Mission,
    MissionLogEntry,
    _mission,
    _scope_set,
)

#: Items on one page of each dashboard list.
PAGE_SIZE = 10
#: Log entries shown with each mission on the dashboard (the latest; the mission's own page
#: lists them all, a page at a time).
RECENT_LOG = 5
#: Log entries on one page of a mission's own page (short lines: more than a card list).
LOG_PAGE_SIZE = 25
#: The highest page number read from a request (a larger one is the last page anyway).
MAX_PAGE = 1_000_000

Agent = tuple[str, str]  # (agent_iss, agent_id)


@dataclass(frozen=True)
class Page:
    """Page ``number`` (from 1) of a list of ``total`` items, ``size`` a page."""

    number: int
    total: int
    size: int = PAGE_SIZE

    @classmethod
    def of(cls, requested: object, total: int, size: int = PAGE_SIZE) -> Page:
        """The page a request asked for (``requested``: the query parameter) of ``total``
        items: anything but a whole number from 1 is the first page, a number past the
        end the last one."""
        text = requested if isinstance(requested, str) else ""
        number = int(text) if text.isascii() and text.isdigit() and len(text) <= 7 else 1
        last = max(1, -(-total // size))
        return cls(min(max(1, number), last, MAX_PAGE), total, size)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_item(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last_item(self) -> int:
        return min(self.offset + self.size, self.total)


def _keys(values: Sequence[object]) -> str:
    return json.dumps(list(values))


#: The statements over a JSON array of keys, per engine. ``+m.account`` keeps SQLite on the
#: agent index (PostgreSQL plans it so by itself).
_CONSENTS = {
    SQLITE: "FROM json_each(?) AS a JOIN ps_consents AS c "
    "ON c.account = ? AND c.agent_iss = json_extract(a.value, '$[0]') "
    "AND c.agent_id = json_extract(a.value, '$[1]')",
    POSTGRESQL: "FROM jsonb_array_elements(?::jsonb) AS a(value) JOIN ps_consents AS c "
    "ON c.account = ? AND c.agent_iss = a.value->>0 AND c.agent_id = a.value->>1",
}
_MISSIONS = {
    SQLITE: "FROM json_each(?) AS a "
    "JOIN ps_missions AS m ON m.agent_id = json_extract(a.value, '$[1]') "
    "AND m.agent_iss = json_extract(a.value, '$[0]') AND +m.account = ? ",
    POSTGRESQL: "FROM jsonb_array_elements(?::jsonb) AS a(value) "
    "JOIN ps_missions AS m ON m.agent_id = a.value->>1 "
    "AND m.agent_iss = a.value->>0 AND m.account = ? ",
}
_EACH_MISSION = {
    SQLITE: "json_each(?) AS m",
    POSTGRESQL: "jsonb_array_elements_text(?::jsonb) AS m(value)",
}


class DashboardQueries:
    """The dashboard's queries over one :class:`PSDatabase` (synchronous and short; the
    server runs them through :meth:`~.database.PSDatabase.run`)."""

    def __init__(self, db: PSDatabase) -> None:
        self.db = db
        dialect = db.dialect
        self._consents, self._in_keys = _CONSENTS[dialect], IN_KEYS[dialect]
        self._missions, self._each_mission = _MISSIONS[dialect], _EACH_MISSION[dialect]

    def _count(self, sql: str, params: Sequence[object]) -> int:
        row = self.db.fetchone(sql, params)
        return int(row[0]) if row else 0

    # -- agents ------------------------------------------------------------------------------

    def count_bindings(self, account: str) -> int:
        return self._count("SELECT COUNT(*) FROM ps_bindings WHERE account = ?", (account,))

    def bindings_page(self, account: str, page: Page) -> list[Binding]:
        """The agents of ``account`` on ``page``, the first connected first."""
        rows = self.db.fetchall(
            "SELECT agent_iss, agent_id, account, created_at, how FROM ps_bindings "
            "WHERE account = ? ORDER BY created_at, agent_iss, agent_id LIMIT ? OFFSET ?",
            (account, page.size, page.offset),
        )
        return [Binding(*row) for row in rows]

    def consents_of(self, account: str, agents: Sequence[Agent]) -> list[Consent]:
        """What ``account`` allowed each of ``agents``, oldest first."""
        rows = self.db.fetchall(
            "SELECT c.agent_iss, c.agent_id, c.resource, c.kind, c.mission_s256, c.scope, "
            f"c.created_at {self._consents} ORDER BY c.created_at",
            (_keys(agents), account),
        )
        return [
            Consent(iss, sub, res, kind, mission or None, tuple(sorted(_scope_set(scope))), at)
            for iss, sub, res, kind, mission, scope, at in rows
        ]

    def live_tokens_of(
        self, account: str, agent_ids: Sequence[str], now: float
    ) -> list[IssuedAuthToken]:
        """Unexpired, unrevoked auth tokens bound to or obtained by ``agent_ids``."""
        keys = _keys(agent_ids)
        rows = self.db.fetchall(
            f"SELECT {_AT_COLUMNS} FROM ps_auth_tokens "  # noqa: S608
            f"WHERE (agent_id {self._in_keys} OR requested_by {self._in_keys}) "
            "AND account = ? AND revoked_at IS NULL AND exp > ? ORDER BY iat",
            (keys, keys, account, now),
        )
        return [IssuedAuthToken(*row) for row in rows]

    def active_missions_of(
        self, account: str, agents: Sequence[Agent], now: float
    ) -> dict[Agent, int]:
        """How many active missions each of ``agents`` has (agents with none are left out)."""
        # ``+m.account``: look the agents' missions up by agent, not all the account's.
        rows = self.db.fetchall(
            f"SELECT m.agent_iss, m.agent_id, COUNT(*) {self._missions}"
            "AND m.state = ? AND (m.expires_at IS NULL OR m.expires_at > ?) "
            "GROUP BY m.agent_iss, m.agent_id",
            (_keys(agents), account, ACTIVE, now),
        )
        wanted = set(agents)
        return {(iss, sub): n for iss, sub, n in rows if (iss, sub) in wanted}

    # -- missions ----------------------------------------------------------------------------

    def count_missions(self, account: str) -> int:
        return self._count("SELECT COUNT(*) FROM ps_missions WHERE account = ?", (account,))

    def missions_page(self, account: str, page: Page) -> list[Mission]:
        """The missions of ``account`` on ``page``, the newest first."""
        rows = self.db.fetchall(
            f"SELECT {_MISSION_COLUMNS} FROM ps_missions WHERE account = ? "  # noqa: S608
            "ORDER BY created_at DESC, s256 DESC LIMIT ? OFFSET ?",
            (account, page.size, page.offset),
        )
        return [m for m in map(_mission, rows) if m is not None]

    def log_counts(self, s256s: Sequence[str]) -> dict[str, int]:
        """How many log entries each mission has."""
        rows = self.db.fetchall(
            f"SELECT s256, COUNT(*) FROM ps_mission_log WHERE s256 {self._in_keys} GROUP BY s256",  # noqa: S608
            (_keys(s256s),),
        )
        return {s256: int(n) for s256, n in rows}

    def recent_logs(
        self, s256s: Sequence[str], per_mission: int
    ) -> dict[str, list[MissionLogEntry]]:
        """The latest ``per_mission`` log entries of each mission, in log order: for each,
        the index finds where its last entries start and reads from there, nothing older."""
        rows = self.db.fetchall(
            "SELECT l.s256, l.seq, l.at, l.kind, l.entry, l.entry_s256 "  # noqa: S608
            f"FROM {self._each_mission} JOIN ps_mission_log AS l ON l.s256 = m.value "
            "AND l.seq >= COALESCE((SELECT seq FROM ps_mission_log WHERE s256 = m.value "
            "ORDER BY seq DESC LIMIT 1 OFFSET ?), 0) ORDER BY l.seq",
            (_keys(s256s), max(0, per_mission - 1)),
        )
        logs: dict[str, list[MissionLogEntry]] = {s: [] for s in s256s}
        for s256, seq, at, kind, entry, entry_s256 in rows:
            logs[s256].append(MissionLogEntry(seq, at, kind, bytes(entry), entry_s256))
        return logs

    def log_page(self, s256: str, page: Page) -> list[MissionLogEntry]:
        """One page of a mission's log, in log order."""
        rows = self.db.fetchall(
            "SELECT seq, at, kind, entry, entry_s256 FROM ps_mission_log WHERE s256 = ? "
            "ORDER BY seq LIMIT ? OFFSET ?",
            (s256, page.size, page.offset),
        )
        return [MissionLogEntry(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]


__all__ = ["LOG_PAGE_SIZE", "MAX_PAGE", "PAGE_SIZE", "RECENT_LOG", "DashboardQueries", "Page"]
