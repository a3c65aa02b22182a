"""The request model and RFC 9421 §2 component derivation.

:class:`HttpRequest` is what both halves of the profile see: the method, the absolute URL as
addressed, the header fields and the body. Nothing here does I/O; an HTTP client or an ASGI
server builds one from what it sends or receives.

Derivation follows RFC 9421 §2.1 (header fields: lowercase names, each field line trimmed,
obsolete line folding replaced by a space, lines combined with ``", "``) and §2.2 (the derived
components ``@method``, ``@target-uri``, ``@authority``, ``@scheme``, ``@request-target``,
``@path`` and ``@query``). Components that cannot be derived -- an unknown derived component,
``@status`` or ``@query-param``, an absent header -- raise :class:`ComponentError`, never an
empty value (§2.5: "produce an error and not create a signature base").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from ..protocol.errors import ConfigurationError

#: Header fields as a mapping or as ``(name, value)`` field lines; names are case-insensitive.
HeadersInput = Mapping[str, str] | Iterable[tuple[str, str]]

#: RFC 9421 §2.2: the derived components this implementation can produce for a request.
DERIVED_COMPONENTS = frozenset(
    {"@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query"}
)

_DEFAULT_PORTS = {"http": 80, "https": 443}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_FIELD_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9a-z-]+$")
#: Names that passed ``_FIELD_NAME`` (a handful recur; bounded: cleared when full).
_FIELD_NAMES_SEEN: set[str] = set()
#: Methods that passed ``_TOKEN`` (bounded likewise).
_METHODS_SEEN: set[str] = set()
_OBS_FOLD = re.compile(r"[ \t]*\r?\n[ \t]+")
#: What :func:`_canonical_field_value` trims from either end of a field line.
_TRIMMED = frozenset(" \t")


class ComponentError(ConfigurationError):
    """A covered component cannot be derived from the request (RFC 9421 §2.5).

    Raised as-is to a signer (its request or component list is wrong); a verifier turns it
    into ``invalid_signature``.
    """


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _canonical_field_value(value: str) -> str:
    """RFC 9421 §2.1 for one field line: unfold obsolete line folding, trim whitespace."""
    if "\n" in value:
        value = _OBS_FOLD.sub(" ", value)
    value = value.strip(" \t")
    if "\r" in value or "\n" in value or "\x00" in value:
        raise ComponentError("a header field value contains a line break or NUL")
    return value


def _by_name(lines: tuple[tuple[str, str], ...]) -> dict[str, str | list[str]]:
    """Field lines by name: a name's one line as it is, several as a list in order."""
    fields: dict[str, str | list[str]] = dict(lines)
    if len(fields) == len(lines):  # every name once: the dict as built
        return fields
    fields = {}
    for key, value in lines:
        known = fields.get(key)
        if known is None:
            fields[key] = value
        elif isinstance(known, list):
            known.append(value)
        else:
            fields[key] = [known, value]
    return fields


class Target(NamedTuple):
    """A target URI's parts (:func:`split_target`)."""

    scheme: str
    authority: str
    path: str
    query: str | None  # None: no "?" at all


_PRINTABLE = re.compile(r"[\x21-\x7e]+")


#: The common URL: lowercase scheme and host name, at most a numeric port, no userinfo. For
#: these ``urlsplit`` gives the same parts; anything else goes through it.
_SIMPLE_URL = re.compile(
    r"(https?)://([a-z0-9.\-]+)(?::([0-9]{1,5}))?(/[\x21\x22\x24-\x3e\x40-\x7e]*)?"
    r"(?:\?([\x21\x22\x24-\x7e]*))?(?:#[\x21-\x7e]*)?"
)


def split_target(url: str) -> Target:
    """The scheme, authority (``host[:port]``, a default port omitted), path and query
    (``None`` without a ``?``) of an absolute http(s) ``url`` (raises
    :class:`ComponentError`)."""
    simple = _SIMPLE_URL.fullmatch(url)  # printable ASCII, as _split_with_urlsplit asks
    if simple is not None:
        scheme, host, port_text, path, query_text = simple.groups()
        port = None if port_text is None else int(port_text)
        if port is None or port <= 65535:
            if port is not None and port != _DEFAULT_PORTS[scheme]:
                host = f"{host}:{port}"
            return Target(scheme, host, path or "/", query_text)
    return _split_with_urlsplit(url)


