"""Deferred responses at the person server (§Deferred Responses), without the endpoints.

* :class:`Reply` -- a response as status, headers and body, built by the protocol core and
  sent by the ASGI layer.
* :class:`PendingRequest` -- what a pending record's ``data`` holds about the request it
  defers: the agent, the person, the request itself, and the conversation about it.
* :class:`Notifier` -- wakes long polls (``Prefer: wait``) when a pending record changes,
  across event loops and threads (the UI may run in another loop than the agent's poll).
* :class:`PollLimiter` -- ``slow_down`` (§Polling Error Codes) for agents polling faster than
  ``poll_burst`` times per ``poll_window``, counted in this process's memory;
  :class:`SharedPollLimiter` the same limit counted in an
  :class:`~aauth_agents.stores.AttemptStore` shared by every worker (N workers would
  otherwise allow N times the rate).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ...clock import Clock
from ...protocol.reply import Reply
from ...stores import AttemptStore
from .policy import ResourceInfo
from .requests import RequestParams


def _resource_info_json(info: ResourceInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "identifier": info.identifier,
        "name": info.name,
        "description": info.description,
        "access_mode": info.access_mode,
        "logo_uri": info.logo_uri,
        "scope_descriptions": dict(info.scope_descriptions),
        "revocation_endpoint": info.revocation_endpoint,
    }


def resource_info_from_json(data: Mapping[str, Any] | None) -> ResourceInfo | None:
    if not data:
        return None
    return ResourceInfo(
        identifier=str(data["identifier"]),
        name=data.get("name"),
        description=data.get("description"),
        access_mode=data.get("access_mode"),
        logo_uri=data.get("logo_uri"),
        scope_descriptions=dict(data.get("scope_descriptions") or {}),
        revocation_endpoint=data.get("revocation_endpoint"),
    )


@dataclass(frozen=True)
class PendingRequest:
    """A deferred request, as kept in the ``data`` of its pending record.

    ``agent_id``/``agent_iss`` name the requesting (signing) agent; ``subject_jwk`` is the
    key tokens will be bound to (a sub-agent's for a parent-mediated request, else the
    agent's own), ``subagent``/``subagent_exp`` the sub-agent and its token's ``exp``.
    ``account`` is the person the agent was bound to when it asked (``None``: not bound
    yet -- the approving person is then bound to it). ``request`` holds the kind's own
    members. ``conversation`` is the clarification chat, ``result`` what the decision
    produced, ``error`` the polling error to deliver.
    """

    kind: str
    agent_iss: str
    agent_id: str
    subject_jwk: Mapping[str, Any]
    requirement: str
    request: Mapping[str, Any]
    params: RequestParams = field(default_factory=RequestParams)
    account: str | None = None
    subagent: str | None = None
    subagent_exp: float | None = None
    mission_s256: str | None = None
    resource: ResourceInfo | None = None
    provider_name: str | None = None
    provider_logo: str | None = None
    new_agent: bool = False
    interaction_url: str | None = None
    display_code: str | None = None
    conversation: tuple[Mapping[str, Any], ...] = ()
    result: Mapping[str, Any] | None = None
    error: str | None = None
    reason: str | None = None
    withdrawn: bool = False
    resource_interaction: Mapping[str, Any] | None = None

    def evolve(self, **changes: Any) -> PendingRequest:
        return replace(self, **changes)

    @property
    def open_question(self) -> Mapping[str, Any] | None:
        """The clarification question awaiting the agent's answer, if any."""
        if self.conversation and self.conversation[-1].get("answer") is None:
            return self.conversation[-1]
        return None

    @property
    def rounds(self) -> int:
        return len(self.conversation)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "agent_iss": self.agent_iss,
            "agent_id": self.agent_id,
            "subject_jwk": dict(self.subject_jwk),
            "requirement": self.requirement,
            "request": dict(self.request),
            "params": self.params.to_json(),
            "account": self.account,
            "subagent": self.subagent,
            "subagent_exp": self.subagent_exp,
            "mission_s256": self.mission_s256,
            "resource": _resource_info_json(self.resource),
            "provider_name": self.provider_name,
            "provider_logo": self.provider_logo,
            "new_agent": self.new_agent,
            "interaction_url": self.interaction_url,
            "display_code": self.display_code,
            "conversation": [dict(c) for c in self.conversation],
            "result": None if self.result is None else dict(self.result),
            "error": self.error,
            "reason": self.reason,
            "withdrawn": self.withdrawn,
            "resource_interaction": None
            if self.resource_interaction is None
            else dict(self.resource_interaction),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PendingRequest:
        return cls(
            kind=data["kind"],
            agent_iss=data["agent_iss"],
            agent_id=data["agent_id"],
            subject_jwk=data["subject_jwk"],
            requirement=data["requirement"],
            request=data.get("request") or {},
            params=RequestParams.from_json(data.get("params") or {}),
            account=data.get("account"),
            subagent=data.get("subagent"),
            subagent_exp=data.get("subagent_exp"),
            mission_s256=data.get("mission_s256"),
            resource=resource_info_from_json(data.get("resource")),
            provider_name=data.get("provider_name"),
            provider_logo=data.get("provider_logo"),
            new_agent=bool(data.get("new_agent")),
            interaction_url=data.get("interaction_url"),
            display_code=data.get("display_code"),
            conversation=tuple(data.get("conversation") or ()),
            result=data.get("result"),
            error=data.get("error"),
            reason=data.get("reason"),
            withdrawn=bool(data.get("withdrawn")),
            resource_interaction=data.get("resource_interaction"),
        )


class Notifier:
    """Wakes waiters on a key from any thread or event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def register(self, key: str) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.setdefault(key, set()).add(entry)
        return entry

    def unregister(self, key: str, entry: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(entry)
                if not waiters:
                    del self._waiters[key]

    def notify(self, key: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(key, ()))
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop has closed
                continue

    @staticmethod
    async def wait(entry: tuple[asyncio.AbstractEventLoop, asyncio.Event], timeout: float) -> bool:
        """True when notified before ``timeout`` seconds."""
        if timeout <= 0:
            return entry[1].is_set()
        try:
            await asyncio.wait_for(entry[1].wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


class PollLimiter:
    """At most ``burst`` polls of one pending URL per ``window`` seconds of ``clock``."""

    def __init__(self, clock: Clock, *, burst: int, window: float, max_keys: int = 10_000) -> None:
        self.clock, self.burst, self.window = clock, burst, window
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            start, count = self._seen.get(key, (now, 0))
            if now - start >= self.window:
                start, count = now, 0
            count += 1
            self._seen[key] = (start, count)
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
            return count <= self.burst

    def forget(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)

    async def aallow(self, key: str) -> bool:
        return self.allow(key)

    async def aforget(self, key: str) -> None:
        self.forget(key)


class SharedPollLimiter:
    """:class:`PollLimiter` counted in ``attempts`` (the PS's shared store), so the limit
    holds across every process on one database: one counted attempt per poll."""

    def __init__(self, attempts: AttemptStore, clock: Clock, *, burst: int, window: float) -> None:
        self.attempts, self.clock, self.burst, self.window = attempts, clock, burst, window

    @staticmethod
    def _key(key: str) -> str:
        return "poll:" + key

    async def aallow(self, key: str) -> bool:
        count = await self.attempts.ahit(self._key(key), now=self.clock(), window=self.window)
        return count <= self.burst

    async def aforget(self, key: str) -> None:
        await self.attempts.aclear(self._key(key))


__all__ = [
    "Notifier",
    "PendingRequest",
    "PollLimiter",
    "Reply",
    "SharedPollLimiter",
    "resource_info_from_json",
]
