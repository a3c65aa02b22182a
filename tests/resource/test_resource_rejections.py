"""One test per rejection of §Verification, §Person Token Verification, §Auth Token
Verification and §Token Revocation. Each request goes to a route that would create a pending
record (or run the app) if accepted; each refusal must leave the stores untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from support.resource import (
    AP,
    AS,
    NOW,
    PERSON_SUB,
    PS,
    RESOURCE,
    World,
    send_signed,
)
from support.tokens import forge, resign, segment

from aauth_agents.httpsig import SignatureKey
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol import parse_accept_signature_scheme, parse_signature_error
from aauth_agents.tokens import peek


@pytest.fixture(params=["memory", "sqlite"])
async def setup(
    request: pytest.FixtureRequest, tmp_path: Any
) -> AsyncIterator[tuple[World, Any, str]]:
    """Each refusal is checked against the memory stores and a real SQLite file, both
    holding state first (a person token record, known tokens, a replay entry, a pending
    record), so "unchanged" is not merely "still empty"."""
    from aauth_agents.stores import Stores

    world = (
        World()
        if request.param == "memory"
        else World(stores=Stores.sqlite(tmp_path / "resource.sqlite3"))
    )
    app = world.app(world.resource(additional_signature_components=["content-digest"]))
    async with world.client(app, world.signer(world.person_token(jti="pt-0"))) as client:
        assert (await client.get("/person")).status_code == 200
    async with world.client(app, world.signer(world.agent_token())) as client:
        assert (
            await client.post("/agent", content=b"x", headers={"content-type": "text/plain"})
        ).status_code == 200
        assert (await client.post("/approve", json={})).status_code == 202
    world.calls = 0
    world.events.clear()
    snapshot = world.snapshot()
    assert "pt-0" in snapshot
    yield world, app, snapshot


def refused(
    world: World,
    before: str,
    response: httpx.Response,
    status: int,
    signature_error: str | None = None,
    token_error: str | None = None,
    error: str | None = None,
) -> None:
    assert response.status_code == status, response.text
    if signature_error is not None:
        info = parse_signature_error(response.headers["signature-error"])
        assert info.code == signature_error
    else:
        assert "signature-error" not in response.headers
    if token_error is not None:
        assert response.json()["token_error"] == token_error
    if error is not None:
        assert response.json()["error"] == error
    assert response.headers["content-type"] == "application/problem+json"
    assert world.snapshot() == before, "a refused request wrote to a store"
    assert world.calls == 0
    assert world.kinds("denied"), "a refusal is reported to the event hook"


# -- §Verification --------------------------------------------------------------------------


async def test_v1_missing_signature_headers(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    response = await send_signed(world, app, world.agent_token(), drop_headers=["Signature"])
    refused(world, before, response, 401, "invalid_request")


async def test_v2_required_component_not_covered(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    response = await send_signed(
        world, app, world.agent_token(), components=["@method", "@authority", "signature-key"]
    )
    refused(world, before, response, 401, "invalid_input")
    assert "@path" in (
        parse_signature_error(response.headers["signature-error"]).required_input or ()
    )


async def test_v2_additional_component_not_covered(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    response = await send_signed(
        world,
        app,
        world.agent_token(),
        components=["@method", "@authority", "@path", "content-type", "signature-key"],
    )
    refused(world, before, response, 401, "invalid_input")
    assert "content-digest" in (
        parse_signature_error(response.headers["signature-error"]).required_input or ()
    )


@pytest.mark.parametrize("created", [NOW - 61, NOW + 61])
async def test_v3_created_outside_the_window(setup: tuple[World, Any, str], created: int) -> None:
    world, app, before = setup
    response = await send_signed(world, app, world.agent_token(), created=created)
    refused(world, before, response, 401, "invalid_signature")


async def test_v3_expires_in_the_past(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    response = await send_signed(world, app, world.agent_token(), created=NOW - 10, expires=NOW - 1)
    refused(world, before, response, 401, "invalid_signature")


async def test_v4_unsupported_scheme(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    response = await send_signed(
        world, app, None, signature_key=SignatureKey.from_public_key(world.agent_key.public_key)
    )
    refused(world, before, response, 401, "unsupported_scheme")
    assert parse_accept_signature_scheme(response.headers["accept-signature-scheme"]) == ("jwt",)


async def test_v5_unknown_key(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = resign(world.agent_token(), world.ap_key, header={"kid": "gone"})
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "unknown_key",
        "invalid_agent_token",
    )


async def test_v5_tampered_token(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    header, _payload, signature = world.agent_token().split(".")
    claims = peek(world.agent_token())[1]
    claims["sub"] = "aauth:mallory@ap.example"

    tampered = f"{header}.{segment(claims)}.{signature}"
    refused(
        world,
        before,
        await send_signed(world, app, tampered),
        401,
        "invalid_jwt",
        "invalid_agent_token",
    )


async def test_v5_expired_token(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = world.agent_token(lifetime=60)
    world.clock.advance(61)
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "expired_jwt",
        "expired_agent_token",
    )


async def test_v5_untrusted_issuer(world: World) -> None:
    from aauth_agents.resource import TrustPolicy

    app = world.app(world.resource(trust=TrustPolicy(agent_providers=["https://other.example"])))
    before = world.snapshot()
    refused(
        world,
        before,
        await send_signed(world, app, world.agent_token()),
        401,
        "invalid_jwt",
        "invalid_agent_token",
    )


async def test_v6_key_with_a_polymorphic_algorithm(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    jwk = {**world.agent_key.public_key.to_jwk(kid=False), "alg": "EdDSA"}
    token = resign(world.agent_token(), world.ap_key, claims={"cnf": {"jwk": jwk}})
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_agent_token",
    )


async def test_v7_signature_does_not_verify(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    response = await send_signed(world, app, world.agent_token(), key=world.other_key)
    refused(world, before, response, 401, "invalid_signature")


# -- §Person Token Verification -------------------------------------------------------------


async def test_p1_wrong_typ(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = resign(world.person_token(), world.ps_key, header={"typ": "JWT"})
    refused(world, before, await send_signed(world, app, token), 401, "invalid_jwt")


async def test_p2_wrong_dwk(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = resign(world.person_token(), world.ps_key, claims={"dwk": "aauth-agent.json"})
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_person_token",
    )


async def test_p2_signed_by_another_key(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = resign(world.person_token(), PrivateKey.generate("Ed25519"))
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_person_token",
    )


async def test_p3_expired(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = world.person_token(lifetime=30)
    world.clock.advance(31)
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "expired_jwt",
        "invalid_person_token",
    )


async def test_p3_issued_in_the_future(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = resign(world.person_token(), world.ps_key, claims={"iat": NOW + 600})
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_person_token",
    )


async def test_p4_iss_not_a_server_identifier(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = resign(world.person_token(), world.ps_key, claims={"iss": "http://ps.example"})
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_person_token",
    )


async def test_p5_aud_is_another_resource(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = world.person_token(aud="https://other.example")
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_person_token",
    )


async def test_p6_cnf_missing(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = resign(world.person_token(), world.ps_key, drop=["cnf"])
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_person_token",
    )


async def test_p6_cnf_is_not_the_signing_key(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = world.person_token(cnf=world.other_key.public_key)
    refused(world, before, await send_signed(world, app, token), 401, "invalid_signature")


async def test_p_person_token_with_scope_is_refused(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = resign(world.person_token(), world.ps_key, claims={"scope": "data.write"})
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_person_token",
    )


async def test_p_sub_is_namespaced_by_issuer(world: World) -> None:
    """(iss, sub) is the identifier: the same sub from another PS is another person."""
    other_ps = PrivateKey.generate("Ed25519", kid="ps2-1")
    world.keys.add("https://ps2.example", "aauth-person.json", other_ps.public_key)
    from aauth_agents.tokens import mint_person_token

    app = world.app(world.resource())
    theirs = mint_person_token(
        other_ps,
        iss="https://ps2.example",
        aud=RESOURCE,
        sub=PERSON_SUB,
        cnf=world.agent_key.public_key,
        not_after=NOW + 3600,
        clock=world.clock,
    )
    async with world.client(app, world.signer(theirs)) as client:
        body = (await client.get("/person")).json()
    assert body["person"] == ["https://ps2.example", PERSON_SUB]


# -- §Auth Token Verification --------------------------------------------------------------


async def test_a2_wrong_dwk(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = resign(
        world.auth_token(scope="data.write"), world.ps_key, claims={"dwk": "aauth-agent.json"}
    )
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_auth_token",
    )


async def test_a2_tampered_scope(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    header, _, signature = world.auth_token().split(".")
    claims = peek(world.auth_token())[1]
    claims["scope"] = "data.read data.write"

    refused(
        world,
        before,
        await send_signed(world, app, f"{header}.{segment(claims)}.{signature}"),
        401,
        "invalid_jwt",
        "invalid_auth_token",
    )


async def test_a2_access_server_the_resource_does_not_use(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = world.auth_token(iss=AS, scope="data.write")
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_auth_token",
    )


async def test_a2_access_server_of_the_resource_is_accepted(world: World) -> None:
    app = world.app(world.resource(access_server=AS))
    async with world.client(app, world.signer(world.auth_token(iss=AS))) as client:
        response = await client.get("/data")
    assert response.status_code == 200 and response.json()["person"] == [AS, PERSON_SUB]


async def test_a3_expired(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = world.auth_token(scope="data.write", lifetime=10)
    world.clock.advance(10)
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "expired_jwt",
        "expired_auth_token",
    )


async def test_a3_issued_in_the_future(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = resign(world.auth_token(scope="data.write"), world.ps_key, claims={"iat": NOW + 60})
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_auth_token",
    )


async def test_a4_iss_not_https(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = resign(world.auth_token(scope="data.write"), world.ps_key, claims={"iss": "ps.example"})
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_auth_token",
    )


async def test_a5_aud_is_another_resource(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = world.auth_token(scope="data.write", aud="https://other.example")
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_auth_token",
    )


@pytest.mark.parametrize(
    "cnf",
    [
        None,  # absent
        {"jwk": {"kty": "OKP"}},  # structurally incomplete
        {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "alg": "Ed25519"}},  # not a key
        "private",  # private key material
    ],
)
async def test_a6_cnf_rejections(setup: tuple[World, Any, str], cnf: Any) -> None:
    world, app, before = setup
    if cnf == "private":
        cnf = {"jwk": world.agent_key.to_jwk(private=True)}
    token = resign(
        world.auth_token(scope="data.write"),
        world.ps_key,
        claims={} if cnf is None else {"cnf": cnf},
        drop=["cnf"] if cnf is None else [],
    )
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_auth_token",
    )


async def test_a6_cnf_is_not_the_signing_key(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = world.auth_token(scope="data.write", cnf=world.other_key.public_key)
    refused(world, before, await send_signed(world, app, token), 401, "invalid_signature")


async def test_a7_sub_missing(setup: tuple[World, Any, str]) -> None:
    world, app, before = setup
    token = resign(world.auth_token(scope="data.write"), world.ps_key, drop=["sub"])
    refused(
        world,
        before,
        await send_signed(world, app, token),
        401,
        "invalid_jwt",
        "invalid_auth_token",
    )


async def test_a_person_token_where_an_auth_token_is_required(world: World) -> None:
    """Only typ distinguishes them; the resource must not serve it (it challenges)."""
    app = world.app(world.resource())
    response = await send_signed(world, app, world.person_token(), path="/strict")
    assert response.status_code == 401 and world.calls == 0


# -- §Token Revocation ------------------------------------------------------------------------


def _server_signed(
    world: World, key: PrivateKey, server: str, dwk: str, body: dict[str, Any]
) -> dict[str, Any]:
    import json as _json

    return {
        "body": _json.dumps(body).encode(),
        "signature_key": SignatureKey.from_jwks_uri(id=server, dwk=dwk, kid=key.kid or ""),
        "key": key,
    }


async def _accepted_auth_token(world: World, app: Any, **kw: Any) -> str:
    token = world.auth_token(**kw)
    async with world.client(app, world.signer(token)) as client:
        assert (await client.get("/data")).status_code == 200
    world.calls = 0
    return token


async def test_r_issuer_revokes_its_token(world: World) -> None:
    app = world.app(world.resource())
    token = await _accepted_auth_token(world, app)
    jti = peek(token)[1]["jti"]
    response = await send_signed(
        world,
        app,
        None,
        path="/aauth/revoke",
        **_server_signed(world, world.ps_key, PS, "aauth-person.json", {"iss": PS, "jti": jti}),
    )
    assert response.status_code == 200, response.text
    assert world.kinds("revoked")[0].detail["jti"] == jti
    async with world.client(app, world.signer(token)) as client:
        after = await client.get("/data")
    assert after.status_code == 403 and after.json()["error"] == "revoked"
    assert "signature-error" not in after.headers


async def test_r_missing_jti(world: World) -> None:
    app = world.app(world.resource())
    await _accepted_auth_token(world, app)
    before = world.snapshot()
    response = await send_signed(
        world,
        app,
        None,
        path="/aauth/revoke",
        **_server_signed(world, world.ps_key, PS, "aauth-person.json", {"iss": PS}),
    )
    refused(world, before, response, 400, error="invalid_request")


async def test_r_unsigned(world: World) -> None:
    app = world.app(world.resource())
    await _accepted_auth_token(world, app)
    before = world.snapshot()
    async with world.client(app) as client:
        response = await client.post("/aauth/revoke", json={"iss": PS, "jti": "x"})
    refused(world, before, response, 401, "invalid_request")


async def test_r_agent_token_scheme_is_not_a_server(world: World) -> None:
    app = world.app(world.resource())
    await _accepted_auth_token(world, app)
    before = world.snapshot()
    response = await send_signed(
        world,
        app,
        world.agent_token(),
        path="/aauth/revoke",
        body=b'{"iss": "https://ps.example", "jti": "x"}',
    )
    refused(world, before, response, 401, "unsupported_scheme")


async def test_r_only_the_issuer_may_revoke(world: World) -> None:
    app = world.app(world.resource())
    token = await _accepted_auth_token(world, app)
    before = world.snapshot()
    response = await send_signed(
        world,
        app,
        None,
        path="/aauth/revoke",
        **_server_signed(
            world, world.ap_key, AP, "aauth-agent.json", {"iss": PS, "jti": peek(token)[1]["jti"]}
        ),
    )
    refused(world, before, response, 403, error="access_denied")


async def test_r_forged_server_signature(world: World) -> None:
    app = world.app(world.resource())
    token = await _accepted_auth_token(world, app)
    before = world.snapshot()
    impostor = PrivateKey.generate("Ed25519", kid="ps-1")
    response = await send_signed(
        world,
        app,
        None,
        path="/aauth/revoke",
        **_server_signed(
            world, impostor, PS, "aauth-person.json", {"iss": PS, "jti": peek(token)[1]["jti"]}
        ),
    )
    refused(world, before, response, 401, "invalid_signature")


async def test_r_unknown_token(world: World) -> None:
    app = world.app(world.resource())
    await _accepted_auth_token(world, app)
    before = world.snapshot()
    response = await send_signed(
        world,
        app,
        None,
        path="/aauth/revoke",
        **_server_signed(
            world, world.ps_key, PS, "aauth-person.json", {"iss": PS, "jti": "never-seen"}
        ),
    )
    refused(world, before, response, 404, error="not_found")


async def test_r_revocation_is_keyed_by_issuer_and_jti(world: World) -> None:
    app = world.app(world.resource(access_server=AS))
    ps_token = await _accepted_auth_token(world, app, jti="same")
    as_token = await _accepted_auth_token(world, app, iss=AS, jti="same")
    response = await send_signed(
        world,
        app,
        None,
        path="/aauth/revoke",
        **_server_signed(world, world.ps_key, PS, "aauth-person.json", {"iss": PS, "jti": "same"}),
    )
    assert response.status_code == 200
    async with world.client(app, world.signer(ps_token)) as client:
        assert (await client.get("/data")).status_code == 403
    async with world.client(app, world.signer(as_token)) as client:
        assert (await client.get("/data")).status_code == 200


async def test_r_operator_revokes_an_agent_and_a_person(world: World) -> None:
    resource = world.resource()
    app = world.app(resource)
    await resource.revoke_agent(world.agent_key.thumbprint())
    async with world.client(app, world.signer(world.auth_token())) as client:
        assert (await client.get("/data")).json()["error"] == "revoked"
    other = World()
    resource = other.resource()
    app = other.app(resource)
    await resource.revoke_person(PS, PERSON_SUB)
    async with other.client(app, other.signer(other.person_token())) as client:
        assert (await client.get("/person")).status_code == 403
    async with other.client(app, other.signer(other.agent_token())) as client:
        assert (await client.get("/agent")).status_code == 200  # agent identity untouched
    assert [e.reason for e in other.kinds("denied")] == ["revoked"]
    assert other.kinds("denied")[0].detail["matched"] == "person"


def test_forge_helper_signs_what_it_is_told(world: World) -> None:
    token = forge({"alg": "Ed25519", "typ": "x"}, {"a": 1}, world.ap_key)
    assert peek(token) == ({"alg": "Ed25519", "typ": "x"}, {"a": 1})


async def test_r_two_revocations_in_one_second_are_not_replays(world: World) -> None:
    """A PS revoking two tokens at once signs two POSTs with the same created: their covered
    Content-Digests differ, so the second is not a replay of the first."""
    app = world.app(world.resource())
    await _accepted_auth_token(world, app, jti="first")
    await _accepted_auth_token(world, app, jti="second")
    for jti in ("first", "second"):
        response = await send_signed(
            world,
            app,
            None,
            path="/aauth/revoke",
            **_server_signed(world, world.ps_key, PS, "aauth-person.json", {"iss": PS, "jti": jti}),
        )
        assert response.status_code == 200, response.text
    replayed = await send_signed(
        world,
        app,
        None,
        path="/aauth/revoke",
        **_server_signed(
            world, world.ps_key, PS, "aauth-person.json", {"iss": PS, "jti": "second"}
        ),
    )
    assert replayed.status_code == 401  # the same body again in the same second is a replay
    assert replayed.headers["signature-error"] == "error=invalid_signature"


async def test_r_a_revocation_another_worker_wrote_counts_within_revocation_recheck(
    world: World,
) -> None:
    """Two resources on one store (two workers): the one that records a revocation refuses
    at once; the other trusts its last "not revoked" for ``revocation_recheck`` seconds,
    then asks the store again; with 0 it asks on every request."""
    here, there, strict = world.resource(), world.resource(), world.resource(revocation_recheck=0)
    apps = [world.app(r) for r in (here, there, strict)]
    signer = world.signer(world.auth_token())
    for app in apps:
        async with world.client(app, signer) as client:
            assert (await client.get("/data")).status_code == 200
    await here.revoke_agent(world.agent_key.thumbprint())
    statuses = []
    for app in apps:
        async with world.client(app, signer) as client:
            statuses.append((await client.get("/data")).status_code)
    assert statuses == [403, 200, 403]
    world.clock.advance(there.config.revocation_recheck)
    async with world.client(apps[1], signer) as client:
        assert (await client.get("/data")).status_code == 403