def _split_with_urlsplit(url: str) -> Target:
    """:func:`split_target` for any URL, through ``urlsplit``."""
    if not _PRINTABLE.fullmatch(url):
        raise ComponentError("the URL must be non-empty printable ASCII without spaces")
    without_fragment = url.split("#", 1)[0]
    try:
        parts = urlsplit(without_fragment)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise ComponentError(f"cannot parse URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        raise ComponentError("the URL must be absolute http(s) with a host")
    if ":" in host:  # IPv6 literal: urlsplit strips the brackets
        host = f"[{host}]"
    authority = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    _, sep, query = without_fragment.partition("?")
    return Target(scheme, authority, parts.path or "/", query if sep else None)


class HttpRequest:
    """An HTTP request as the signer sends it or the verifier receives it.

    ``url`` is the absolute target URI as addressed (``https://host/path?query``) -- its host
    is the signed ``@authority`` even when the connection goes elsewhere. ``headers`` may hold
    several lines with the same name; they are combined per RFC 9421 §2.1. ``body`` is the
    exact content bytes, or ``None``; an empty body counts as no body.
    """

    __slots__ = ("_fields", "_headers", "_target", "body", "method", "url")

    method: str
    url: str
    body: bytes | None

    def __init__(
        self,
        method: str,
        url: str,
        headers: HeadersInput = (),
        body: bytes | bytearray | memoryview | None = None,
    ) -> None:
        items = headers.items() if isinstance(headers, Mapping) else headers
        self.method = method
        self.url = url
        self.headers = tuple((_text(k).strip().lower(), _text(v)) for k, v in items)
        self.body = None if body is None else bytes(body)
        self._target: Target | None = None

    def __repr__(self) -> str:
        return f"HttpRequest({self.method!r}, {self.url!r})"

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """The field lines, names lowercased, in order."""
        return self._headers

    @headers.setter
    def headers(self, lines: tuple[tuple[str, str], ...]) -> None:
        self._headers = lines
        self._fields: dict[str, str | list[str]] | None = None

    @property
    def has_body(self) -> bool:
        return bool(self.body)

    @property
    def target(self) -> Target:
        if self._target is None:
            self._target = split_target(self.url)
        return self._target

    @property
    def query(self) -> str:
        """The query string without its ``?`` (empty when there is none)."""
        return self.target.query or ""

    @property
    def has_query(self) -> bool:
        return bool(self.query)

    def header(self, name: str) -> str | None:
        """The combined value of every line of ``name`` (RFC 9421 §2.1), or ``None``."""
        fields = self._fields
        if fields is None:  # on the first lookup: by name, each a line or a list of lines
            fields = self._fields = _by_name(self._headers)
        value = fields.get(name)
        if value is None:
            lowered = name.lower()
            if lowered == name:
                return None
            value = fields.get(lowered)
            if value is None:
                return None
        if isinstance(value, list):
            return ", ".join([_canonical_field_value(v) for v in value])
        # the common line: no folding, nothing to trim, nothing refused (RFC 9421 §2.1)
        if (
            value[-1:] not in _TRIMMED
            and value[:1] not in _TRIMMED
            and "\n" not in value
            and "\r" not in value
            and "\x00" not in value
        ):
            return value
        return _canonical_field_value(value)

    def with_headers(self, extra: Mapping[str, str]) -> HttpRequest:
        """A copy where ``extra`` replaces any existing lines of the same names."""
        replaced = {k.lower() for k in extra}
        kept = [(k, v) for k, v in self.headers if k not in replaced]
        return HttpRequest(self.method, self.url, [*kept, *extra.items()], self.body)


def derived_component(request: HttpRequest, name: str) -> str:
    """RFC 9421 §2.2.1-§2.2.7."""
    if name == "@method":
        method = request.method
        if method not in _METHODS_SEEN:
            if not _TOKEN.match(method):
                raise ComponentError("the method must be an HTTP token")
            if len(_METHODS_SEEN) >= 64:
                _METHODS_SEEN.clear()
            _METHODS_SEEN.add(method)
        return method  # §2.2.1: case-sensitive, not normalised
    return target_component(request.target, name)


#: The derived components whose value depends on the path or the query of the target URI.
TARGET_COMPONENTS = frozenset({"@target-uri", "@request-target", "@path", "@query"})


def target_component(target: Target, name: str) -> str:
    """RFC 9421 §2.2.2-§2.2.7: the derived component ``name`` (not ``@method``) of a target
    split by :func:`split_target`."""
    if name == "@authority":
        return target.authority
    if name == "@path":
        return target.path
    if name == "@query":
        return "?" + (target.query or "")  # §2.2.7: a lone "?" when there is no query
    query = "" if target.query is None else f"?{target.query}"
    if name == "@target-uri":
        return f"{target.scheme}://{target.authority}{target.path}{query}"
    if name == "@scheme":
        return target.scheme
    if name == "@request-target":
        return f"{target.path}{query}"
    raise ComponentError(f"derived component {name!r} is not supported for requests")


def component_value(request: HttpRequest, name: str) -> str:
    """The RFC 9421 §2 value of the covered component ``name`` (no component parameters)."""
    if name.startswith("@"):
        if name == "@signature-params":
            raise ComponentError("@signature-params cannot be a covered component")
        return derived_component(request, name)
    if not is_field_name(name):
        raise ComponentError(f"{name!r} is not a lowercase header field name")
    return header_component(request, name)


def is_field_name(name: str) -> bool:
    """A lowercase HTTP field name (a token), as a covered component must be."""
    if name in _FIELD_NAMES_SEEN:
        return True
    if not _FIELD_NAME.match(name):
        return False
    if len(_FIELD_NAMES_SEEN) >= 256:
        _FIELD_NAMES_SEEN.clear()
    _FIELD_NAMES_SEEN.add(name)
    return True


def header_component(request: HttpRequest, name: str) -> str:
    """The value of the covered header field ``name`` (RFC 9421 §2.1), a valid name."""
    value = request.header(name)
    if value is None:
        raise ComponentError(f"covered header {name!r} is not present")
    return value


__all__ = [
    "DERIVED_COMPONENTS",
    "TARGET_COMPONENTS",
    "ComponentError",
    "HeadersInput",
    "HttpRequest",
    "Target",
    "component_value",
    "derived_component",
    "header_component",
    "is_field_name",
    "split_target",
    "target_component",
]
