"""The ``AAuth-Requirement`` response header (§Requirement Responses).

A Dictionary whose ``requirement`` member is a Token; requirement data are parameters on
that member, e.g. ``requirement=interaction;url="https://example.com/interact";code="A1B2-C3D4"``.
Unknown parameters and members are ignored. An unknown ``requirement`` value parses, with
``known == False``: an agent MUST NOT treat it as satisfiable (§Requirement Values).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode

from http_sfv.dictionary import Dictionary
from http_sfv.item import Item
from http_sfv.types import Token

from .errors import AAuthError, ConfigurationError
from .identifiers import validate_endpoint_url
from .interaction import is_valid_emitted_code
from .registry import REQUIREMENT_STATUS
from .wire import FieldInput, MalformedHeaderError, parse_dictionary, serialize

#: The response header in which a server says what it requires (§Requirement Responses).
AAUTH_REQUIREMENT = "AAuth-Requirement"

# Requirement names, not secrets.
AGENT_TOKEN = "agent-token"  # noqa: S105
PERSON_TOKEN = "person-token"  # noqa: S105
AUTH_TOKEN = "auth-token"  # noqa: S105
INTERACTION = "interaction"
APPROVAL = "approval"
CLARIFICATION = "clarification"
CLAIMS = "claims"

#: A structured-field bare item as http_sfv represents it (Token is a ``str`` subclass).
BareItem = str | int | float | bool | bytes | Decimal | datetime

#: Parameters each known value MUST carry, all Strings (§Auth Token Required,
#: §Interaction Required).
_REQUIRED_PARAMS: Mapping[str, tuple[str, ...]] = {
    AUTH_TOKEN: ("resource-token",),
    INTERACTION: ("url", "code"),
}


class UnsupportedRequirementError(AAuthError):
    """§Requirement Values: a requirement the agent does not recognize, surfaced as an error."""

    code = "unsupported_requirement"
    status = 500

    def __init__(self, requirement: Requirement):
        super().__init__(f"unsupported AAuth requirement {requirement.value!r}")
        self.requirement = requirement


@dataclass(frozen=True)
class Requirement:
    """One ``AAuth-Requirement``: the ``requirement`` value and its parameters."""

    value: str
    params: Mapping[str, BareItem] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        """True for values of the §AAuth Requirement Value Registry."""
        return self.value in REQUIREMENT_STATUS

    @property
    def status(self) -> int | None:
        """The status the value goes with in §Requirement Values (``None`` if unknown)."""
        return REQUIREMENT_STATUS.get(self.value)

    def _string(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if isinstance(value, str) and not isinstance(value, Token) else None

    @property
    def resource_token(self) -> str | None:
        """``resource-token`` of ``requirement=auth-token``."""
        return self._string("resource-token")

    @property
    def url(self) -> str | None:
        """``url`` of ``requirement=interaction``."""
        return self._string("url")

    @property
    def code(self) -> str | None:
        """``code`` of ``requirement=interaction``."""
        return self._string("code")

    def raise_if_unknown(self) -> None:
        """Raise :class:`UnsupportedRequirementError` for a value this library cannot act on."""
        if not self.known:
            raise UnsupportedRequirementError(self)

    def interaction_link(self, callback: str | None = None) -> str:
        """``{url}?code={code}[&callback=...]`` to direct the user to (§User Interaction)."""
        if self.value != INTERACTION or self.url is None or self.code is None:
            raise ConfigurationError("only requirement=interaction has an interaction link")
        query = {"code": self.code}
        if callback is not None:
            query["callback"] = callback
        return f"{self.url}?{urlencode(query)}"

    def header_value(self) -> str:
        """The serialized field value."""
        return serialize_requirement(self)

    def headers(self) -> dict[str, str]:
        return {AAUTH_REQUIREMENT: self.header_value()}

    # Constructors for servers: each validates what the specification requires of the sender.

    @classmethod
    def agent_token(cls) -> Requirement:
        return cls(AGENT_TOKEN)

    @classmethod
    def person_token(cls) -> Requirement:
        return cls(PERSON_TOKEN)

    @classmethod
    def auth_token(cls, resource_token: str) -> Requirement:
        if not isinstance(resource_token, str) or not resource_token:
            raise ConfigurationError("requirement=auth-token needs a resource token")
        return cls(AUTH_TOKEN, {"resource-token": resource_token})

    @classmethod
    def interaction(cls, url: str, code: str) -> Requirement:
        """§Interaction Required: ``url`` https without query or fragment; ``code`` in
        Crockford base32 (§Interaction Code Format)."""
        try:
            validate_endpoint_url(url)
        except ValueError as exc:
            raise ConfigurationError(f"interaction url: {exc}") from exc
        if not is_valid_emitted_code(code):
            raise ConfigurationError("interaction code must be >= 8 Crockford base32 symbols")
        return cls(INTERACTION, {"url": url, "code": code})

    @classmethod
    def approval(cls) -> Requirement:
        return cls(APPROVAL)

    @classmethod
    def clarification(cls) -> Requirement:
        return cls(CLARIFICATION)

    @classmethod
    def claims(cls) -> Requirement:
        return cls(CLAIMS)


def parse_requirement(header: FieldInput) -> Requirement:
    """Parse an ``AAuth-Requirement`` field; :class:`MalformedHeaderError` when it is not a
    Dictionary with a Token ``requirement``, or a known value lacks a required parameter."""
    members = parse_dictionary(AAUTH_REQUIREMENT, header)
    member = members.get("requirement")
    if not isinstance(member, Item) or not isinstance(member.value, Token):
        raise MalformedHeaderError(AAUTH_REQUIREMENT, "the requirement member must be a Token")
    requirement = Requirement(str(member.value), dict(member.params))
    for name in _REQUIRED_PARAMS.get(requirement.value, ()):
        if not requirement._string(name):
            detail = f"requirement={requirement.value} needs a non-empty String {name!r}"
            raise MalformedHeaderError(AAUTH_REQUIREMENT, detail)
    if requirement.value == INTERACTION:
        try:
            validate_endpoint_url(requirement.url)
        except ValueError as exc:
            raise MalformedHeaderError(AAUTH_REQUIREMENT, str(exc)) from exc
    return requirement


def serialize_requirement(requirement: Requirement) -> str:
    """Serialize a :class:`Requirement` (parameters in insertion order)."""
    item = Item(Token(requirement.value))
    for name, value in requirement.params.items():
        item.params[name] = value
    members = Dictionary()
    members["requirement"] = item
    return serialize(AAUTH_REQUIREMENT, members)


__all__ = [
    "AAUTH_REQUIREMENT",
    "BareItem",
    "Requirement",
    "UnsupportedRequirementError",
    "parse_requirement",
    "serialize_requirement",
]
