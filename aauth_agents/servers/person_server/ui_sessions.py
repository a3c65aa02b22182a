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

import hashlib
import secrets
from dataclasses import dataclass, field

from ...stores.sql import PURGE_BATCH, Connection
from .csrf import new_token
from .database import PSDatabase

#: The most pending requests one browser session keeps a link to (the oldest go first).
MAX_LINKS = 100


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
        """Forget expired sessions, at most :data:`~aauth_agents.stores.sql.PURGE_BATCH` in
        each short transaction (through the expiry index); returns how many."""
        count = 0
        while True:
            with self.db.transaction() as conn:
                batch = self._purge(conn, now, PURGE_BATCH)
            count += batch
            if batch < PURGE_BATCH:
                return count

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

    def _purge(self, conn: Connection, now: float, limit: int | None = None) -> int:
        query = "SELECT id_s256 FROM ps_ui_sessions WHERE expires_at < ? ORDER BY expires_at"
        params: tuple[float, ...] | tuple[float, int] = (now,)
        if limit is not None:
            query, params = query + " LIMIT ?", (now, limit)
        keys = [k for (k,) in conn.execute(query, params).fetchall()]
        for key in keys:
            self._delete(conn, key)
        return len(keys)

    def _make_room(self, conn: Connection, now: float, max_sessions: int) -> None:
        self._purge(conn, now)
        (count,) = conn.execute("SELECT COUNT(*) FROM ps_ui_sessions").fetchone()
        extra = count - max(0, max_sessions - 1)
        if extra > 0:
            for (key,) in conn.execute(
                "SELECT id_s256 FROM ps_ui_sessions "
                "ORDER BY account IS NOT NULL, last_seen, created_at LIMIT ?",
                (extra,),
            ).fetchall():
                self._delete(conn, key)


__all__ = ["MAX_LINKS", "Session", "UISessions", "session_key"]
