"""The command line's own parsers: ``-H 'Name: value'`` and the default key directory."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.cli import (
    RESERVED_HEADERS,
    build_parser,
    default_directory,
    main,
    parse_header_option,
)

TOKEN_CHARS = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
names = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=30).filter(
    lambda n: n.lower() not in RESERVED_HEADERS
)
visible = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)


@given(st.text(max_size=80))
def test_header_option_is_a_pair_or_value_error(value: str) -> None:
    try:
        name, field_value = parse_header_option(value)
    except ValueError:
        return
    assert name and all(c in TOKEN_CHARS for c in name)
    assert name.lower() not in RESERVED_HEADERS
    assert not any(c in field_value for c in "\r\n\x00")
    assert field_value == field_value.strip(" \t")
    assert value.startswith(name + ":")


@given(name=names, inner=visible, pad_left=st.sampled_from(["", " ", "  ", "\t"]))
def test_header_option_round_trip(name: str, inner: str, pad_left: str) -> None:
    value = inner.strip()
    assert parse_header_option(f"{name}:{pad_left}{value} ") == (name, value)


@given(
    name=names,
    before=visible,
    after=visible,
    bad=st.sampled_from(["\r", "\n", "\x00", "\x7f", "\x1b", "\u2028", "✓"]),
)
def test_header_option_refuses_control_and_non_latin1(
    name: str, before: str, after: str, bad: str
) -> None:
    with pytest.raises(ValueError):
        parse_header_option(f"{name}: {before}{bad}{after}")


@pytest.mark.parametrize(
    "value",
    [
        "NoColon",
        ": empty name",
        "Bad Name: x",
        "Host: evil.example",
        "signature-key: x",
        "Content-Length: 3",
        "Signature: x",
    ],
)
def test_header_option_rejections(value: str) -> None:
    with pytest.raises(ValueError):
        parse_header_option(value)


def test_header_values_may_contain_colons_and_latin1() -> None:
    assert parse_header_option("X-Time: 12:30:00") == ("X-Time", "12:30:00")
    assert parse_header_option("Accept:") == ("Accept", "")
    assert parse_header_option("X-Name: caf\u00e9") == ("X-Name", "caf\u00e9")


def test_default_directory() -> None:
    home = Path("/home/u")
    assert default_directory({"AAUTH_AGENTS_DIR": "/k"}, home=home) == Path("/k")
    assert default_directory({}, platform="linux", home=home) == home / ".config/aauth-agents"
    assert default_directory({"XDG_CONFIG_HOME": "/x"}, platform="linux", home=home) == Path(
        "/x/aauth-agents"
    )
    # a relative XDG_CONFIG_HOME is invalid per the XDG spec and ignored
    assert default_directory({"XDG_CONFIG_HOME": "rel"}, platform="linux", home=home) == (
        home / ".config/aauth-agents"
    )
    assert default_directory({}, platform="darwin", home=home) == (
        home / "Library/Application Support/aauth-agents"
    )
    assert default_directory({"APPDATA": "/appdata"}, platform="win32", home=home) == Path(
        "/appdata/aauth-agents"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["fetch", "https://r.example/", "-H", "Host: other.example"],
        ["fetch", "https://r.example/", "-H", "no colon"],
        ["fetch", "https://r.example/", "--map", "https://r.example"],
        ["fetch", "https://r.example/", "--map", "https://r.example/path=http://127.0.0.1:1"],
        ["fetch", "https://r.example/", "--timeout", "0"],
        ["fetch", "https://r.example/", "--max-wait", "nan"],
    ],
)
def test_fetch_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "aauth-agents fetch: error:" in capsys.readouterr().err


def test_fetch_options_parse() -> None:
    args = build_parser().parse_args(
        [
            "fetch",
            "https://r.example/x?y=1",
            "-X",
            "put",
            "-H",
            "Content-Type: application/json",
            "-H",
            "X-A: 1",
            "-d",
            "@-",
            "--map",
            "https://r.example=http://127.0.0.1:9",
            "--map",
            "https://ps.example=http://127.0.0.1:8",
            "--justification",
            "because",
            "--verbose",
        ]
    )
    assert args.headers == [("Content-Type", "application/json"), ("X-A", "1")]
    assert args.maps == [
        ("https://r.example", "http://127.0.0.1:9"),
        ("https://ps.example", "http://127.0.0.1:8"),
    ]
    assert (args.method, args.data, args.justification, args.verbose) == (
        "put",
        "@-",
        "because",
        True,
    )
