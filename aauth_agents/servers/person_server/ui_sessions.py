"""The browser sessions of the person's pages, kept in the PS database.

A session survives a PS restart: the person stays signed in and keeps the pending requests
their browser opened with a code (and the agents' callbacks for them). The database holds
only the SHA-256 of a session id, never the id itself, so a copy of the file does not let
anyone act as a signed-in person. Sessions slide: each use moves ``expires_at`` to
``ttl`` seconds later; at most ``max_sessions`` are kept (anonymous ones go first -- a flood
of fresh sign-in forms must not sign people out -- then the least recently used).

Tables ``ps_ui_sessions`` and ``ps_ui_session_links`` (:mod:`.database`). All methods are
synchronous and short; the UI calls them through
:meth:`~aauth_agents.servers.person_server.PersonServer.run`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from ...stores.sql import IN_KEYS, Connection, batch_delete, purge_in_batches
from .csrf import new_token
from .database import PSDatabase

#: The most pending requests one browser session keeps a link to (the oldest go first).
MAX_LINKS = 100
#: The most sessions a new session clears out (expired, then least recently used): a sign-in
#: never pays for a backlog, housekeeping (:meth:`UISessions.purge`) clears the rest.
ROOM_BATCH = 10


def session_key(session_id: str) -> str:
    """What the database stores for a session id: its SHA-256, hex."""
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class Session:
    """One browser's server-side session. ``id`` is the raw cookie value (in memory only);
    the other fields mirror the stored row and links."""

    id: str
    csrf: str
    account: str | None = None
    login_seq: int = 0
    #: interaction id -> pending id, for the interactions this browser opened with their code.
    interactions: dict[str, str] = field(default_factory=dict)
    #: pending id -> the agent's callback URL (checked against its provider's metadata).
    callbacks: dict[str, str] = field(default_factory=dict)
    #: pending id -> login_seq when the person arrived (for ``prompt=login``).
    arrived: dict[str, int] = field(default_factory=dict)
    last_seen: float = 0.0

    @property
    def key(self) -> str:
        return session_key(self.id)

    def owns(self, pending_id: str) -> bool:
        """The browser opened this pending request with its interaction code."""
        return pending_id in self.interactions.values()


class UISessions:
    """Sessions in one :class:`PSDatabase`."""

    def __init__(self, db: PSDatabase) -> None:
        self.db = db

    def create(self, now: float, ttl: float, max_sessions: int) -> Session:
        """A new anonymous session; expired ones are purged and the least recently used
        dropped beyond ``max_sessions``."""
        session = Session(id=secrets.token_urlsafe(32), csrf=new_token(), last_seen=now)
        with self.db.transaction() as conn:
            self._make_room(conn, now, max_sessions)
            self._insert(conn, session, now, ttl)
        return session

    def load(self, session_id: str, now: float, ttl: float) -> Session | None:
        """The live session with this id (its expiry moved on), or ``None``."""
        if not session_id or len(session_id) > 256:
            return None
        key = session_key(session_id)
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT csrf, account, login_seq, expires_at FROM ps_ui_sessions WHERE id_s256 = ?",
                (key,),
            ).fetchone()
            if row is None:
                return None
            if row[3] < now:
                self._delete(conn, key)
                return None
            conn.execute(
                "UPDATE ps_ui_sessions SET last_seen = ?, expires_at = ? WHERE id_s256 = ?",
                (now, now + ttl, key),
            )
            links = conn.execute(
                "SELECT pending_id, interaction_id, callback, arrived "
                "FROM ps_ui_session_links WHERE session_s256 = ? ORDER BY linked_at",
                (key,),
            ).fetchall()
        session = Session(
            id=session_id, csrf=row[0], account=row[1], login_seq=row[2], last_seen=now
        )
        for pending_id, interaction_id, callback, arrived in links:
            if interaction_id is not None:
                session.interactions[interaction_id] = pending_id
            if callback is not None:
                session.callbacks[pending_id] = callback
            session.arrived[pending_id] = int(arrived)
        return session

    def link(
        self,
        session: Session,
        pending_id: str,
        now: float,
        *,
        interaction_id: str | None = None,
        callback: str | None = None,
        arrived: int | None = None,
    ) -> None:
        """Let ``session`` open ``pending_id`` from now on (arrived at the current
        ``login_seq``, or at ``arrived``: the person saw the request before signing in),
        remembering the interaction it came through and the agent's ``callback``. A second
        link to the same request keeps the first arrival."""
        arrived = session.arrived.get(pending_id, session.login_seq if arrived is None else arrived)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO ps_ui_session_links (session_s256, pending_id, interaction_id, "
                "callback, arrived, linked_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (session_s256, pending_id) DO UPDATE SET "
                "interaction_id = COALESCE(excluded.interaction_id, "
                "ps_ui_session_links.interaction_id), "
                "callback = COALESCE(excluded.callback, ps_ui_session_links.callback)",
                (session.key, pending_id, interaction_id, callback, arrived, now),
            )
            conn.execute(
                "DELETE FROM ps_ui_session_links WHERE session_s256 = ? AND pending_id NOT IN "
                "(SELECT pending_id FROM ps_ui_session_links WHERE session_s256 = ? "
                "ORDER BY linked_at DESC LIMIT ?)",
                (session.key, session.key, MAX_LINKS),
            )
        session.arrived.setdefault(pending_id, arrived)
        if interaction_id is not None:
            session.interactions[interaction_id] = pending_id
        if callback is not None:
            session.callbacks.setdefault(pending_id, callback)

    def sign_in(
        self, old: Session, account: str, now: float, ttl: float, max_sessions: int
    ) -> Session:
        """The session after ``account`` signed in: a new id and CSRF token (the old id is
        worthless from now on), the same links, ``login_seq`` one higher."""
        new = Session(
            id=secrets.token_urlsafe(32),
            csrf=new_token(),
            account=account,
            login_seq=old.login_seq + 1,
            interactions=old.interactions,
            callbacks=old.callbacks,
            arrived=old.arrived,
            last_seen=now,
        )
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE ps_ui_session_links SET session_s256 = ? WHERE session_s256 = ?",
                (new.key, old.key),
            )
            conn.execute("DELETE FROM ps_ui_sessions WHERE id_s256 = ?", (old.key,))
            self._make_room(conn, now, max_sessions)
            self._insert(conn, new, now, ttl)
        return new

    def delete(self, session: Session) -> None:
        with self.db.transaction() as conn:
            self._delete(conn, session.key)

    def purge(self, now: float) -> int:
        """Forget expired sessions and their links, in bounded batches through the expiry
        index, each its own short transaction
        (:func:`~aauth_agents.stores.sql.purge_in_batches`); returns how many."""
        return purge_in_batches(self.purge_batch(now))

    def purge_batch(self, now: float) -> Callable[[int], int]:
        """The delete of one batch of :meth:`purge` (``delete(limit)``: one transaction),
        for a caller that runs the batches itself."""
        return functools.partial(self._purge_batch, now)

    def _purge_batch(self, now: float, limit: int) -> int:
        with self.db.transaction() as conn:
            return self._purge(conn, now, limit)

    def count(self) -> int:
        row = self.db.fetchone("SELECT COUNT(*) FROM ps_ui_sessions")
        return int(row[0]) if row else 0

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _insert(conn: Connection, session: Session, now: float, ttl: float) -> None:
        conn.execute(
            "INSERT INTO ps_ui_sessions (id_s256, csrf, account, login_seq, created_at, "
            "last_seen, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session.key, session.csrf, session.account, session.login_seq, now, now, now + ttl),
        )

    @staticmethod
    def _delete(conn: Connection, key: str) -> None:
        conn.execute("DELETE FROM ps_ui_session_links WHERE session_s256 = ?", (key,))
        conn.execute("DELETE FROM ps_ui_sessions WHERE id_s256 = ?", (key,))

    def _drop(self, conn: Connection, where: str, order: str, params: tuple[object, ...]) -> int:
        """Delete the first sessions by ``order`` matching ``where`` (``params``, then the
        limit) and their links: two statements, however many; returns how many."""
        dialect = self.db.dialect
        deleted = conn.execute(
            batch_delete(dialect, "ps_ui_sessions", where, order) + " RETURNING id_s256", params
        ).fetchall()
        if deleted:
            conn.execute(
                f"DELETE FROM ps_ui_session_links WHERE session_s256 {IN_KEYS[dialect]}",  # noqa: S608
                (json.dumps([key for (key,) in deleted]),),
            )
        return len(deleted)

    def _purge(self, conn: Connection, now: float, limit: int) -> int:
        """At most ``limit`` expired sessions, the longest expired first (the expiry index)."""
        return self._drop(conn, "expires_at < ?", "expires_at", (now, limit))

    def _make_room(self, conn: Connection, now: float, max_sessions: int) -> None:
        """Room for one more session: up to :data:`ROOM_BATCH` expired ones go, then, when
        the store is full, up to as many of the rest (expired ones first, then anonymous
        ones, then the least recently used). The count stops at the bound."""
        self._purge(conn, now, ROOM_BATCH)
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM ps_ui_sessions LIMIT ?) AS s",
            (max_sessions + ROOM_BATCH,),
        ).fetchone()
        extra = min(ROOM_BATCH, count - max(0, max_sessions - 1))
        if extra > 0:
            self._drop(
                conn,
                "1 = 1",
                "expires_at >= ?, account IS NOT NULL, last_seen, created_at",
                (now, extra),
            )


__all__ = ["MAX_LINKS", "Session", "UISessions", "session_key"]
