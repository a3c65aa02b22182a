"""The PS's signing keys, their rotation and the JWKS that publishes them.

§JWKS Discovery and Caching: verifiers select a key by ``kid`` and refetch on an unknown one,
so rotation is: sign with a new key from now on, and keep publishing the old one until every
token it signed has expired. Every token this PS signs lives at most
``max_token_lifetime`` seconds (person and auth tokens: at most one hour), so a retired key is
published until ``retired_at + max_token_lifetime`` and dropped afterwards.

Keys the PS generates itself are kept in its database (private JWK; the file is ``0600``).
Keys handed in by configuration are never written there -- only their public half and state,
so a restart that configures a different key rotates to it and keeps the old one published.

Several processes on one database (``serve ps --workers N``, PostgreSQL) each hold a copy;
a rotation at one reaches the others when their copy is ``refresh`` seconds old
(:meth:`SigningKeys.refresh_due` / :meth:`SigningKeys.refresh`): they sign with the new key
and publish it. Time decides, never a request, so at most one read per interval per process
whatever a client sends (a verifier that meets an unknown ``kid`` refetches the JWKS, which
is then at most ``refresh`` seconds behind).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...clock import Clock, system_clock
from ...keys import ED25519, PrivateKey, PublicKey
from ...protocol.encoding import loads_json
from ...protocol.errors import ConfigurationError
from .database import PSDatabase

log = logging.getLogger("aauth_agents.ps")


@dataclass(frozen=True)
class PublishedKey:
    """A key in the JWKS: the current one (``retired_at is None``) or a retired one still
    published until ``publish_until``."""

    key: PublicKey
    created_at: float
    retired_at: float | None
    publish_until: float | None


#: The current key, when the PS generated (and so stored) it.
_CURRENT = (
    "SELECT private_jwk FROM ps_signing_keys WHERE retired_at IS NULL "
    "AND private_jwk IS NOT NULL ORDER BY created_at DESC LIMIT 1"
)
#: The current key of whichever process rotated last (a configured key has no private JWK).
_NEWEST = (
    "SELECT kid, private_jwk FROM ps_signing_keys WHERE retired_at IS NULL "
    "ORDER BY created_at DESC LIMIT 1"
)


def _kid_for(key: PrivateKey) -> str:
    return "ps-" + key.public_key.thumbprint()[:16]


class SigningKeys:
    """The current signing key and the retired keys still published.

    ``configured`` (optional) is the key to sign with, supplied by the operator; otherwise the
    newest key in the database is used, and one is generated (``alg``) on first start.
    ``refresh`` -- seconds this copy is trusted before :meth:`refresh_due` says to re-read
    the database (another process may have rotated).
    """

    def __init__(
        self,
        db: PSDatabase,
        *,
        configured: PrivateKey | None = None,
        alg: str = ED25519,
        max_token_lifetime: int = 3600,
        clock: Clock = system_clock,
        refresh: float = 1.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.refresh_interval = refresh
        self._loaded_at = clock()
        self._foreign: str | None = None
        self.alg = alg
        self.max_token_lifetime = max_token_lifetime
        self._lock = threading.Lock()
        self._current: PrivateKey
        self._published: tuple[PublishedKey, ...] = ()
        if configured is not None:
            if not isinstance(configured, PrivateKey) or not configured.kid:
                raise ConfigurationError("the PS signing key must be a PrivateKey with a kid")
            self._adopt(configured, store_private=False)
        else:
            current = self._load_current()
            if current is None:
                generated = PrivateKey.generate(alg)
                current = PrivateKey.from_jwk({**generated.to_jwk(), "kid": _kid_for(generated)})
                # Unless another worker starting on the same database adopted one first.
                if self._adopt(current, store_private=True, unless_current=True):
                    log.info("generated PS signing key %s", current.kid)
            else:
                self._current = current
        self._reload()

    # -- state ---------------------------------------------------------------------------------

    def _load_current(self) -> PrivateKey | None:
        row = self.db.fetchone(_CURRENT)
        if row is None:
            return None
        jwk = loads_json(row[0])
        return PrivateKey.from_jwk(jwk)

    def _adopt(self, key: PrivateKey, *, store_private: bool, unless_current: bool = False) -> bool:
        """Make ``key`` current, retiring whatever was current before; with
        ``unless_current``, adopt instead the stored current key if there is one (False)."""
        now = self.clock()
        public = json.dumps(key.public_key.to_jwk())
        private = json.dumps(key.to_jwk(private=True)) if store_private else None
        with self.db.transaction() as conn:
            if unless_current:
                found = conn.execute(_CURRENT).fetchone()
                if found is not None:
                    self._current = PrivateKey.from_jwk(loads_json(found[0]))
                    return False
            row = conn.execute(
                "SELECT kid, public_jwk FROM ps_signing_keys WHERE kid = ?", (key.kid,)
            ).fetchone()
            if row is not None and not key.public_key.same_key(loads_json(row[1])):
                raise ConfigurationError(
                    f"kid {key.kid!r} already names a different PS signing key"
                )
            conn.execute(
                "UPDATE ps_signing_keys SET retired_at = ?, publish_until = ? "
                "WHERE retired_at IS NULL AND kid != ?",
                (now, now + self.max_token_lifetime, key.kid),
            )
            if row is None:
                conn.execute(
                    "INSERT INTO ps_signing_keys (kid, public_jwk, private_jwk, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (key.kid, public, private, now),
                )
            else:
                conn.execute(
                    "UPDATE ps_signing_keys SET retired_at = NULL, publish_until = NULL "
                    "WHERE kid = ?",
                    (key.kid,),
                )
        self._current = key
        return True

    def _reload(self) -> None:
        now = self.clock()
        rows = self.db.fetchall(
            "SELECT public_jwk, created_at, retired_at, publish_until FROM ps_signing_keys "
            "WHERE retired_at IS NULL OR publish_until > ? ORDER BY retired_at IS NOT NULL, "
            "created_at DESC",
            (now,),
        )
        published = []
        for public_jwk, created_at, retired_at, publish_until in rows:
            published.append(
                PublishedKey(
                    PublicKey.from_jwk(loads_json(public_jwk)),
                    created_at,
                    retired_at,
                    publish_until,
                )
            )
        with self._lock:
            self._published = tuple(published)
            self._loaded_at = now

    def refresh_due(self) -> bool:
        """True when this copy is ``refresh`` seconds old; the caller then calls
        :meth:`refresh`. Claims the refresh: callers arriving meanwhile are told False, so
        concurrent requests cause one read."""
        now = self.clock()
        with self._lock:
            if 0 <= now - self._loaded_at < self.refresh_interval:
                return False
            self._loaded_at = now
            return True

    def refresh(self) -> None:
        """Re-read the keys: sign with the key another process rotated to (when it stored
        the private key; a key configured in another process is published but cannot be
        signed with here) and publish what the database publishes."""
        row = self.db.fetchone(_NEWEST)
        if row is not None and row[0] != self._current.kid:
            if row[1] is not None:
                old, self._current = self._current.kid, PrivateKey.from_jwk(loads_json(row[1]))
                log.info("PS signing key rotated elsewhere: %s -> %s", old, row[0])
            elif row[0] != self._foreign:  # said once per key, not at every refresh
                self._foreign = row[0]
                log.warning("PS signing key %s was configured in another process", row[0])
        self._reload()

    # -- public --------------------------------------------------------------------------------

    @property
    def current(self) -> PrivateKey:
        """The key new tokens are signed with."""
        return self._current

    def published(self) -> Sequence[PublishedKey]:
        """Keys in the JWKS now: the current one first, then retired ones not yet expired."""
        now = self.clock()
        with self._lock:
            keys = self._published
        if any(k.publish_until is not None and k.publish_until <= now for k in keys):
            self._reload()
            with self._lock:
                keys = self._published
        return keys

    def jwks(self) -> dict[str, Any]:
        """The JWK Set document (public members, ``alg`` and ``kid``)."""
        return {"keys": [k.key.to_jwk() for k in self.published()]}

    def public_keys(self) -> list[PublicKey]:
        return [k.key for k in self.published()]

    def rotate(self, new_key: PrivateKey | None = None) -> PrivateKey:
        """Sign with ``new_key`` (a fresh ``alg`` key when omitted) from now on; the old key
        stays published until the tokens it signed have expired. A generated key is kept in
        the database; a supplied one is not (configure it again on restart)."""
        if new_key is None:
            generated = PrivateKey.generate(self.alg)
            new_key = PrivateKey.from_jwk({**generated.to_jwk(), "kid": _kid_for(generated)})
            store = True
        else:
            if not isinstance(new_key, PrivateKey) or not new_key.kid:
                raise ConfigurationError("the PS signing key must be a PrivateKey with a kid")
            store = False
        old = self._current.kid
        self._adopt(new_key, store_private=store)
        self._reload()
        log.info("rotated PS signing key %s -> %s", old, new_key.kid)
        return new_key

    def purge(self) -> int:
        """Forget retired keys no longer published; returns how many."""
        count = self.db.execute(
            "DELETE FROM ps_signing_keys WHERE retired_at IS NOT NULL AND publish_until <= ?",
            (self.clock(),),
        )
        self._reload()
        return count


__all__ = ["PublishedKey", "SigningKeys"]
