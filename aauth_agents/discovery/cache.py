"""The sans-I/O core of discovery: what to fetch, when, and what to believe.

Everything that decides lives here and does no I/O; :mod:`aauth_agents.discovery.client`
executes the fetches (sync or async) and feeds the results back. A flow is a generator that
yields :class:`Fetch` effects and receives :class:`FetchResult`s, the same shape as httpx's
``Auth.auth_flow`` (the model of ``sansio.py``).

Rules implemented (AAuth §JWKS Discovery and Caching, §Metadata Documents; Signature-Key
§Caching and Performance):

* Documents are cached per URL for the lifetime their ``Cache-Control: max-age`` (minus
  ``Age``) or ``Expires`` gives, :data:`DEFAULT_TTL` when they say nothing, never more than
  :data:`MAX_TTL` (24 h). ``no-store`` / ``no-cache`` make a document stale at once: it is
  revalidated on next use but kept for the fallback below.
* A URL is fetched at most once per ``min_refetch_interval`` (60 s, the spec's floor: "MUST
  NOT fetch a given issuer's JWKS more frequently than once per minute"). An issuer's JWKS
  lives at the one ``jwks_uri`` its metadata names, so the per-URL floor is the per-issuer
  floor; metadata documents get the same floor.
* An unknown ``kid`` refetches the JWKS once, under the floor; a cached key that failed
  verification may ask for one refresh (:meth:`DiscoveryCache.refresh_key_flow`), under the
  same floor.
* A failed fetch (network error, non-200, bad JSON, invalid document) falls back to the
  cached copy when there is one; repeated failures back off exponentially (60 s, 120 s, ...
  up to ``max_backoff``). With nothing cached the error is raised.
* Cached copies are discarded 24 h after they were fetched, stale or not, "to ensure
  removed keys are no longer trusted".
* The cache is bounded (``max_entries``, least recently used evicted): entries are created
  by unauthenticated callers (Signature-Key: "Verifiers MUST implement cache limits").
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from ..clock import Clock, system_clock
from ..keys import PublicKey
from ..protocol.encoding import loads_json_object
from ..protocol.errors import (
    ConfigurationError,
    DiscoveryError,
    IssuerMismatchError,
    IssuerMissingError,
    UnknownKeyError,
)
from ..protocol.identifiers import validate_https_url, validate_server_identifier

log = logging.getLogger("aauth_agents.discovery")

T = TypeVar("T")

#: Seconds a document is fresh when its response says nothing (``Cache-Control``).
DEFAULT_TTL = 3600.0
#: The longest a document is kept fresh, whatever its response says (seconds).
MAX_TTL = 86400.0
#: The least time between two fetches of one URL (seconds): the specification's floor for
#: an issuer's JWKS, applied to metadata too; a smaller ``min_refetch_interval`` is refused.
MIN_REFETCH_INTERVAL = 60.0
MAX_BACKOFF = 3600.0
MAX_ENTRIES = 1024

#: The dwk names of §Well-Known URI Registrations.
AAUTH_DWKS = ("aauth-agent.json", "aauth-person.json", "aauth-resource.json", "aauth-access.json")
_DWK = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


# --------------------------------------------------------------------------- Cache-Control


@dataclass(frozen=True)
class CacheControl:
    """The ``Cache-Control`` directives discovery acts on (RFC 9111 §5.2.2)."""

    max_age: int | None = None
    no_store: bool = False
    no_cache: bool = False


_DIRECTIVE = re.compile(
    r"""\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,"\s]*))?\s*(?:,|\Z)"""
)
_DELTA_MAX = 2**31  # RFC 9111 §1.2.2: larger delta-seconds are taken as 2147483648


def parse_cache_control(value: str | None) -> CacheControl:
    """Parse a ``Cache-Control`` field value leniently; never raises.

    Unparseable directives are skipped. A ``max-age`` that is not delta-seconds counts as
    ``0`` (stale: revalidate), and of several ``max-age`` directives the smallest wins.
    """
    if not value:
        return CacheControl()
    max_age: int | None = None
    no_store = no_cache = False
    position = 0
    while position < len(value):
        match = _DIRECTIVE.match(value, position)
        if match is None or match.end() == position:
            comma = value.find(",", position)  # skip a malformed directive
            if comma < 0:
                break
            position = comma + 1
            continue
        position = match.end()
        name, argument = match.group(1).lower(), match.group(2)
        if name == "no-store":
            no_store = True
        elif name == "no-cache":
            no_cache = True
        elif name == "max-age":
            seconds = _delta_seconds(argument)
            max_age = seconds if max_age is None else min(max_age, seconds)
    return CacheControl(max_age=max_age, no_store=no_store, no_cache=no_cache)


