"""The signature base (RFC 9421 §2.5) and the ``Signature-Input`` field (RFC 9421 §4.1).

``@signature-params`` (RFC 9421 §2.3) is always the serialisation of an RFC 8941 Inner List:
built from the components and parameters when signing, re-serialised from the parsed field
when verifying, so Strings stay Strings and Tokens stay Tokens and a parameter the signer
sent (even ``alg`` or ``keyid``) is reproduced, not dropped. The fixed-shape common case goes
through :mod:`.sfv`; anything outside its subset through ``http_sfv``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from http_sfv.dictionary import Dictionary
from http_sfv.item import InnerList, Item
from http_sfv.types import DisplayString

from ..protocol.errors import ConfigurationError, MissingSignatureError
from .request import (
    DERIVED_COMPONENTS,
    ComponentError,
    HttpRequest,
    component_value,
    derived_component,
    header_component,
    is_field_name,
)
from .sfv import canonical_inner_list, parse_dictionary, serialize_inner_list, serialize_key


def signature_params(components: Sequence[str], params: Mapping[str, Any]) -> InnerList:
    """The Inner List of RFC 9421 §2.3: component identifiers as Strings, then ``params``
    in the given order (``int`` -> Integer, ``str`` -> String, ``Token`` -> Token, ...)."""
    inner = InnerList([Item(str(name)) for name in components])
    for key, value in params.items():
        inner.params[key] = value
    try:
        str(inner)  # validate now: a bad key or value would otherwise fail much later
    except (ValueError, IndexError) as exc:  # http_sfv: IndexError on an empty key
        raise ConfigurationError(f"cannot serialise signature parameters: {exc}") from exc
    return inner


def signature_params_value(components: Sequence[str], params: Mapping[str, Any]) -> str:
    """The serialised :func:`signature_params` (the ``@signature-params`` value)."""
    fast = serialize_inner_list(components, params)
    return fast if fast is not None else str(signature_params(components, params))


#: Component names as RFC 8941 Strings: a handful recur (bounded: cleared when full).
_IDENTIFIERS: dict[str, str] = {}


def _identifier(name: str) -> str:
    """A component name as its RFC 8941 string."""
    identifier = _IDENTIFIERS.get(name)
    if identifier is None:
        try:
            identifier = str(Item(name))
        except ValueError as exc:
            raise ComponentError(f"{name!r} is not a valid component identifier") from exc
        if len(_IDENTIFIERS) >= 256:
            _IDENTIFIERS.clear()
        _IDENTIFIERS[name] = identifier
    return identifier


def build_signature_base(
    request: HttpRequest,
    components: Sequence[str],
    signature_params_value: str,
    known: Mapping[str, str] | None = None,
) -> bytes:
    """RFC 9421 §2.5 given the already-serialised ``@signature-params`` value.

    One ``"name": value`` line per covered component, in order, then the
    ``"@signature-params"`` line; LF separated, no trailing newline, US-ASCII. ``known``
    holds component values already derived (or, for a signer, the fields it adds), used
    instead of deriving them from ``request`` again.
    """
    known = known or {}
    key = components if type(components) is tuple else tuple(components)
    plan = _PLANS.get(key)
    text = None
    if plan is not None:
        try:
            text = plan.template % (*plan.values(request, known), signature_params_value)
        except ComponentError:  # the first failing component, in order, names the error
            pass
    if text is None:
        lines = _first_lines(request, key, known)
        lines.append(f'"@signature-params": {signature_params_value}')
        text = "\n".join(lines)
    try:
        return text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ComponentError("a covered component value is not US-ASCII") from exc


#: The derived components a :class:`_Plan` reads straight off the target, by their index in
#: :class:`~.request.Target` (RFC 9421 §2.2.4 ``@scheme``, §2.2.3 ``@authority``, §2.2.6
#: ``@path``).
_PARTS = {"@scheme": 0, "@authority": 1, "@path": 2}


class _Plan:
    """The base of one list of covered components (RFC 9421 §2.5), worked out once: the
    lines as a ``%`` template (the ``"name": `` prefixes, each ``%`` of a name doubled) and
    the positions of each source of values -- target parts, ``@query``, header fields, other
    derived components -- so no line dispatches on its name."""

    __slots__ = ("components", "derived", "fields", "parts", "queries", "size", "template")

    def __init__(self, components: tuple[str, ...]) -> None:
        self.components = components
        self.size = len(components)
        self.parts = tuple((i, _PARTS[n]) for i, n in enumerate(components) if n in _PARTS)
        self.queries = tuple(i for i, n in enumerate(components) if n == "@query")
        self.derived = tuple(
            (i, n)
            for i, n in enumerate(components)
            if n in DERIVED_COMPONENTS and n not in _PARTS and n != "@query"
        )
        self.fields = tuple((i, n) for i, n in enumerate(components) if n not in DERIVED_COMPONENTS)
        lines = [_identifier(name).replace("%", "%%") + ": %s" for name in components]
        lines.append('"@signature-params": %s')
        self.template = "\n".join(lines)

    def values(self, request: HttpRequest, known: Mapping[str, str]) -> list[str]:
        """The component values of ``request``, in order (``known`` ones not derived).
        Raises :class:`ComponentError` -- not necessarily the first component's, in order:
        see :func:`build_signature_base`."""
        out = [""] * self.size
        if self.parts or self.queries:
            target = request.target
            for i, index in self.parts:
                out[i] = target[index]  # type: ignore[assignment]  # the str members
            for i in self.queries:  # §2.2.7: a lone "?" when there is no query
                out[i] = "?" if target.query is None else "?" + target.query
        for i, name in self.derived:
            out[i] = derived_component(request, name)
        for i, name in self.fields:
            value = known.get(name)
            out[i] = header_component(request, name) if value is None else value
        return out


#: Per list of covered components that has produced a base, its :class:`_Plan` (bounded:
#: cleared when full).
_PLANS: dict[tuple[str, ...], _Plan] = {}


def _first_lines(
    request: HttpRequest, components: tuple[str, ...], known: Mapping[str, str]
) -> list[str]:
    """The component lines, every identifier checked (RFC 9421 §2.5: each once, each
    derivable); the plan for ``components`` is remembered once they pass."""
    lines: list[str] = []
    seen: set[str] = set()
    for name in components:
        if name in seen:
            raise ComponentError(f"component {name!r} is covered twice")
        seen.add(name)
        value = known.get(name)
        if value is None:
            value = component_value(request, name)
        lines.append(f"{_identifier(name)}: {value}")
    for name in components:  # names taken from ``known`` were not checked above
        if name not in DERIVED_COMPONENTS and not is_field_name(name):
            return lines
    if len(_PLANS) >= 256:
        _PLANS.clear()
    _PLANS[components] = _Plan(components)
    return lines


def signature_base(
    request: HttpRequest, components: Sequence[str], params: Mapping[str, Any]
) -> bytes:
    """The signature base (RFC 9421 §2.5) of ``request`` over ``components`` with ``params``.

    Raises :class:`ComponentError` when a component cannot be derived.
    """
    return build_signature_base(request, components, signature_params_value(components, params))


def serialize_signature_input(
    label: str, components: Sequence[str], params: Mapping[str, Any]
) -> str:
    """A one-member ``Signature-Input`` field value (RFC 9421 §4.1)."""
    fast = serialize_inner_list(components, params)
    if fast is not None and serialize_key(label) is not None:
        return f"{label}={fast}"
    field_value = Dictionary()
    try:
        field_value[label] = signature_params(components, params)
        return str(field_value)
    except (ValueError, IndexError) as exc:  # http_sfv: IndexError on an empty key
        raise ConfigurationError(f"cannot serialise Signature-Input: {exc}") from exc


def plain_value(value: Any) -> Any:
    """A bare item as a plain Python value: Tokens become ``str``."""
    if isinstance(value, str) and not isinstance(value, DisplayString):
        return str(value)
    return value


@dataclass(frozen=True)
class SignatureInput:
    """One parsed ``Signature-Input`` member.

    ``value`` is the member re-serialised: exactly the ``@signature-params`` component value.
    ``component_params`` holds each component's parameters (RFC 9421 §2.1 ``;sf``, ``;key``,
    ...), which this implementation does not derive; the verifier rejects any.
    """

    label: str
    components: tuple[str, ...]
    params: Mapping[str, Any]
    value: str
    component_params: tuple[Mapping[str, Any], ...] = field(default=())

    @classmethod
    def _make(cls, **members: Any) -> SignatureInput:
        """An instance from every member, without the generated ``__init__``'s one
        ``object.__setattr__`` per field: the verifier parses one per request."""
        parsed = object.__new__(cls)
        parsed.__dict__.update(members)
        return parsed

    @property
    def created(self) -> int | None:
        value = self.params.get("created")
        return value if type(value) is int else None

    @property
    def expires(self) -> int | None:
        value = self.params.get("expires")
        return value if type(value) is int else None


def parse_signature_input(header: str) -> dict[str, SignatureInput]:
    """Parse a ``Signature-Input`` field (RFC 9421 §4.1) into its members by label.

    Raises :class:`MissingSignatureError` (``invalid_request``) when the field is not a
    Dictionary whose members are Inner Lists of Strings.
    """
    return dict(_parse_signature_input(header))


def signature_input_member(header: str, label: str) -> SignatureInput | None:
    """The ``Signature-Input`` member ``label`` (RFC 9421 §4.1), ``None`` when the field
    has none; raises as :func:`parse_signature_input` does."""
    for name, member in _parse_signature_input(header):
        if name == label:
            return member
    return None


def _parse_signature_input(header: str) -> tuple[tuple[str, SignatureInput], ...]:
    """Through :mod:`.sfv` when the field is in its subset, else through ``http_sfv``."""
    fast = _parse_fast(header)
    if fast is not None:
        return fast
    parsed = Dictionary()
    try:
        parsed.parse(header.encode("latin-1"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise MissingSignatureError("Signature-Input is not a structured Dictionary") from exc
    out: list[tuple[str, SignatureInput]] = []
    for label, member in parsed.items():
        if not isinstance(member, InnerList):
            raise MissingSignatureError(f"Signature-Input member {label!r} is not an Inner List")
        names: list[str] = []
        for item in member:
            if type(item.value) is not str:
                raise MissingSignatureError("a covered component identifier must be a String")
            names.append(item.value)
        signature_input = SignatureInput(
            label=label,
            components=tuple(names),
            params=MappingProxyType({k: plain_value(v) for k, v in member.params.items()}),
            value=str(member),
            component_params=tuple(
                MappingProxyType({k: plain_value(v) for k, v in item.params.items()})
                for item in member
            ),
        )
        out.append((label, signature_input))
    return tuple(out)


_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})


def _parse_fast(header: str) -> tuple[tuple[str, SignatureInput], ...] | None:
    """:func:`_parse_signature_input` through :mod:`.sfv`: ``None`` when the field is outside
    its subset, or a member is not an Inner List of parameterless Strings."""
    canonical = canonical_inner_list(header)  # what signers send: one member, canonical
    if canonical is not None:
        only, text, identifiers, fields = canonical
        member = SignatureInput._make(
            label=only,
            components=tuple(identifiers),
            params=MappingProxyType(fields),
            value=text,
            component_params=(_NO_PARAMS,) * len(identifiers),
        )
        return ((only, member),)
    members = parse_dictionary(header)
    if members is None:
        return None
    out: list[tuple[str, SignatureInput]] = []
    for label, (items, params) in members:
        if type(items) is not list:
            return None
        names = tuple(v for v, item_params in items if type(v) is str and not item_params)
        if len(names) != len(items):
            return None
        value = serialize_inner_list(names, params)
        if value is None:
            return None
        plain = MappingProxyType({k: plain_value(v) for k, v in params.items()})
        member = SignatureInput(label, names, plain, value, (_NO_PARAMS,) * len(names))
        out.append((label, member))
    return tuple(out)


__all__ = [
    "SignatureInput",
    "build_signature_base",
    "parse_signature_input",
    "serialize_signature_input",
    "signature_base",
    "signature_input_member",
    "signature_params",
    "signature_params_value",
]
