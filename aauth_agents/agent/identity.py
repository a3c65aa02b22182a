"""An agent's identity: its signing key and the agent token that binds it (§Agent Token).

The agent token is refreshed a margin before it expires through ``token_source`` -- a
callable that returns a fresh agent token for the current key (a self-hosted agent provider,
or a call to a remote one). ``generation`` changes whenever the key or token is replaced, so
caches of tokens bound to the old key can tell they are stale (§Person Token Endpoint: a key
rotation invalidates every person token at once).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock, system_clock
from ..keys import PrivateKey
from ..protocol.errors import ConfigurationError
from ..tokens import TYP_AGENT, peek

#: Returns a fresh agent token whose ``cnf`` is ``key``.
TokenSource = Callable[[PrivateKey], str]


@dataclass
class AgentIdentity:
    """``key`` signs every request; ``agent_token`` is presented in ``Signature-Key``."""

    key: PrivateKey
    agent_token: str
    token_source: TokenSource | None = None
    refresh_margin: float = 300.0
    clock: Clock = system_clock
    generation: int = field(default=0, init=False)
    _claims: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._claims = self._read(self.agent_token)

    def _read(self, token: str) -> dict[str, Any]:
        header, claims = peek(token)
        if header.get("typ") != TYP_AGENT:
            raise ConfigurationError("agent_token is not an aa-agent+jwt")
        cnf = claims.get("cnf")
        jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
        if not isinstance(jwk, dict) or not self.key.public_key.same_key(jwk):
            raise ConfigurationError("the agent token's cnf.jwk is not this identity's key")
        return claims

    @property
    def agent_id(self) -> str:
        return str(self._claims.get("sub", ""))

    @property
    def issuer(self) -> str:
        """The agent provider (``iss``)."""
        return str(self._claims.get("iss", ""))

    @property
    def ps(self) -> str | None:
        """The agent's person server (``ps`` claim), if it has one."""
        ps = self._claims.get("ps")
        return ps if isinstance(ps, str) else None

    @property
    def parent_agent(self) -> str | None:
        parent = self._claims.get("parent_agent")
        return parent if isinstance(parent, str) else None

    @property
    def expires_at(self) -> float:
        exp = self._claims.get("exp")
        return float(exp) if isinstance(exp, (int, float)) else 0.0

    def current_token(self) -> str:
        """The agent token, refreshed through ``token_source`` when it is within
        ``refresh_margin`` of ``exp``. Without a source an expiring token is returned as is."""
        if self.token_source is not None and self.expires_at - self.clock() <= self.refresh_margin:
            with self._lock:
                if self.expires_at - self.clock() <= self.refresh_margin:
                    self._replace(self.key, self.token_source(self.key))
        return self.agent_token

    def rotate(self, key: PrivateKey, agent_token: str | None = None) -> None:
        """Switch to ``key``; its agent token comes from ``agent_token`` or ``token_source``."""
        if agent_token is None:
            if self.token_source is None:
                raise ConfigurationError("rotating the key needs an agent token or a token_source")
            agent_token = self.token_source(key)
        with self._lock:
            self._replace(key, agent_token)

    def _replace(self, key: PrivateKey, token: str) -> None:
        previous = self.key
        self.key = key
        try:
            claims = self._read(token)
        except ConfigurationError:
            self.key = previous
            raise
        self.agent_token, self._claims = token, claims
        self.generation += 1


__all__ = ["AgentIdentity", "TokenSource"]
