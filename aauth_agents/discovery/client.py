"""The I/O front ends of discovery: :class:`Discovery` (httpx.Client) and
:class:`AsyncDiscovery` (httpx.AsyncClient).

Both drive the flows of :class:`~aauth_agents.discovery.cache.DiscoveryCache`; all they add is
executing a :class:`~aauth_agents.discovery.cache.Fetch`: egress admission, then one ``GET``
with no redirects, a time limit and a size limit (Signature-Key, "Scheme-Specific Risks").

When the front end owns its connection (no ``client`` or ``transport`` given) it connects to
the address egress admission checked, with the original host kept for ``Host`` and TLS, so a
second DNS answer cannot swap in another address (DNS rebinding); such connections are not
kept alive, so a TLS session made for one host is never reused for another on the same
address. With a caller's ``client``/``transport`` (for example a
:class:`~aauth_agents.transport.MappedTransport`), admission still runs on the URL and its
resolved addresses, and the transport decides where the connection goes.

Concurrent first fetches of the same URL share one request (the package's one single-flight
helper, :mod:`aauth_agents.sansio`, which also runs the flows).
"""

from __future__ import annotations

import abc
import copy
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import httpx

from ..clock import Clock, system_clock
from ..keys import PublicKey
from ..protocol.errors import DiscoveryError
from ..sansio import AsyncFlights, ThreadFlights, arun, run
from ..transport import retarget
from .cache import DiscoveryCache, Fetch, FetchResult
from .egress import EgressPolicy, IPAddress

log = logging.getLogger("aauth_agents.discovery")


#: The largest metadata or JWKS document read; a larger one is refused.
MAX_DOCUMENT_BYTES = 256 * 1024
#: Seconds a fetch may take.
DEFAULT_TIMEOUT = 5.0
_ACCEPT = {"Accept": "application/json"}


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


#: Run a discovery flow to completion with a sync / async ``execute`` (the package's one
#: driver, :mod:`aauth_agents.sansio`; an exception from ``execute`` is thrown into the flow).
drive = run
adrive = arun


def _result(response: httpx.Response, body: bytes) -> FetchResult:
    headers = {name: response.headers[name] for name in response.headers.keys()}
    return FetchResult(status=response.status_code, headers=headers, body=body)


def _declared_too_large(response: httpx.Response, limit: int) -> bool:
    length = response.headers.get("content-length", "")
    return length.isdigit() and int(length) > limit


def _collect(chunks: Iterable[bytes], buffer: bytearray, limit: int, deadline: float) -> None:
    """Append ``chunks`` to ``buffer``, enforcing the size limit and a total deadline (httpx
    timeouts are per read, so a slowly dripping server would otherwise never time out)."""
    for chunk in chunks:
        buffer += chunk
        if len(buffer) > limit:
            raise _TooLarge
        if time.monotonic() > deadline:
            raise _TooSlow


@dataclass
class _Config:
    egress: EgressPolicy
    max_bytes: int
    timeout: float
    pin: bool

    def failure(self, exc: Exception) -> FetchResult:
        if isinstance(exc, _TooLarge):
            return FetchResult(error=f"document larger than {self.max_bytes} bytes")
        if isinstance(exc, _TooSlow):
            return FetchResult(error=f"no complete response within {self.timeout}s")
        return FetchResult(error=f"{type(exc).__name__}: {exc}")


