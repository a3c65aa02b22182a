"""Metadata documents (§Metadata Documents) for the four roles, parsed and built.

Each role is a frozen dataclass whose fields say how the member is checked (endpoint URL
per §Endpoint URLs, https URL per §Other URLs, string list, ...). A field without a default
is REQUIRED for that role. Unknown members are ignored and kept in ``raw``, which is also
what :meth:`ServerMetadata.to_json` returns, so a document survives a round trip unchanged.

``issuer`` is checked first: absent -> ``issuer_missing``; different from the identifier the
document was fetched under -> ``issuer_mismatch`` (byte equality); not a server identifier
-> :class:`InvalidMetadataError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from .encoding import loads_json_object
from .errors import ConfigurationError, DiscoveryError, IssuerMismatchError, IssuerMissingError
from .identifiers import validate_endpoint_url, validate_https_url, validate_server_identifier
from .registry import ACCESS_MODE_VALUES, DEFAULT_ACCESS_MODE
from .scopes import is_scope_token

_M = TypeVar("_M", bound="ServerMetadata")


class InvalidMetadataError(DiscoveryError, ValueError):
    """A metadata document with a member of the wrong form. Like every discovery failure it
    surfaces as ``invalid_jwt`` when a token named the issuer."""

    def __init__(self, member: str, detail: str):
        super().__init__(f"metadata {member}: {detail}")
        self.member = member


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("must be an array of non-empty strings")
    return tuple(value)


def _scope_descriptions(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("must be an object mapping scopes to strings")
    if not all(is_scope_token(k) for k in value):
        raise ValueError("keys must be scope tokens")
    return dict(value)


def _non_empty(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _m(check: Callable[[Any], Any], **kwargs: Any) -> Any:
    """A metadata member: ``check`` validates and converts the JSON value."""
    return field(metadata={"check": check}, **kwargs)


@dataclass(frozen=True, kw_only=True)
class ServerMetadata:
    """Members common to all four documents (§Metadata Documents)."""

    DWK: ClassVar[str] = ""

    issuer: str = _m(validate_server_identifier)
    jwks_uri: str | None = _m(validate_https_url, default=None)
    accept_signature_algs: tuple[str, ...] | None = _m(_string_list, default=None)
    name: str | None = _m(_string, default=None)
    description: str | None = _m(_string, default=None)
    logo_uri: str | None = _m(validate_https_url, default=None)
    logo_dark_uri: str | None = _m(validate_https_url, default=None)
    documentation_uri: str | None = _m(validate_https_url, default=None)
    tos_uri: str | None = _m(validate_https_url, default=None)
    policy_uri: str | None = _m(validate_https_url, default=None)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(
        cls: type[_M],
        document: bytes | str | Mapping[str, Any],
        *,
        expected_issuer: str | None = None,
    ) -> _M:
        """Validate a document; ``expected_issuer`` is the identifier it was fetched under."""
        data = _load(document)
        _check_issuer(data, expected_issuer)
        values: dict[str, Any] = {}
        for f in fields(cls):
            check = f.metadata.get("check")
            if check is None:
                continue
            value = data.get(f.name)
            if value is None:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise InvalidMetadataError(f.name, f"required in {cls.DWK}")
                continue
            try:
                values[f.name] = check(value)
            except ValueError as exc:
                raise InvalidMetadataError(f.name, str(exc)) from exc
        return cls(raw=dict(data), **values)

    @classmethod
    def build(cls: type[_M], **members: Any) -> _M:
        """Build a document for a server to publish; ``None`` members are left out, unknown
        ones kept. Invalid values raise :class:`ConfigurationError`."""
        doc = {k: list(v) if isinstance(v, tuple) else v for k, v in members.items()}
        doc = {k: v for k, v in doc.items() if v is not None}
        try:
            return cls.from_json(doc)
        except (InvalidMetadataError, IssuerMissingError) as exc:
            raise ConfigurationError(exc.detail) from exc

    def to_json(self) -> dict[str, Any]:
        """The document as received or built, unknown members included."""
        return dict(self.raw)

    def well_known_url(self) -> str:
        return well_known_url(self.issuer, self.DWK)


@dataclass(frozen=True, kw_only=True)
class AgentProviderMetadata(ServerMetadata):
    """``/.well-known/aauth-agent.json`` (§Agent Provider Metadata)."""

    DWK: ClassVar[str] = "aauth-agent.json"

    jwks_uri: str = _m(validate_https_url)
    callback_endpoint: str | None = _m(validate_endpoint_url, default=None)
    event_endpoint: str | None = _m(validate_https_url, default=None)
    login_endpoint: str | None = _m(validate_https_url, default=None)
    localhost_callback_allowed: bool = _m(_boolean, default=False)


@dataclass(frozen=True, kw_only=True)
class PersonServerMetadata(ServerMetadata):
    """``/.well-known/aauth-person.json`` (§Person Server Metadata)."""

    DWK: ClassVar[str] = "aauth-person.json"

    jwks_uri: str = _m(validate_https_url)
    auth_token_endpoint: str = _m(validate_endpoint_url)
    person_token_endpoint: str = _m(validate_endpoint_url)
    mission_endpoint: str | None = _m(validate_endpoint_url, default=None)
    permission_endpoint: str | None = _m(validate_https_url, default=None)
    audit_endpoint: str | None = _m(validate_https_url, default=None)
    interaction_endpoint: str | None = _m(validate_https_url, default=None)
    mission_control_endpoint: str | None = _m(validate_https_url, default=None)
    revocation_endpoint: str | None = _m(validate_https_url, default=None)
    scopes_supported: tuple[str, ...] | None = _m(_string_list, default=None)
    claims_supported: tuple[str, ...] | None = _m(_string_list, default=None)


@dataclass(frozen=True, kw_only=True)
class AccessServerMetadata(ServerMetadata):
    """``/.well-known/aauth-access.json`` (§Access Server Metadata)."""

    DWK: ClassVar[str] = "aauth-access.json"

    jwks_uri: str = _m(validate_https_url)
    auth_token_endpoint: str = _m(validate_endpoint_url)
    revocation_endpoint: str | None = _m(validate_https_url, default=None)


@dataclass(frozen=True, kw_only=True)
class ResourceMetadata(ServerMetadata):
    """``/.well-known/aauth-resource.json`` (§Resource Metadata). ``jwks_uri`` is optional
    here: only a resource that issues resource tokens or signs requests needs keys."""

    DWK: ClassVar[str] = "aauth-resource.json"

    access_mode: str = _m(_non_empty, default=DEFAULT_ACCESS_MODE)
    authorization_endpoint: str | None = _m(validate_endpoint_url, default=None)
    login_endpoint: str | None = _m(validate_https_url, default=None)
    scope_descriptions: Mapping[str, str] | None = _m(_scope_descriptions, default=None)
    signature_window: int = _m(_positive_int, default=60)
    additional_signature_components: tuple[str, ...] = _m(_string_list, default=())
    revocation_endpoint: str | None = _m(validate_https_url, default=None)

    @property
    def access_mode_known(self) -> bool:
        """False for a value outside §AAuth Access Mode Value Registry: the agent then
        proceeds as with no declaration and reads the runtime ``AAuth-Requirement``."""
        return self.access_mode in ACCESS_MODE_VALUES


#: Document classes by well-known name (the ``dwk`` claim of tokens).
METADATA_CLASSES: Mapping[str, type[ServerMetadata]] = {
    cls.DWK: cls
    for cls in (AgentProviderMetadata, PersonServerMetadata, AccessServerMetadata, ResourceMetadata)
}


def well_known_url(issuer: str, dwk: str) -> str:
    """``{issuer}/.well-known/{dwk}`` (§Metadata Documents)."""
    if not isinstance(dwk, str) or dwk not in METADATA_CLASSES:
        raise ConfigurationError(f"unknown metadata document {dwk!r}")
    return f"{validate_server_identifier(issuer)}/.well-known/{dwk}"


def parse_metadata(
    dwk: str, document: bytes | str | Mapping[str, Any], *, expected_issuer: str | None = None
) -> ServerMetadata:
    """Validate a document of the role ``dwk`` names (e.g. ``aauth-person.json``)."""
    cls = METADATA_CLASSES.get(dwk) if isinstance(dwk, str) else None
    if cls is None:
        raise InvalidMetadataError("dwk", f"unknown metadata document {dwk!r}")
    return cls.from_json(document, expected_issuer=expected_issuer)


def _load(document: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(document, Mapping):
        return document
    try:
        return loads_json_object(document)
    except ValueError as exc:
        raise InvalidMetadataError("document", str(exc)) from exc


def _check_issuer(data: Mapping[str, Any], expected: str | None) -> None:
    issuer = data.get("issuer")
    if issuer is None:
        raise IssuerMissingError("metadata document has no issuer")
    if expected is not None and issuer != expected:
        raise IssuerMismatchError(f"metadata issuer {issuer!r} is not {expected!r}")
    try:
        validate_server_identifier(issuer)
    except ValueError as exc:
        raise InvalidMetadataError("issuer", str(exc)) from exc


__all__ = [
    "METADATA_CLASSES",
    "AccessServerMetadata",
    "AgentProviderMetadata",
    "InvalidMetadataError",
    "PersonServerMetadata",
    "ResourceMetadata",
    "ServerMetadata",
    "parse_metadata",
    "well_known_url",
]
