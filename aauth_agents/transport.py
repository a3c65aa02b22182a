"""Send requests for chosen origins somewhere else without changing the requests.

ARCHITECTURE.md, "Wire details": tests and demos keep real server identifiers
(``https://ps.example``) in everything that is signed or compared, and map them to loopback
or to in-process ASGI apps *at the transport layer only*. A mapped request keeps its URL,
its ``Host`` header (``ps.example``) and therefore its signed ``@authority`` and ``@path``,
exactly as if DNS pointed ``ps.example`` at the destination. Peers such as mockin check
``@authority`` against the ``Host`` header they receive, so nothing else would interoperate.

Usage::

    transport = MappedTransport({
        "https://ps.example": "http://127.0.0.1:8123",   # a server on loopback
        "https://resource.example": resource_app,        # an in-process ASGI app
    })
    client = httpx.Client(transport=transport)
    client.get("https://ps.example/.well-known/aauth-person.json")
    # -> connects to 127.0.0.1:8123; the server sees Host: ps.example and the same path

:class:`AsyncMappedTransport` is the ``httpx.AsyncClient`` twin. A destination is an origin
URL (``scheme://host[:port]``), an ASGI app or an httpx transport. Requests to origins that
are not mapped go to ``fallback`` (a normal network transport unless ``strict=True``, which
refuses them). When the destination is ``https``, the TLS server name stays the original
host, so certificates are checked against the identifier, not against the loopback address.

The mapping is read when each request is sent, not copied: a mapping that grows after the
transport was made (a :class:`~aauth_agents.network.LocalNetwork`) is followed.

Each mapped origin gets its own connection pool: a TLS connection made for one identifier is
never reused for another that happens to map to the same address.

Mapping only changes where bytes go. Discovery still applies egress admission
(:mod:`aauth_agents.discovery`) to the identifier; pair a mapping with
``EgressPolicy.for_mapped_hosts(...)`` to say what the mapped names resolve to.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import httpx

log = logging.getLogger("aauth_agents.transport")

_Message = MutableMapping[str, Any]
#: An ASGI 3 application, as :class:`httpx.ASGITransport` accepts it.
ASGIApp = Callable[
    [_Message, Callable[[], Awaitable[_Message]], Callable[[_Message], Awaitable[None]]],
    Awaitable[None],
]
#: Where a mapped origin goes: an origin URL, an ASGI app, or a transport of the right colour.
SyncDestination = str | httpx.URL | ASGIApp | httpx.BaseTransport
AsyncDestination = str | httpx.URL | ASGIApp | httpx.AsyncBaseTransport

_Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str | httpx.URL) -> _Origin:
    """``(scheme, host, port)`` of an origin URL; raises ``ValueError`` when ``url`` has a
    path, query, fragment or userinfo, or is not http(s)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not an http(s) origin: {str(url)!r}: {exc}") from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        raise ValueError(f"not an http(s) origin: {str(url)!r}")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment or parsed.userinfo:
        raise ValueError(f"an origin has no path, query, fragment or userinfo: {str(url)!r}")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ValueError(f"port out of range: {str(url)!r}")
    return _request_origin(parsed)


def _request_origin(url: httpx.URL) -> _Origin:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 0)


def retarget(request: httpx.Request, scheme: str, host: str, port: int | None) -> httpx.Request:
    """A copy of ``request`` that connects to ``scheme://host:port`` instead.

    Only the connection target changes: the path and query, every header (``Host``
    included) and the body are the original's, and for an ``https`` target the TLS server
    name (SNI and certificate check) stays the original host.
    """
    original_host = request.url.host
    url = request.url.copy_with(scheme=scheme, host=host, port=port)
    extensions = dict(request.extensions)
    if scheme == "https":
        extensions.setdefault("sni_hostname", original_host)
    return httpx.Request(
        request.method,
        url,
        headers=request.headers,
        stream=request.stream,
        extensions=extensions,
    )