def _delta_seconds(argument: str | None) -> int:
    if argument is None:
        return 0
    argument = argument.strip('"')
    if not argument.isascii() or not argument.isdigit():
        return 0
    return min(int(argument), _DELTA_MAX) if len(argument) < 12 else _DELTA_MAX


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
        if moment.tzinfo is None:  # "-0000": UTC with no claim about local time
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def freshness_lifetime(
    headers: Mapping[str, str],
    *,
    now: float,
    default_ttl: float = DEFAULT_TTL,
    max_ttl: float = MAX_TTL,
) -> float:
    """Seconds a response stays fresh (RFC 9111 §4.2.1, §4.2.3), clamped to ``[0, max_ttl]``.

    ``headers`` keys are lowercase. ``no-store``/``no-cache`` give ``0``; ``max-age`` beats
    ``Expires`` (counted from ``Date`` when present, else from ``now``; an invalid
    ``Expires`` means already expired); ``Age`` is subtracted; no information gives
    ``default_ttl``.
    """
    directives = parse_cache_control(headers.get("cache-control"))
    if directives.no_store or directives.no_cache:
        return 0.0
    lifetime: float
    if directives.max_age is not None:
        lifetime = float(directives.max_age)
    elif "expires" in headers:
        expires = _http_date(headers.get("expires"))
        origin = _http_date(headers.get("date"))
        lifetime = 0.0 if expires is None else expires - (now if origin is None else origin)
    else:
        lifetime = default_ttl
    age = _delta_seconds(headers.get("age")) if "age" in headers else 0
    return max(0.0, min(lifetime - age, max_ttl))


# --------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Fetch:
    """Effect: GET ``url`` (after egress admission against ``issuer``'s origin)."""

    url: str
    issuer: str


@dataclass(frozen=True)
class FetchResult:
    """What a fetch produced: a response, or ``error`` when none was received.

    ``headers`` keys are lowercase; repeated fields are joined with ``", "``."""

    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None


#: A discovery flow: yields fetches, receives their results, returns ``T``.
Flow = Generator[Fetch, FetchResult, T]


# --------------------------------------------------------------------------- documents


def parse_document(url: str, result: FetchResult) -> dict[str, Any]:
    """The JSON object a fetch returned, or :class:`DiscoveryError`. Only ``200`` counts;
    redirects are not followed (Signature-Key egress admission), so ``3xx`` is a failure.
    Duplicate member names are rejected: two parsers must not see two different issuers."""
    if result.error is not None:
        raise DiscoveryError(f"fetching {url} failed: {result.error}")
    if result.status != 200:
        raise DiscoveryError(f"{url} answered HTTP {result.status}, not 200")
    try:
        return loads_json_object(result.body)
    except ValueError as exc:
        raise DiscoveryError(f"{url} did not return a JSON object: {exc}") from None


def check_metadata(issuer: str, document: Mapping[str, Any]) -> None:
    """§Metadata Documents: ``issuer`` present and byte-equal to the identifier the document
    was fetched under; §Other URLs: ``jwks_uri``, when present, is https."""
    if "issuer" not in document:
        raise IssuerMissingError(f"the metadata of {issuer} has no issuer member")
    if document["issuer"] != issuer:
        raise IssuerMismatchError(
            f"the metadata fetched under {issuer} names issuer {document['issuer']!r}"
        )
    if "jwks_uri" in document:
        try:
            validate_https_url(document["jwks_uri"])
        except ValueError as exc:
            raise DiscoveryError(
                f"the metadata of {issuer} has an invalid jwks_uri: {exc}"
            ) from None


def check_jwks(document: Mapping[str, Any]) -> None:
    """A JWKS is an object with a ``keys`` array (RFC 7517 §5). Its members are *not*
    checked here: only the one a ``kid`` selects must be usable."""
    if not isinstance(document.get("keys"), list):
        raise DiscoveryError("the JWKS has no keys array")


