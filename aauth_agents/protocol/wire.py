"""Shared plumbing for the wire-format parsers: one error family and RFC 8941 access.

Every parser in :mod:`aauth_agents.protocol` turns bad input into a
:class:`WireFormatError` (an :class:`~aauth_agents.protocol.errors.ProtocolError`, so it
carries a registry code and renders as problem+json, and a ``ValueError``, so generic
callers can catch it). Structured fields always go through ``http_sfv``; this module wraps
its parse failures -- which are not all ``ValueError`` -- into typed errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from http_sfv.dictionary import Dictionary
from http_sfv.item import InnerList, Item
from http_sfv.list import List
from http_sfv.types import Token

from .errors import ConfigurationError, ProtocolError

#: A header as received: one field line, or every line of a repeated field.
FieldInput = str | Sequence[str]


class WireFormatError(ProtocolError, ValueError):
    """Input that does not follow the wire format. ``what`` names the header or member."""

    def __init__(self, what: str, detail: str, *, code: str = "invalid_request"):
        super().__init__(f"{what}: {detail}", code=code)
        self.what = what


class MalformedHeaderError(WireFormatError):
    """A header field that does not parse as its specified structure (RFC 8941, RFC 9110)."""


def field_lines(value: FieldInput) -> list[str]:
    """The field's lines as a list; a single string is one line."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise MalformedHeaderError("header", "expected a field value or a list of field lines")
    return list(value)


def combine_lines(value: FieldInput) -> str:
    """RFC 9110 §5.3: repeated field lines are combined with ``", "``."""
    return ", ".join(field_lines(value))


def _ascii(name: str, value: FieldInput) -> bytes:
    text = combine_lines(value)
    if not text.isascii():
        raise MalformedHeaderError(name, "structured fields are ASCII only")
    return text.encode("ascii")


def parse_dictionary(name: str, value: FieldInput) -> Dictionary:
    """Parse an RFC 8941 Dictionary or raise :class:`MalformedHeaderError`."""
    data = _ascii(name, value)
    parsed = Dictionary()
    try:
        parsed.parse(data)
    except Exception as exc:  # http_sfv raises ValueError, IndexError and others
        raise MalformedHeaderError(name, "not a structured-field Dictionary") from exc
    return parsed


def parse_list(name: str, value: FieldInput) -> List:
    """Parse an RFC 8941 List; an empty field is an empty list (RFC 8941 §3.1)."""
    data = _ascii(name, value)
    parsed = List()
    if not data.strip(b" \t"):
        return parsed
    try:
        parsed.parse(data)
    except Exception as exc:  # http_sfv raises ValueError, IndexError and others
        raise MalformedHeaderError(name, "not a structured-field List") from exc
    return parsed


def token_members(members: Iterable[Any]) -> list[str]:
    """The Token values of a parsed List, in order; Inner Lists and other items skipped."""
    return [str(m.value) for m in members if isinstance(m, Item) and isinstance(m.value, Token)]


def serialize(name: str, structure: Dictionary | List) -> str:
    """Serialize a structure we built, and parse it back: http_sfv lets a few invalid values
    through (an empty Token), and we never emit what we would refuse to read."""
    try:
        text = str(structure)
        type(structure)().parse(text.encode("ascii"))
    except Exception as exc:  # ValueError, IndexError, UnicodeError from http_sfv
        raise ConfigurationError(f"cannot serialize {name}: {exc!r}") from exc
    return text


def token_list(name: str, values: Iterable[str]) -> str:
    """Serialize an RFC 8941 List of Tokens (``a, b, c``)."""
    items = List()
    for value in values:
        items.append(Item(Token(value)))
    return serialize(name, items)


def string_inner_list(values: Iterable[str]) -> InnerList:
    """An Inner List of Strings, as ``required_input`` uses."""
    return InnerList([Item(str(v)) for v in values])


def get_field(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> list[str]:
    """Every line of field ``name`` (case-insensitive) from a mapping or from pairs."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    return [v for k, v in pairs if k.lower() == wanted]


__all__ = [
    "FieldInput",
    "MalformedHeaderError",
    "WireFormatError",
    "get_field",
]
