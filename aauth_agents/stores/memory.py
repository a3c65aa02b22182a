"""In-process stores: dictionaries behind a lock. Per process, lost on restart; for tests,
development and single-process deployments. The async twins answer inline."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Sequence

from ..clock import Clock, system_clock
from ..httpsig.verify import MemoryReplayCache, ReplayKey
from .base import (
    REVOKED_AGENT,
    REVOKED_PERSON,
    REVOKED_TOKEN,
    PendingRecord,
    PersonTokenRecord,
)
from .states import OPEN


class MemoryPendingStore:
    """:class:`~aauth_agents.stores.PendingStore` in a dict, with an index of each owner's
    open records (``_open``) so that an owner's list never scans the others'."""

    def __init__(self) -> None:
        self._records: dict[str, PendingRecord] = {}
        self._by_interaction: dict[str, str] = {}
        self._open: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def _index(self, record: PendingRecord) -> None:
        """Keep ``_open`` in step with ``record`` (just stored); under the lock."""
        if record.owner is None:
            return
        ids = self._open.setdefault(record.owner, set())
        if record.state in OPEN:
            ids.add(record.id)
        else:
            ids.discard(record.id)
            if not ids:
                del self._open[record.owner]

    def __len__(self) -> int:
        return len(self._records)

    def create(self, record: PendingRecord) -> None:
        with self._lock:
            if record.id in self._records:
                raise KeyError(f"pending record {record.id!r} exists")
            if record.interaction_id is not None:
                if record.interaction_id in self._by_interaction:
                    raise KeyError("interaction id exists")
                self._by_interaction[record.interaction_id] = record.id
            self._records[record.id] = record
            self._index(record)

    def get(self, record_id: str) -> PendingRecord | None:
        return self._records.get(record_id)

    def get_by_interaction(self, interaction_id: str) -> PendingRecord | None:
        record_id = self._by_interaction.get(interaction_id)
        return None if record_id is None else self._records.get(record_id)

    def replace(self, record: PendingRecord) -> PendingRecord | None:
        with self._lock:
            current = self._records.get(record.id)
            if current is None or current.version != record.version:
                return None
            stored = record.evolve(
                version=record.version + 1,
                interaction_id=current.interaction_id,
                # Set once: a record without an owner may be claimed, never handed on.
                owner=current.owner if current.owner is not None else record.owner,
            )
            self._records[record.id] = stored
            self._index(stored)
            return stored

    def delete(self, record_id: str) -> None:
        with self._lock:
            self._forget(record_id)

    def _owners_open(self, owner: str, now: float) -> list[PendingRecord]:
        with self._lock:
            records = [self._records[i] for i in self._open.get(owner, ())]
        return [r for r in records if r.expires_at > now]

    def open_for_owner(
        self, owner: str, now: float, limit: int = 100, offset: int = 0
    ) -> list[PendingRecord]:
        offset, limit = max(0, offset), max(0, limit)
        first = heapq.nsmallest(
            offset + limit, self._owners_open(owner, now), key=lambda r: (r.created_at, r.id)
        )
        return first[offset:]

    def count_open_for_owner(self, owner: str, now: float) -> int:
        return len(self._owners_open(owner, now))

    def _forget(self, record_id: str) -> None:
        record = self._records.pop(record_id, None)
        if record is None:
            return
        if record.interaction_id is not None:
            self._by_interaction.pop(record.interaction_id, None)
        if record.owner is not None and record.owner in self._open:
            ids = self._open[record.owner]
            ids.discard(record_id)
            if not ids:
                del self._open[record.owner]

    def purge(self, now: float) -> int:
        with self._lock:
            old = [r.id for r in self._records.values() if r.purge_at <= now]
            for record_id in old:
                self._forget(record_id)
            return len(old)

    async def acreate(self, record: PendingRecord) -> None:
        self.create(record)

    async def aget(self, record_id: str) -> PendingRecord | None:
        return self.get(record_id)

    async def aget_by_interaction(self, interaction_id: str) -> PendingRecord | None:
        return self.get_by_interaction(interaction_id)

    async def areplace(self, record: PendingRecord) -> PendingRecord | None:
        return self.replace(record)

    async def adelete(self, record_id: str) -> None:
        self.delete(record_id)

    async def aopen_for_owner(
        self, owner: str, now: float, limit: int = 100, offset: int = 0
    ) -> list[PendingRecord]:
        return self.open_for_owner(owner, now, limit, offset)

    async def acount_open_for_owner(self, owner: str, now: float) -> int:
        return self.count_open_for_owner(owner, now)

    async def apurge(self, now: float) -> int:
        return self.purge(now)


def _token_key(iss: str, jti: str) -> tuple[str, str, str]:
    return (REVOKED_TOKEN, iss, jti)


class MemoryRevocationStore:
    """:class:`~aauth_agents.stores.RevocationStore` in dicts."""

    def __init__(self) -> None:
        self._revoked: dict[tuple[str, str, str], float] = {}
        self._known: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._revoked)

    def _revoke(self, key: tuple[str, str, str], until: float) -> bool:
        with self._lock:
            previous = self._revoked.get(key)
            self._revoked[key] = max(until, previous or until)
            return previous is None

    def revoke_token(self, iss: str, jti: str, until: float) -> bool:
        return self._revoke(_token_key(iss, jti), until)

    def revoke_agent(self, agent: str, until: float) -> bool:
        return self._revoke((REVOKED_AGENT, agent, ""), until)

    def revoke_person(self, iss: str, sub: str, until: float) -> bool:
        return self._revoke((REVOKED_PERSON, iss, sub), until)

    def _live(self, key: tuple[str, str, str], now: float) -> bool:
        until = self._revoked.get(key)
        return until is not None and until > now

    def is_revoked(
        self,
        *,
        now: float,
        token: tuple[str, str] | None = None,
        agents: Sequence[str] = (),
        person: tuple[str, str] | None = None,
    ) -> str | None:
        if not self._revoked:
            return None
        if token is not None and self._live(_token_key(*token), now):
            return REVOKED_TOKEN
        if any(self._live((REVOKED_AGENT, agent, ""), now) for agent in agents):
            return REVOKED_AGENT
        if person is not None and self._live((REVOKED_PERSON, *person), now):
            return REVOKED_PERSON
        return None

    def remember_token(self, iss: str, jti: str, until: float) -> None:
        with self._lock:
            self._known[(iss, jti)] = max(until, self._known.get((iss, jti), until))

    def is_known(self, iss: str, jti: str, *, now: float) -> bool:
        until = self._known.get((iss, jti))
        return (until is not None and until > now) or self._live(_token_key(iss, jti), now)

    def purge(self, now: float) -> int:
        with self._lock:
            revoked = [k for k, until in self._revoked.items() if until <= now]
            known = [k for k, until in self._known.items() if until <= now]
            for key in revoked:
                del self._revoked[key]
            for pair in known:
                del self._known[pair]
            return len(revoked) + len(known)

    async def arevoke_token(self, iss: str, jti: str, until: float) -> bool:
        return self.revoke_token(iss, jti, until)

    async def arevoke_agent(self, agent: str, until: float) -> bool:
        return self.revoke_agent(agent, until)

    async def arevoke_person(self, iss: str, sub: str, until: float) -> bool:
        return self.revoke_person(iss, sub, until)

    async def ais_revoked(
        self,
        *,
        now: float,
        token: tuple[str, str] | None = None,
        agents: Sequence[str] = (),
        person: tuple[str, str] | None = None,
    ) -> str | None:
        return self.is_revoked(now=now, token=token, agents=agents, person=person)

    async def aremember_token(self, iss: str, jti: str, until: float) -> None:
        self.remember_token(iss, jti, until)

    async def ais_known(self, iss: str, jti: str, *, now: float) -> bool:
        return self.is_known(iss, jti, now=now)

    async def apurge(self, now: float) -> int:
        return self.purge(now)


def _person_key(
    agent_jkt: str, ps: str, sub: str, mission_s256: str | None
) -> tuple[str, str, str, str]:
    return (agent_jkt, ps, sub, mission_s256 or "")


class MemoryPersonTokenStore:
    """:class:`~aauth_agents.stores.PersonTokenStore` in a dict."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str, str, str], PersonTokenRecord] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._records)

    def put(self, record: PersonTokenRecord) -> None:
        key = _person_key(record.agent_jkt, record.ps, record.sub, record.mission_s256)
        with self._lock:
            self._records[key] = record

    def find(
        self, agent_jkt: str, ps: str, sub: str, mission_s256: str | None, *, now: float
    ) -> PersonTokenRecord | None:
        record = self._records.get(_person_key(agent_jkt, ps, sub, mission_s256))
        return record if record is not None and record.exp > now else None

    def purge(self, now: float) -> int:
        with self._lock:
            old = [k for k, r in self._records.items() if r.exp <= now]
            for key in old:
                del self._records[key]
            return len(old)

    async def aput(self, record: PersonTokenRecord) -> None:
        self.put(record)

    async def afind(
        self, agent_jkt: str, ps: str, sub: str, mission_s256: str | None, *, now: float
    ) -> PersonTokenRecord | None:
        return self.find(agent_jkt, ps, sub, mission_s256, now=now)

    async def apurge(self, now: float) -> int:
        return self.purge(now)


