"""Parsers of discovery: Cache-Control and freshness, documents, URLs for egress. Each returns
a value or a typed error, never anything else (property-based, hypothesis)."""

from __future__ import annotations

import ipaddress
from email.utils import formatdate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aauth_agents.discovery import (
    CacheControl,
    EgressPolicy,
    FetchResult,
    classify,
    freshness_lifetime,
    parse_cache_control,
)
from aauth_agents.discovery.cache import parse_document, select_key
from aauth_agents.protocol.errors import DiscoveryError, EgressDeniedError

NOW = 1_730_217_600.0
DAY = 86400.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, CacheControl()),
        ("", CacheControl()),
        ("max-age=60", CacheControl(max_age=60)),
        ("public, max-age=3600, must-revalidate", CacheControl(max_age=3600)),
        ('max-age="120"', CacheControl(max_age=120)),
        ("MAX-AGE=10, Max-Age=5", CacheControl(max_age=5)),
        ("max-age=-1", CacheControl(max_age=0)),
        ("max-age=1.5", CacheControl(max_age=0)),
        ("max-age", CacheControl(max_age=0)),
        ("max-age=99999999999999999999", CacheControl(max_age=2**31)),
        ("no-store", CacheControl(no_store=True)),
        ("no-cache", CacheControl(no_cache=True)),
        ('no-cache="set-cookie", max-age=30', CacheControl(max_age=30, no_cache=True)),
        ('private="a, b", max-age=30', CacheControl(max_age=30)),
        ("garbage ,, max-age=30", CacheControl(max_age=30)),
        ("max-age=6 0, no-store", CacheControl(no_store=True)),
        ("s-maxage=10", CacheControl()),
    ],
)
def test_parse_cache_control(value: str | None, expected: CacheControl) -> None:
    assert parse_cache_control(value) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 3600.0),
        ({"cache-control": "max-age=60"}, 60.0),
        ({"cache-control": "max-age=60", "age": "15"}, 45.0),
        ({"cache-control": "max-age=60", "age": "600"}, 0.0),
        ({"cache-control": "max-age=31536000"}, DAY),
        ({"cache-control": "no-store, max-age=60"}, 0.0),
        ({"cache-control": "no-cache"}, 0.0),
        ({"expires": formatdate(NOW + 300, usegmt=True)}, 300.0),
        ({"expires": formatdate(NOW - 300, usegmt=True)}, 0.0),
        ({"expires": "0"}, 0.0),
        ({"expires": "tomorrow"}, 0.0),
        (
            {
                "expires": formatdate(NOW + 900, usegmt=True),
                "date": formatdate(NOW + 800, usegmt=True),
            },
            100.0,
        ),
        ({"expires": formatdate(NOW + 300, usegmt=True), "cache-control": "max-age=20"}, 20.0),
        ({"expires": formatdate(NOW + 10 * DAY, usegmt=True)}, DAY),
    ],
)
def test_freshness_lifetime(headers: dict[str, str], expected: float) -> None:
    assert freshness_lifetime(headers, now=NOW) == pytest.approx(expected)


@given(st.text())
def test_cache_control_parser_never_fails(value: str) -> None:
    parsed = parse_cache_control(value)
    assert isinstance(parsed, CacheControl)
    assert parsed.max_age is None or 0 <= parsed.max_age <= 2**31


_directive = st.one_of(
    st.sampled_from(
        [
            "no-store",
            "no-cache",
            "public",
            "private",
            "must-revalidate",
            "immutable",
            'no-cache="x"',
            "stale-while-revalidate=30",
        ]
    ),
    st.integers(min_value=0, max_value=10**12).map(lambda n: f"max-age={n}"),
    st.text(alphabet='abcdefgh-=", ;', max_size=12),
)


@given(st.lists(_directive, max_size=6), st.sampled_from([",", ", ", " ,", ",,"]))
def test_structured_cache_control(directives: list[str], separator: str) -> None:
    parsed = parse_cache_control(separator.join(directives))
    if "no-store" in directives:
        assert parsed.no_store
    ages = [int(d[8:]) for d in directives if d.startswith("max-age=") and d[8:].isdigit()]
    if ages and parsed.max_age is not None:
        assert parsed.max_age <= min(min(ages), 2**31)


_header_value = st.one_of(
    st.text(max_size=40),
    st.builds(lambda t: formatdate(t, usegmt=True), st.floats(min_value=0, max_value=4e9)),
)


@given(
    st.dictionaries(
        st.sampled_from(["cache-control", "expires", "date", "age"]), _header_value, max_size=4
    ),
    st.floats(min_value=0, max_value=DAY),
    st.floats(min_value=0, max_value=4e9),
)
def test_freshness_is_bounded(headers: dict[str, str], max_ttl: float, now: float) -> None:
    lifetime = freshness_lifetime(
        headers, now=now, default_ttl=min(3600.0, max_ttl), max_ttl=max_ttl
    )
    assert 0.0 <= lifetime <= max_ttl


@given(st.integers(min_value=0, max_value=10**15))
def test_max_age_is_capped(seconds: int) -> None:
    lifetime = freshness_lifetime({"cache-control": f"max-age={seconds}"}, now=NOW)
    assert lifetime == min(seconds, DAY)


@settings(max_examples=300)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=599))
def test_documents_parse_or_raise_discovery_error(body: bytes, status: int) -> None:
    try:
        document = parse_document("https://ps.example/x", FetchResult(status, {}, body))
    except DiscoveryError:
        return
    assert status == 200 and isinstance(document, dict)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.lists(_json, max_size=8), st.text(max_size=8))
def test_key_selection_never_trips_on_other_members(keys: list[object], kid: str) -> None:
    try:
        selected = select_key(keys, kid)
    except DiscoveryError:
        return  # only for duplicate kids
    assert selected is None or selected["kid"] == kid


@given(st.text(max_size=80))
def test_egress_url_checks_raise_only_egress_errors(url: str) -> None:
    def resolver(host: str) -> list[str]:
        return ["93.184.216.34"]

    try:
        addresses = EgressPolicy(resolver=resolver).admit(url)
    except EgressDeniedError:
        return
    assert url.lower().startswith("https://") and addresses


@given(st.ip_addresses())
def test_classify_every_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    category = classify(address)
    assert category in {
        "global",
        "loopback",
        "private",
        "link-local",
        "unspecified",
        "multicast",
        "reserved",
    }
    if isinstance(address, ipaddress.IPv4Address):
        assert classify(ipaddress.IPv6Address(f"::ffff:{address}")) == category


@given(st.ip_addresses())
def test_admission_agrees_with_classification(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    policy = EgressPolicy.for_mapped_hosts({"ps.example": str(address)})
    if classify(address) == "global":
        assert policy.admit("https://ps.example/") == [address]
    else:
        with pytest.raises(EgressDeniedError):
            policy.admit("https://ps.example/")
