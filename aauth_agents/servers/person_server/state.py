"""What the person server remembers, as records and the queries over them.

* bindings -- each agent ``(iss, sub)`` belongs to exactly one person (§Agent-Person
  Binding); a second person can never claim it;
* directed identifiers -- one random ``sub`` per ``(person, resource)``, the same in every
  person and auth token for that resource, whatever the agent (§Directed Identifiers);
* consents -- decisions the person made, so the same request is not asked again (§Resource
  Token Structure: "remember prior consent decisions within a mission");
* issued person tokens, kept past ``exp`` for as long as a resource token may name them
  (§Person Token Endpoint, retention obligation);
* issued auth tokens per agent and mission, for revocation fan-out (§Token Revocation);
* missions, their immutable blob and state, and the mission log (§Mission, §Mission Log).

All methods are synchronous and short; the server calls them through
:meth:`~aauth_agents.servers.person_server.database.PSDatabase.run`.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...protocol.encoding import loads_json
from ...protocol.errors import ProtocolError
from ...stores.sql import batch_delete, purge_in_batches
from .database import PSDatabase

ACTIVE = "active"
TERMINATED = "terminated"


class BindingConflictError(ProtocolError):
    """The agent is bound to another person (§Agent-Person Binding: the PS MUST NOT allow a
    different person to claim the same agent)."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"{agent_id} acts for another person", code="access_denied", status=403)
        self.agent_id = agent_id


@dataclass(frozen=True)
class Binding:
    """An agent bound to the person it acts for (§Agent-Person Binding), and how it was
    bound."""

    agent_iss: str
    agent_id: str
    account: str
    created_at: float
    how: str  # "interaction", "configured", "default", "approval"


@dataclass(frozen=True)
class Consent:
    """A decision the person made and the PS remembers: this agent may have ``scopes`` of
    ``kind`` at ``resource`` (within ``mission_s256``, or outside any mission)."""

    agent_iss: str
    agent_id: str
    resource: str
    kind: str
    mission_s256: str | None
    scopes: tuple[str, ...]
    created_at: float


@dataclass(frozen=True)
class IssuedPersonToken:
    """The retained record of a person token (§Person Token Endpoint): enough to answer
    §Resource Token Verification step 6. ``agent_id`` is the agent whose key ``cnf`` binds
    (a sub-agent for a parent-mediated request), ``requested_by`` the agent that asked."""

    jti: str
    aud: str
    sub: str
    account: str
    agent_id: str
    requested_by: str
    mission_s256: str | None
    tenant: str | None
    iat: float
    exp: float


@dataclass(frozen=True)
class IssuedAuthToken:
    """An auth token this PS issued, kept until it expires for revocation fan-out."""

    jti: str
    aud: str
    sub: str
    account: str
    agent_id: str
    requested_by: str
    mission_s256: str | None
    scope: str | None
    iat: float
    exp: float
    revoked_at: float | None = None
    notified_at: float | None = None
    notify_error: str | None = None


@dataclass(frozen=True)
class Mission:
    """An approved mission. ``blob`` is the exact bytes ``s256`` is computed over and the PS
    returns as ``mission`` (§Mission Identifier); ``state`` is ``active`` or ``terminated``
    (§Mission Management), with ``termination_reason`` beside it, never inside the blob."""

    s256: str
    agent_iss: str
    agent_id: str
    account: str
    blob: bytes
    state: str
    termination_reason: str | None
    expires_at: float | None
    capabilities: tuple[str, ...]
    agent_capabilities: tuple[str, ...] | None
    created_at: float
    terminated_at: float | None = None

    @property
    def document(self) -> dict[str, Any]:
        value = loads_json(self.blob)
        return value if isinstance(value, dict) else {}

    @property
    def description(self) -> str:
        return str(self.document.get("description", ""))

    @property
    def approved_tools(self) -> tuple[dict[str, Any], ...]:
        tools = self.document.get("approved_tools") or []
        return tuple(t for t in tools if isinstance(t, dict))

    @property
    def approved_resources(self) -> tuple[str, ...]:
        resources = self.document.get("approved_resources") or []
        return tuple(r for r in resources if isinstance(r, str))

    def active_at(self, now: float) -> bool:
        """Active and not past ``expires_at`` (§Mission Approval: every decision path MUST
        compare the current time to ``expires_at``)."""
        return self.state == ACTIVE and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class MissionLogEntry:
    """One entry of the mission log (§Mission Log). ``entry`` is the persisted JSON bytes;
    ``entry_s256`` is set for accepted updates (§Mission Update)."""

    seq: int
    at: float
    kind: str
    entry: bytes
    entry_s256: str | None

    @property
    def data(self) -> dict[str, Any]:
        value = loads_json(self.entry)
        return value if isinstance(value, dict) else {}