class MemoryReplayStore(MemoryReplayCache):
    """httpsig's bounded :class:`~aauth_agents.httpsig.MemoryReplayCache` with the async twin
    of :class:`~aauth_agents.stores.ReplayStore`."""

    def __init__(self, max_entries: int = 10_000, *, clock: Clock = system_clock) -> None:
        super().__init__(max_entries, clock=clock)

    async def acheck_and_store(self, key: ReplayKey, expires_at: float) -> bool:
        return self.check_and_store(key, expires_at)


class MemoryAttemptStore:
    """:class:`~aauth_agents.stores.AttemptStore` in a dict of at most ``max_keys`` keys (the
    oldest window is dropped first), for one process."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._windows: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, *, now: float, window: float) -> int:
        with self._lock:
            count, until = self._windows.pop(key, (0, 0.0))
            if until <= now:
                count, until = 0, now + window
            self._windows[key] = (count + 1, until)
            if len(self._windows) > self.max_keys:
                self._windows.pop(next(iter(self._windows)))
            return count + 1

    def count(self, key: str, *, now: float) -> int:
        count, until = self._windows.get(key, (0, 0.0))
        return count if until > now else 0

    def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)

    def purge(self, now: float) -> int:
        with self._lock:
            ended = [key for key, (_, until) in self._windows.items() if until <= now]
            for key in ended:
                del self._windows[key]
            return len(ended)

    async def ahit(self, key: str, *, now: float, window: float) -> int:
        return self.hit(key, now=now, window=window)

    async def acount(self, key: str, *, now: float) -> int:
        return self.count(key, now=now)

    async def aclear(self, key: str) -> None:
        self.clear(key)

    async def apurge(self, now: float) -> int:
        return self.purge(now)


__all__ = [
    "MemoryAttemptStore",
    "MemoryPendingStore",
    "MemoryPersonTokenStore",
    "MemoryReplayStore",
    "MemoryRevocationStore",
]
