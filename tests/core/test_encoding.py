"""Base64 variants and strict JSON for everything received."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol.encoding import (
    b64url_decode,
    b64url_encode,
    loads_json,
    loads_json_object,
)


@given(st.binary(max_size=200))
def test_b64url_roundtrip(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    assert b64url_decode(encoded) == data


@pytest.mark.parametrize("bad", ["abc=", "a+b/", "a", "ab cd", "ab\n"])
def test_b64url_rejects_other_forms(bad: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(bad)


@pytest.mark.parametrize(
    "text",
    [
        '{"issuer": "https://a.example", "issuer": "https://b.example"}',
        '{"exp": NaN}',
        '{"exp": Infinity}',
        "[" * 100_000 + "]" * 100_000,
        b'{"a": "\xff"}',
        "{",
    ],
    ids=["duplicate-member", "nan", "infinity", "deep", "bad-utf8", "truncated"],
)
def test_loads_json_is_strict(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        loads_json(text)


def test_loads_json_accepts_json() -> None:
    assert loads_json(b'{"a": [1, 2.5, null, true], "b": {"c": "d"}}') == {
        "a": [1, 2.5, None, True],
        "b": {"c": "d"},
    }


@given(st.text(max_size=100))
def test_loads_json_raises_only_value_error(text: str) -> None:
    try:
        loads_json(text)
    except ValueError:
        pass


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(_json_values)
def test_loads_json_object_takes_objects_only(value: object) -> None:
    text = json.dumps(value)
    if isinstance(value, dict):
        assert loads_json_object(text) == value
        assert loads_json_object(text.encode()) == value
    else:
        with pytest.raises(ValueError, match=r"^not a JSON object$"):
            loads_json_object(text)


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', "{", b"\xff", "", '{"a": NaN}'])
def test_loads_json_object_refuses_what_loads_json_refuses(text: str | bytes) -> None:
    with pytest.raises(ValueError, match=r"^not JSON$"):
        loads_json_object(text)


@given(st.binary(max_size=100))
def test_loads_json_object_raises_only_value_error(data: bytes) -> None:
    try:
        assert isinstance(loads_json_object(data), dict)
    except ValueError:
        pass
