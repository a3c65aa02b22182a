"""Where token verifiers get issuer keys from (§JWKS Discovery and Caching).

Verifiers never fetch anything themselves: they ask an :class:`IssuerKeys` for the key an
issuer publishes under ``{iss}/.well-known/{dwk}`` with a given ``kid``. The HTTP
implementation (metadata + JWKS fetching, caching, egress admission) lives in
``aauth_agents.discovery``; :class:`StaticIssuerKeys` is the in-memory one, for tests, for
pinned issuers, and for a server verifying its own tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from ..keys import PublicKey
from ..protocol.errors import AAuthError, ConfigurationError, UnknownKeyError


@runtime_checkable
class IssuerKeys(Protocol):
    """Resolves ``(iss, dwk, kid)`` to the issuer's public key.

    Implementations raise :class:`~aauth_agents.protocol.errors.UnknownKeyError` when the
    issuer publishes no key with that ``kid``, and another
    :class:`~aauth_agents.protocol.errors.AAuthError` (e.g. ``DiscoveryError``,
    ``IssuerMismatchError``) when the issuer's keys cannot be obtained. Callers validate
    ``iss`` as a server identifier and ``dwk`` against the token type before asking.
    """

    def get_key(self, iss: str, dwk: str, kid: str) -> PublicKey: ...

    async def aget_key(self, iss: str, dwk: str, kid: str) -> PublicKey: ...


@runtime_checkable
class RefreshableIssuerKeys(IssuerKeys, Protocol):
    """An :class:`IssuerKeys` that can refetch a JWKS when a key fails verification.

    §JWKS Discovery and Caching: when the cached key for ``kid`` fails signature
    verification, the verifier refreshes once and retries -- this covers an issuer replacing
    key material under the same ``kid``. ``refresh_key`` returns the key now under ``kid``,
    ``None`` when nothing was refetched (the once-a-minute floor), or raises
    :class:`~aauth_agents.protocol.errors.UnknownKeyError` when ``kid`` is gone.
    """

    def refresh_key(self, iss: str, dwk: str, kid: str) -> PublicKey | None: ...

    async def arefresh_key(self, iss: str, dwk: str, kid: str) -> PublicKey | None: ...


class StaticIssuerKeys:
    """A fixed mapping ``{(iss, dwk): [PublicKey, ...]}``: no network, no cache expiry.

    Keys without a ``kid`` are accepted but can never be selected, since tokens name their
    key by ``kid``.
    """

    def __init__(
        self,
        entries: Mapping[tuple[str, str], Iterable[PublicKey | Mapping[str, Any]]] | None = None,
    ) -> None:
        self._keys: dict[tuple[str, str], list[PublicKey]] = {}
        for (iss, dwk), keys in (entries or {}).items():
            self.add(iss, dwk, *keys)

    def add(self, iss: str, dwk: str, *keys: PublicKey | Mapping[str, Any]) -> StaticIssuerKeys:
        """Trust ``keys`` (PublicKeys or public JWKs) for ``(iss, dwk)``; returns ``self``."""
        bucket = self._keys.setdefault((iss, dwk), [])
        for key in keys:
            public = key if isinstance(key, PublicKey) else PublicKey.from_jwk(key)
            if public.kid is None:
                raise ConfigurationError("an issuer key needs a kid to be selectable")
            bucket.append(public)
        return self

    def add_jwks(self, iss: str, dwk: str, jwks: Mapping[str, Any]) -> StaticIssuerKeys:
        """Trust every usable key of a JWKS document (``{"keys": [...]}``).

        Like a discovered JWKS, a member this package cannot use is skipped rather than
        making the whole set unusable (§JWKS Discovery and Caching).
        """
        for jwk in jwks.get("keys", []):
            try:
                self.add(iss, dwk, jwk)
            except AAuthError:
                continue
        return self

    def get_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        for key in self._keys.get((iss, dwk), ()):
            if key.kid == kid:
                return key
        raise UnknownKeyError(f"{iss} publishes no {dwk} key with kid {kid!r}")

    async def aget_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        return self.get_key(iss, dwk, kid)


__all__ = ["IssuerKeys", "RefreshableIssuerKeys", "StaticIssuerKeys"]
