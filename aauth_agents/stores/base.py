"""The small protocols a resource keeps its state behind, and the records they hold.

Four stores (ARCHITECTURE.md, Layers: small protocols, sync and async twins):

* :class:`PendingStore` -- pending records of ``202`` flows (§Deferred Responses), updated by
  compare-and-set on a ``version`` so that two concurrent polls never both execute a held
  invocation (§Deferred Delivery).
* :class:`RevocationStore` -- revocations keyed by ``(iss, jti)`` (§Token Revocation: "MUST
  key it by (iss, jti)"), and also by agent (identifier or key thumbprint) and by person
  ``(iss, sub)``; plus the tokens the resource has accepted, so its revocation endpoint can
  tell a known ``(iss, jti)`` from an unknown one.
* :class:`PersonTokenStore` -- the person token each agent key presented, so a step-up
  challenge to a request that carries an auth token still names the person token it rests on
  (§Resource Token Structure, ``presented_jti``).
* :class:`ReplayStore` -- the httpsig :class:`~aauth_agents.httpsig.ReplayCache` protocol with
  an async twin (§Freshness and Replay).
* :class:`AttemptStore` -- counts of attempts per key in a fixed window (wrong passwords,
  wrong interaction codes), so a limit holds across every worker sharing the store.

Every method has an ``a``-prefixed async twin, as :class:`~aauth_agents.tokens.IssuerKeys`
does: the in-memory backends answer inline, the SQLite backend runs its (short, indexed)
statements in a worker thread, and the Redis backend (:mod:`aauth_agents.stores.redis`)
awaits its asyncio client. Stores never read a clock for decisions the caller makes: methods
that depend on time take ``now``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from ..httpsig.verify import ReplayKey
from ..protocol.errors import AAuthError
from .states import PENDING

#: The decoder of what the stores wrote themselves (:meth:`PendingRecord.load_data`).
_STORED = json.JSONDecoder()

#: Seconds a store keeps a record after its pending phase ended.
_PURGE_AFTER = 3600.0


class StoreUnavailableError(AAuthError):
    """A shared store (Redis, PostgreSQL) could not be reached or answered in time: the
    request fails cleanly with ``503`` and ``Retry-After``, nothing was acknowledged, and the
    caller may retry (an agent's poll does, within its deadline)."""

    code = "temporarily_unavailable"
    status = 503

    def __init__(
        self, detail: str = "a store of the server is unavailable", *, retry_after: int = 1
    ):
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


@dataclass(frozen=True)
class PendingRecord:
    """One pending request.

    ``kind`` is the requirement it waits on (``interaction``, ``approval``, ``auth-token``).
    ``agent_jkt`` is the thumbprint of the key that made the request: every poll must be
    signed with it (§Pending URL Security). ``expires_at`` ends the pending phase (a poll
    after it answers ``408 expired``); ``purge_at`` is when a store may forget the record
    (later: a completed deferred delivery is kept until the auth token's ``exp``).
    ``interaction_id`` names the record in the interaction page URL, ``code`` is the
    normalized interaction code. ``data`` holds the rest as JSON (the held invocation, the
    scope, the stored result...). ``version`` increases with every successful replace.
    ``owner`` is the person account the request waits for (a person server lists it on that
    person's dashboard): known at creation, or claimed later by the person who opened it; a
    store sets it once -- a replace may give a record without an owner one, never change it.
    ``code`` lives until the request is decided (:mod:`.states`).
    """

    id: str
    kind: str
    state: str
    agent_jkt: str
    created_at: float
    expires_at: float
    purge_at: float
    interaction_id: str | None = None
    code: str | None = None
    code_attempts: int = 0
    data: Mapping[str, Any] = field(default_factory=dict)
    version: int = 0
    owner: str | None = None

    @classmethod
    def open(
        cls, id: str, kind: str, agent_jkt: str, now: float, lifetime: float, **fields: Any
    ) -> PendingRecord:
        """A new record, ``pending`` for ``lifetime`` seconds from ``now``; a store may forget
        it an hour after that (a completed deferred delivery moves ``purge_at`` later)."""
        expires_at = now + lifetime
        return cls(
            id=id,
            kind=kind,
            state=PENDING,
            agent_jkt=agent_jkt,
            created_at=now,
            expires_at=expires_at,
            purge_at=expires_at + _PURGE_AFTER,
            **fields,
        )

    def evolve(self, **changes: Any) -> PendingRecord:
        """A copy with ``changes`` applied (``version`` is the store's business). The state
        changes only through :func:`~aauth_agents.stores.states.advance`."""
        if "state" in changes:
            raise TypeError("a pending record changes state through states.advance()")
        return replace(self, **changes)

    def data_json(self) -> str:
        return json.dumps(dict(self.data), separators=(",", ":"), sort_keys=True)

    @staticmethod
    def load_data(text: str) -> dict[str, Any]:
        """``data`` read back from a store, which holds only what :meth:`data_json` wrote
        (``json.dumps`` of values parsed strictly when they arrived): the plain decoder
        gives the same values at half the cost of the strict one, which a page listing
        many records would pay for each."""
        value = _STORED.decode(text)
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        return value


@dataclass(frozen=True)
class PersonTokenRecord:
    """What a resource keeps of a verified person token (§Person Token Verification): enough
    to fill ``ps``, ``sub``, ``presented_jti``, ``mission_s256`` and ``tenant`` of a resource
    token minted later for the same agent key. ``exp`` is the person token's."""

    agent_jkt: str
    ps: str
    sub: str
    jti: str
    exp: float
    mission_s256: str | None = None
    tenant: str | None = None

    @property
    def person(self) -> tuple[str, str]:
        return (self.ps, self.sub)


#: What :meth:`RevocationStore.is_revoked` reports: which revocation matched.
REVOKED_TOKEN = "token"  # noqa: S105 (a kind, not a secret)
#: Matched: the agent was revoked (every token of it).
REVOKED_AGENT = "agent"
#: Matched: the person (their PS and subject) was revoked.
REVOKED_PERSON = "person"


@runtime_checkable
class PendingStore(Protocol):
    """Pending records. ``replace`` is a compare-and-set: it stores ``record`` (with
    ``version`` + 1) only if the stored version is ``record.version``."""

    def create(self, record: PendingRecord) -> None:
        """Store a new record; raises ``KeyError`` if the id exists."""
        ...

    def get(self, record_id: str) -> PendingRecord | None: ...

    def get_by_interaction(self, interaction_id: str) -> PendingRecord | None: ...

    def replace(self, record: PendingRecord) -> PendingRecord | None:
        """The stored record (new version) or ``None`` when someone else changed it first or
        it is gone. ``owner`` is kept once set (a record without one takes ``record.owner``)."""
        ...

    def delete(self, record_id: str) -> None: ...

    def open_for_owner(
        self, owner: str, now: float, limit: int = 100, offset: int = 0
    ) -> list[PendingRecord]:
        """The records waiting for ``owner`` (``pending`` or ``interacting``, not past
        ``expires_at``), oldest first (then by id), at most ``limit`` after skipping
        ``offset``. Served by an index on the owner: the cost follows the owner's open
        records, never the whole store."""
        ...

    def count_open_for_owner(self, owner: str, now: float) -> int:
        """How many records :meth:`open_for_owner` would list without a limit."""
        ...

    def purge(self, now: float) -> int:
        """Forget records whose ``purge_at`` has passed; returns how many."""
        ...

    async def acreate(self, record: PendingRecord) -> None: ...

    async def aget(self, record_id: str) -> PendingRecord | None: ...

    async def aget_by_interaction(self, interaction_id: str) -> PendingRecord | None: ...

    async def areplace(self, record: PendingRecord) -> PendingRecord | None: ...

    async def adelete(self, record_id: str) -> None: ...

    async def aopen_for_owner(
        self, owner: str, now: float, limit: int = 100, offset: int = 0
    ) -> list[PendingRecord]: ...

    async def acount_open_for_owner(self, owner: str, now: float) -> int: ...

    async def apurge(self, now: float) -> int: ...


@runtime_checkable
class RevocationStore(Protocol):
    """Revocations, each kept until ``until`` (Unix seconds), and the tokens a resource has
    accepted (:meth:`remember_token`). ``revoke_*`` return True when the entry is new."""

    def revoke_token(self, iss: str, jti: str, until: float) -> bool: ...

    def revoke_agent(self, agent: str, until: float) -> bool:
        """``agent`` is an agent identifier or a JWK thumbprint of an agent key."""
        ...

    def revoke_person(self, iss: str, sub: str, until: float) -> bool: ...

    def is_revoked(
        self,
        *,
        now: float,
        token: tuple[str, str] | None = None,
        agents: Sequence[str] = (),
        person: tuple[str, str] | None = None,
    ) -> str | None:
        """Which revocation (``"token"``, ``"agent"``, ``"person"``) matches, or ``None``."""
        ...

    def remember_token(self, iss: str, jti: str, until: float) -> None: ...

    def is_known(self, iss: str, jti: str, *, now: float) -> bool:
        """True for a remembered or revoked ``(iss, jti)`` not yet past its ``until``."""
        ...

    def purge(self, now: float) -> int: ...

    async def arevoke_token(self, iss: str, jti: str, until: float) -> bool: ...

    async def arevoke_agent(self, agent: str, until: float) -> bool: ...

    async def arevoke_person(self, iss: str, sub: str, until: float) -> bool: ...

    async def ais_revoked(
        self,
        *,
        now: float,
        token: tuple[str, str] | None = None,
        agents: Sequence[str] = (),
        person: tuple[str, str] | None = None,
    ) -> str | None: ...

    async def aremember_token(self, iss: str, jti: str, until: float) -> None: ...

    async def ais_known(self, iss: str, jti: str, *, now: float) -> bool: ...

    async def apurge(self, now: float) -> int: ...


@runtime_checkable
class PersonTokenStore(Protocol):
    """Person token records keyed by ``(agent_jkt, ps, sub, mission_s256)``; the latest
    ``put`` for a key wins."""

    def put(self, record: PersonTokenRecord) -> None: ...

    def find(
        self, agent_jkt: str, ps: str, sub: str, mission_s256: str | None, *, now: float
    ) -> PersonTokenRecord | None:
        """The unexpired record for that key, or ``None``."""
        ...

    def purge(self, now: float) -> int: ...

    async def aput(self, record: PersonTokenRecord) -> None: ...

    async def afind(
        self, agent_jkt: str, ps: str, sub: str, mission_s256: str | None, *, now: float
    ) -> PersonTokenRecord | None: ...

    async def apurge(self, now: float) -> int: ...


@runtime_checkable
class ReplayStore(Protocol):
    """:class:`~aauth_agents.httpsig.ReplayCache` with an async twin."""

    def check_and_store(self, key: ReplayKey, expires_at: float) -> bool: ...

    async def acheck_and_store(self, key: ReplayKey, expires_at: float) -> bool: ...


@runtime_checkable
class AttemptStore(Protocol):
    """Attempts counted per key in fixed windows: the first attempt opens a window of
    ``window`` seconds, later ones add to it, and the count starts again after it ends (what
    Redis ``INCR`` + ``EXPIRE`` gives). A limit built on it (sign-in attempts, wrong
    interaction codes) holds across every process sharing the store."""

    def hit(self, key: str, *, now: float, window: float) -> int:
        """Count one attempt; returns the count of the key's window, this one included."""
        ...

    def count(self, key: str, *, now: float) -> int:
        """The count of the key's live window (0 when none)."""
        ...

    def clear(self, key: str) -> None:
        """Forget the key's count (a successful sign-in)."""
        ...

    def purge(self, now: float) -> int: ...

    async def ahit(self, key: str, *, now: float, window: float) -> int: ...

    async def acount(self, key: str, *, now: float) -> int: ...

    async def aclear(self, key: str) -> None: ...

    async def apurge(self, now: float) -> int: ...


__all__ = [
    "REVOKED_AGENT",
    "REVOKED_PERSON",
    "REVOKED_TOKEN",
    "AttemptStore",
    "PendingRecord",
    "PendingStore",
    "PersonTokenRecord",
    "PersonTokenStore",
    "ReplayStore",
    "RevocationStore",
    "StoreUnavailableError",
]
