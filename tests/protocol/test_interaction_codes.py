"""Interaction codes (§Interaction Code Format)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol import (
    CROCKFORD_ALPHABET,
    AAuthError,
    ConfigurationError,
    InvalidInteractionCodeError,
    codes_match,
    format_code,
    generate_code,
    is_valid_emitted_code,
    normalize_code,
)


def test_alphabet_is_crockford() -> None:
    assert CROCKFORD_ALPHABET == "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    assert not set("ILOU") & set(CROCKFORD_ALPHABET)


def test_default_code_is_8_symbols_grouped() -> None:
    code = generate_code()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", code)
    assert is_valid_emitted_code(code)


def test_length_and_grouping_configurable() -> None:
    assert re.fullmatch(r"[0-9A-Z]{12}", generate_code(12, group=None))
    assert re.fullmatch(r"[0-9A-Z]{3}(-[0-9A-Z]{3}){3}", generate_code(12, group=3))
    assert len(generate_code(10, group=4).split("-")) == 3


@pytest.mark.parametrize("length", [0, 7, -1, True])
def test_short_codes_refused(length: int) -> None:
    with pytest.raises(ConfigurationError):
        generate_code(length)


def test_codes_are_random() -> None:
    codes = {generate_code() for _ in range(200)}
    assert len(codes) == 200
    symbols = set("".join(codes).replace("-", ""))
    assert len(symbols) > 25  # every symbol is in use, not a narrow subset


def test_spec_example_normalizes() -> None:
    assert normalize_code("A1B2-C3D4") == "A1B2C3D4"
    assert normalize_code("a1b2c3d4") == "A1B2C3D4"
    assert normalize_code(" a1b2-c3d4 ") == "A1B2C3D4"


def test_aliases_fold() -> None:
    assert normalize_code("ilo0-LLOO") == "1100" + "1100"
    assert codes_match("1100-1100", "ILOO-lLoo")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "----",
        "ABCD EFGH",
        "ABCD_EFGH",
        "UUUU-UUUU",
        "ABCD-ÉFGH",
        "\u0131BCD",
        "ABCD\x00",
        "ABC+DEFG",
    ],
)
def test_bad_characters_rejected(bad: str) -> None:
    with pytest.raises(InvalidInteractionCodeError) as info:
        normalize_code(bad)
    assert info.value.code == "invalid_code" and info.value.status == 410


def test_codes_match() -> None:
    assert codes_match("A1B2-C3D4", "a1b2c3d4")
    assert not codes_match("A1B2-C3D4", "A1B2-C3D5")
    assert not codes_match("A1B2-C3D4", "A1B2-C3D")
    assert not codes_match("A1B2-C3D4", "A1B2-C3DU")  # unreadable input does not match
    with pytest.raises(ConfigurationError):
        codes_match("not a code!", "A1B2C3D4")


def test_format_code() -> None:
    assert format_code("a1b2c3d4e5") == "A1B2-C3D4-E5"
    assert format_code("A1B2-C3D4", group=None) == "A1B2C3D4"


def test_emitted_code_rules() -> None:
    assert is_valid_emitted_code("A1B2-C3D4")
    assert not is_valid_emitted_code("a1b2-c3d4")
    assert not is_valid_emitted_code("A1B2-C3D")
    assert not is_valid_emitted_code("ILOU-ILOU")


def _retype(code: str, choose: Callable[[Sequence[str]], str], hyphen: Callable[[], bool]) -> str:
    """How a person might type ``code`` back: any case, aliases, stray hyphens."""
    out = []
    for ch in code.replace("-", ""):
        if ch == "1":
            ch = choose("1IiLl")
        elif ch == "0":
            ch = choose("0Oo")
        else:
            ch = choose([ch, ch.lower()])
        out.append(ch)
        if hyphen():
            out.append("-")
    return "".join(out)


@st.composite
def retyped(draw: st.DrawFn) -> tuple[str, str]:
    """A code in generate_code's format (symbols drawn by hypothesis, so that shrinking
    works) and a retyping of it."""
    symbols = draw(st.text(st.sampled_from(CROCKFORD_ALPHABET), min_size=8, max_size=20))
    code = format_code(symbols, group=draw(st.sampled_from([None, 3, 4, 5])))
    typed = _retype(
        code, lambda xs: draw(st.sampled_from(list(xs))), lambda: draw(st.integers(0, 5)) == 0
    )
    return code, typed


def test_generated_codes_match_when_retyped() -> None:
    rng = random.Random(20260407)
    for _ in range(300):
        code = generate_code(rng.randint(8, 16), group=rng.choice([None, 4]))
        typed = _retype(code, rng.choice, lambda: rng.random() < 0.2)
        assert codes_match(code, typed), (code, typed)


@given(retyped())
def test_retyped_code_matches(pair: tuple[str, str]) -> None:
    code, typed = pair
    assert codes_match(code, typed)
    assert normalize_code(typed) == code.replace("-", "")


@given(retyped(), st.integers(0, 19), st.sampled_from(CROCKFORD_ALPHABET))
def test_changed_symbol_does_not_match(pair: tuple[str, str], at: int, symbol: str) -> None:
    code, _ = pair
    value = code.replace("-", "")
    at %= len(value)
    changed = value[:at] + symbol + value[at + 1 :]
    assert codes_match(code, changed) == (changed == value)


@given(st.text(max_size=30))
def test_normalize_typed(text: str) -> None:
    try:
        value = normalize_code(text)
    except AAuthError:
        return
    assert set(value) <= set(CROCKFORD_ALPHABET)


@given(st.one_of(st.text(max_size=30), st.sampled_from(["AIB2-C3D4", "alb2c3d4", " A1B2C3D4 "])))
def test_codes_match_never_raises_on_presented_input(text: str) -> None:
    folded = text.strip().replace("-", "").upper().translate(str.maketrans("ILO", "110"))
    assert codes_match("A1B2-C3D4", text) == (text.isascii() and folded == "A1B2C3D4")
