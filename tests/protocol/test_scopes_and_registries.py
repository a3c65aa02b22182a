"""Scope strings (§Scopes), the value registries and the ``device`` string (§PS Token Endpoint)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol import (
    ACCESS_MODE_VALUES,
    CAPABILITY_VALUES,
    IDENTITY_SCOPES,
    PLATFORM_VALUES,
    AAuthError,
    ConfigurationError,
    InvalidScopeError,
    WireFormatError,
    is_identity_scope,
    parse_scope,
    serialize_scope,
    split_scopes,
    validate_device,
    validate_platform,
)


def test_scope_examples() -> None:
    assert parse_scope("data.read data.write openid") == ("data.read", "data.write", "openid")
    assert parse_scope("a") == ("a",)
    assert parse_scope("a b a") == ("a", "b")
    assert parse_scope("urn:x:read !#$%&'()*+,-./:;<=>?@[]^_`{|}~") == (
        "urn:x:read",
        "!#$%&'()*+,-./:;<=>?@[]^_`{|}~",
    )


@pytest.mark.parametrize(
    "bad", ["", " ", "a  b", " a", "a ", "a\tb", 'a"b', "a\\b", "\u00e9", "a\nb", "a\x7f"]
)
def test_scope_rejections(bad: str) -> None:
    with pytest.raises(InvalidScopeError) as info:
        parse_scope(bad)
    assert info.value.code == "invalid_scope" and info.value.status == 400


def test_serialize_scope() -> None:
    assert serialize_scope(["data.read", "openid", "data.read"]) == "data.read openid"
    for bad in ([], ["a b"], [""], ['q"']):
        with pytest.raises(ConfigurationError):
            serialize_scope(bad)


def test_identity_scopes() -> None:
    assert IDENTITY_SCOPES == {
        "openid",
        "profile",
        "email",
        "address",
        "phone",
        "tenant",
        "groups",
        "roles",
    }
    assert is_identity_scope("email") and not is_identity_scope("data.read")
    assert split_scopes(parse_scope("openid data.read email data.write")) == (
        ("data.read", "data.write"),
        ("openid", "email"),
    )


_scope_token = st.text(
    st.characters(codec="ascii", min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\'),
    min_size=1,
    max_size=10,
)


@given(st.lists(_scope_token, min_size=1, max_size=6, unique=True))
def test_scope_round_trip(tokens: list[str]) -> None:
    assert parse_scope(serialize_scope(tokens)) == tuple(tokens)


@given(st.text(max_size=40))
def test_parse_scope_typed(text: str) -> None:
    try:
        tokens = parse_scope(text)
    except AAuthError:
        return
    assert serialize_scope(tokens).split(" ") == list(tokens)


def test_registries() -> None:
    assert CAPABILITY_VALUES == {"interaction", "clarification", "payment"}
    assert PLATFORM_VALUES == {"web", "mobile", "desktop", "workload", "self-hosted"}
    assert ACCESS_MODE_VALUES == {
        "agent-token",
        "person-token",
        "session-token",
        "auth-token",
        "per-call",
    }


def test_platform() -> None:
    for value in sorted(PLATFORM_VALUES):
        assert validate_platform(value) == value
    for bad in ["Web", "server", "", None, 1]:
        with pytest.raises(WireFormatError):
            validate_platform(bad)


@pytest.mark.parametrize(
    "device", ["Chrome on macOS", "Pixel 8 (App)", "x", "J\u00fcrgen\u2019s laptop 💻", "a" * 64]
)
def test_device_accepts(device: str) -> None:
    assert validate_device(device) == device


@pytest.mark.parametrize(
    "device",
    [
        "",
        "a" * 65,
        "tab\there",
        "new\nline",
        "nul\x00",
        "bell\x07",
        "del\x7f",
        "c1\x85",
        "rtl\u202eoverride",
        "zero\u200bwidth",
        "line\u2028sep",
        "lone \ud800",
        None,
        5,
    ],
)
def test_device_rejects(device: object) -> None:
    with pytest.raises(WireFormatError) as info:
        validate_device(device)
    assert info.value.code == "invalid_request"


@given(st.text(max_size=80))
def test_device_typed(text: str) -> None:
    try:
        assert validate_device(text) == text
    except AAuthError:
        assert not text or len(text) > 64 or not text.isprintable()


@given(st.one_of(st.text(max_size=15), st.none(), st.integers()))
def test_validate_platform_typed(value: object) -> None:
    try:
        assert validate_platform(value) in PLATFORM_VALUES
    except AAuthError:
        assert value not in PLATFORM_VALUES
