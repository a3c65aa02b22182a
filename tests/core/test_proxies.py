"""The client address of a request (``servers.proxies``): the socket peer unless the peer is a
configured trusted proxy, then the nearest address in the forwarded chain that is not one.
Property tests: whatever the headers say, an untrusted peer is the answer, and a trusted
peer's answer is an address the chain (or the peer) holds."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol.errors import ConfigurationError
from aauth_agents.servers.proxies import (
    TrustedProxies,
    address_bucket,
    client_address,
    forwarded_client,
    forwarded_for,
    forwarded_proto,
)

TRUSTED = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "::1"])

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=200)


def h(**fields: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode("latin-1")) for k, v in fields.items()]


def test_trusted_proxies_take_addresses_and_networks_only() -> None:
    assert "10.1.2.3" in TRUSTED and "127.0.0.1" in TRUSTED and "::1" in TRUSTED
    assert "::ffff:10.0.0.1" in TRUSTED  # IPv4-mapped
    assert "11.0.0.1" not in TRUSTED and "unknown" not in TRUSTED and "" not in TRUSTED
    assert not TrustedProxies() and "127.0.0.1" not in TrustedProxies()
    for bad in (["localhost"], ["10.0.0.0/33"], "127.0.0.1"):
        with pytest.raises(ConfigurationError):
            TrustedProxies(bad)


def test_the_chain_is_read_from_the_nearest_hop() -> None:
    chain = h(x_forwarded_for="192.0.2.1, 203.0.113.7, 10.0.0.1")
    assert forwarded_client("127.0.0.1", chain, TRUSTED) == "203.0.113.7"
    assert forwarded_client("198.51.100.1", chain, TRUSTED) == "198.51.100.1"
    # Forwarded (RFC 7239) wins over X-Forwarded-For; quotes, brackets and ports go.
    both = h(
        forwarded='for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"', x_forwarded_for="1.1.1.1"
    )
    assert forwarded_for(both) == ["192.0.2.60", "2001:db8::1"]
    assert forwarded_client("127.0.0.1", both, TRUSTED) == "2001:db8::1"
    assert forwarded_client("127.0.0.1", h(forwarded="for=unknown"), TRUSTED) == "unknown"
    assert forwarded_client("127.0.0.1", h(x_forwarded_for="10.0.0.2"), TRUSTED) == "10.0.0.2"
    assert forwarded_client("127.0.0.1", [], TRUSTED) == "127.0.0.1"


def test_the_scheme_is_the_nearest_proxys() -> None:
    assert forwarded_proto(h(x_forwarded_proto="https")) == "https"
    assert (
        forwarded_proto(h(forwarded="for=1.2.3.4;proto=http, for=5.6.7.8;proto=https")) == "https"
    )
    assert forwarded_proto(h(x_forwarded_proto="javascript")) is None
    assert forwarded_proto([]) is None


def test_client_address_reads_the_scope() -> None:
    assert client_address({"type": "http", "client": ("::ffff:192.0.2.1", 1)}) == "192.0.2.1"
    assert client_address({"type": "http", "client": None}) == "unknown"
    assert client_address({"type": "http"}) == "unknown"
    assert address_bucket("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_bucket("192.0.2.1") == "192.0.2.1"


@given(peer=ipv4 | ipv6, xff=header_text, forwarded=header_text)
def test_an_untrusted_peer_is_the_client_whatever_the_headers(
    peer: str, xff: str, forwarded: str
) -> None:
    if peer in TRUSTED:
        return
    assert forwarded_client(peer, h(x_forwarded_for=xff, forwarded=forwarded), TRUSTED) == peer


@given(chain=st.lists(ipv4 | ipv6 | st.sampled_from(["10.0.0.1", "127.0.0.1"]), max_size=40))
def test_a_trusted_peers_client_comes_from_the_chain(chain: list[str]) -> None:
    found = forwarded_client("127.0.0.1", h(x_forwarded_for=", ".join(chain)), TRUSTED)
    untrusted = [a for a in chain[-32:] if a not in TRUSTED]
    if untrusted:
        address = ipaddress.ip_address(untrusted[-1])
        mapped = getattr(address, "ipv4_mapped", None)
        assert found == str(mapped or address)
    else:
        assert found in chain or found == "127.0.0.1"


@given(text=header_text)
def test_parsers_take_any_header_without_error(text: str) -> None:
    headers = h(x_forwarded_for=text, forwarded=text, x_forwarded_proto=text)
    assert len(forwarded_for(headers)) <= 32
    assert forwarded_proto(headers) in (None, "http", "https")
    assert 0 < len(forwarded_client("127.0.0.1", headers, TRUSTED)) <= 64