def select_key(keys: list[Any], kid: str) -> Mapping[str, Any] | None:
    """The member whose ``kid`` is ``kid``, ignoring every other member however unusable
    (§JWKS Discovery and Caching: an unknown ``kty``/``alg`` elsewhere must not matter)."""
    matches = [k for k in keys if isinstance(k, Mapping) and k.get("kid") == kid]
    if len(matches) > 1:
        raise DiscoveryError(f"the JWKS has {len(matches)} keys with kid {kid!r}")
    return matches[0] if matches else None


def metadata_url(issuer: str, dwk: str) -> str:
    """``{issuer}/.well-known/{dwk}`` after checking both parts."""
    try:
        validate_server_identifier(issuer)
    except ValueError as exc:
        raise DiscoveryError(str(exc)) from None
    if not isinstance(dwk, str) or not _DWK.match(dwk) or ".." in dwk:
        raise DiscoveryError(f"not a well-known document name: {dwk!r}")
    return f"{issuer}/.well-known/{dwk}"


# --------------------------------------------------------------------------- the cache


@dataclass
class _Slot:
    document: dict[str, Any] | None = None
    fetched_at: float = 0.0
    fresh_until: float = 0.0
    last_attempt: float | None = None
    failures: int = 0
    retry_at: float = 0.0
    last_error: DiscoveryError | None = None


