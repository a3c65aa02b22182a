"""R3 claims in resource and auth tokens (draft-hardt-aauth-r3 §Resource Token Extensions,
§Auth Token Extensions): minted only whole and well-formed, verified the same way -- both
``r3_uri`` and ``r3_s256`` or neither, ``r3_uri`` https on the resource's origin,
``r3_s256`` a base64url SHA-256, ``r3_granted`` with the pin and in the vocabulary format."""

from __future__ import annotations

from typing import Any

import pytest
from support.tokens import AS, MISSION_S256, PERSON_SUB, PS, RESOURCE, World, resign

from aauth_agents.protocol.errors import ConfigurationError, TokenError
from aauth_agents.protocol.r3 import MCP_VOCABULARY, R3Operations
from aauth_agents.tokens import (
    check_auth_token_response,
    check_resource_challenge,
    peek,
    verify_auth_token,
    verify_resource_token,
)

R3_URI = RESOURCE + "/aauth/r3/p1"
S256 = MISSION_S256
GRANT = {"vocabulary": MCP_VOCABULARY, "operations": [{"tool": "send_note"}]}


@pytest.fixture
def world() -> World:
    return World("Ed25519")


def _resource(world: World, token: str) -> Any:
    return verify_resource_token(
        token, keys=world.keys, audience=PS, agent_jkt=world.jkt, clock=world.clock
    )


def _auth(world: World, token: str) -> Any:
    return verify_auth_token(
        token,
        keys=world.keys,
        audience=RESOURCE,
        signing_key=world.agent_key.public_key,
        clock=world.clock,
    )


def test_a_resource_token_carries_the_pin(world: World) -> None:
    token = world.resource_token(r3_uri=R3_URI, r3_s256=S256)
    claims = peek(token)[1]
    assert claims["r3_uri"] == R3_URI and claims["r3_s256"] == S256
    verified = _resource(world, token)
    assert (verified.r3_uri, verified.r3_s256) == (R3_URI, S256)
    challenge = check_resource_challenge(
        token,
        resource=RESOURCE,
        agent_key=world.agent_key.public_key,
        ps=PS,
        person_sub=PERSON_SUB,
        clock=world.clock,
    )
    assert challenge.r3_s256 == S256
    plain = _resource(world, world.resource_token())
    assert plain.r3_uri is None and plain.r3_s256 is None
    assert "r3_uri" not in peek(world.resource_token())[1]


