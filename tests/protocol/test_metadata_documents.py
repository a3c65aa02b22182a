"""Metadata documents for the four roles (§Metadata Documents)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol import (
    METADATA_CLASSES,
    AAuthError,
    AccessServerMetadata,
    AgentProviderMetadata,
    ConfigurationError,
    InvalidMetadataError,
    IssuerMismatchError,
    IssuerMissingError,
    PersonServerMetadata,
    ResourceMetadata,
    parse_metadata,
    well_known_url,
)

# The four examples from the spec, verbatim.
AGENT = {
    "issuer": "https://agent.example",
    "jwks_uri": "https://agent.example/.well-known/jwks.json",
    "name": "Example AI Assistant",
    "description": "**Example AI Assistant** drafts and sends email on your behalf.",
    "logo_uri": "https://agent.example/logo.png",
    "logo_dark_uri": "https://agent.example/logo-dark.png",
    "documentation_uri": "https://agent.example/docs",
    "callback_endpoint": "https://agent.example/callback",
    "event_endpoint": "https://agent.example/events",
    "localhost_callback_allowed": True,
    "tos_uri": "https://agent.example/tos",
    "policy_uri": "https://agent.example/privacy",
}
PERSON = {
    "issuer": "https://ps.example",
    "name": "Example Person Server",
    "description": "**Example Person Server** — manage which agents act for you.",
    "logo_uri": "https://ps.example/logo.png",
    "logo_dark_uri": "https://ps.example/logo-dark.png",
    "documentation_uri": "https://ps.example/docs",
    "tos_uri": "https://ps.example/tos",
    "policy_uri": "https://ps.example/privacy",
    "auth_token_endpoint": "https://ps.example/token",
    "person_token_endpoint": "https://ps.example/person",
    "mission_endpoint": "https://ps.example/mission",
    "permission_endpoint": "https://ps.example/permission",
    "audit_endpoint": "https://ps.example/audit",
    "interaction_endpoint": "https://ps.example/interaction",
    "mission_control_endpoint": "https://ps.example/mission-control",
    "jwks_uri": "https://ps.example/.well-known/jwks.json",
}
ACCESS = {
    "issuer": "https://as.resource.example",
    "name": "Example Access Server",
    "auth_token_endpoint": "https://as.resource.example/token",
    "jwks_uri": "https://as.resource.example/.well-known/jwks.json",
}
RESOURCE = {
    "issuer": "https://resource.example",
    "jwks_uri": "https://resource.example/.well-known/jwks.json",
    "access_mode": "auth-token",
    "name": "Example Data Service",
    "authorization_endpoint": "https://resource.example/authorize",
    "scope_descriptions": {
        "data.read": "Read access to your data and documents",
        "data.write": "Create and update your data and documents",
        "data.delete": "Permanently delete your data and documents",
    },
    "additional_signature_components": ["content-type", "content-digest"],
}
# What @hellocoop/mockin serves, with a member -11 does not define.
MOCKIN = {
    "issuer": "https://ps.example",
    "name": "Mockin Person Server",
    "jwks_uri": "https://ps.example/aauth/jwks.json",
    "auth_token_endpoint": "https://ps.example/aauth/token/auth",
    "person_token_endpoint": "https://ps.example/aauth/token/person",
    "permission_endpoint": "https://ps.example/aauth/permission",
    "audit_endpoint": "https://ps.example/aauth/audit",
    "interaction_endpoint": "https://ps.example/aauth/interaction",
    "bootstrap_endpoint": "https://ps.example/aauth/bootstrap",
}

CASES = [
    (AgentProviderMetadata, AGENT),
    (PersonServerMetadata, PERSON),
    (AccessServerMetadata, ACCESS),
    (ResourceMetadata, RESOURCE),
]


def test_spec_examples() -> None:
    agent = AgentProviderMetadata.from_json(AGENT, expected_issuer="https://agent.example")
    assert agent.localhost_callback_allowed is True
    assert agent.callback_endpoint == "https://agent.example/callback"
    person = PersonServerMetadata.from_json(json.dumps(PERSON).encode())
    assert person.person_token_endpoint == "https://ps.example/person"
    assert person.scopes_supported is None
    access = AccessServerMetadata.from_json(json.dumps(ACCESS))
    assert access.auth_token_endpoint == "https://as.resource.example/token"
    resource = ResourceMetadata.from_json(RESOURCE)
    assert resource.access_mode == "auth-token" and resource.access_mode_known
    assert resource.additional_signature_components == ("content-type", "content-digest")
    assert resource.scope_descriptions is not None and "data.read" in resource.scope_descriptions
    assert resource.signature_window == 60


def test_defaults() -> None:
    agent = AgentProviderMetadata.from_json(
        {"issuer": "https://a.example", "jwks_uri": "https://a.example/j"}
    )
    assert agent.localhost_callback_allowed is False
    resource = ResourceMetadata.from_json({"issuer": "https://r.example"})
    assert resource.jwks_uri is None  # conditional for resources
    assert resource.access_mode == "agent-token" and resource.additional_signature_components == ()


def test_unknown_members_ignored_and_preserved() -> None:
    person = PersonServerMetadata.from_json(MOCKIN, expected_issuer="https://ps.example")
    assert person.to_json() == MOCKIN
    assert person.raw["bootstrap_endpoint"] == "https://ps.example/aauth/bootstrap"


def test_unknown_access_mode_kept_but_flagged() -> None:
    resource = ResourceMetadata.from_json(
        {"issuer": "https://r.example", "access_mode": "per-invocation"}
    )
    assert resource.access_mode == "per-invocation" and not resource.access_mode_known
    assert ResourceMetadata.from_json(
        {"issuer": "https://r.example", "access_mode": "per-call"}
    ).access_mode_known


def test_issuer_missing() -> None:
    doc = dict(PERSON)
    del doc["issuer"]
    with pytest.raises(IssuerMissingError) as info:
        PersonServerMetadata.from_json(doc)
    assert info.value.code == "issuer_missing"


@pytest.mark.parametrize(
    "fetched_under", ["https://evil.example", "https://ps.example/", "https://PS.example"]
)
def test_issuer_mismatch_is_byte_comparison(fetched_under: str) -> None:
    with pytest.raises(IssuerMismatchError) as info:
        PersonServerMetadata.from_json(PERSON, expected_issuer=fetched_under)
    assert info.value.code == "issuer_mismatch"


@pytest.mark.parametrize(
    "issuer",
    [
        "https://ps.example/",
        "https://PS.example",
        "http://ps.example",
        "https://ps.example:8443",
        "https://ps.example/v1",
        "ps.example",
        "https://ps.example?x",
        42,
        "",
    ],
)
def test_issuer_not_an_identifier(issuer: Any) -> None:
    with pytest.raises(InvalidMetadataError) as info:
        PersonServerMetadata.from_json({**PERSON, "issuer": issuer})
    assert info.value.member == "issuer"


@pytest.mark.parametrize(
    ("cls", "doc", "member", "value"),
    [
        (PersonServerMetadata, PERSON, "jwks_uri", "http://ps.example/jwks"),
        (PersonServerMetadata, PERSON, "jwks_uri", None),  # required for a PS
        (AgentProviderMetadata, AGENT, "jwks_uri", None),
        (AccessServerMetadata, ACCESS, "jwks_uri", None),
        (PersonServerMetadata, PERSON, "auth_token_endpoint", "https://ps.example/token?x=1"),
        (PersonServerMetadata, PERSON, "auth_token_endpoint", "https://ps.example/token#f"),
        (PersonServerMetadata, PERSON, "auth_token_endpoint", None),
        (PersonServerMetadata, PERSON, "person_token_endpoint", None),
        (PersonServerMetadata, PERSON, "mission_endpoint", "https://ps.example/m?x"),
        (PersonServerMetadata, PERSON, "interaction_endpoint", "http://ps.example/i"),
        (PersonServerMetadata, PERSON, "scopes_supported", "openid email"),
        (PersonServerMetadata, PERSON, "claims_supported", ["sub", 5]),
        (AccessServerMetadata, ACCESS, "auth_token_endpoint", "http://as.resource.example/token"),
        (AgentProviderMetadata, AGENT, "callback_endpoint", "https://agent.example/cb?x=1"),
        (AgentProviderMetadata, AGENT, "localhost_callback_allowed", "true"),
        (AgentProviderMetadata, AGENT, "logo_uri", "http://agent.example/logo.png"),
        (AgentProviderMetadata, AGENT, "tos_uri", "javascript:alert(1)"),
        (AgentProviderMetadata, AGENT, "name", ["x"]),
        (ResourceMetadata, RESOURCE, "authorization_endpoint", "https://resource.example/a?x"),
        (ResourceMetadata, RESOURCE, "scope_descriptions", {"data.read": 5}),
        (ResourceMetadata, RESOURCE, "scope_descriptions", {"two words": "x"}),
        (ResourceMetadata, RESOURCE, "scope_descriptions", ["data.read"]),
        (ResourceMetadata, RESOURCE, "signature_window", 0),
        (ResourceMetadata, RESOURCE, "signature_window", -5),
        (ResourceMetadata, RESOURCE, "signature_window", True),
        (ResourceMetadata, RESOURCE, "signature_window", 1.5),
        (ResourceMetadata, RESOURCE, "additional_signature_components", "content-digest"),
        (ResourceMetadata, RESOURCE, "additional_signature_components", [""]),
        (ResourceMetadata, RESOURCE, "accept_signature_algs", "Ed25519"),
        (ResourceMetadata, RESOURCE, "access_mode", ""),
        (ResourceMetadata, RESOURCE, "access_mode", 3),
    ],
)
def test_invalid_members(cls: Any, doc: dict[str, Any], member: str, value: Any) -> None:
    bad = {**doc, member: value}
    if value is None:
        del bad[member]
    with pytest.raises(InvalidMetadataError) as info:
        cls.from_json(bad)
    assert info.value.member == member
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("document", [b"", b"[]", b"null", b"\xff", "{", b"[" * 50000, 5])
def test_not_a_json_object(document: Any) -> None:
    with pytest.raises(InvalidMetadataError):
        ResourceMetadata.from_json(document)


@pytest.mark.parametrize(("cls", "doc"), CASES)
def test_round_trip_through_builder(cls: Any, doc: dict[str, Any]) -> None:
    built = cls.build(**doc)
    assert built.to_json() == doc
    assert cls.from_json(json.dumps(built.to_json())) == built


def test_builder_for_servers() -> None:
    doc = ResourceMetadata.build(
        issuer="https://resource.example",
        scope_descriptions={"data.read": "Read"},
        additional_signature_components=("content-type", "content-digest"),
        signature_window=None,
        x_vendor=1,
    )
    assert doc.to_json() == {
        "issuer": "https://resource.example",
        "scope_descriptions": {"data.read": "Read"},
        "additional_signature_components": ["content-type", "content-digest"],
        "x_vendor": 1,
    }
    assert doc.well_known_url() == "https://resource.example/.well-known/aauth-resource.json"
    with pytest.raises(ConfigurationError):
        PersonServerMetadata.build(issuer="https://ps.example", jwks_uri="https://ps.example/j")
    with pytest.raises(ConfigurationError):
        ResourceMetadata.build(issuer="https://resource.example/")
    with pytest.raises(ConfigurationError):
        ResourceMetadata.build(name="no issuer")


def test_parse_metadata_by_dwk() -> None:
    assert set(METADATA_CLASSES) == {
        "aauth-agent.json",
        "aauth-person.json",
        "aauth-access.json",
        "aauth-resource.json",
    }
    assert isinstance(parse_metadata("aauth-access.json", ACCESS), AccessServerMetadata)
    with pytest.raises(InvalidMetadataError):
        parse_metadata("aauth-other.json", ACCESS)
    assert well_known_url("https://ps.example", "aauth-person.json") == (
        "https://ps.example/.well-known/aauth-person.json"
    )


_urls = st.sampled_from(
    [
        "https://x.example",
        "https://x.example/a",
        "http://x.example",
        "https://x.example/a?b",
        "x",
        "",
    ]
)
_members = st.sampled_from(
    [
        "issuer",
        "jwks_uri",
        "auth_token_endpoint",
        "person_token_endpoint",
        "access_mode",
        "signature_window",
        "scope_descriptions",
        "additional_signature_components",
        "localhost_callback_allowed",
        "callback_endpoint",
        "unknown",
    ]
)
_values = st.one_of(
    _urls,
    st.integers(-2, 100),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=2),
)


@pytest.mark.parametrize("dwk", sorted(METADATA_CLASSES))
@given(
    doc=st.dictionaries(_members, _values, max_size=8),
    raw=st.one_of(st.binary(max_size=40), st.text(max_size=40)),
)
def test_parsers_typed(dwk: str, doc: dict[str, Any], raw: bytes | str) -> None:
    for document in (doc, raw):
        for expected in (None, "https://x.example"):
            try:
                parsed = parse_metadata(dwk, document, expected_issuer=expected)
            except AAuthError:
                continue
            assert parsed.issuer == "https://x.example" and parsed.to_json() == document