class _DiscoveryBase(abc.ABC):
    """What both front ends share: the cache, the policy, and the sync entry points."""

    def __init__(
        self,
        *,
        owns_connection: bool,
        clock: Clock,
        egress: EgressPolicy | None,
        timeout: float,
        max_document_bytes: int,
        cache: DiscoveryCache | None,
        pin_connections: bool | None,
    ) -> None:
        self.cache = cache if cache is not None else DiscoveryCache(clock=clock)
        self.egress = egress if egress is not None else EgressPolicy()
        self._config = _Config(
            egress=self.egress,
            max_bytes=max_document_bytes,
            timeout=timeout,
            pin=owns_connection if pin_connections is None else pin_connections,
        )

    def _request(
        self, client: httpx.Client | httpx.AsyncClient, effect: Fetch, addresses: list[IPAddress]
    ) -> httpx.Request:
        request = client.build_request("GET", effect.url, headers=_ACCEPT)
        if self._config.pin:
            request = retarget(request, "https", str(addresses[0]), request.url.port)
        log.debug("fetching %s", effect.url)
        return request

    @abc.abstractmethod
    def _execute_sync(self, effect: Fetch) -> FetchResult:
        """Perform one fetch from synchronous code (each front end decides how)."""

    def get_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        """The public key ``kid`` that ``iss`` publishes through ``{iss}/.well-known/{dwk}``.

        Raises :class:`UnknownKeyError`, :class:`DiscoveryError` (and its
        ``IssuerMissingError``, ``IssuerMismatchError``, ``EgressDeniedError``), or the
        algorithm errors of :meth:`PublicKey.from_jwk` for the selected key."""
        return run(self.cache.key_flow(iss, dwk, kid), self._execute_sync)

    def refresh_key(self, iss: str, dwk: str, kid: str) -> PublicKey | None:
        """After ``kid`` failed signature verification: refetch the JWKS if the once-a-minute
        floor allows and return the key now under ``kid``, or ``None`` if nothing was
        refetched (retrying would change nothing)."""
        return run(self.cache.refresh_key_flow(iss, dwk, kid), self._execute_sync)


