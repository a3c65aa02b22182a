"""Redis stores (redis-py >= 5, its sync and asyncio clients): the state every worker process
and every host serving one identifier shares (issue 15, scale-out).

One :class:`RedisConnection` holds a :class:`redis.Redis` client for the sync methods and a
:class:`redis.asyncio.Redis` client per event loop for the ``a``-prefixed twins, both made
from one URL; every key starts with its ``prefix``. Standalone Redis (or a primary with
replicas): the Lua scripts read keys they derive from others, which Redis Cluster forbids.

* **Atomic where the protocols need it**: creating a pending record (the id and the
  interaction id stay unique), replacing one (a compare-and-set on ``version``, so a held
  invocation executes once, §Deferred Delivery; the owner is set once), counting an attempt
  and upserting a revocation are each one Lua script (:mod:`aauth_agents.stores.redis_scripts`),
  loaded once and run with ``EVALSHA``: one round trip, no other command in between. A
  replay check (§Freshness and Replay) is one ``SET key 1 NX PX``.
* **TTLs instead of sweeps**: every key expires by itself ``grace`` seconds after its time
  (``purge_at``, ``until``, ``exp``, the window's end). Answers never depend on that: reads
  compare the stored time with the caller's ``now`` (stores never read a clock for a decision
  the caller makes), and the connection's clock only sets how long Redis keeps a key, so a
  caller whose clock runs a little behind still finds its entries. A TTL is sent relative
  (``PEXPIRE``), so the Redis host's clock never matters. Per-kind indexes (sorted sets by
  time) let :meth:`purge` forget entries exactly when the caller's ``now`` says; the writes
  prune index entries whose keys Redis has already dropped, so nothing grows without a purge.
* **Unavailable is a 503**: a refused connection, a timeout, a server still loading or
  read-only raises :class:`~aauth_agents.stores.StoreUnavailableError` (``503`` +
  ``Retry-After``). Nothing is retried behind the caller's back (a retried compare-and-set or
  ``SET NX`` could report a loss it won); redis-py replaces a connection the server closed
  before the next command uses it, so the first call after a Redis restart works again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import redis
import redis.asyncio
import redis.exceptions as rx
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript, Script
from redis.retry import Retry

from ..clock import Clock, system_clock
from ..httpsig.verify import ReplayKey
from .base import (
    REVOKED_AGENT,
    REVOKED_PERSON,
    REVOKED_TOKEN,
    PendingRecord,
    PersonTokenRecord,
    StoreUnavailableError,
)
from .redis_scripts import HELPERS, SCRIPTS
from .states import OPEN

log = logging.getLogger("aauth_agents.stores.redis")

#: What makes Redis unavailable rather than the request wrong (BusyLoadingError, a server
#: still loading its data, is a ConnectionError; ReadOnlyError answers writes to a replica).
_UNAVAILABLE: tuple[type[Exception], ...] = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.ReadOnlyError,
    rx.TryAgainError,
    rx.ClusterDownError,
    rx.OutOfMemoryError,
)

#: The longest a key lives (seconds, about 30 years): an ``until`` of ``inf`` still expires.
_FOREVER = 1e9

#: How many index entries one purge script examines (a purge runs it until done).
_PURGE_BATCH = 500


def _unavailable(exc: Exception) -> StoreUnavailableError:
    log.warning("redis unavailable: %s", type(exc).__name__)
    return StoreUnavailableError("the server's Redis store is unavailable")


def _t(value: float) -> str:
    """A time as Redis gets it: ``repr`` round-trips a float exactly."""
    return repr(float(value))


def _name(*parts: object) -> str:
    """A key part made of several strings, unambiguously (a JSON array, ASCII)."""
    return json.dumps(list(parts), separators=(",", ":"))


class RedisConnection:
    """One Redis (``redis://`` or ``rediss://`` URL) and the clients the stores share.

    ``prefix`` starts every key, so several deployments can share one Redis. ``clock`` only
    sets how long keys live (their time + ``grace`` seconds). ``timeout`` bounds connecting
    and each reply; ``health_check_interval`` pings a connection idle that long before
    reusing it (a peer that vanished without closing). :meth:`aclose`, in the event loop
    that used the async twins, closes both clients; :meth:`close` (or ``with``) the sync one.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "aauth:",
        clock: Clock = system_clock,
        grace: float = 60.0,
        timeout: float = 2.0,
        health_check_interval: float = 15.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.clock = clock
        self.grace = grace
        self._options: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "health_check_interval": health_check_interval,
            "socket_keepalive": True,
        }
        self.client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **self._options)
        self._scripts: dict[str, Script] = {
            name: self.client.register_script(HELPERS + source) for name, source in SCRIPTS.items()
        }
        # An asyncio client belongs to the loop its connections were made in: one per loop.
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[redis.asyncio.Redis, dict[str, AsyncScript]]
        ] = weakref.WeakKeyDictionary()

    def _aclient(self) -> tuple[redis.asyncio.Redis, dict[str, AsyncScript]]:
        loop = asyncio.get_running_loop()
        found = self._async.get(loop)
        if found is None:
            client = redis.asyncio.Redis.from_url(
                self.url, retry=AsyncRetry(NoBackoff(), 0), **self._options
            )
            scripts = {
                name: client.register_script(HELPERS + source) for name, source in SCRIPTS.items()
            }
            found = self._async[loop] = (client, scripts)
        return found

    def key(self, *parts: str) -> str:
        return self.prefix + "".join(parts)

    def ttl_ms(self, at: float) -> int:
        """Milliseconds a key about a time ``at`` lives: until ``at + grace`` by the clock."""
        return max(1, math.ceil(min(at + self.grace - self.clock(), _FOREVER) * 1000))

    def prune_before(self) -> str:
        """Index entries scored below this time belong to keys Redis has dropped."""
        return _t(self.clock() - self.grace)

    def call(self, *command: Any) -> Any:
        """One Redis command, its parsed reply."""
        try:
            return self.client.execute_command(*command)  # type: ignore[no-untyped-call]
        except _UNAVAILABLE as exc:
            raise _unavailable(exc) from exc

    def run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """One of the stores' Lua scripts (``EVALSHA``; loaded again after a restart)."""
        try:
            return self._scripts[script](keys=keys, args=args)
        except _UNAVAILABLE as exc:
            raise _unavailable(exc) from exc

    async def acall(self, *command: Any) -> Any:
        try:
            return await self._aclient()[0].execute_command(*command)  # type: ignore[no-untyped-call]
        except _UNAVAILABLE as exc:
            raise _unavailable(exc) from exc

    async def arun(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await self._aclient()[1][script](keys=keys, args=args)
        except _UNAVAILABLE as exc:
            raise _unavailable(exc) from exc

    def purge(self, script: str, index: str, now: float, field: str = "") -> int:
        """Forget the entries ``index`` scores at or before ``now``, a batch per script run."""
        total, examined = 0, _PURGE_BATCH
        while examined == _PURGE_BATCH:
            args = [self.prefix, _t(now), _PURGE_BATCH, field]
            forgotten, examined = self.run(script, [index], args)
            total += int(forgotten)
        return total

    async def apurge(self, script: str, index: str, now: float, field: str = "") -> int:
        total, examined = 0, _PURGE_BATCH
        while examined == _PURGE_BATCH:
            args = [self.prefix, _t(now), _PURGE_BATCH, field]
            forgotten, examined = await self.arun(script, [index], args)
            total += int(forgotten)
        return total

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        found = self._async.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found[0].aclose()
        self.close()

    def __enter__(self) -> RedisConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _pairs(fields: Mapping[str, str]) -> list[str]:
    return [item for pair in fields.items() for item in pair]


def _as_dict(reply: Any) -> dict[str, str]:
    """A hash from ``HGETALL`` (a dict) or from a script (a flat list of pairs)."""
    if isinstance(reply, dict):
        return reply
    items = list(reply or ())
    return dict(zip(items[::2], items[1::2], strict=True))


def _record(reply: Any) -> PendingRecord | None:
    f = _as_dict(reply)
    if not f:
        return None
    return PendingRecord(
        id=f["id"],
        kind=f["kind"],
        state=f["state"],
        agent_jkt=f["agent_jkt"],
        created_at=float(f["created_at"]),
        expires_at=float(f["expires_at"]),
        purge_at=float(f["purge_at"]),
        interaction_id=f.get("interaction_id"),
        code=f.get("code"),
        code_attempts=int(f["code_attempts"]),
        data=PendingRecord.load_data(f["data"]),
        version=int(f["version"]),
        owner=f.get("owner"),
    )


def _fields(record: PendingRecord) -> dict[str, str]:
    """What a replace writes (``id``, ``version``, ``interaction_id`` and ``owner`` are the
    store's); ``code`` only when there is one."""
    fields = {
        "kind": record.kind,
        "state": record.state,
        "agent_jkt": record.agent_jkt,
        "created_at": _t(record.created_at),
        "expires_at": _t(record.expires_at),
        "purge_at": _t(record.purge_at),
        "code_attempts": str(record.code_attempts),
        "data": record.data_json(),
    }
    if record.code is not None:
        fields["code"] = record.code
    return fields


class RedisPendingStore:
    """:class:`~aauth_agents.stores.PendingStore` in Redis: a hash per record
    (``pending:<id>``), ``pending-interaction:<interaction id>`` naming its record, each
    owner's open records in a sorted set by ``created_at`` (``pending-owner:<owner>``; equal
    scores sort by id) and ``pending-purge`` by ``purge_at``."""

    def __init__(self, conn: RedisConnection) -> None:
        self.conn = conn
        self._purge_index = conn.key("pending-purge")

    def _key(self, record_id: str) -> str:
        return self.conn.key("pending:", record_id)

    def _create(self, record: PendingRecord) -> tuple[list[str], list[str]]:
        fields = _fields(record) | {"id": record.id, "version": str(record.version)}
        if record.interaction_id is not None:
            fields["interaction_id"] = record.interaction_id
        if record.owner is not None:
            fields["owner"] = record.owner
        keys = [
            self._key(record.id),
            self._purge_index,
            self.conn.key("pending-interaction:", record.interaction_id or ""),
            self.conn.key("pending-owner:", record.owner or ""),
        ]
        args = [
            self.conn.ttl_ms(record.purge_at),
            _t(record.purge_at),
            _t(record.created_at),
            record.id,
            self.conn.prune_before(),
            "1" if record.interaction_id is not None else "0",
            "1" if record.owner is not None and record.state in OPEN else "0",
            *_pairs(fields),
        ]
        return keys, [str(a) for a in args]

    @staticmethod
    def _created(record: PendingRecord, reply: Any) -> None:
        if reply == 1:
            raise KeyError(f"pending record {record.id!r} exists")
        if reply == 2:
            raise KeyError("interaction id exists")

    def _replace(self, record: PendingRecord) -> tuple[list[str], list[str]]:
        args = [
            str(record.version),
            str(self.conn.ttl_ms(record.purge_at)),
            self.conn.prefix,
            self.conn.prune_before(),
            record.id,
            _t(record.created_at),
            _t(record.purge_at),
            "1" if record.state in OPEN else "0",
            "" if record.owner is None else "=" + record.owner,
            *_pairs(_fields(record)),
        ]
        return [self._key(record.id), self._purge_index], args

    @staticmethod
    def _replaced(record: PendingRecord, reply: Any) -> PendingRecord | None:
        if not reply:
            return None
        owner, interaction_id = reply  # {owner or nil, interaction_id or nil}
        return record.evolve(version=record.version + 1, owner=owner, interaction_id=interaction_id)

    def _owner_open(self, owner: str, now: float, limit: int, offset: int) -> list[str]:
        return [self.conn.prefix, owner, _t(now), str(max(0, offset)), str(limit), *OPEN]

    @staticmethod
    def _matches(record: PendingRecord | None, interaction_id: str) -> PendingRecord | None:
        return record if record is not None and record.interaction_id == interaction_id else None

    def create(self, record: PendingRecord) -> None:
        self._created(record, self.conn.run("create", *self._create(record)))

    def get(self, record_id: str) -> PendingRecord | None:
        return _record(self.conn.call("HGETALL", self._key(record_id)))

    def get_by_interaction(self, interaction_id: str) -> PendingRecord | None:
        key = self.conn.key("pending-interaction:", interaction_id)
        reply = self.conn.run("by_interaction", [key], [self.conn.prefix])
        return self._matches(_record(reply), interaction_id)

    def replace(self, record: PendingRecord) -> PendingRecord | None:
        return self._replaced(record, self.conn.run("replace", *self._replace(record)))

    def delete(self, record_id: str) -> None:
        keys = [self._key(record_id), self._purge_index]
        self.conn.run("delete", keys, [self.conn.prefix, record_id])

    def open_for_owner(
        self, owner: str, now: float, limit: int = 100, offset: int = 0
    ) -> list[PendingRecord]:
        key = self.conn.key("pending-owner:", owner)
        args = self._owner_open(owner, now, max(0, limit), offset)
        reply = self.conn.run("owner_open", [key], args)
        return [r for r in map(_record, reply) if r is not None]

    def count_open_for_owner(self, owner: str, now: float) -> int:
        key = self.conn.key("pending-owner:", owner)
        return int(self.conn.run("owner_open", [key], self._owner_open(owner, now, -1, 0)))

    def purge(self, now: float) -> int:
        return self.conn.purge("pending_purge", self._purge_index, now)

    async def acreate(self, record: PendingRecord) -> None:
        self._created(record, await self.conn.arun("create", *self._create(record)))

    async def aget(self, record_id: str) -> PendingRecord | None:
        return _record(await self.conn.acall("HGETALL", self._key(record_id)))

    async def aget_by_interaction(self, interaction_id: str) -> PendingRecord | None:
        key = self.conn.key("pending-interaction:", interaction_id)
        reply = await self.conn.arun("by_interaction", [key], [self.conn.prefix])
        return self._matches(_record(reply), interaction_id)

    async def areplace(self, record: PendingRecord) -> PendingRecord | None:
        return self._replaced(record, await self.conn.arun("replace", *self._replace(record)))

    async def adelete(self, record_id: str) -> None:
        keys = [self._key(record_id), self._purge_index]
        await self.conn.arun("delete", keys, [self.conn.prefix, record_id])

    async def aopen_for_owner(
        self, owner: str, now: float, limit: int = 100, offset: int = 0
    ) -> list[PendingRecord]:
        key = self.conn.key("pending-owner:", owner)
        args = self._owner_open(owner, now, max(0, limit), offset)
        reply = await self.conn.arun("owner_open", [key], args)
        return [r for r in map(_record, reply) if r is not None]

    async def acount_open_for_owner(self, owner: str, now: float) -> int:
        key = self.conn.key("pending-owner:", owner)
        return int(await self.conn.arun("owner_open", [key], self._owner_open(owner, now, -1, 0)))

    async def apurge(self, now: float) -> int:
        return await self.conn.apurge("pending_purge", self._purge_index, now)


class RedisRevocationStore:
    """:class:`~aauth_agents.stores.RevocationStore` in Redis: ``revoked:<kind, a, b>`` and
    ``known:<iss, jti>`` hold their ``until``, indexed by it in ``revocations-purge``. A
    check is one ``MGET`` of the keys that could match."""

    def __init__(self, conn: RedisConnection) -> None:
        self.conn = conn
        self._index = conn.key("revocations-purge")

    def _upsert(self, member: str, until: float) -> tuple[list[str], list[str]]:
        keys = [self.conn.key(member), self._index]
        args = [_t(until), str(self.conn.ttl_ms(until)), member, self.conn.prune_before()]
        return keys, args

    @staticmethod
    def _revoked(kind: str, a: str, b: str = "") -> str:
        return "revoked:" + _name(kind, a, b)

    def _candidates(
        self,
        token: tuple[str, str] | None,
        agents: Sequence[str],
        person: tuple[str, str] | None,
    ) -> list[tuple[str, str]]:
        """(kind, key) of every revocation that would match, in the order they count."""
        found = [] if token is None else [(REVOKED_TOKEN, self._revoked(REVOKED_TOKEN, *token))]
        found += [(REVOKED_AGENT, self._revoked(REVOKED_AGENT, agent)) for agent in agents]
        if person is not None:
            found.append((REVOKED_PERSON, self._revoked(REVOKED_PERSON, *person)))
        return [(kind, self.conn.key(member)) for kind, member in found]

    @staticmethod
    def _first_live(kinds: Sequence[str], untils: Sequence[str | None], now: float) -> str | None:
        for kind, until in zip(kinds, untils, strict=True):
            if until is not None and float(until) > now:
                return kind
        return None

    def _known_keys(self, iss: str, jti: str) -> list[str]:
        return [
            self.conn.key("known:", _name(iss, jti)),
            self.conn.key(self._revoked(REVOKED_TOKEN, iss, jti)),
        ]

    def revoke_token(self, iss: str, jti: str, until: float) -> bool:
        member = self._revoked(REVOKED_TOKEN, iss, jti)
        return bool(self.conn.run("upsert_max", *self._upsert(member, until)))

    def revoke_agent(self, agent: str, until: float) -> bool:
        member = self._revoked(REVOKED_AGENT, agent)
        return bool(self.conn.run("upsert_max", *self._upsert(member, until)))

    def revoke_person(self, iss: str, sub: str, until: float) -> bool:
        member = self._revoked(REVOKED_PERSON, iss, sub)
        return bool(self.conn.run("upsert_max", *self._upsert(member, until)))

    def is_revoked(
        self,
        *,
        now: float,
        token: tuple[str, str] | None = None,
        agents: Sequence[str] = (),
        person: tuple[str, str] | None = None,
    ) -> str | None:
        candidates = self._candidates(token, agents, person)
        if not candidates:
            return None
        kinds, keys = zip(*candidates, strict=True)
        return self._first_live(kinds, self.conn.call("MGET", *keys), now)

    def remember_token(self, iss: str, jti: str, until: float) -> None:
        self.conn.run("upsert_max", *self._upsert("known:" + _name(iss, jti), until))

    def is_known(self, iss: str, jti: str, *, now: float) -> bool:
        untils = self.conn.call("MGET", *self._known_keys(iss, jti))
        return self._first_live("kr", untils, now) is not None

    def purge(self, now: float) -> int:
        return self.conn.purge("index_purge", self._index, now)

    async def arevoke_token(self, iss: str, jti: str, until: float) -> bool:
        member = self._revoked(REVOKED_TOKEN, iss, jti)
        return bool(await self.conn.arun("upsert_max", *self._upsert(member, until)))

    async def arevoke_agent(self, agent: str, until: float) -> bool:
        member = self._revoked(REVOKED_AGENT, agent)
        return bool(await self.conn.arun("upsert_max", *self._upsert(member, until)))

    async def arevoke_person(self, iss: str, sub: str, until: float) -> bool:
        member = self._revoked(REVOKED_PERSON, iss, sub)
        return bool(await self.conn.arun("upsert_max", *self._upsert(member, until)))

    async def ais_revoked(
        self,
        *,
        now: float,
        token: tuple[str, str] | None = None,
        agents: Sequence[str] = (),
        person: tuple[str, str] | None = None,
    ) -> str | None:
        candidates = self._candidates(token, agents, person)
        if not candidates:
            return None
        kinds, keys = zip(*candidates, strict=True)
        return self._first_live(kinds, await self.conn.acall("MGET", *keys), now)

    async def aremember_token(self, iss: str, jti: str, until: float) -> None:
        await self.conn.arun("upsert_max", *self._upsert("known:" + _name(iss, jti), until))

    async def ais_known(self, iss: str, jti: str, *, now: float) -> bool:
        untils = await self.conn.acall("MGET", *self._known_keys(iss, jti))
        return self._first_live("kr", untils, now) is not None

    async def apurge(self, now: float) -> int:
        return await self.conn.apurge("index_purge", self._index, now)


class RedisPersonTokenStore:
    """:class:`~aauth_agents.stores.PersonTokenStore` in Redis: a hash per
    ``(agent_jkt, ps, sub, mission_s256)`` (``person-token:<...>``), indexed by ``exp`` in
    ``person-tokens-purge``."""

    def __init__(self, conn: RedisConnection) -> None:
        self.conn = conn
        self._index = conn.key("person-tokens-purge")

    @staticmethod
    def _member(agent_jkt: str, ps: str, sub: str, mission_s256: str | None) -> str:
        return "person-token:" + _name(agent_jkt, ps, sub, mission_s256 or "")

    def _put(self, record: PersonTokenRecord) -> tuple[list[str], list[str]]:
        member = self._member(record.agent_jkt, record.ps, record.sub, record.mission_s256)
        fields = {"jti": record.jti, "exp": _t(record.exp)}
        if record.tenant is not None:
            fields["tenant"] = record.tenant
        args = [
            str(self.conn.ttl_ms(record.exp)),
            _t(record.exp),
            member,
            self.conn.prune_before(),
            *_pairs(fields),
        ]
        return [self.conn.key(member), self._index], args

    @staticmethod
    def _found(
        reply: Any, agent_jkt: str, ps: str, sub: str, mission_s256: str | None, now: float
    ) -> PersonTokenRecord | None:
        f = _as_dict(reply)
        if not f or float(f["exp"]) <= now:
            return None
        return PersonTokenRecord(
            agent_jkt=agent_jkt,
            ps=ps,
            sub=sub,
            jti=f["jti"],
            exp=float(f["exp"]),
            mission_s256=mission_s256 or None,
            tenant=f.get("tenant"),
        )

    def put(self, record: PersonTokenRecord) -> None:
        self.conn.run("put_hash", *self._put(record))

    def find(
        self, agent_jkt: str, ps: str, sub: str, mission_s256: str | None, *, now: float
    ) -> PersonTokenRecord | None:
        key = self.conn.key(self._member(agent_jkt, ps, sub, mission_s256))
        reply = self.conn.call("HGETALL", key)
        return self._found(reply, agent_jkt, ps, sub, mission_s256, now)

    def purge(self, now: float) -> int:
        return self.conn.purge("index_purge", self._index, now, "exp")

    async def aput(self, record: PersonTokenRecord) -> None:
        await self.conn.arun("put_hash", *self._put(record))

    async def afind(
        self, agent_jkt: str, ps: str, sub: str, mission_s256: str | None, *, now: float
    ) -> PersonTokenRecord | None:
        key = self.conn.key(self._member(agent_jkt, ps, sub, mission_s256))
        reply = await self.conn.acall("HGETALL", key)
        return self._found(reply, agent_jkt, ps, sub, mission_s256, now)

    async def apurge(self, now: float) -> int:
        return await self.conn.apurge("index_purge", self._index, now, "exp")


class RedisReplayCache:
    """:class:`~aauth_agents.stores.ReplayStore` (and httpsig ``ReplayCache``) in Redis,
    shared by every process and host using it: a check is one ``SET replay:<key> 1 NX PX``,
    the entry living until ``expires_at`` by ``clock`` (as the SQLite cache, it reads the
    clock itself) -- Redis expires it, nothing is purged."""

    def __init__(self, conn: RedisConnection, *, clock: Clock = system_clock) -> None:
        self.conn = conn
        self.clock = clock

    def _key(self, key: ReplayKey) -> str:
        return self.conn.key("replay:", _name(*key))

    def _ttl(self, expires_at: float) -> int:
        # The window is open while expires_at >= now, so an entry lives through that instant.
        return math.floor(min(expires_at - self.clock(), _FOREVER) * 1000) + 1

    def check_and_store(self, key: ReplayKey, expires_at: float) -> bool:
        ttl = self._ttl(expires_at)
        if ttl <= 0:  # already expired: nothing to store; refused only while a live one is
            return not self.conn.call("EXISTS", self._key(key))
        return bool(self.conn.call("SET", self._key(key), "1", "NX", "PX", ttl))

    async def acheck_and_store(self, key: ReplayKey, expires_at: float) -> bool:
        ttl = self._ttl(expires_at)
        if ttl <= 0:
            return not await self.conn.acall("EXISTS", self._key(key))
        return bool(await self.conn.acall("SET", self._key(key), "1", "NX", "PX", ttl))


class RedisAttemptStore:
    """:class:`~aauth_agents.stores.AttemptStore` in Redis: a hash ``attempts:<key>`` of the
    window's ``count`` and ``until``, one script per attempt (the count incremented, or a new
    window opened and set to expire), indexed by ``until`` in ``attempts-purge``."""

    def __init__(self, conn: RedisConnection) -> None:
        self.conn = conn
        self._index = conn.key("attempts-purge")

    def _hit(self, key: str, now: float, window: float) -> tuple[list[str], list[str]]:
        until = now + window
        member = "attempts:" + key
        args = [_t(now), _t(until), str(self.conn.ttl_ms(until)), member]
        return [self.conn.key(member), self._index], [*args, self.conn.prune_before()]

    @staticmethod
    def _count(reply: Sequence[str | None], now: float) -> int:
        count, until = reply
        return int(count) if count is not None and until is not None and float(until) > now else 0

    def hit(self, key: str, *, now: float, window: float) -> int:
        return int(self.conn.run("attempt", *self._hit(key, now, window)))

    def count(self, key: str, *, now: float) -> int:
        reply = self.conn.call("HMGET", self.conn.key("attempts:", key), "count", "until")
        return self._count(reply, now)

    def clear(self, key: str) -> None:
        self.conn.call("DEL", self.conn.key("attempts:", key))

    def purge(self, now: float) -> int:
        return self.conn.purge("index_purge", self._index, now, "until")

    async def ahit(self, key: str, *, now: float, window: float) -> int:
        return int(await self.conn.arun("attempt", *self._hit(key, now, window)))

    async def acount(self, key: str, *, now: float) -> int:
        reply = await self.conn.acall("HMGET", self.conn.key("attempts:", key), "count", "until")
        return self._count(reply, now)

    async def aclear(self, key: str) -> None:
        await self.conn.acall("DEL", self.conn.key("attempts:", key))

    async def apurge(self, now: float) -> int:
        return await self.conn.apurge("index_purge", self._index, now, "until")


__all__ = [
    "RedisAttemptStore",
    "RedisConnection",
    "RedisPendingStore",
    "RedisPersonTokenStore",
    "RedisReplayCache",
    "RedisRevocationStore",
]