class SyncASGITransport(httpx.BaseTransport):
    """Serve an ASGI app to a *sync* ``httpx.Client``.

    httpx ships :class:`httpx.ASGITransport` for ``AsyncClient`` only. This runs one in a
    private event loop on a daemon thread, so sync code (and sync tests) can reach a real
    in-process ASGI app. The request body is read up front; the response is buffered.
    """

    def __init__(self, app: ASGIApp, *, raise_app_exceptions: bool = False) -> None:
        self._inner = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="aauth-asgi-bridge", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        async_request = httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            stream=httpx.ByteStream(body),
            extensions=request.extensions,
        )

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self._inner.handle_async_request(async_request)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        future = asyncio.run_coroutine_threadsafe(call(), self._event_loop())
        status, headers, content = future.result()
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()


def _url_destination(value: str | httpx.URL) -> _Origin:
    try:
        return origin_of(value)
    except ValueError as exc:
        raise ValueError(f"a mapping destination must be an origin URL: {exc}") from None


def _check_destination(origin: str, destination: Any, transport_type: type) -> None:
    if isinstance(destination, (str, httpx.URL)):
        _url_destination(destination)
    elif not isinstance(destination, transport_type) and not callable(destination):
        raise TypeError(f"cannot map {origin} to {destination!r}")


