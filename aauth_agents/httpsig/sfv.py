"""The RFC 8941 subset the three signature fields use, exact and fast.

``Signature-Input``, ``Signature``, ``Signature-Key`` and ``Content-Digest`` are small
Dictionaries of fixed shape: Inner Lists of Strings, or an Item, with Integer, String, Token
and Byte Sequence parameters. ``http_sfv`` parses and serialises any structured field, one
byte at a time; this module does the subset with a handful of regular expressions.

It is exact or it declines: :func:`parse_dictionary` returns ``None`` and the ``serialize_*``
functions return ``None`` for anything outside the subset -- Booleans, Decimals, Dates,
Display Strings, duplicate keys, non-canonical Base64, leading or trailing spaces, empty
fields -- and for anything invalid, so that the caller falls back to ``http_sfv`` and keeps
its behaviour (and its errors) unchanged. Property tests check that whatever this module
accepts, ``http_sfv`` parses or serialises identically (RFC 8941 §3, §4).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from http_sfv.types import Token

#: A bare item value this module handles (RFC 8941 §3.3.1-3.3.5, Booleans excluded).
Bare = int | str | bytes
#: Parameters (RFC 8941 §3.1.2), in order.
Params = dict[str, Bare]
#: An Item with its parameters.
FastItem = tuple[Bare, Params]
#: An Inner List: its Items, then its own parameters.
FastInnerList = tuple[list[FastItem], Params]

_MAX_INT = 999_999_999_999_999
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN_TEXT = re.compile(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*")
_STRING_TEXT = re.compile(r"[\x20-\x7e]*")
#: One bare item at a position: String | Token | Integer (not followed by a digit or ".") |
#: Byte Sequence.
_BARE = re.compile(
    r'"([\x20\x21\x23-\x5b\x5d-\x7e]*(?:\\["\\][\x20\x21\x23-\x5b\x5d-\x7e]*)*)"'
    r"|([A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*)"
    r"|(-?[0-9]{1,15})(?![0-9.])"
    r"|:([A-Za-z0-9+/=]*):"
)
_UNESCAPE = re.compile(r"\\([\"\\])")
_SPACES = re.compile(r" *")
_OWS = re.compile(r"[ \t]*")


def _bare(text: str, pos: int) -> tuple[Bare, int] | None:
    match = _BARE.match(text, pos)
    if match is None:
        return None
    string, token, integer, octets = match.groups()
    if string is not None:
        return (_UNESCAPE.sub(r"\1", string) if "\\" in string else string), match.end()
    if token is not None:
        return Token(token), match.end()
    if integer is not None:
        return int(integer), match.end()
    decoded = _octets_value(octets)
    return None if decoded is None else (decoded, match.end())


def _params(text: str, pos: int) -> tuple[Params, int] | None:
    params: Params = {}
    size = len(text)
    while pos < size and text[pos] == ";":
        pos = _SPACES.match(text, pos + 1).end()  # type: ignore[union-attr]
        key = _KEY.match(text, pos)
        if key is None or key.group() in params:
            return None
        pos = key.end()
        if pos >= size or text[pos] != "=":
            return None  # a Boolean true parameter
        value = _bare(text, pos + 1)
        if value is None:
            return None
        params[key.group()], pos = value
    return params, pos


def _item(text: str, pos: int) -> tuple[FastItem, int] | None:
    value = _bare(text, pos)
    if value is None:
        return None
    params = _params(text, value[1])
    if params is None:
        return None
    return (value[0], params[0]), params[1]


def _inner_list(text: str, pos: int) -> tuple[FastInnerList, int] | None:
    items: list[FastItem] = []
    size = len(text)
    pos += 1  # "("
    while True:
        pos = _SPACES.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= size:
            return None
        if text[pos] == ")":
            params = _params(text, pos + 1)
            if params is None:
                return None
            return (items, params[0]), params[1]
        item = _item(text, pos)
        if item is None:
            return None
        items.append(item[0])
        pos = item[1]
        if pos >= size or text[pos] not in " )":
            return None


def parse_dictionary(text: str) -> list[tuple[str, FastItem | FastInnerList]] | None:
    """The members of an RFC 8941 Dictionary (§4.2.2), or ``None`` outside the subset.

    An Item member is ``(value, params)``; an Inner List member is ``(items, params)`` whose
    ``items`` is a ``list``. Tokens are ``http_sfv.types.Token``, as ``http_sfv`` gives them.
    """
    size = len(text)
    if not size or text[0] == " " or text[-1] == " ":
        return None
    members: list[tuple[str, FastItem | FastInnerList]] = []
    seen: set[str] = set()
    pos = 0
    while True:
        key = _KEY.match(text, pos)
        if key is None or key.group() in seen or key.end() >= size or text[key.end()] != "=":
            return None
        seen.add(key.group())
        pos = key.end() + 1
        member = _inner_list(text, pos) if text.startswith("(", pos) else _item(text, pos)
        if member is None:
            return None
        members.append((key.group(), member[0]))
        pos = _OWS.match(text, member[1]).end()  # type: ignore[union-attr]
        if pos == size:
            return members
        if text[pos] != ",":
            return None
        pos = _OWS.match(text, pos + 1).end()  # type: ignore[union-attr]
        if pos == size:
            return None


def _string(value: str) -> str | None:
    if _plain(value):  # nothing to escape
        return f'"{value}"'
    if not _STRING_TEXT.fullmatch(value):
        return None
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{value}"'


def _integer(value: int) -> str | None:
    return str(value) if -_MAX_INT <= value <= _MAX_INT else None


def _token(value: str) -> str | None:
    return value if _TOKEN_TEXT.fullmatch(value) else None


def _octets(value: bytes) -> str:
    return f":{base64.b64encode(value).decode('ascii')}:"


#: RFC 8941 §4.1.3, by exact type (a ``bool`` is not an Integer here, a ``Token`` not a String).
_SERIALISERS: dict[type, Callable[[Any], str | None]] = {
    str: _string,
    int: _integer,
    Token: _token,
    bytes: _octets,
}


_PLAIN = r"[\x20\x21\x23-\x5b\x5d-\x7e]*"
_KEY_TEXT = r"[a-z*][a-z0-9_\-.*]*"
#: An Integer as RFC 8941 §4.1.4 serialises it: no leading zeros, no "-0".
_CANONICAL_INT = r"0|-?[1-9][0-9]{0,14}"
_CANONICAL_INNER_LIST = re.compile(
    rf'({_KEY_TEXT})=(\(((?:"{_PLAIN}"(?: "{_PLAIN}")*)?)\)'
    rf'((?:;{_KEY_TEXT}=(?:{_CANONICAL_INT}|"{_PLAIN}"))*))'
)
_CANONICAL_PARAM = re.compile(rf';({_KEY_TEXT})=(?:({_CANONICAL_INT})|"({_PLAIN})")')
_CANONICAL_TOKEN_ITEM = re.compile(
    rf"({_KEY_TEXT})=([A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*)((?:;{_KEY_TEXT}=\"{_PLAIN}\")*)"
)
_CANONICAL_TOKEN_ONE_PARAM = re.compile(
    rf"({_KEY_TEXT})=([A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*)(?:;({_KEY_TEXT})=\"({_PLAIN})\")?"
)
#: ``label=token;name=``: what precedes a single String parameter's value.
_CANONICAL_TOKEN_HEAD = re.compile(
    rf"({_KEY_TEXT})=([A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*);({_KEY_TEXT})="
)
_STRING_PARAM = re.compile(rf';({_KEY_TEXT})="({_PLAIN})"')
_CANONICAL_BYTES_ITEM = re.compile(rf"({_KEY_TEXT})=:([A-Za-z0-9+/]*={{0,2}}):")


def canonical_inner_list(text: str) -> tuple[str, str, list[str], Params] | None:
    """A one-member Dictionary ``label=("a" "b");k=1;s="v"`` as its serialiser writes it
    (Strings without escapes, canonical Integers, String or Integer parameters): the label,
    the member's own text (its serialisation), the Strings and the parameters; else ``None``.

    A signer sends the same Inner List of component identifiers on every request, only the
    parameters (``created``) change: an Inner List text that matched once is remembered with
    its Strings, and a field made of it and a lone canonical ``;created=`` Integer is read
    without the regular expression (:func:`_inner_list_by_regex` gives the same answer).
    """
    label, _, rest = text.partition("=")
    close = rest.find(")")  # a remembered list's ")" is its end: it ends outside a String
    strings = _INNER_LISTS_SEEN.get(rest[: close + 1]) if close > 0 else None
    if strings is not None:
        created = rest[close + 10 :]
        if (
            rest.startswith(";created=", close + 1)
            and created.isdigit()
            and created.isascii()
            and (len(created) == 1 or (created[0] != "0" and len(created) <= 15))
            and serialize_key(label) is not None
        ):
            return label, rest, list(strings), {"created": int(created)}
    return _inner_list_by_regex(text)


#: Inner List texts :func:`_inner_list_by_regex` matched, with their Strings (bounded:
#: cleared when full).
_INNER_LISTS_SEEN: dict[str, tuple[str, ...]] = {}


def _inner_list_by_regex(text: str) -> tuple[str, str, list[str], Params] | None:
    """:func:`canonical_inner_list` through its regular expression."""
    match = _CANONICAL_INNER_LIST.fullmatch(text)
    if match is None:
        return None
    label, value, inner, param_text = match.groups()
    params: Params = {}
    for key, integer, string in _CANONICAL_PARAM.findall(param_text):
        if key in params:
            return None
        params[key] = int(integer) if integer else string
    strings = inner[1:-1].split('" "') if inner else []
    if len(_INNER_LISTS_SEEN) >= 256:
        _INNER_LISTS_SEEN.clear()
    _INNER_LISTS_SEEN[value[: len(value) - len(param_text)]] = tuple(strings)
    return label, value, strings, params


#: The characters of ``_PLAIN``, for ``bytes.translate`` to delete.
_PLAIN_BYTES = bytes([0x20, 0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)])


def _plain(text: str) -> bool:
    """``text`` is String content needing no escape (``_PLAIN``): printable ASCII, no
    DQUOTE, no backslash. Nothing is left once those are deleted: a table lookup per
    byte, several times quicker than a regex (or ``isprintable``) over a long token."""
    return text.isascii() and not text.encode("ascii").translate(None, _PLAIN_BYTES)


#: ``label=token;name=`` heads that matched :data:`_CANONICAL_TOKEN_HEAD`, with their parts:
#: an agent sends one head (``sig=jwt;jwt=``) on every request (bounded: cleared when full).
_TOKEN_HEADS_SEEN: dict[str, tuple[str, Token, str]] = {}


def canonical_token_item(text: str) -> tuple[str, Token, dict[str, str]] | None:
    """A one-member Dictionary ``label=token;k="v"`` (String parameters without escapes):
    the label, the Token and the parameters; else ``None``."""
    head, quote, rest = text.partition('"')  # sig=jwt;jwt="...": the String checked
    if quote and rest[-1:] == '"' and _plain(rest[:-1]):  # by str methods, not a regex
        start = _TOKEN_HEADS_SEEN.get(head)
        if start is None:
            match = _CANONICAL_TOKEN_HEAD.fullmatch(head)
            if match is not None:
                label, token, name = match.groups()
                start = (label, Token(token), name)
                if len(_TOKEN_HEADS_SEEN) >= 256:
                    _TOKEN_HEADS_SEEN.clear()
                _TOKEN_HEADS_SEEN[head] = start
        if start is not None:
            return start[0], start[1], {start[2]: rest[:-1]}
    single = _CANONICAL_TOKEN_ONE_PARAM.fullmatch(text)
    if single is not None:
        label, token, name, value = single.groups()
        return label, Token(token), {} if name is None else {name: value}
    match = _CANONICAL_TOKEN_ITEM.fullmatch(text)
    if match is None:
        return None
    label, token, param_text = match.groups()
    found = _STRING_PARAM.findall(param_text)
    params = dict(found)
    if len(params) != len(found):
        return None  # a duplicate parameter
    return label, Token(token), params


def canonical_bytes_item(text: str) -> tuple[str, bytes] | None:
    """A one-member Dictionary ``label=:base64:`` in canonical Base64: label and bytes."""
    match = _CANONICAL_BYTES_ITEM.fullmatch(text)
    if match is None:
        return None
    value = _octets_value(match.group(2))
    return None if value is None else (match.group(1), value)


def _octets_value(text: str) -> bytes | None:
    """Base64 decoded exactly as ``http_sfv`` does it (its characters are checked by the
    caller's expression): ``None`` where it would fail."""
    try:
        return binascii.a2b_base64(text)
    except binascii.Error:
        return None


def serialize_bare(value: object) -> str | None:
    """A bare item (RFC 8941 §4.1.3): Integer, String, Token or Byte Sequence; else ``None``."""
    serialiser = _SERIALISERS.get(type(value))
    return None if serialiser is None else serialiser(value)


def serialize_params(params: Mapping[str, object]) -> str | None:
    """Parameters (RFC 8941 §4.1.1.2), or ``None`` outside the subset."""
    out = []
    for key, value in params.items():
        serialiser = _SERIALISERS.get(type(value))
        bare = None if serialiser is None else serialiser(value)
        if bare is None or serialize_key(key) is None:
            return None
        out.append(f";{key}={bare}")
    return "".join(out)


def serialize_inner_list(values: Sequence[object], params: Mapping[str, object]) -> str | None:
    """An Inner List of parameterless bare items (RFC 8941 §4.1.1.1), or ``None``.

    A list of plain Strings needing no escapes (component identifiers) is checked at once.
    """
    if values and all(type(value) is str for value in values):
        names: Sequence[str] = values  # type: ignore[assignment]
        if _plain("".join(names)):
            suffix = serialize_params(params)
            return None if suffix is None else '("' + '" "'.join(names) + '")' + suffix
    items = []
    for value in values:
        bare = serialize_bare(value)
        if bare is None:
            return None
        items.append(bare)
    suffix = serialize_params(params)
    if suffix is None:
        return None
    return f"({' '.join(items)}){suffix}"


#: Keys that passed :func:`serialize_key`: labels and parameter names recur on every
#: request (bounded: cleared when full).
_KEYS_SEEN: set[str] = set()


def serialize_key(key: str) -> str | None:
    """A Dictionary key (RFC 8941 §4.1.1.3), or ``None``."""
    if type(key) is not str:
        return None
    if key not in _KEYS_SEEN:
        if not _KEY.fullmatch(key):
            return None
        if len(_KEYS_SEEN) >= 256:
            _KEYS_SEEN.clear()
        _KEYS_SEEN.add(key)
    return key


__all__ = [
    "Bare",
    "FastInnerList",
    "FastItem",
    "Params",
    "canonical_bytes_item",
    "canonical_inner_list",
    "canonical_token_item",
    "parse_dictionary",
    "serialize_bare",
    "serialize_inner_list",
    "serialize_key",
    "serialize_params",
]