def test_an_auth_token_carries_the_pin_and_the_grants(world: World) -> None:
    token = world.auth_token(
        r3_uri=R3_URI,
        r3_s256=S256,
        r3_granted=GRANT,
        r3_per_call=R3Operations(MCP_VOCABULARY, ({"tool": "pay"},)),
    )
    claims = peek(token)[1]
    assert claims["r3_granted"] == GRANT
    assert claims["r3_per_call"] == {"vocabulary": MCP_VOCABULARY, "operations": [{"tool": "pay"}]}
    verified = _auth(world, token)
    assert (verified.r3_uri, verified.r3_s256) == (R3_URI, S256)
    assert verified.r3_granted == R3Operations(MCP_VOCABULARY, ({"tool": "send_note"},))
    assert verified.r3_granted.covers({"tool": "send_note"})
    assert not verified.r3_granted.covers({"tool": "pay"})
    assert verified.r3_per_call is not None and verified.r3_per_call.covers({"tool": "pay"})
    rt = check_resource_challenge(
        world.resource_token(aud=PS),
        resource=RESOURCE,
        agent_key=world.agent_key.public_key,
        ps=PS,
        person_sub=PERSON_SUB,
        clock=world.clock,
    )
    assert (
        check_auth_token_response(
            token,
            resource_token=rt,
            resource=RESOURCE,
            agent_key=world.agent_key.public_key,
            clock=world.clock,
        ).r3_granted
        == verified.r3_granted
    )
    # an AS-issued one too (four-party)
    assert (
        _auth(
            world, world.auth_token(iss=AS, r3_uri=R3_URI, r3_s256=S256, r3_granted=GRANT)
        ).r3_s256
        == S256
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"r3_uri": R3_URI},  # without r3_s256
        {"r3_s256": S256},  # without r3_uri
        {"r3_uri": "http://resource.example/r3", "r3_s256": S256},
        {"r3_uri": "https://other.example/r3", "r3_s256": S256},
        {"r3_uri": "https://resource.example:8443/r3", "r3_s256": S256},
        {"r3_uri": R3_URI, "r3_s256": "not-a-digest"},
    ],
)
def test_mint_resource_token_refuses_a_partial_or_foreign_pin(
    world: World, changes: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError):
        world.resource_token(**changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"r3_uri": R3_URI, "r3_s256": S256},  # a pin without r3_granted
        {"r3_granted": GRANT},  # grants without a pin
        {"r3_uri": R3_URI, "r3_s256": S256, "r3_granted": {"operations": []}},
        {
            "r3_uri": R3_URI,
            "r3_s256": S256,
            "r3_granted": {"vocabulary": MCP_VOCABULARY, "operations": [{"name": "x"}]},
        },
        {"r3_uri": "https://other.example/r3", "r3_s256": S256, "r3_granted": GRANT},
        {"r3_per_call": GRANT},
    ],
)
def test_mint_auth_token_refuses_incomplete_r3_claims(
    world: World, changes: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError):
        world.auth_token(**changes)
    with pytest.raises(ConfigurationError):
        world.auth_token(extra={"r3_uri": R3_URI})  # not through extra either


@pytest.mark.parametrize(
    ("changes", "drop"),
    [
        ({}, ("r3_s256",)),
        ({}, ("r3_uri",)),
        ({"r3_uri": "https://other.example/aauth/r3/p1"}, ()),
        ({"r3_uri": "http://resource.example/aauth/r3/p1"}, ()),
        ({"r3_uri": ["https://resource.example/aauth/r3/p1"]}, ()),
        ({"r3_s256": "AAAA"}, ()),
    ],
)
def test_verification_refuses_a_broken_pin(
    world: World, changes: dict[str, Any], drop: tuple[str, ...]
) -> None:
    rt = resign(
        world.resource_token(r3_uri=R3_URI, r3_s256=S256), world.res_key, claims=changes, drop=drop
    )
    with pytest.raises(TokenError) as caught:
        _resource(world, rt)
    assert caught.value.code == "invalid_resource_token" and caught.value.reason == "r3"
    at = resign(
        world.auth_token(r3_uri=R3_URI, r3_s256=S256, r3_granted=GRANT),
        world.ps_key,
        claims=changes,
        drop=drop,
    )
    with pytest.raises(TokenError) as caught:
        _auth(world, at)
    assert caught.value.code == "invalid_auth_token" and caught.value.reason == "r3"


@pytest.mark.parametrize(
    ("changes", "drop"),
    [
        ({}, ("r3_granted",)),
        ({"r3_granted": {"vocabulary": MCP_VOCABULARY, "operations": "all"}}, ()),
        ({"r3_granted": {"vocabulary": MCP_VOCABULARY, "operations": [{"tool": 1}]}}, ()),
        ({"r3_per_call": ["send_note"]}, ()),
    ],
)
def test_verification_refuses_malformed_grants(
    world: World, changes: dict[str, Any], drop: tuple[str, ...]
) -> None:
    at = resign(
        world.auth_token(r3_uri=R3_URI, r3_s256=S256, r3_granted=GRANT),
        world.ps_key,
        claims=changes,
        drop=drop,
    )
    with pytest.raises(TokenError) as caught:
        _auth(world, at)
    assert caught.value.reason == "r3"
    # grants without any pin
    bare = resign(world.auth_token(), world.ps_key, claims={"r3_granted": GRANT})
    with pytest.raises(TokenError):
        _auth(world, bare)
