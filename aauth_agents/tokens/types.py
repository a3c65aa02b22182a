"""The four AAuth token types as verified, typed values, and their wire constants.

§Agent Token, §Person Token, §Resource Token, §Auth Token. Each result keeps the verified
``header`` and ``claims`` (unknown claims included: recipients MUST ignore them, callers may
still want them) and the ``raw`` compact JWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..keys import PublicKey
from ..protocol.r3 import R3Operations

#: The ``typ`` of agent tokens (§Agent Token Structure).
TYP_AGENT = "aa-agent+jwt"
#: The ``typ`` of person tokens (§Person Token Structure).
TYP_PERSON = "aa-person+jwt"
#: The ``typ`` of resource tokens (§Resource Token Structure).
TYP_RESOURCE = "aa-resource+jwt"
#: The ``typ`` of auth tokens (§Auth Token Structure).
TYP_AUTH = "aa-auth+jwt"

#: ``dwk`` values: the well-known metadata document naming the issuer's JWKS.
DWK_AGENT = "aauth-agent.json"
#: The ``dwk`` of person server keys.
DWK_PERSON = "aauth-person.json"
#: The ``dwk`` of resource keys.
DWK_RESOURCE = "aauth-resource.json"
#: The ``dwk`` of access server keys.
DWK_ACCESS = "aauth-access.json"

#: Maximum lifetimes (``exp - iat``), seconds: §Agent Token Structure (24 h), §Person Token
#: Structure (1 h), §Resource Token Structure (5 min), §Auth Token Structure (1 h).
AGENT_TOKEN_MAX_LIFETIME = 24 * 3600
#: The longest a person token may live (seconds).
PERSON_TOKEN_MAX_LIFETIME = 3600
#: The longest a resource token may live (seconds).
RESOURCE_TOKEN_MAX_LIFETIME = 300
#: The longest an auth token may live (seconds).
AUTH_TOKEN_MAX_LIFETIME = 3600


_T = TypeVar("_T", bound="_Token")


@dataclass(frozen=True, kw_only=True)
class _Token:
    """Members every AAuth token has. Equality and hashing go by ``raw`` and the typed
    claims; ``raw`` is kept out of ``repr`` so tokens do not end up in logs."""

    raw: str = field(repr=False)
    header: Mapping[str, Any] = field(repr=False, compare=False)
    claims: Mapping[str, Any] = field(repr=False, compare=False)
    iss: str
    dwk: str
    jti: str
    iat: int
    exp: int

    @property
    def kid(self) -> str:
        return str(self.header["kid"])

    @classmethod
    def _make(cls: type[_T], **members: Any) -> _T:
        """An instance from every member (defaults included), built without the generated
        ``__init__``'s one ``object.__setattr__`` per field: a verifier builds one token per
        request, and a frozen dataclass's fields are its largest cost after the JSON."""
        token = object.__new__(cls)
        token.__dict__.update(members)
        return token


@dataclass(frozen=True, kw_only=True)
class AgentToken(_Token):
    """``aa-agent+jwt`` (§Agent Token Structure): binds ``cnf`` to the agent ``sub``."""

    sub: str
    cnf: PublicKey = field(compare=False)
    ps: str | None = None
    parent_agent: str | None = None

    @property
    def agent(self) -> str:
        """The agent identifier."""
        return self.sub

    @property
    def is_subagent(self) -> bool:
        """True when ``parent_agent`` marks this as a sub-agent's token (§Sub-Agents)."""
        return self.parent_agent is not None


@dataclass(frozen=True, kw_only=True)
class PersonToken(_Token):
    """``aa-person+jwt`` (§Person Token Structure): identity for one resource, no authority."""

    aud: str
    sub: str
    cnf: PublicKey = field(compare=False)
    mission_s256: str | None = None
    tenant: str | None = None

    @property
    def person(self) -> tuple[str, str]:
        """``(iss, sub)``: the person's identifier at this resource."""
        return (self.iss, self.sub)


@dataclass(frozen=True)
class Interaction:
    """A resource token's ``interaction`` claim: the resource's own user-facing step."""

    url: str
    code: str


@dataclass(frozen=True, kw_only=True)
class ResourceToken(_Token):
    """``aa-resource+jwt`` (§Resource Token Structure).

    ``presented_jti`` is whichever of ``presented_jti`` / ``person_token_jti`` the token
    carried (they must agree when both are present); resolving it against issued person
    tokens is the PS's job (§Resource Token Verification step 6).
    """

    aud: str
    ps: str
    sub: str
    presented_jti: str
    agent_jkt: str
    scopes: tuple[str, ...] = ()
    account: str | None = None
    mission_s256: str | None = None
    tenant: str | None = None
    interaction: Interaction | None = None
    #: R3 §Resource Token Extensions: the R3 document (or per-call proposal) referenced.
    r3_uri: str | None = None
    r3_s256: str | None = None

    @property
    def person(self) -> tuple[str, str]:
        """``(ps, sub)``: the person the requested authorization is for."""
        return (self.ps, self.sub)

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


@dataclass(frozen=True, kw_only=True)
class AuthToken(_Token):
    """``aa-auth+jwt`` (§Auth Token Structure): what the agent may do at ``aud``."""

    aud: str
    ps: str
    sub: str
    cnf: PublicKey = field(compare=False)
    scopes: tuple[str, ...] = ()
    account: str | None = None
    mission_s256: str | None = None
    tenant: str | None = None
    #: R3 §Auth Token Extensions: the document approved, and the operations granted outright
    #: and per call.
    r3_uri: str | None = None
    r3_s256: str | None = None
    r3_granted: R3Operations | None = field(default=None, compare=False)
    r3_per_call: R3Operations | None = field(default=None, compare=False)

    @property
    def person(self) -> tuple[str, str]:
        """``(iss, sub)``: the identifier a resource keys its record of this person on."""
        return (self.iss, self.sub)

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)

    @property
    def issued_by_ps(self) -> bool:
        """Three-party (PS asserting identity) rather than an AS's policy verdict."""
        return self.dwk == DWK_PERSON


__all__ = [
    "AGENT_TOKEN_MAX_LIFETIME",
    "AUTH_TOKEN_MAX_LIFETIME",
    "DWK_ACCESS",
    "DWK_AGENT",
    "DWK_PERSON",
    "DWK_RESOURCE",
    "PERSON_TOKEN_MAX_LIFETIME",
    "RESOURCE_TOKEN_MAX_LIFETIME",
    "TYP_AGENT",
    "TYP_AUTH",
    "TYP_PERSON",
    "TYP_RESOURCE",
    "AgentToken",
    "AuthToken",
    "Interaction",
    "PersonToken",
    "ResourceToken",
]
