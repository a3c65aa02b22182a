"""Egress admission: what a token can make discovery fetch (Signature-Key, Scheme-Specific
Risks; AAuth §JWKS Discovery and Caching)."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import pytest

from aauth_agents.discovery import EgressPolicy, classify
from aauth_agents.protocol.errors import EgressDeniedError

ISSUER = "https://ps.example"
META = "/.well-known/aauth-person.json"

REFUSED_BY_DEFAULT = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "::1": "loopback",
    "::ffff:127.0.0.1": "loopback",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "100.64.0.1": "private",  # shared address space (CGNAT)
    "fd12:3456::1": "private",
    "::ffff:10.1.2.3": "private",
    "::ffff:192.168.0.1": "private",
    "64:ff9b::a00:1": "private",  # NAT64 of 10.0.0.1
    "2002:c0a8:101::1": "private",  # 6to4 of 192.168.1.1
    "169.254.169.254": "link-local",  # cloud metadata service
    "fe80::1": "link-local",
    "::ffff:169.254.169.254": "link-local",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "reserved",
}


@pytest.mark.parametrize(("address", "category"), sorted(REFUSED_BY_DEFAULT.items()))
def test_classify(address: str, category: str) -> None:
    assert classify(ipaddress.ip_address(address)) == category


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:4700::6810:84e5", "::ffff:8.8.8.8", "1.1.1.1"]
)
def test_public_addresses_are_admitted(address: str) -> None:
    assert classify(ipaddress.ip_address(address)) == "global"
    policy = EgressPolicy.for_mapped_hosts({"ps.example": address})
    assert policy.admit(f"{ISSUER}/x") == [ipaddress.ip_address(address)]


@pytest.mark.parametrize("address", sorted(REFUSED_BY_DEFAULT))
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    policy = EgressPolicy.for_mapped_hosts({"ps.example": address})
    with pytest.raises(EgressDeniedError):
        policy.admit(f"{ISSUER}/x")


@pytest.mark.parametrize(
    ("address", "permission"),
    [
        ("127.0.0.1", "allow_loopback"),
        ("::1", "allow_loopback"),
        ("::ffff:127.0.0.1", "allow_loopback"),
        ("10.0.0.1", "allow_private"),
        ("fd00::1", "allow_private"),
        ("::ffff:10.0.0.1", "allow_private"),
        ("169.254.169.254", "allow_link_local"),
        ("fe80::1", "allow_link_local"),
    ],
)
def test_each_permission_admits_only_its_category(address: str, permission: str) -> None:
    allowed = EgressPolicy.for_mapped_hosts({"ps.example": address}, **{permission: True})
    assert allowed.admit(f"{ISSUER}/x")
    others = {
        p: True for p in ("allow_loopback", "allow_private", "allow_link_local") if p != permission
    }
    refused = EgressPolicy.for_mapped_hosts({"ps.example": address}, **others)
    with pytest.raises(EgressDeniedError):
        refused.admit(f"{ISSUER}/x")


@pytest.mark.parametrize("address", ["0.0.0.0", "224.0.0.1", "240.0.0.1", "ff02::1"])
def test_unspecified_multicast_reserved_need_an_explicit_network(address: str) -> None:
    everything = {"allow_loopback": True, "allow_private": True, "allow_link_local": True}
    with pytest.raises(EgressDeniedError):
        EgressPolicy.for_mapped_hosts({"ps.example": address}, **everything).admit(ISSUER)
    network = f"{address}/32" if "." in address else f"{address}/128"
    explicit = EgressPolicy.for_mapped_hosts({"ps.example": address}, allow_networks=(network,))
    assert explicit.admit(ISSUER)


def test_allow_networks_is_precise() -> None:
    policy = EgressPolicy.for_mapped_hosts(
        {"a.example": "10.20.1.2", "b.example": "10.21.0.1"}, allow_networks=("10.20.0.0/16",)
    )
    assert policy.admit("https://a.example/")
    with pytest.raises(EgressDeniedError):
        policy.admit("https://b.example/")
    with pytest.raises(ValueError):
        EgressPolicy(allow_networks=("not a network",))


def test_every_resolved_address_is_checked() -> None:
    policy = EgressPolicy.for_mapped_hosts({"ps.example": ["93.184.216.34", "10.0.0.1"]})
    with pytest.raises(EgressDeniedError, match="private"):
        policy.admit(ISSUER)
    reordered = EgressPolicy.for_mapped_hosts({"ps.example": ["10.0.0.1", "93.184.216.34"]})
    with pytest.raises(EgressDeniedError):
        reordered.admit(ISSUER)


def test_no_addresses_or_garbage_is_refused() -> None:
    with pytest.raises(EgressDeniedError):
        EgressPolicy.for_mapped_hosts({"ps.example": []}).admit(ISSUER)
    with pytest.raises(EgressDeniedError):
        EgressPolicy.for_mapped_hosts({"ps.example": "localhost"}).admit(ISSUER)


def test_unresolvable_hosts_are_a_network_failure() -> None:
    with pytest.raises(OSError):
        EgressPolicy.for_mapped_hosts({}).admit(ISSUER)


@pytest.mark.parametrize(
    "url",
    [
        "http://ps.example/.well-known/jwks.json",
        "ftp://ps.example/jwks",
        "//ps.example/jwks",
        "https:///jwks",
        "https://user:pw@ps.example/jwks",
        "https://user@ps.example/jwks",
        "https://ps.example:99999/jwks",
        "https://[::1/jwks",
        "file:///etc/passwd",
        "",
        "https://ps.example\t/jwks",
        "https://ps.exa\nmple/jwks",
        "https://ps.example/\x00",
    ],
)
def test_urls_are_checked_without_dns(url: str) -> None:
    def no_dns(host: str) -> list[str]:
        raise AssertionError("resolved a URL that should have been refused")

    with pytest.raises(EgressDeniedError):
        EgressPolicy(resolver=no_dns, allow_loopback=True, allow_private=True).admit(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/jwks",
        "https://[2606:4700::1]/jwks",
        "https://127.0.0.1/jwks",
        "https://2130706433/jwks",
        "https://0x7f.1/jwks",
        "https://127.1/jwks",
    ],
)
def test_ip_literals_need_permission(url: str) -> None:
    def no_dns(host: str) -> list[str]:
        raise AssertionError("an IP literal is not resolved")

    with pytest.raises(EgressDeniedError, match="IP literal"):
        EgressPolicy(resolver=no_dns).admit(url)
    permitted = EgressPolicy(resolver=no_dns, allow_ip_literals=True, allow_loopback=True)
    assert permitted.admit(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/jwks",
        "https://2130706433/jwks",
        "https://0x7f.0.0.1/jwks",
        "https://[::ffff:7f00:1]/jwks",
        "https://0/jwks",
    ],
)
def test_loopback_literal_still_needs_loopback_permission(url: str) -> None:
    with pytest.raises(EgressDeniedError, match=r"loopback|unspecified"):
        EgressPolicy(allow_ip_literals=True).admit(url)


def test_system_resolver_refuses_localhost() -> None:
    # localhost resolves through the hosts file, no network needed
    with pytest.raises(EgressDeniedError, match="loopback"):
        EgressPolicy().admit("https://localhost/.well-known/jwks.json")


async def test_async_admission_matches_sync() -> None:
    policy = EgressPolicy.for_mapped_hosts({"ps.example": "::ffff:10.0.0.1"})
    with pytest.raises(EgressDeniedError):
        await policy.aadmit(ISSUER)
    public = EgressPolicy.for_mapped_hosts({"ps.example": "93.184.216.34"})
    assert await public.aadmit(ISSUER) == public.admit(ISSUER)


def test_cross_origin_check() -> None:
    policy = EgressPolicy.for_mapped_hosts(
        {"keys.example": "93.184.216.34", "ps.example": "93.184.216.34"}
    )
    assert policy.admit("https://ps.example/jwks", issuer=ISSUER)
    assert policy.admit("https://ps.example:443/jwks", issuer=ISSUER)
    for url in (
        "https://keys.example/jwks",
        "https://ps.example:8443/jwks",
        "https://sub.ps.example/jwks",
    ):
        with pytest.raises(EgressDeniedError, match="cross-origin"):
            policy.admit(url, issuer=ISSUER)


def test_relaxed_policies_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aauth_agents.discovery"):
        EgressPolicy()
        assert not caplog.records
        EgressPolicy.for_mapped_hosts({"ps.example": "127.0.0.1"}, allow_loopback=True)
    assert len(caplog.records) == 1
    assert "allow_loopback" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1", "fe80::1"]
)
async def test_discovery_refuses_before_any_request(
    make_front: Any, server: Any, address: str
) -> None:
    front = make_front(
        {ISSUER: server.app}, egress=EgressPolicy.for_mapped_hosts({"ps.example": address})
    )
    with pytest.raises(EgressDeniedError):
        await front.get_key()
    assert not server.hits


async def test_discovery_refusal_is_not_cached_as_success(make_front: Any, server: Any) -> None:
    front = make_front(
        {ISSUER: server.app}, egress=EgressPolicy.for_mapped_hosts({"ps.example": "10.0.0.1"})
    )
    for _ in range(3):
        with pytest.raises(EgressDeniedError):
            await front.metadata()
    assert not server.hits


async def test_jwks_uri_host_is_admitted_too(make_front: Any, make_server: Any) -> None:
    issuer, keys = make_server(), make_server("https://keys.example")
    issuer.set_metadata(jwks_uri="https://keys.example/.well-known/jwks.json")
    policy = EgressPolicy.for_mapped_hosts(
        {"ps.example": "93.184.216.34", "keys.example": "10.0.0.7"},
        allow_cross_origin_jwks=True,
    )
    front = make_front({ISSUER: issuer.app, "https://keys.example": keys.app}, egress=policy)
    with pytest.raises(EgressDeniedError, match="private"):
        await front.get_key()
    assert issuer.hits[META] == 1 and not keys.hits