_PT_COLUMNS = "jti, aud, sub, account, agent_id, requested_by, mission_s256, tenant, iat, exp"
_AT_COLUMNS = (
    "jti, aud, sub, account, agent_id, requested_by, mission_s256, scope, iat, exp, "
    "revoked_at, notified_at, notify_error"
)
_MISSION_COLUMNS = (
    "s256, agent_iss, agent_id, account, blob, state, termination_reason, "
    "expires_at, capabilities, agent_capabilities, created_at, terminated_at"
)


def _mission(row: Any) -> Mission | None:
    if row is None:
        return None
    caps = loads_json(row[8])
    agent_caps = None if row[9] is None else loads_json(row[9])
    return Mission(
        s256=row[0],
        agent_iss=row[1],
        agent_id=row[2],
        account=row[3],
        blob=bytes(row[4]),
        state=row[5],
        termination_reason=row[6],
        expires_at=row[7],
        capabilities=tuple(caps),
        agent_capabilities=None if agent_caps is None else tuple(agent_caps),
        created_at=row[10],
        terminated_at=row[11],
    )


#: Revoked, unexpired, not yet acknowledged auth tokens: served by the partial index
#: ``ps_auth_tokens_unnotified`` (its condition must be written the same way).
UNNOTIFIED = "revoked_at IS NOT NULL AND notified_at IS NULL AND exp > ?"


def _scope_set(scope: str) -> frozenset[str]:
    return frozenset(s for s in scope.split(" ") if s)


