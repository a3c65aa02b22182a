"""Who sent a request: the socket peer, or the client a trusted reverse proxy names.

A limit counted per client address (sign-in attempts, wrong interaction codes) is only as
good as the address. ``X-Forwarded-For`` and ``Forwarded`` (RFC 7239) are headers anyone can
send, so they are believed only from a peer in a configured list of trusted proxies
(:class:`TrustedProxies`, IPs or CIDRs); by default the list is empty and the address is the
socket peer's. :class:`ForwardedHeaders` is the one place that reads them: an ASGI
middleware that, for a request whose peer is trusted, puts the client the proxies name into
``scope["client"]`` and the scheme it used (``X-Forwarded-Proto`` / ``proto=``) into
``scope["scheme"]`` (so same-origin checks and ``Secure`` cookies see ``https`` behind a TLS
proxy). :func:`client_address` is what every limit asks afterwards.

The chain is read from the right (the hop nearest to us) and trusted proxies are skipped:
the first address not in the list is the client -- a client cannot push itself past a
proxy that appends what it saw. An entry that is not an IP address (``unknown``, an
obfuscated ``_node``) ends the walk and stands for the client as it is.

uvicorn applies its own proxy headers by default (``X-Forwarded-For`` trusted from
127.0.0.1), rewriting the peer before any app sees it; this package's servers run uvicorn
with ``proxy_headers=False`` (:class:`~aauth_agents.servers.LoopbackServer`, ``aauth-agents
serve``), and anyone serving these apps with their own uvicorn should pass
``--no-proxy-headers`` and list their proxies here instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from ..protocol.errors import ConfigurationError

#: The longest client name kept from a header (an address, ``unknown``, an obfuscated node).
MAX_NAME = 64
#: The most hops read from a chain.
MAX_HOPS = 32

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The reverse proxies whose forwarding headers are believed: IP addresses or CIDR
    networks (``"127.0.0.1"``, ``"10.0.0.0/8"``, ``"::1"``). Empty: none."""

    def __init__(self, proxies: Iterable[str] = ()) -> None:
        if isinstance(proxies, str):
            raise ConfigurationError("trusted_proxies is a list of addresses, not one string")
        networks: list[Network] = []
        for value in proxies:
            try:
                networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
            except ValueError as exc:
                raise ConfigurationError(
                    f"trusted_proxies: {value!r} is not an IP or CIDR"
                ) from exc
        self.networks: tuple[Network, ...] = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: object) -> bool:
        address = _address(host) if isinstance(host, str) else None
        return address is not None and any(address in net for net in self.networks)


def _node(value: str) -> str:
    """An RFC 7239 node (``"[2001:db8::1]:4711"``, ``192.0.2.1:80``, ``_hidden``) or an
    ``X-Forwarded-For`` entry, without quotes, brackets and port."""
    value = value.strip().strip('"').strip()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:  # IPv4 (or a name) with a port
        return value.split(":", 1)[0]
    return value


def forwarded_for(headers: Sequence[tuple[bytes, bytes]]) -> list[str]:
    """The client chain a request's proxies recorded, nearest proxy last: the ``for=`` of
    each ``Forwarded`` element when that header is present, else ``X-Forwarded-For``."""
    forwarded: list[str] = []
    x_forwarded: list[str] = []
    for name, raw in headers:
        if name == b"forwarded":
            for element in raw.decode("latin-1").split(","):
                for pair in element.split(";"):
                    key, _, value = pair.partition("=")
                    if key.strip().lower() == "for" and value.strip():
                        forwarded.append(_node(value))
        elif name == b"x-forwarded-for":
            x_forwarded.extend(_node(v) for v in raw.decode("latin-1").split(",") if v.strip())
    return (forwarded or x_forwarded)[-MAX_HOPS:]


def forwarded_proto(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The scheme the client used, as the nearest proxy says (``http`` or ``https``)."""
    found: str | None = None
    for name, raw in headers:
        text = raw.decode("latin-1")
        if name == b"x-forwarded-proto":
            found = text.split(",")[-1].strip().lower()
        elif name == b"forwarded":
            for pair in text.split(",")[-1].split(";"):
                key, _, value = pair.partition("=")
                if key.strip().lower() == "proto":
                    found = value.strip().strip('"').lower()
    return found if found in ("http", "https") else None


def forwarded_client(
    peer: str, headers: Sequence[tuple[bytes, bytes]], trusted: TrustedProxies
) -> str:
    """The client of a request that came from ``peer``: ``peer`` itself unless it is a
    trusted proxy, else the nearest address of the forwarded chain that is not one (see
    the module docstring)."""
    if peer not in trusted:
        return peer
    client = peer
    for hop in reversed(forwarded_for(headers)):
        if _address(hop) is None:
            return hop[:MAX_NAME] or client
        client = str(_address(hop))
        if client not in trusted:
            return client
    return client


class ForwardedHeaders:
    """ASGI middleware: for a request whose peer is in ``trusted``, the client and scheme
    its proxies recorded replace the peer's in the scope (see the module docstring);
    every other request is passed on untouched."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies | Iterable[str]) -> None:
        self.app = app
        self.trusted = trusted if isinstance(trusted, TrustedProxies) else TrustedProxies(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in ("http", "websocket") and peer and peer[0] in self.trusted:
            headers = scope.get("headers", [])
            scope = dict(scope)
            scope["client"] = (forwarded_client(peer[0], headers, self.trusted), 0)
            proto = forwarded_proto(headers)
            if proto is not None:
                scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
        await self.app(scope, receive, send)


def address_bucket(address: str) -> str:
    """What a per-address limit counts an address under: an IPv6 address by its ``/64`` (one
    host commonly holds a whole ``/64``), anything else as it is."""
    parsed = _address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return address


def client_address(request: HTTPConnection | Scope | Any) -> str:
    """The client address of a request, for limits counted per address: the socket peer,
    or (behind :class:`ForwardedHeaders`) the client a trusted proxy named; ``"unknown"``
    when the server gives none. IPv4-mapped IPv6 addresses read as IPv4."""
    scope = request.scope if isinstance(request, HTTPConnection) else request
    client = scope.get("client") if isinstance(scope, dict) else None
    if not client or not client[0]:
        return "unknown"
    host = str(client[0])
    address = _address(host)
    return str(address) if address is not None else host[:MAX_NAME]


__all__ = [
    "ForwardedHeaders",
    "TrustedProxies",
    "address_bucket",
    "client_address",
    "forwarded_client",
    "forwarded_for",
    "forwarded_proto",
]
