"""Egress admission: may this process fetch a URL that a token named?

AAuth §JWKS Discovery and Caching: "Before fetching any issuer metadata or ``jwks_uri``,
verifiers MUST apply egress admission per [Signature-Key]". Signature-Key (Security
Considerations, "Scheme-Specific Risks") lists what admission is, because metadata and JWKS
locations are chosen by whoever presents the token (SSRF):

* HTTPS for every fetch; no credentials in the URL.
* Refuse private, loopback and link-local destinations unless the deployment allowed them.
  Every address the host resolves to is checked, not just the first; IPv4 addresses embedded
  in IPv6 (IPv4-mapped, NAT64, 6to4, Teredo) are judged as the IPv4 address they carry.
  Unspecified, multicast and reserved addresses are refused unless listed in
  ``allow_networks``.
* Hosts written as IP literals are refused unless ``allow_ip_literals`` (issuers can never
  be IP literals: :func:`~aauth_agents.protocol.identifiers.validate_server_identifier`).
* A ``jwks_uri`` on another origin than its issuer needs ``allow_cross_origin_jwks``.
* DNS rebinding: :class:`~aauth_agents.discovery.Discovery` connects to the address that
  was admitted (when it owns the connection), not to a second lookup.

Response-size and time limits and the no-redirect rule are applied by the fetcher itself.

Tests and demos reach ``https://ps.example`` through a mapped transport, with no DNS; their
policy says what those names resolve to::

    EgressPolicy.for_mapped_hosts({"ps.example": "127.0.0.1"}, allow_loopback=True)

Every ``allow_*`` permission is logged as a warning when the policy is created.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import httpx

from ..protocol.errors import EgressDeniedError

log = logging.getLogger("aauth_agents.discovery")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Resolves a host name to the IP addresses (as strings) a connection could reach. Raises
#: ``OSError`` when the name does not resolve.
Resolver = Callable[[str], Sequence[str]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def system_resolver(host: str) -> list[str]:
    """Every address ``socket.getaddrinfo`` returns for ``host`` (port 443, TCP)."""
    infos = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def mapped_resolver(hosts: Mapping[str, str | Sequence[str]]) -> Resolver:
    """A resolver answering from a fixed table; unknown names do not resolve (``OSError``)."""
    table = {
        name.lower(): [value] if isinstance(value, str) else list(value)
        for name, value in hosts.items()
    }

    def resolve(host: str) -> list[str]:
        try:
            return list(table[host.lower()])
        except KeyError:
            raise OSError(f"{host} is not in the host mapping") from None

    return resolve


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def classify(address: IPAddress) -> str:
    """``global``, ``loopback``, ``link-local``, ``private``, ``unspecified``,
    ``multicast`` or ``reserved``. An IPv4 address embedded in IPv6 is judged as itself."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return classify(embedded)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved:
        return "reserved"
    if address.is_private or not address.is_global:
        return "private"
    return "global"


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # the legacy numeric forms inet_aton (and so getaddrinfo) accept: 0x7f.1, 2130706433
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _parse(url: str) -> httpx.URL | None:
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class EgressPolicy:
    """Which destinations discovery may fetch from. The default admits public HTTPS only.

    ``allow_networks`` admits explicit CIDR blocks (e.g. ``("10.20.0.0/16",)``) whatever
    their category. ``resolver`` maps a host to its addresses; the default asks the system.
    """

    allow_loopback: bool = False
    allow_private: bool = False
    allow_link_local: bool = False
    allow_ip_literals: bool = False
    allow_cross_origin_jwks: bool = False
    allow_networks: Sequence[str] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            networks = tuple(ipaddress.ip_network(n, strict=False) for n in self.allow_networks)
        except ValueError as exc:
            raise ValueError(f"allow_networks: {exc}") from None
        object.__setattr__(self, "_networks", networks)
        granted = [
            name
            for name in (
                "allow_loopback",
                "allow_private",
                "allow_link_local",
                "allow_ip_literals",
                "allow_cross_origin_jwks",
            )
            if getattr(self, name)
        ]
        if networks:
            granted.append(f"allow_networks={[str(n) for n in networks]}")
        if granted:
            log.warning(
                "egress admission relaxed (%s): tokens can make this process fetch from "
                "these destinations; intended for development, tests and known deployments",
                ", ".join(granted),
            )

    @classmethod
    def for_mapped_hosts(
        cls, hosts: Mapping[str, str | Sequence[str]], **permissions: Any
    ) -> EgressPolicy:
        """A policy whose resolver answers from ``hosts`` (``{"ps.example": "127.0.0.1"}``),
        for transports that map identifiers without DNS. Permissions are still explicit:
        loopback destinations need ``allow_loopback=True``."""
        return cls(resolver=mapped_resolver(hosts), **permissions)

    def check_url(self, url: str, *, issuer: str | None = None) -> tuple[str, IPAddress | None]:
        """Checks that need no DNS. Returns ``(host, ip)``: the host a connection would look
        up (ASCII), and the address when the host is an (allowed) IP literal, including the
        numeric forms a resolver accepts (``2130706433``, ``127.1``). Raises
        :class:`EgressDeniedError`. URLs are parsed by httpx, the parser that fetches them."""
        parsed = _parse(url)
        if parsed is None or parsed.scheme != "https" or not parsed.raw_host:
            raise EgressDeniedError(f"refusing to fetch {url!r}: only https URLs are fetched")
        if parsed.userinfo:
            raise EgressDeniedError(f"refusing to fetch {url!r}: credentials in the URL")
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise EgressDeniedError(f"refusing to fetch {url!r}: port out of range")
        host = parsed.raw_host.decode("ascii")
        if issuer is not None and not self.allow_cross_origin_jwks:
            origin = _parse(issuer)
            if origin is None or (host, parsed.port) != (
                origin.raw_host.decode("ascii"),
                origin.port,
            ):
                raise EgressDeniedError(
                    f"refusing to fetch {url!r}: not on the origin of {issuer} "
                    "(cross-origin jwks_uri needs allow_cross_origin_jwks)"
                )
        literal = _ip_literal(host)
        if literal is not None and not self.allow_ip_literals:
            raise EgressDeniedError(f"refusing to fetch {url!r}: the host is an IP literal")
        return host, literal

    def check_addresses(self, host: str, addresses: Iterable[str]) -> list[IPAddress]:
        """Admit ``host`` only if *every* address is admissible; returns them parsed."""
        parsed: list[IPAddress] = []
        for text in addresses:
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                raise EgressDeniedError(f"{host} resolved to a non-address {text!r}") from None
            self._admit(host, address)
            parsed.append(address)
        if not parsed:
            raise EgressDeniedError(f"{host} resolved to no address")
        return parsed

    def _admit(self, host: str, address: IPAddress) -> None:
        if any(address in network for network in self._networks):
            return
        embedded = _embedded_ipv4(address)
        if embedded is not None and any(embedded in network for network in self._networks):
            return
        category = classify(address)
        allowed = {
            "global": True,
            "loopback": self.allow_loopback,
            "private": self.allow_private,
            "link-local": self.allow_link_local,
        }.get(category, False)
        if not allowed:
            log.warning("egress denied: %s resolves to %s address %s", host, category, address)
            raise EgressDeniedError(
                f"refusing to fetch from {host}: it resolves to a {category} address"
            )
        if category != "global":
            log.debug("egress admitted %s address %s for %s", category, address, host)

    def admit(self, url: str, *, issuer: str | None = None) -> list[IPAddress]:
        """Apply admission to ``url``, resolving its host. Returns the admitted addresses.

        Raises :class:`EgressDeniedError` when refused and ``OSError`` when the host does not
        resolve (a network failure, not a refusal)."""
        host, literal = self.check_url(url, issuer=issuer)
        if literal is not None:
            return self.check_addresses(host, [str(literal)])
        return self.check_addresses(host, self.resolver(host))

    async def aadmit(self, url: str, *, issuer: str | None = None) -> list[IPAddress]:
        """:meth:`admit` with the resolver run in a worker thread."""
        host, literal = self.check_url(url, issuer=issuer)
        if literal is not None:
            return self.check_addresses(host, [str(literal)])
        addresses = await anyio.to_thread.run_sync(self.resolver, host)
        return self.check_addresses(host, addresses)


__all__ = [
    "EgressPolicy",
    "IPAddress",
    "Resolver",
    "classify",
    "mapped_resolver",
    "system_resolver",
]