class PSState:
    """Queries over the PS tables of one :class:`PSDatabase`."""

    def __init__(self, db: PSDatabase) -> None:
        self.db = db

    # -- bindings ------------------------------------------------------------------------------

    def binding(self, agent_iss: str, agent_id: str) -> Binding | None:
        row = self.db.fetchone(
            "SELECT agent_iss, agent_id, account, created_at, how FROM ps_bindings "
            "WHERE agent_iss = ? AND agent_id = ?",
            (agent_iss, agent_id),
        )
        return None if row is None else Binding(*row)

    def bind(
        self, agent_iss: str, agent_id: str, account: str, how: str, now: float
    ) -> tuple[Binding, bool]:
        """Bind the agent to ``account``; ``(binding, created)``. Raises
        :class:`BindingConflictError` when it is bound to someone else."""
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT agent_iss, agent_id, account, created_at, how FROM ps_bindings "
                "WHERE agent_iss = ? AND agent_id = ?",
                (agent_iss, agent_id),
            ).fetchone()
            if row is not None:
                existing = Binding(*row)
                if existing.account != account:
                    raise BindingConflictError(agent_id)
                return existing, False
            conn.execute(
                "INSERT INTO ps_bindings (agent_iss, agent_id, account, created_at, how) "
                "VALUES (?, ?, ?, ?, ?)",
                (agent_iss, agent_id, account, now, how),
            )
        return Binding(agent_iss, agent_id, account, now, how), True

    def unbind(self, agent_iss: str, agent_id: str) -> Binding | None:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT agent_iss, agent_id, account, created_at, how FROM ps_bindings "
                "WHERE agent_iss = ? AND agent_id = ?",
                (agent_iss, agent_id),
            ).fetchone()
            conn.execute(
                "DELETE FROM ps_bindings WHERE agent_iss = ? AND agent_id = ?",
                (agent_iss, agent_id),
            )
            conn.execute(
                "DELETE FROM ps_consents WHERE agent_iss = ? AND agent_id = ?",
                (agent_iss, agent_id),
            )
        return None if row is None else Binding(*row)

    def bindings_for(self, account: str) -> list[Binding]:
        rows = self.db.fetchall(
            "SELECT agent_iss, agent_id, account, created_at, how FROM ps_bindings "
            "WHERE account = ? ORDER BY created_at",
            (account,),
        )
        return [Binding(*row) for row in rows]

    # -- directed identifiers ------------------------------------------------------------------

    def directed_sub(self, account: str, resource: str, now: float) -> str:
        """The person's ``sub`` at ``resource``: random, stored, stable (§Directed
        Identifiers: unique within the issuer, never varying with the agent or its key)."""
        row = self.db.fetchone(
            "SELECT sub FROM ps_subjects WHERE account = ? AND resource = ?", (account, resource)
        )
        if row is not None:
            return str(row[0])
        for _ in range(5):
            candidate = secrets.token_hex(16)
            try:
                self.db.execute(
                    "INSERT INTO ps_subjects (account, resource, sub, created_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (account, resource) DO NOTHING",
                    (account, resource, candidate, now),
                )
            except self.db.IntegrityError:  # the random sub collided: draw again
                continue
            row = self.db.fetchone(
                "SELECT sub FROM ps_subjects WHERE account = ? AND resource = ?",
                (account, resource),
            )
            if row is not None:
                return str(row[0])
        raise RuntimeError("could not allocate a directed identifier")

    def has_subject(self, account: str, resource: str) -> bool:
        return (
            self.db.fetchone(
                "SELECT 1 FROM ps_subjects WHERE account = ? AND resource = ?", (account, resource)
            )
            is not None
        )

    # -- consents ------------------------------------------------------------------------------

    def consent_covers(
        self,
        account: str,
        agent_iss: str,
        agent_id: str,
        resource: str,
        kind: str,
        mission_s256: str | None,
        scopes: Iterable[str],
    ) -> bool:
        """True when the scopes the person granted this agent at ``resource`` (for ``kind``,
        within ``mission_s256`` or outside any mission) include every one of ``scopes``."""
        rows = self.db.fetchall(
            "SELECT scope FROM ps_consents WHERE account = ? AND agent_iss = ? AND agent_id = ? "
            "AND resource = ? AND kind = ? AND mission_s256 = ?",
            (account, agent_iss, agent_id, resource, kind, mission_s256 or ""),
        )
        if not rows:
            return False
        granted: set[str] = set()
        for (scope,) in rows:
            granted |= _scope_set(scope)
        return set(scopes) <= granted

    def remember_consent(
        self,
        account: str,
        agent_iss: str,
        agent_id: str,
        resource: str,
        kind: str,
        mission_s256: str | None,
        scopes: Iterable[str],
        now: float,
    ) -> None:
        scope = " ".join(sorted(set(scopes)))
        self.db.execute(
            "INSERT INTO ps_consents (account, agent_iss, agent_id, resource, kind, "
            "mission_s256, scope, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (account, agent_iss, agent_id, resource, kind, mission_s256 or "", scope, now),
        )

    def consents_for(self, account: str) -> list[Consent]:
        """Every decision ``account`` made that the PS remembers, oldest first."""
        rows = self.db.fetchall(
            "SELECT agent_iss, agent_id, resource, kind, mission_s256, scope, created_at "
            "FROM ps_consents WHERE account = ? ORDER BY created_at",
            (account,),
        )
        return [
            Consent(iss, sub, res, kind, mission or None, tuple(sorted(_scope_set(scope))), at)
            for iss, sub, res, kind, mission, scope, at in rows
        ]

    # -- person tokens -------------------------------------------------------------------------

    def record_person_token(self, record: IssuedPersonToken, retain_until: float) -> None:
        self.db.execute(
            f"INSERT INTO ps_person_tokens ({_PT_COLUMNS}, retain_until) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.jti,
                record.aud,
                record.sub,
                record.account,
                record.agent_id,
                record.requested_by,
                record.mission_s256,
                record.tenant,
                record.iat,
                record.exp,
                retain_until,
            ),
        )

    def person_token(self, jti: str, now: float) -> IssuedPersonToken | None:
        """The retained record of ``jti``, unless its retention window has passed."""
        row = self.db.fetchone(
            f"SELECT {_PT_COLUMNS} FROM ps_person_tokens "  # noqa: S608
            "WHERE jti = ? AND retain_until > ?",
            (jti, now),
        )
        return None if row is None else IssuedPersonToken(*row)

    def resources_since(self, requested_by: str, since: float) -> int:
        """How many distinct resources ``requested_by`` obtained person tokens for since."""
        row = self.db.fetchone(
            "SELECT COUNT(DISTINCT aud) FROM ps_person_tokens WHERE requested_by = ? AND iat >= ?",
            (requested_by, since),
        )
        return int(row[0]) if row else 0

    def had_person_token(self, requested_by: str, resource: str) -> bool:
        return (
            self.db.fetchone(
                "SELECT 1 FROM ps_person_tokens WHERE requested_by = ? AND aud = ? LIMIT 1",
                (requested_by, resource),
            )
            is not None
        )

    # -- auth tokens ---------------------------------------------------------------------------

    def record_auth_token(self, record: IssuedAuthToken) -> None:
        self.db.execute(
            f"INSERT INTO ps_auth_tokens ({_AT_COLUMNS}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.jti,
                record.aud,
                record.sub,
                record.account,
                record.agent_id,
                record.requested_by,
                record.mission_s256,
                record.scope,
                record.iat,
                record.exp,
                record.revoked_at,
                record.notified_at,
                record.notify_error,
            ),
        )

    def auth_token(self, jti: str) -> IssuedAuthToken | None:
        row = self.db.fetchone(f"SELECT {_AT_COLUMNS} FROM ps_auth_tokens WHERE jti = ?", (jti,))  # noqa: S608
        return None if row is None else IssuedAuthToken(*row)

    def _select_auth(self, where: str, params: Sequence[Any]) -> list[IssuedAuthToken]:
        rows = self.db.fetchall(
            f"SELECT {_AT_COLUMNS} FROM ps_auth_tokens WHERE {where} ORDER BY iat",  # noqa: S608
            params,
        )
        return [IssuedAuthToken(*row) for row in rows]

    def live_auth_tokens_for_agent(self, agent_id: str, now: float) -> list[IssuedAuthToken]:
        """Unexpired auth tokens bound to ``agent_id``'s key or obtained by it for a
        sub-agent."""
        return self._select_auth(
            "(agent_id = ? OR requested_by = ?) AND exp > ?", (agent_id, agent_id, now)
        )

    def live_auth_tokens_for_mission(self, s256: str, now: float) -> list[IssuedAuthToken]:
        return self._select_auth("mission_s256 = ? AND exp > ?", (s256, now))

    def auth_tokens_for_account(self, account: str) -> list[IssuedAuthToken]:
        return self._select_auth("account = ?", (account,))

    def mark_revoked(self, jtis: Iterable[str], now: float) -> list[str]:
        """Mark tokens revoked; returns the ``jti`` values newly marked."""
        newly: list[str] = []
        with self.db.transaction() as conn:
            for jti in jtis:
                cursor = conn.execute(
                    "UPDATE ps_auth_tokens SET revoked_at = ? WHERE jti = ? AND revoked_at IS NULL",
                    (now, jti),
                )
                if cursor.rowcount == 1:
                    newly.append(jti)
        return newly

    def mark_notified(self, jti: str, now: float, error: str | None) -> None:
        self.db.execute(
            "UPDATE ps_auth_tokens SET notified_at = ?, notify_error = ? WHERE jti = ?",
            (None if error else now, error, jti),
        )

    def unnotified_revocations(self, now: float) -> list[IssuedAuthToken]:
        """Revoked, unexpired tokens whose resource has not acknowledged the revocation."""
        return self._select_auth(UNNOTIFIED, (now,))

    # -- missions ------------------------------------------------------------------------------

    def create_mission(self, mission: Mission) -> None:
        self.db.execute(
            f"INSERT INTO ps_missions ({_MISSION_COLUMNS}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                mission.s256,
                mission.agent_iss,
                mission.agent_id,
                mission.account,
                mission.blob,
                mission.state,
                mission.termination_reason,
                mission.expires_at,
                json.dumps(list(mission.capabilities)),
                None
                if mission.agent_capabilities is None
                else json.dumps(list(mission.agent_capabilities)),
                mission.created_at,
                mission.terminated_at,
            ),
        )

    def mission(self, s256: str) -> Mission | None:
        query = f"SELECT {_MISSION_COLUMNS} FROM ps_missions WHERE s256 = ?"  # noqa: S608
        return _mission(self.db.fetchone(query, (s256,)))

    def owned_mission(self, s256: str, agent_iss: str, agent_id: str) -> Mission | None:
        """The mission if it exists *and* this agent owns it -- one indexed lookup with both
        conditions, so "no such mission" and "not yours" take the same path (§Mission
        Endpoint Errors)."""
        return _mission(
            self.db.fetchone(
                f"SELECT {_MISSION_COLUMNS} FROM ps_missions "  # noqa: S608
                "WHERE s256 = ? AND agent_iss = ? AND agent_id = ?",
                (s256, agent_iss, agent_id),
            )
        )

    def missions_for_account(self, account: str) -> list[Mission]:
        rows = self.db.fetchall(
            f"SELECT {_MISSION_COLUMNS} FROM ps_missions WHERE account = ? "  # noqa: S608
            "ORDER BY created_at",
            (account,),
        )
        return [m for m in (_mission(r) for r in rows) if m is not None]

    def missions_for_agent(self, agent_id: str) -> list[Mission]:
        rows = self.db.fetchall(
            f"SELECT {_MISSION_COLUMNS} FROM ps_missions WHERE agent_id = ? "  # noqa: S608
            "ORDER BY created_at",
            (agent_id,),
        )
        return [m for m in (_mission(r) for r in rows) if m is not None]

    def terminate_mission(self, s256: str, reason: str, now: float) -> Mission | None:
        """Terminate an active mission; ``None`` when it is unknown or already terminated
        (a terminated mission never returns to active, and keeps its first reason)."""
        changed = self.db.execute(
            "UPDATE ps_missions SET state = ?, termination_reason = ?, terminated_at = ? "
            "WHERE s256 = ? AND state = ?",
            (TERMINATED, reason, now, s256, ACTIVE),
        )
        return self.mission(s256) if changed == 1 else None

    def append_log(
        self, s256: str, kind: str, entry: bytes, now: float, entry_s256: str | None = None
    ) -> int:
        row = self.db.fetchone(
            "INSERT INTO ps_mission_log (s256, at, kind, entry, entry_s256) "
            "VALUES (?, ?, ?, ?, ?) RETURNING seq",
            (s256, now, kind, entry, entry_s256),
        )
        return int(row[0])

    def mission_log(self, s256: str) -> list[MissionLogEntry]:
        rows = self.db.fetchall(
            "SELECT seq, at, kind, entry, entry_s256 FROM ps_mission_log WHERE s256 = ? "
            "ORDER BY seq",
            (s256,),
        )
        return [MissionLogEntry(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    # -- agent tokens seen ----------------------------------------------------------------------

    def remember_agent_token(self, iss: str, jti: str, agent_id: str, exp: float) -> None:
        """Record an agent token that signed a request, so a revocation of ``(iss, jti)``
        can be recognized and traced to its agent (§Token Revocation)."""
        self.db.execute(
            "INSERT INTO ps_agent_tokens (iss, jti, agent_id, exp) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (iss, jti, agent_id, exp),
        )

    def seen_agent_token(self, iss: str, jti: str) -> str | None:
        """The agent identifier of a remembered agent token, or ``None``."""
        row = self.db.fetchone(
            "SELECT agent_id FROM ps_agent_tokens WHERE iss = ? AND jti = ?", (iss, jti)
        )
        return None if row is None else str(row[0])

    # -- housekeeping --------------------------------------------------------------------------

    def purge(self, now: float) -> int:
        """Forget person-token records past retention and expired auth-token and agent-token
        records, in bounded batches through each table's expiry index (each batch its own
        short transaction, so no request waits for more than one)."""
        return sum(purge_in_batches(delete) for delete in self.purge_batches(now))

    def purge_batches(self, now: float) -> list[Callable[[int], int]]:
        """The deletes of one batch of each table :meth:`purge` trims (``delete(limit)``),
        for a caller that runs the batches itself."""
        return [
            functools.partial(
                self._purge_batch, batch_delete(self.db.dialect, t, f"{c} <= ?", c), now
            )
            for t, c in _EXPIRING
        ]

    def _purge_batch(self, sql: str, now: float, limit: int) -> int:
        return self.db.execute(sql, (now, limit))


#: The tables :meth:`PSState.purge` trims, and each one's indexed expiry column.
_EXPIRING = (
    ("ps_person_tokens", "retain_until"),
    ("ps_auth_tokens", "exp"),
    ("ps_agent_tokens", "exp"),
)


__all__ = [
    "ACTIVE",
    "TERMINATED",
    "UNNOTIFIED",
    "Binding",
    "BindingConflictError",
    "Consent",
    "IssuedAuthToken",
    "IssuedPersonToken",
    "Mission",
    "MissionLogEntry",
    "PSState",
]
