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


# -- lone surrogates (I-JSON, RFC 7493 §2.1) -----------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_LONE = st.integers(0xD800, 0xDFFF).map(chr)


def _embed(value: object, where: int, text: str) -> object:
    """``value`` with ``text`` put in as a member name, a member value or an array item."""
    place = where % 3
    if place == 0:
        return {text: value}
    if place == 1:
        return {"v": value, "s": text}
    return [value, text]


@given(_JSON, st.booleans())
def test_loads_json_accepts_every_json_text(value: object, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert loads_json(text) == value
    assert loads_json(text.encode()) == value


@given(_JSON, st.text(), _LONE, st.text(), st.integers(0, 2), st.booleans())
def test_loads_json_refuses_every_lone_surrogate(
    value: object, before: str, lone: str, after: str, where: int, as_bytes: bool
) -> None:
    """Escaped (``\\ud800``, the only way into UTF-8 JSON) or, in a ``str``, raw."""
    document = _embed(value, where, before + lone + after)
    escaped = json.dumps(document)  # (ensure_ascii: the surrogate as an escape)
    with pytest.raises(ValueError, match="surrogate"):
        loads_json(escaped.encode() if as_bytes else escaped)
    with pytest.raises(ValueError, match="surrogate"):
        loads_json(json.dumps(document, ensure_ascii=False))
    with pytest.raises(ValueError):  # (and so does every parser of received JSON objects)
        loads_json_object(escaped.encode())


def test_an_escaped_backslash_before_u_d800_is_not_a_surrogate() -> None:
    assert loads_json(rb'["\\ud800", "\ud83d\ude00"]') == ["\\ud800", "\U0001f600"]


def _reference_b64url_decode(value: str) -> bytes | None:
    """The definition b64url_decode implements: the base64url alphabet only, unpadded,
    decoded by the standard library (``None``: refused)."""
    import base64
    import binascii
    import re

    if not re.fullmatch(r"[A-Za-z0-9_-]*", value) or len(value) % 4 == 1:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


@given(st.text(alphabet="AZaz09-_+/= \n\t.\x00\xe9=", max_size=12) | st.text(max_size=12))
def test_b64url_decode_agrees_with_its_definition(value: str) -> None:
    """The fast decoder (no regex pass) accepts exactly what the alphabet check and
    ``urlsafe_b64decode`` accept, with the same bytes."""
    expected = _reference_b64url_decode(value)
    if expected is None:
        with pytest.raises(ValueError):
            b64url_decode(value)
    else:
        assert b64url_decode(value) == expected


def _outcome(parse: object, text: str) -> object:
    try:
        return ("ok", parse(text))  # type: ignore[operator]
    except ValueError as exc:  # JSONDecodeError included: compare the messages
        return ("error", str(exc))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=8,
    ).map(json.dumps)
    | st.text(alphabet=' {}[]":,\n1aeu', max_size=20)
)
def test_loads_json_is_the_strict_decoder(text: str) -> None:
    """The scanner called directly gives what the strict decoder's ``decode`` gives,
    values and errors alike, with or without surrounding whitespace."""
    from aauth_agents.protocol.encoding import _DECODER

    for candidate in (text, f" {text}", f"{text} ", f"{text}x"):
        assert _outcome(loads_json, candidate) == _outcome(_DECODER.decode, candidate)