class Discovery(_DiscoveryBase):
    """Sync discovery over ``httpx.Client``: metadata, JWKS and issuer keys.

    Implements the token layer's ``IssuerKeys`` protocol (``get_key`` / ``aget_key``).
    ``egress`` defaults to the strict :class:`EgressPolicy`; ``clock`` is used when no
    ``cache`` is given. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = system_clock,
        egress: EgressPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_document_bytes: int = MAX_DOCUMENT_BYTES,
        cache: DiscoveryCache | None = None,
        pin_connections: bool | None = None,
    ) -> None:
        owns = client is None and transport is None
        super().__init__(
            owns_connection=owns,
            clock=clock,
            egress=egress,
            timeout=timeout,
            max_document_bytes=max_document_bytes,
            cache=cache,
            pin_connections=pin_connections,
        )
        self._owns_client = client is None
        if client is None:
            if transport is None:
                transport = httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
            client = httpx.Client(
                transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
            )
        self._client = client
        self._single_flight = ThreadFlights()

    def metadata(self, issuer: str, dwk: str) -> dict[str, Any]:
        """The validated metadata document ``{issuer}/.well-known/{dwk}`` (§Metadata
        Documents): ``issuer`` present and byte-equal to ``issuer``, ``jwks_uri`` https."""
        return copy.deepcopy(run(self.cache.metadata_flow(issuer, dwk), self._execute_sync))

    def jwks(self, issuer: str, dwk: str) -> list[dict[str, Any]]:
        """The members of the issuer's JWKS, as published (unusable members included)."""
        keys, _ = run(self.cache.jwks_flow(issuer, dwk), self._execute_sync)
        return copy.deepcopy(keys)

    async def aget_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        """:meth:`get_key` in a worker thread."""
        return await anyio.to_thread.run_sync(self.get_key, iss, dwk, kid)

    async def arefresh_key(self, iss: str, dwk: str, kid: str) -> PublicKey | None:
        """:meth:`refresh_key` in a worker thread."""
        return await anyio.to_thread.run_sync(self.refresh_key, iss, dwk, kid)

    def _execute_sync(self, effect: Fetch) -> FetchResult:
        return self._single_flight.run(effect.url, lambda: self._fetch(effect))

    def _fetch(self, effect: Fetch) -> FetchResult:
        try:
            addresses = self.egress.admit(effect.url, issuer=effect.issuer)
        except OSError as exc:
            return FetchResult(error=f"cannot resolve the host: {exc}")
        request = self._request(self._client, effect, addresses)
        config, buffer = self._config, bytearray()
        deadline = time.monotonic() + config.timeout
        try:
            response = self._client.send(request, stream=True, follow_redirects=False)
            try:
                if response.status_code == 200:
                    if _declared_too_large(response, config.max_bytes):
                        raise _TooLarge
                    _collect(response.iter_bytes(), buffer, config.max_bytes, deadline)
            finally:
                response.close()
        except (_TooLarge, _TooSlow, httpx.HTTPError) as exc:
            return config.failure(exc)
        return _result(response, bytes(buffer))

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Discovery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncDiscovery(_DiscoveryBase):
    """Async discovery over ``httpx.AsyncClient``; same rules and cache as
    :class:`Discovery`.

    ``aget_key`` fetches as needed. The sync ``get_key`` (part of the ``IssuerKeys``
    protocol) answers only from the cache: when a fetch would be needed it raises
    :class:`DiscoveryError` -- await :meth:`aget_key` instead. ``refresh_key`` likewise
    returns ``None``. Use as an async context manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = system_clock,
        egress: EgressPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_document_bytes: int = MAX_DOCUMENT_BYTES,
        cache: DiscoveryCache | None = None,
        pin_connections: bool | None = None,
    ) -> None:
        owns = client is None and transport is None
        super().__init__(
            owns_connection=owns,
            clock=clock,
            egress=egress,
            timeout=timeout,
            max_document_bytes=max_document_bytes,
            cache=cache,
            pin_connections=pin_connections,
        )
        self._owns_client = client is None
        if client is None:
            if transport is None:
                transport = httpx.AsyncHTTPTransport(
                    limits=httpx.Limits(max_keepalive_connections=0)
                )
            client = httpx.AsyncClient(
                transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
            )
        self._client = client
        self._single_flight = AsyncFlights()

    async def metadata(self, issuer: str, dwk: str) -> dict[str, Any]:
        """See :meth:`Discovery.metadata`."""
        document = await arun(self.cache.metadata_flow(issuer, dwk), self._execute)
        return copy.deepcopy(document)

    async def jwks(self, issuer: str, dwk: str) -> list[dict[str, Any]]:
        """See :meth:`Discovery.jwks`."""
        keys, _ = await arun(self.cache.jwks_flow(issuer, dwk), self._execute)
        return copy.deepcopy(keys)

    async def aget_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        """See :meth:`Discovery.get_key`."""
        return await arun(self.cache.key_flow(iss, dwk, kid), self._execute)

    async def arefresh_key(self, iss: str, dwk: str, kid: str) -> PublicKey | None:
        """See :meth:`Discovery.refresh_key`."""
        return await arun(self.cache.refresh_key_flow(iss, dwk, kid), self._execute)

    def refresh_key(self, iss: str, dwk: str, kid: str) -> PublicKey | None:
        """Sync code cannot refetch through an async client: always ``None``."""
        return None

    def _execute_sync(self, effect: Fetch) -> FetchResult:
        raise DiscoveryError(
            f"{effect.url} must be fetched: AsyncDiscovery.get_key answers only from its "
            "cache; await aget_key() instead"
        )

    async def _execute(self, effect: Fetch) -> FetchResult:
        return await self._single_flight.run(effect.url, lambda: self._fetch(effect))

    async def _fetch(self, effect: Fetch) -> FetchResult:
        try:
            addresses = await self.egress.aadmit(effect.url, issuer=effect.issuer)
        except OSError as exc:
            return FetchResult(error=f"cannot resolve the host: {exc}")
        request = self._request(self._client, effect, addresses)
        config, buffer = self._config, bytearray()
        deadline = time.monotonic() + config.timeout
        try:
            response = await self._client.send(request, stream=True, follow_redirects=False)
            try:
                if response.status_code == 200:
                    if _declared_too_large(response, config.max_bytes):
                        raise _TooLarge
                    async for chunk in response.aiter_bytes():
                        _collect((chunk,), buffer, config.max_bytes, deadline)
            finally:
                await response.aclose()
        except (_TooLarge, _TooSlow, httpx.HTTPError) as exc:
            return config.failure(exc)
        return _result(response, bytes(buffer))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncDiscovery:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_DOCUMENT_BYTES",
    "AsyncDiscovery",
    "Discovery",
    "adrive",
    "drive",
]
