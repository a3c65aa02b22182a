"""The agent's checks: §Resource Challenge Verification and §Auth Token Response
Verification."""

from __future__ import annotations

from typing import Any

import pytest
from support.tokens import AS, NOW, PERSON_SUB, PS, RESOURCE, World, resign

from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.errors import TokenError
from aauth_agents.tokens import (
    ResourceToken,
    acheck_auth_token_response,
    acheck_resource_challenge,
    check_auth_token_response,
    check_resource_challenge,
)


def challenge(w: World, token: str, **kw: Any) -> ResourceToken:
    args: dict[str, Any] = {
        "resource": RESOURCE,
        "agent_key": w.agent_key.public_key,
        "ps": PS,
        "person_sub": PERSON_SUB,
        "keys": w.keys,
        "clock": w.clock,
    }
    args.update(kw)
    return check_resource_challenge(token, **args)


def test_challenge_ok(world: World) -> None:
    rt = challenge(world, world.resource_token())
    assert rt.iss == RESOURCE and rt.aud == PS
    # without keys the signature is not checked (a SHOULD), everything else is
    forged = resign(world.resource_token(), PrivateKey.generate(kid="res-1"))
    assert challenge(world, forged, keys=None).sub == PERSON_SUB
    # sub unknown to the agent: skipped
    assert challenge(world, world.resource_token(), person_sub=None).sub == PERSON_SUB


def test_challenge_aud_may_be_an_as(ed_world: World) -> None:
    assert challenge(ed_world, ed_world.resource_token(aud=AS)).aud == AS


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"resource": "https://other.example"}, "iss"),  # step 3
        ({"agent_key": PrivateKey.generate().public_key}, "agent_jkt"),  # step 4
        ({"ps": "https://other-ps.example"}, "ps"),  # step 5
        ({"person_sub": "someone-else"}, "sub"),
    ],  # step 5
)
def test_challenge_rejections(ed_world: World, kw: dict[str, Any], reason: str) -> None:
    with pytest.raises(TokenError) as exc:
        challenge(ed_world, ed_world.resource_token(), **kw)
    assert (exc.value.reason, exc.value.code) == (reason, "invalid_resource_token")


def test_challenge_expired(ed_world: World) -> None:  # step 6
    token = ed_world.resource_token()
    ed_world.clock.now = NOW + 300
    for keys in (ed_world.keys, None):
        with pytest.raises(TokenError) as exc:
            challenge(ed_world, token, keys=keys)
        assert (exc.value.reason, exc.value.code) == ("exp", "expired_resource_token")


def test_challenge_signature_checked_with_keys(ed_world: World) -> None:
    forged = resign(ed_world.resource_token(), PrivateKey.generate(kid="res-1"))
    with pytest.raises(TokenError) as exc:
        challenge(ed_world, forged)
    assert exc.value.reason == "signature"


def test_challenge_not_a_resource_token(ed_world: World) -> None:
    with pytest.raises(TokenError) as exc:
        challenge(ed_world, ed_world.auth_token(), keys=None)
    assert exc.value.reason == "typ"


async def test_challenge_async(ed_world: World) -> None:
    rt = await acheck_resource_challenge(
        ed_world.resource_token(),
        resource=RESOURCE,
        agent_key=ed_world.agent_key.public_key,
        ps=PS,
        person_sub=PERSON_SUB,
        keys=ed_world.keys,
        clock=ed_world.clock,
    )
    assert rt.sub == PERSON_SUB


# -- auth token response ---------------------------------------------------------------------


def response(w: World, token: str, rt: ResourceToken, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "resource_token": rt,
        "resource": RESOURCE,
        "agent_key": w.agent_key.public_key,
        "keys": w.keys,
        "clock": w.clock,
    }
    args.update(kw)
    return check_auth_token_response(token, **args)


@pytest.mark.parametrize("aud", [PS, AS])
def test_response_ok(world: World, aud: str) -> None:
    rt = challenge(world, world.resource_token(aud=aud))
    auth = response(world, world.auth_token(iss=aud), rt)
    assert auth.iss == aud and auth.sub == PERSON_SUB
    assert response(world, world.auth_token(iss=aud), rt, keys=None).iss == aud


@pytest.mark.parametrize(
    ("mint_kw", "kw", "reason"),
    [
        ({"iss": AS}, {}, "iss"),  # step 2: iss is the resource token's aud (PS)
        ({"aud": "https://other.example"}, {}, "aud"),  # step 3
        ({}, {"resource": "https://other.example"}, "aud"),
        ({"cnf": PrivateKey.generate().public_key}, {}, "cnf_mismatch"),  # step 4
        ({"sub": "someone-else"}, {}, "sub"),  # step 5
        ({}, {"person_sub": "someone-else"}, "sub"),
    ],
)
def test_response_rejections(
    ed_world: World, mint_kw: dict[str, Any], kw: dict[str, Any], reason: str
) -> None:
    rt = challenge(ed_world, ed_world.resource_token())
    for keys in (ed_world.keys, None):
        with pytest.raises(TokenError) as exc:
            response(ed_world, ed_world.auth_token(**mint_kw), rt, keys=keys, **kw)
        assert (exc.value.reason, exc.value.code) == (reason, "invalid_auth_token")


def test_response_signature(ed_world: World) -> None:  # step 1
    rt = challenge(ed_world, ed_world.resource_token())
    forged = resign(ed_world.auth_token(), PrivateKey.generate(kid="ps-1"))
    with pytest.raises(TokenError) as exc:
        response(ed_world, forged, rt)
    assert exc.value.reason == "signature"
    assert response(ed_world, forged, rt, keys=None).sub == PERSON_SUB


def test_response_person_token_is_not_an_auth_token(ed_world: World) -> None:
    rt = challenge(ed_world, ed_world.resource_token())
    with pytest.raises(TokenError) as exc:
        response(ed_world, ed_world.person_token(), rt, keys=None)
    assert exc.value.reason == "typ"


async def test_response_async(ed_world: World) -> None:
    rt = challenge(ed_world, ed_world.resource_token())
    auth = await acheck_auth_token_response(
        ed_world.auth_token(),
        resource_token=rt,
        resource=RESOURCE,
        agent_key=ed_world.agent_key.public_key,
        keys=ed_world.keys,
        clock=ed_world.clock,
    )
    assert auth.sub == PERSON_SUB
