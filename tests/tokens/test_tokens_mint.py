"""Minting: headers, claims, lifetime caps and the clamps of §Mission Approval."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from support.tokens import (
    AGENT_ID,
    AP,
    AS,
    MISSION_S256,
    NOW,
    PERSON_SUB,
    PS,
    RESOURCE,
    World,
)

from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.errors import ConfigurationError
from aauth_agents.tokens import (
    DWK_ACCESS,
    DWK_PERSON,
    Interaction,
    mint_resource_token,
    peek,
)


def test_agent_token_shape(world: World) -> None:
    header, claims = peek(world.agent_token(parent_agent="aauth:boss@ap.example"))
    assert header == {"alg": world.alg, "typ": "aa-agent+jwt", "kid": "ap-1"}
    assert claims["dwk"] == "aauth-agent.json"
    assert claims["iss"] == AP and claims["sub"] == AGENT_ID and claims["ps"] == PS
    assert claims["parent_agent"] == "aauth:boss@ap.example"
    assert claims["iat"] == NOW and claims["exp"] == NOW + 3600
    assert len(claims["jti"]) >= 16


def test_cnf_carries_alg_not_kid(world: World) -> None:
    _, claims = peek(world.agent_token())
    jwk = claims["cnf"]["jwk"]
    assert jwk["alg"] == "Ed25519" and "kid" not in jwk and "d" not in jwk
    assert world.agent_key.public_key.same_key(jwk)


def test_jti_is_fresh(world: World) -> None:
    assert peek(world.agent_token())[1]["jti"] != peek(world.agent_token())[1]["jti"]


def test_person_token_shape(world: World) -> None:
    header, claims = peek(world.person_token())
    assert header["typ"] == "aa-person+jwt"
    assert claims["dwk"] == "aauth-person.json"
    assert claims["aud"] == RESOURCE and claims["sub"] == PERSON_SUB
    assert claims["mission_s256"] == MISSION_S256 and claims["tenant"] == "acme"
    assert claims["exp"] - claims["iat"] == 3600
    assert "scope" not in claims and "account" not in claims


def test_resource_token_copies_person_token(world: World) -> None:
    header, claims = peek(world.resource_token(account="acct-1"))
    assert header["typ"] == "aa-resource+jwt"
    assert claims["dwk"] == "aauth-resource.json"
    assert claims["ps"] == PS and claims["sub"] == PERSON_SUB
    assert claims["presented_jti"] == claims["person_token_jti"] == "pt-1"
    assert claims["mission_s256"] == MISSION_S256 and claims["tenant"] == "acme"
    assert claims["agent_jkt"] == world.jkt
    assert claims["scope"] == "read write" and claims["account"] == "acct-1"
    assert claims["exp"] - claims["iat"] == 300


def test_resource_token_without_person_record(world: World) -> None:
    token = world.resource_token(
        person=None,
        ps=PS,
        sub="s",
        presented_jti="pt-9",
        scope=["a", "b", "a"],
        interaction=Interaction("https://resource.example/interact", "ABCD"),
    )
    claims = peek(token)[1]
    assert claims["presented_jti"] == claims["person_token_jti"] == "pt-9"
    assert claims["scope"] == "a b"
    assert claims["interaction"] == {"url": "https://resource.example/interact", "code": "ABCD"}
    assert "mission_s256" not in claims


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ps", "https://other-ps.example"),
        ("sub", "someone-else"),
        ("presented_jti", "pt-2"),
        ("mission_s256", "A" * 43),
        ("tenant", "other"),
    ],
)
def test_resource_token_refuses_disagreeing_with_person(
    world: World, name: str, value: str
) -> None:
    with pytest.raises(ConfigurationError):
        world.resource_token(**{name: value})


def test_resource_token_person_for_another_resource(world: World) -> None:
    with pytest.raises(ConfigurationError):
        world.resource_token(iss="https://elsewhere.example")


def test_auth_token_dwk(world: World) -> None:
    three_party = peek(world.auth_token())[1]
    assert three_party["dwk"] == DWK_PERSON and three_party["ps"] == three_party["iss"] == PS
    four_party = peek(world.auth_token(iss=AS))[1]
    assert four_party["dwk"] == DWK_ACCESS and four_party["ps"] == PS
    collapse = peek(world.auth_token(dwk=DWK_ACCESS))[1]
    assert collapse["dwk"] == DWK_ACCESS and collapse["iss"] == PS
    with pytest.raises(ConfigurationError):
        world.auth_token(iss=AS, dwk=DWK_PERSON)
    with pytest.raises(ConfigurationError):
        world.auth_token(dwk="aauth-resource.json")


def test_auth_token_identity_claims_via_extra(world: World) -> None:
    claims = peek(world.auth_token(extra={"email": "a@b.example", "name": "A"}))[1]
    assert claims["email"] == "a@b.example"


# -- lifetimes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mint", "cap"),
    [
        ("agent_token", 86_400),
        ("person_token", 3600),
        ("resource_token", 300),
        ("auth_token", 3600),
    ],
)
def test_lifetime_caps(ed_world: World, mint: str, cap: int) -> None:
    minted = getattr(ed_world, mint)(lifetime=cap)
    claims = peek(minted)[1]
    assert claims["exp"] - claims["iat"] == cap
    with pytest.raises(ConfigurationError):
        getattr(ed_world, mint)(lifetime=cap + 1)
    for bad in (0, -5, True, 1.5):
        with pytest.raises(ConfigurationError):
            getattr(ed_world, mint)(lifetime=bad)


def test_person_token_never_outlives_agent_token(ed_world: World) -> None:
    claims = peek(ed_world.person_token(not_after=NOW + 600))[1]
    assert claims["exp"] == NOW + 600
    with pytest.raises(ConfigurationError):
        ed_world.person_token(not_after=NOW)


@pytest.mark.parametrize(
    "expires_at",
    [
        NOW + 120,
        float(NOW + 120),
        "2024-10-29T16:02:00Z",
        "2024-10-29T16:02:00+00:00",
        datetime.fromtimestamp(NOW + 120, tz=timezone.utc),
    ],
)
def test_mission_clamp(ed_world: World, expires_at: object) -> None:
    for mint in ("person_token", "resource_token", "auth_token"):
        claims = peek(getattr(ed_world, mint)(mission_expires_at=expires_at))[1]
        assert claims["exp"] == NOW + 120, mint


def test_mission_already_expired(ed_world: World) -> None:
    for mint in ("person_token", "resource_token", "auth_token"):
        with pytest.raises(ConfigurationError):
            getattr(ed_world, mint)(mission_expires_at=NOW - 1)


@pytest.mark.parametrize("expires_at", ["tomorrow", "2024-10-29T16:02:00", datetime(2030, 1, 1)])
def test_mission_expires_at_must_be_unambiguous(ed_world: World, expires_at: object) -> None:
    with pytest.raises(ConfigurationError):
        ed_world.person_token(mission_expires_at=expires_at)


def test_auth_token_not_after(ed_world: World) -> None:
    assert peek(ed_world.auth_token(not_after=NOW + 60))[1]["exp"] == NOW + 60


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"iss": "http://ap.example"},
        {"iss": "https://AP.example"},
        {"sub": "assistant@ap.example"},
        {"ps": "https://ps.example/"},
        {"parent_agent": "boss"},
        {"jti": ""},
        {"extra": {"cnf": {}}},
        {"extra": {"exp": 1}},
    ],
)
def test_agent_token_bad_input(ed_world: World, kw: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ed_world.agent_token(**kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"aud": "https://resource.example:8443"},
        {"sub": ""},
        {"mission_s256": "abc"},
        {"extra": {"scope": "read"}},
        {"extra": {"account": "x"}},
        {"tenant": ""},
    ],
)
def test_person_token_bad_input(ed_world: World, kw: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ed_world.person_token(**kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"agent_jkt": "not-a-thumbprint"},
        {"scope": "a  b"},
        {"scope": ["a b"]},
        {"aud": "ps.example"},
        {"interaction": {"url": "http://x.example", "code": "1"}},
        {"interaction": {"url": "https://x.example"}},
    ],
)
def test_resource_token_bad_input(ed_world: World, kw: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ed_world.resource_token(**kw)


def test_resource_token_needs_the_person(ed_world: World) -> None:
    with pytest.raises(ConfigurationError):
        mint_resource_token(
            ed_world.res_key,
            iss=RESOURCE,
            aud=PS,
            agent_jkt=ed_world.jkt,
            scope="read",
            clock=ed_world.clock,
        )


def test_issuer_key_needs_kid(ed_world: World) -> None:
    key = PrivateKey.generate()
    object.__setattr__(key, "kid", None)
    with pytest.raises(ConfigurationError):
        ed_world.agent_token(issuer_key=key)