class DiscoveryCache:
    """Cached metadata documents and JWKS, and the flows that fill them.

    One instance per verifier; a sync and an async front end may share it. Safe to use from
    several threads: state changes are small and locked, and each front end merges
    concurrent fetches of one URL into a single request.
    """

    def __init__(
        self,
        *,
        clock: Clock = system_clock,
        default_ttl: float = DEFAULT_TTL,
        max_ttl: float = MAX_TTL,
        min_refetch_interval: float = MIN_REFETCH_INTERVAL,
        max_backoff: float = MAX_BACKOFF,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        if min_refetch_interval < MIN_REFETCH_INTERVAL:
            raise ConfigurationError("JWKS must not be fetched more than once per minute")
        if not 0 <= default_ttl <= max_ttl <= MAX_TTL:
            raise ConfigurationError("need 0 <= default_ttl <= max_ttl <= 24 h")
        if max_entries < 1:
            raise ConfigurationError("max_entries must be positive")
        self.clock = clock
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.min_refetch_interval = min_refetch_interval
        self.max_backoff = max(max_backoff, min_refetch_interval)
        self.max_entries = max_entries
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._lock = threading.Lock()

    # -- flows -------------------------------------------------------------------------

    def metadata_flow(self, issuer: str, dwk: str) -> Flow[dict[str, Any]]:
        """The validated metadata document ``{issuer}/.well-known/{dwk}``."""
        url = metadata_url(issuer, dwk)

        def check(document: dict[str, Any]) -> None:
            check_metadata(issuer, document)

        document, _ = yield from self._document(Fetch(url, issuer), check, refresh=False)
        return document

    def jwks_flow(
        self, issuer: str, dwk: str, *, refresh: bool = False
    ) -> Flow[tuple[list[Any], bool]]:
        """``(keys, fetched)``: the issuer's JWKS members and whether they were fetched just
        now. ``refresh`` refetches even a fresh copy, if the once-a-minute floor allows."""
        metadata = yield from self.metadata_flow(issuer, dwk)
        jwks_uri = metadata.get("jwks_uri")
        if jwks_uri is None:
            raise DiscoveryError(f"the {dwk} metadata of {issuer} has no jwks_uri")
        document, fetched = yield from self._document(
            Fetch(jwks_uri, issuer), check_jwks, refresh=refresh
        )
        keys: list[Any] = document["keys"]
        return keys, fetched

    def key_flow(self, iss: str, dwk: str, kid: str) -> Flow[PublicKey]:
        """The issuer's key ``kid``. An unknown ``kid`` refetches the JWKS once (floor
        permitting) to follow key rotation; still unknown -> :class:`UnknownKeyError`. The
        selected key must carry a fully-specified ``alg`` (:meth:`PublicKey.from_jwk`)."""
        keys, fetched = yield from self.jwks_flow(iss, dwk)
        member = select_key(keys, kid)
        if member is None and not fetched:
            log.info("kid %r unknown at %s; refreshing its JWKS", kid, iss)
            keys, fetched = yield from self.jwks_flow(iss, dwk, refresh=True)
            member = select_key(keys, kid)
        if member is None:
            raise UnknownKeyError(f"{iss} publishes no {dwk} key with kid {kid!r}")
        return PublicKey.from_jwk(member)

    def refresh_key_flow(self, iss: str, dwk: str, kid: str) -> Flow[PublicKey | None]:
        """For a cached key that failed signature verification (§JWKS Discovery and
        Caching: silent re-keying). Refetches the JWKS if the floor allows and returns the
        key now published under ``kid``; ``None`` when no refetch happened (too soon, or the
        fetch failed), i.e. there is nothing new to try. Gone -> :class:`UnknownKeyError`."""
        keys, fetched = yield from self.jwks_flow(iss, dwk, refresh=True)
        if not fetched:
            return None
        member = select_key(keys, kid)
        if member is None:
            raise UnknownKeyError(f"{iss} no longer publishes a {dwk} key with kid {kid!r}")
        return PublicKey.from_jwk(member)

    # -- housekeeping --------------------------------------------------------------------

    def clear(self) -> None:
        """Forget every document and every fetch time."""
        with self._lock:
            self._slots.clear()

    def size(self) -> int:
        """How many URLs the cache holds state for (at most ``max_entries``)."""
        return len(self._slots)

    # -- internals -----------------------------------------------------------------------

    def _slot(self, url: str) -> _Slot:
        with self._lock:
            slot = self._slots.pop(url, None) or _Slot()
            self._slots[url] = slot
            while len(self._slots) > self.max_entries:
                self._slots.popitem(last=False)
            return slot

    def _wait(self, slot: _Slot, now: float) -> float:
        """Seconds before ``slot`` may be fetched again (0 when it may be now)."""
        if slot.last_attempt is None:
            return 0.0
        return max(slot.last_attempt + self.min_refetch_interval, slot.retry_at) - now

    def _document(
        self, fetch: Fetch, check: Callable[[dict[str, Any]], None], *, refresh: bool
    ) -> Flow[tuple[dict[str, Any], bool]]:
        slot = self._slot(fetch.url)
        now = self.clock()
        if slot.document is not None and now >= slot.fetched_at + self.max_ttl:
            log.info("discarding %s: fetched more than %ds ago", fetch.url, self.max_ttl)
            slot.document = None
        if slot.document is not None and now < slot.fresh_until and not refresh:
            return slot.document, False
        wait = self._wait(slot, now)
        if wait > 0:
            if slot.document is not None:
                return slot.document, False
            error = slot.last_error or DiscoveryError("not fetched")
            raise type(error)(f"{error.detail} (next attempt in {wait:.0f}s)")

        result = yield fetch
        now = self.clock()
        slot.last_attempt = now
        try:
            document = parse_document(fetch.url, result)
            check(document)
        except DiscoveryError as error:
            slot.failures = min(slot.failures + 1, 32)
            backoff = self.min_refetch_interval * 2 ** (slot.failures - 1)
            slot.retry_at = now + min(backoff, self.max_backoff)
            slot.last_error = error
            if slot.document is None:
                raise
            log.warning("%s; using the copy fetched %ds ago", error.detail, now - slot.fetched_at)
            return slot.document, False
        lifetime = freshness_lifetime(
            result.headers, now=now, default_ttl=self.default_ttl, max_ttl=self.max_ttl
        )
        slot.document, slot.fetched_at, slot.fresh_until = document, now, now + lifetime
        slot.failures, slot.retry_at, slot.last_error = 0, 0.0, None
        log.debug("fetched %s, fresh for %ds", fetch.url, lifetime)
        return document, True


__all__ = [
    "AAUTH_DWKS",
    "DEFAULT_TTL",
    "MAX_TTL",
    "MIN_REFETCH_INTERVAL",
    "CacheControl",
    "DiscoveryCache",
    "Fetch",
    "FetchResult",
    "Flow",
    "check_jwks",
    "check_metadata",
    "freshness_lifetime",
    "metadata_url",
    "parse_cache_control",
    "parse_document",
    "select_key",
]