class _Routes:
    """The live view of a mapping both transports share: the mapping is read at each
    request (it may grow after the transport was made), and the transport built for each
    destination is kept (``make`` builds one for a URL target or an ASGI app)."""

    def __init__(
        self, mapping: Mapping[str, Any], transport_type: type, make: Callable[[Any], Any]
    ) -> None:
        seen: set[_Origin] = set()
        for key, destination in mapping.items():  # refuse a bad mapping up front
            origin = origin_of(key)
            if origin in seen:
                raise ValueError(f"origin {key!r} is mapped twice")
            seen.add(origin)
            _check_destination(key, destination, transport_type)
        self.mapping = mapping
        self._type = transport_type
        self._make = make
        self._origins: dict[str, _Origin] = {}
        self._built: dict[tuple[_Origin, Any], tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def _origin(self, key: str) -> _Origin | None:
        origin = self._origins.get(key)
        if origin is None:
            try:
                origin = origin_of(key)
            except ValueError:
                log.warning("transport mapping: %r is not an origin; ignored", key)
                return None
            self._origins[key] = origin
        return origin

    def find(self, url: httpx.URL) -> _Mapped | Any | None:
        """The route for ``url``'s origin now: a :class:`_Mapped` URL target, a transport,
        or ``None`` when the origin is not mapped."""
        wanted = _request_origin(url)
        for key, destination in list(self.mapping.items()):
            if self._origin(key) == wanted:
                return self._route(key, wanted, destination)
        return None

    def _route(self, key: str, origin: _Origin, destination: Any) -> _Mapped | Any:
        if isinstance(destination, self._type):
            return destination
        target = (
            _url_destination(destination)
            if isinstance(destination, (str, httpx.URL))
            else destination
        )
        with self._lock:
            built = self._built.get((origin, id(target) if callable(target) else target))
            if built is None:
                if not isinstance(target, tuple) and not callable(target):
                    raise TypeError(f"cannot map {key} to {destination!r}")
                transport = self._make(target)
                route = _Mapped(target, transport) if isinstance(target, tuple) else transport
                built = (target, route)  # the target is kept: its id() stays its own
                self._built[(origin, id(target) if callable(target) else target)] = built
                shown = destination if isinstance(target, tuple) else type(destination)
                log.info(
                    "transport mapping: connections for %s go to %s; URL, Host header and "
                    "signatures are unchanged",
                    key,
                    shown,
                )
        return built[1]

    def built(self) -> list[Any]:
        """Every transport made so far (to close them)."""
        with self._lock:
            routes = [route for _, route in self._built.values()]
            self._built.clear()
        return [route.transport if isinstance(route, _Mapped) else route for route in routes]


class _Mapped:
    """A URL destination: the transport plus the target to connect to."""

    def __init__(self, target: _Origin, transport: Any) -> None:
        self.target = target
        self.transport = transport

    def prepare(self, request: httpx.Request) -> httpx.Request:
        scheme, host, port = self.target
        return retarget(request, scheme, host, port)


class MappedTransport(httpx.BaseTransport):
    """Sync transport that sends requests for mapped origins to other destinations.

    ``mapping`` keys are origins (``"https://ps.example"``); values are origin URLs
    (``"http://127.0.0.1:8123"``), ASGI apps (run through :class:`SyncASGITransport`) or
    ``httpx.BaseTransport`` instances. ``verify`` is passed to the network transports
    created for URL destinations.

    The transport keeps ``mapping`` itself, not a copy: it is read when each request is
    sent, so parties added to it later (a dict that grows, a
    :class:`~aauth_agents.network.LocalNetwork`) are reached from then on. The transport
    made for each destination is kept for the next request.
    """

    def __init__(
        self,
        mapping: Mapping[str, SyncDestination],
        *,
        fallback: httpx.BaseTransport | None = None,
        strict: bool = False,
        verify: Any = True,
    ) -> None:
        def make(target: Any) -> httpx.BaseTransport:
            if isinstance(target, tuple):
                return httpx.HTTPTransport(verify=verify)
            return SyncASGITransport(target)

        self._routes = _Routes(mapping, httpx.BaseTransport, make)
        self._fallback = None if strict else fallback or httpx.HTTPTransport(verify=verify)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        route = self._routes.find(request.url)
        if isinstance(route, _Mapped):
            transport: httpx.BaseTransport = route.transport
            return transport.handle_request(route.prepare(request))
        if route is not None:
            return route.handle_request(request)  # type: ignore[no-any-return]
        if self._fallback is None:
            raise httpx.ConnectError(
                f"no transport mapping for {request.url.host}", request=request
            )
        return self._fallback.handle_request(request)

    def close(self) -> None:
        for transport in self._routes.built():
            transport.close()
        if self._fallback is not None:
            self._fallback.close()


class AsyncMappedTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncClient`` twin of :class:`MappedTransport` (the mapping is read at each
    request too); ASGI apps are served by :class:`httpx.ASGITransport` (app exceptions
    become 500 responses, like a server)."""

    def __init__(
        self,
        mapping: Mapping[str, AsyncDestination],
        *,
        fallback: httpx.AsyncBaseTransport | None = None,
        strict: bool = False,
        verify: Any = True,
    ) -> None:
        def make(target: Any) -> httpx.AsyncBaseTransport:
            if isinstance(target, tuple):
                return httpx.AsyncHTTPTransport(verify=verify)
            return httpx.ASGITransport(app=target, raise_app_exceptions=False)

        self._routes = _Routes(mapping, httpx.AsyncBaseTransport, make)
        self._fallback = None if strict else fallback or httpx.AsyncHTTPTransport(verify=verify)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        route = self._routes.find(request.url)
        if isinstance(route, _Mapped):
            transport: httpx.AsyncBaseTransport = route.transport
            return await transport.handle_async_request(route.prepare(request))
        if route is not None:
            return await route.handle_async_request(request)  # type: ignore[no-any-return]
        if self._fallback is None:
            raise httpx.ConnectError(
                f"no transport mapping for {request.url.host}", request=request
            )
        return await self._fallback.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._routes.built():
            await transport.aclose()
        if self._fallback is not None:
            await self._fallback.aclose()


def parse_mapping_option(value: str) -> tuple[str, str]:
    """Parse a ``--map`` style option ``ORIGIN=DESTINATION`` (e.g.
    ``https://ps.example=http://127.0.0.1:8123``); both halves must be origins."""
    origin, sep, destination = value.partition("=")
    if not sep:
        raise ValueError(f"expected ORIGIN=DESTINATION, got {value!r}")
    origin_of(origin)
    _url_destination(destination)
    return origin, destination


__all__ = [
    "ASGIApp",
    "AsyncMappedTransport",
    "MappedTransport",
    "SyncASGITransport",
    "origin_of",
    "parse_mapping_option",
    "retarget",
]
