"""Discovery: metadata documents and JWKS, fetched, validated and cached.

AAuth §JWKS Discovery and Caching, §Identifiers, §Metadata Documents; Signature-Key
§Caching and Performance and "Scheme-Specific Risks" (egress admission).

* :class:`Discovery` / :class:`AsyncDiscovery` -- ``metadata``, ``jwks``, ``get_key`` /
  ``aget_key`` (the token layer's ``IssuerKeys``), ``refresh_key`` / ``arefresh_key``.
* :class:`DiscoveryCache` -- the sans-I/O core both share: caching, the once-a-minute
  refetch floor, stale fallback and backoff.
* :class:`EgressPolicy` -- what may be fetched: https only, no private, loopback or
  link-local destinations unless allowed.

Example::

    with Discovery() as discovery:
        key = discovery.get_key("https://ps.example", "aauth-person.json", kid)
"""

from __future__ import annotations

from .cache import (
    AAUTH_DWKS,
    DEFAULT_TTL,
    MAX_TTL,
    MIN_REFETCH_INTERVAL,
    CacheControl,
    DiscoveryCache,
    Fetch,
    FetchResult,
    freshness_lifetime,
    parse_cache_control,
)
from .client import DEFAULT_TIMEOUT, MAX_DOCUMENT_BYTES, AsyncDiscovery, Discovery
from .egress import EgressPolicy, classify, mapped_resolver, system_resolver

__all__ = [
    "AAUTH_DWKS",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TTL",
    "MAX_DOCUMENT_BYTES",
    "MAX_TTL",
    "MIN_REFETCH_INTERVAL",
    "AsyncDiscovery",
    "CacheControl",
    "Discovery",
    "DiscoveryCache",
    "EgressPolicy",
    "Fetch",
    "FetchResult",
    "classify",
    "freshness_lifetime",
    "mapped_resolver",
    "parse_cache_control",
    "system_resolver",
]
