"""Verified tokens, remembered by their exact compact JWS, so a token presented again is not
verified again.

An agent presents the same agent, person or auth token in ``Signature-Key`` on every request
until it expires (§Keying Material); its signature and claims cannot change, so a verifier
that has checked it once needs only the request's own signature afterwards. An entry:

* is keyed by the whole token string (a different token never hits it);
* is used only while ``now < exp`` (never past the token's lifetime), and the cache holds at
  most ``size`` entries, least recently used dropped first;
* is dropped when the token, its agent (identifier or key thumbprint) or its person is
  revoked (§Token Revocation) -- :meth:`VerifiedTokenCache.forget`. The caller still checks
  its revocation store on every request (revocations written by another process reach it
  there); dropping the entry frees it and makes the next use verify again.

The resource verifier (:class:`~aauth_agents.resource.ResourceVerifier`) and the person
server share this one implementation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from ..clock import Clock, system_clock
from ..httpsig.types import SCHEME_JWT, KeyResolution, SignatureKey
from .resolver import PresentedToken
from .types import AgentToken, AuthToken, PersonToken

_PRESENTED = (AgentToken, PersonToken, AuthToken)


def _agents(token: PresentedToken) -> set[str]:
    """The agent identifiers a revocation "of the agent" may name for ``token``."""
    names = {token.cnf.thumbprint()}
    if isinstance(token, AgentToken):
        names.add(token.sub)
        if token.parent_agent:
            names.add(token.parent_agent)
    return names


def _person(token: PresentedToken) -> tuple[str, str] | None:
    return None if isinstance(token, AgentToken) else token.person


class VerifiedTokenCache:
    """At most ``size`` verified tokens, each with the :class:`KeyResolution` its
    verification gave (``context`` is the token); ``size=0`` turns the cache off."""

    def __init__(self, size: int = 4096, *, clock: Clock = system_clock) -> None:
        self.size, self.clock = size, clock
        self._entries: OrderedDict[str, KeyResolution] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: SignatureKey) -> KeyResolution | None:
        """The resolution of ``key``'s token if it was verified and has not expired."""
        raw = key.jwt
        if raw is None or key.scheme != SCHEME_JWT:
            return None
        hit = self._entries.get(raw)
        if hit is None:
            return None
        with self._lock:
            if self.clock() >= hit.context.exp:
                self._entries.pop(raw, None)
                return None
            if raw in self._entries:
                self._entries.move_to_end(raw)
        return hit

    def put(self, key: SignatureKey, resolution: KeyResolution) -> KeyResolution:
        """Remember a verified ``resolution`` of ``key``; returns it."""
        raw = key.jwt
        if self.size and raw is not None and isinstance(resolution.context, _PRESENTED):
            with self._lock:
                self._entries[raw] = resolution
                self._entries.move_to_end(raw)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return resolution

    def forget(
        self,
        *,
        token: tuple[str, str] | None = None,
        agents: Sequence[str] = (),
        person: tuple[str, str] | None = None,
    ) -> int:
        """Drop the entries a revocation matches: the token ``(iss, jti)``, any of
        ``agents``, or ``person`` ``(iss, sub)`` (the arguments of
        :meth:`~aauth_agents.stores.RevocationStore.is_revoked`); returns how many. A scan of
        at most ``size`` entries: revocations are rare next to requests."""
        wanted = set(agents)
        with self._lock:
            dropped = [
                raw
                for raw, resolution in self._entries.items()
                if (token is not None and (resolution.context.iss, resolution.context.jti) == token)
                or (wanted and not wanted.isdisjoint(_agents(resolution.context)))
                or (person is not None and _person(resolution.context) == person)
            ]
            for raw in dropped:
                del self._entries[raw]
        return len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def wrap(
        self, resolve: Callable[[SignatureKey], KeyResolution]
    ) -> Callable[[SignatureKey], KeyResolution]:
        """``resolve`` (a ``scheme=jwt`` resolver) answered from the cache when it can."""

        def cached(key: SignatureKey) -> KeyResolution:
            return self.get(key) or self.put(key, resolve(key))

        return cached

    def awrap(
        self, resolve: Callable[[SignatureKey], Awaitable[KeyResolution]]
    ) -> Callable[[SignatureKey], Awaitable[KeyResolution]]:
        """:meth:`wrap` for an async resolver."""

        async def cached(key: SignatureKey) -> KeyResolution:
            return self.get(key) or self.put(key, await resolve(key))

        return cached


__all__ = ["VerifiedTokenCache"]
