"""§Person Server Metadata and the JWKS with key rotation, over real HTTP."""

from __future__ import annotations

import pytest
from support.ps import PASSWORD, PS, RES, World

from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.metadata import PersonServerMetadata
from aauth_agents.protocol.scopes import IDENTITY_SCOPES
from aauth_agents.servers.person_server import AutoApprove, PersonServer
from aauth_agents.tokens import DWK_PERSON, averify_person_token, peek

ENDPOINTS = (
    "auth_token_endpoint",
    "person_token_endpoint",
    "mission_endpoint",
    "permission_endpoint",
    "audit_endpoint",
    "interaction_endpoint",
    "revocation_endpoint",
)


async def test_metadata_names_every_endpoint_it_serves(world: World) -> None:
    response = await world.client.get(f"{PS}/.well-known/aauth-person.json")
    assert response.status_code == 200
    document = response.json()
    metadata = PersonServerMetadata.from_json(document, expected_issuer=PS)
    assert metadata.jwks_uri == f"{PS}/.well-known/jwks.json"
    assert set(metadata.scopes_supported or ()) == IDENTITY_SCOPES
    assert {"sub", "email", "email_verified", "name", "tenant", "groups"} <= set(
        metadata.claims_supported or ()
    )
    assert "mission_control_endpoint" not in document  # a companion specification's
    agent = world.agent()
    for name in ENDPOINTS:
        url = document[name]
        assert url.startswith(PS + "/")
        served = await agent.post(url, {})
        assert served.status_code not in (404, 405), (name, served.status_code)
    jwks = await world.client.get(document["jwks_uri"])
    assert jwks.status_code == 200 and len(jwks.json()["keys"]) == 1


async def test_unknown_path_and_wrong_method(world: World) -> None:
    assert (await world.client.get(f"{PS}/nothing")).status_code == 404
    assert (await world.client.get(f"{PS}/token")).status_code == 405


async def test_key_rotation_keeps_the_old_key_until_its_tokens_expire(auto: World) -> None:
    assert auto.ps is not None and auto.ps_discovery is not None
    agent = auto.agent()
    old_token = await agent.person_token()
    old_kid = peek(old_token)[0]["kid"]
    new_kid = auto.ps.rotate_signing_key()
    assert new_kid != old_kid
    jwks = (await auto.client.get(f"{PS}/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [new_kid, old_kid]
    assert all(k["alg"] == "Ed25519" and "d" not in k for k in jwks["keys"])
    new_token = await agent.person_token()
    assert peek(new_token)[0]["kid"] == new_kid
    # A verifier that cached the old JWKS refetches on the unknown kid; both verify.
    for token in (old_token, new_token):
        await averify_person_token(
            token, keys=auto.ps_discovery, audience=RES, signing_key=agent.public, clock=auto.clock
        )
    assert any(e.name == "key_rotated" for e in auto.events)
    auto.clock.advance(3600)  # every token the old key signed has expired
    jwks = (await auto.client.get(f"{PS}/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [new_kid]


async def test_signing_key_persists_across_restarts(bare: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = bare.start(database=tmp_path)
    kid = first.keys.current.kid
    await first.aclose()
    second = bare.start(database=tmp_path)
    assert second.keys.current.kid == kid
    assert (tmp_path / "ps.sqlite3").stat().st_mode & 0o077 == 0


async def test_configured_key_rotates_on_restart(bare: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = bare.start(database=tmp_path)
    generated = first.keys.current.kid
    await first.aclose()
    configured = PrivateKey.generate(kid="operator-1")
    second = bare.start(database=tmp_path, signing_key=configured)
    assert second.keys.current is configured
    assert [k.key.kid for k in second.keys.published()] == ["operator-1", generated]
    row = second.db.fetchone(
        "SELECT private_jwk FROM ps_signing_keys WHERE kid = ?", ("operator-1",)
    )
    assert row == (None,)  # a configured private key is never written to the database


async def test_a_kid_cannot_name_two_keys(bare: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = bare.start(database=tmp_path, signing_key=PrivateKey.generate(kid="k"))
    await first.aclose()
    with pytest.raises(Exception, match="different PS signing key"):
        PersonServer(bare.config(database=tmp_path, signing_key=PrivateKey.generate(kid="k")))


async def test_tokens_verify_against_the_published_jwks(auto: World) -> None:
    assert auto.ps is not None and auto.ps_discovery is not None
    token = await auto.agent().person_token()
    header = peek(token)[0]
    key = await auto.ps_discovery.aget_key(PS, DWK_PERSON, header["kid"])
    assert key.same_key(auto.ps.keys.current.public_key)


async def test_config_is_validated(bare: World) -> None:
    for overrides in (
        {"issuer": "http://ps.example"},
        {"auth_token_lifetime": 3601},
        {"person_token_lifetime": 0},
        {"mission_lifetime": -1},
    ):
        with pytest.raises(ValueError):
            bare.config(**overrides)


async def test_person_server_needs_a_way_to_verify_agents(bare: World) -> None:
    with pytest.raises(ValueError):
        PersonServer(bare.config(discovery=None))


async def test_default_person_without_an_account_is_ignored(bare: World) -> None:
    bare.start(policy=AutoApprove(), default_person="nobody")
    response = await bare.agent().post("/person", {"resource": RES})
    assert response.status_code == 202  # nobody to approve for: the person is asked
    assert bare.ps is not None
    bare.ps.accounts.create_account("nobody", PASSWORD)
    assert (await bare.agent("two").post("/person", {"resource": RES})).status_code == 200
