"""The Signature-Key ``scheme=jwt`` resolver handed to the HTTP signature verifier."""

from __future__ import annotations

import pytest
from support.tokens import AP, NOW, PS, RESOURCE, World, resign

from aauth_agents.httpsig import HttpRequest, SignatureVerifier, sign_request
from aauth_agents.httpsig.types import SignatureKey
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.errors import (
    ConfigurationError,
    SignatureError,
    TokenError,
    UnsupportedSchemeError,
)
from aauth_agents.tokens import (
    TYP_AGENT,
    TYP_AUTH,
    TYP_RESOURCE,
    AgentToken,
    AuthToken,
    PersonToken,
    async_token_key_resolver,
    token_key_resolver,
)


def jwt_key(token: str) -> SignatureKey:
    return SignatureKey("jwt", {"jwt": token})


def test_resolves_each_presentable_type(world: World) -> None:
    resolve = token_key_resolver(keys=world.keys, audience=RESOURCE, clock=world.clock)
    for token, cls in (
        (world.agent_token(), AgentToken),
        (world.person_token(), PersonToken),
        (world.auth_token(), AuthToken),
    ):
        resolution = resolve(jwt_key(token))
        assert isinstance(resolution.context, cls)
        assert world.agent_key.public_key.same_key(resolution.jwk)
        assert resolution.jwk["alg"] == "Ed25519"


async def test_async_resolver(world: World) -> None:
    resolve = async_token_key_resolver(keys=world.keys, audience=RESOURCE, clock=world.clock)
    resolution = await resolve(jwt_key(world.auth_token()))
    assert isinstance(resolution.context, AuthToken)
    with pytest.raises(TokenError):
        await resolve(jwt_key(world.resource_token()))


def test_auth_only_refuses_person_token(ed_world: World) -> None:
    resolve = token_key_resolver(
        keys=ed_world.keys, audience=RESOURCE, accept=(TYP_AUTH,), clock=ed_world.clock
    )
    with pytest.raises(TokenError) as exc:
        resolve(jwt_key(ed_world.person_token()))
    assert (exc.value.reason, exc.value.code) == ("typ", "invalid_auth_token")
    assert exc.value.as_signature_error().code == "invalid_jwt"


def test_agent_tokens_need_no_audience(ed_world: World) -> None:
    resolve = token_key_resolver(
        keys=ed_world.keys, audience=None, accept=(TYP_AGENT,), clock=ed_world.clock
    )
    assert resolve(jwt_key(ed_world.agent_token())).context.iss == AP


def test_resource_tokens_are_not_presentable(ed_world: World) -> None:
    with pytest.raises(ConfigurationError):
        token_key_resolver(keys=ed_world.keys, audience=PS, accept=(TYP_RESOURCE,))
    with pytest.raises(ConfigurationError):
        token_key_resolver(keys=ed_world.keys, audience=None)  # person/auth need audience
    with pytest.raises(ConfigurationError):
        token_key_resolver(keys=ed_world.keys, audience=PS, accept=())
    resolve = token_key_resolver(keys=ed_world.keys, audience=PS, clock=ed_world.clock)
    with pytest.raises(TokenError) as exc:
        resolve(jwt_key(ed_world.resource_token()))
    assert exc.value.reason == "typ"


def test_failures_become_signature_errors(ed_world: World) -> None:
    resolve = token_key_resolver(keys=ed_world.keys, audience=RESOURCE, clock=ed_world.clock)
    token = ed_world.auth_token()
    ed_world.clock.now = NOW + 3600
    with pytest.raises(TokenError) as exc:
        resolve(jwt_key(token))
    assert exc.value.as_signature_error().code == "expired_jwt"
    ed_world.clock.now = NOW
    unknown = resign(token, ed_world.ps_key, header={"kid": "nope"})
    with pytest.raises(TokenError) as exc:
        resolve(jwt_key(unknown))
    assert exc.value.as_signature_error().code == "unknown_key"
    wrong_aud = resign(token, ed_world.ps_key, claims={"aud": "https://other.example"})
    with pytest.raises(TokenError) as exc:
        resolve(jwt_key(wrong_aud))
    assert exc.value.reason == "aud"
    assert exc.value.as_signature_error().code == "invalid_jwt"


def test_cnf_problems_surface_through_the_resolver(ed_world: World) -> None:
    resolve = token_key_resolver(keys=ed_world.keys, audience=RESOURCE, clock=ed_world.clock)
    incomplete = resign(
        ed_world.auth_token(),
        ed_world.ps_key,
        claims={"cnf": {"jwk": {"kty": "OKP", "alg": "Ed25519"}}},
    )
    with pytest.raises(TokenError) as exc:
        resolve(jwt_key(incomplete))
    assert exc.value.reason == "cnf_incomplete"


@pytest.mark.parametrize(
    "key",
    [
        SignatureKey("jwt", {}),
        SignatureKey("jwt", {"jwt": "x.y.z"}),
        SignatureKey("jwt", {"jwt": 5}),
    ],
)
def test_malformed_jwt_parameter(ed_world: World, key: SignatureKey) -> None:
    resolve = token_key_resolver(keys=ed_world.keys, audience=RESOURCE, clock=ed_world.clock)
    with pytest.raises(TokenError) as exc:
        resolve(key)
    assert exc.value.reason == "malformed"


@pytest.mark.parametrize("scheme", ["hwk", "jwks_uri", "jkt-jwt", "x"])
def test_other_schemes(ed_world: World, scheme: str) -> None:
    resolve = token_key_resolver(keys=ed_world.keys, audience=RESOURCE, clock=ed_world.clock)
    with pytest.raises(UnsupportedSchemeError) as exc:
        resolve(SignatureKey(scheme, {"jwt": ed_world.agent_token()}))
    assert exc.value.accept_schemes == ("jwt",)


# -- with the real HTTP signature verifier ---------------------------------------------------


def signed_request(world: World, token: str, *, key: PrivateKey | None = None) -> HttpRequest:
    request = HttpRequest("GET", "https://resource.example/docs")
    headers = sign_request(
        request,
        key=key or world.agent_key,
        signature_key=SignatureKey.from_jwt(token),
        clock=world.clock,
    )
    return request.with_headers(headers)


def test_httpsig_verifier_with_token_resolver(world: World) -> None:
    verifier = SignatureVerifier(clock=world.clock)
    resolve = token_key_resolver(
        keys=world.keys, audience=RESOURCE, accept=(TYP_AUTH,), clock=world.clock
    )
    verified = verifier.verify(signed_request(world, world.auth_token()), resolve)
    assert isinstance(verified.context, AuthToken)
    assert verified.thumbprint == world.agent_key.thumbprint()


async def test_httpsig_verifier_rejections(ed_world: World) -> None:
    verifier = SignatureVerifier(clock=ed_world.clock)
    resolve = async_token_key_resolver(
        keys=ed_world.keys, audience=RESOURCE, accept=(TYP_AUTH,), clock=ed_world.clock
    )
    # a person token where an auth token is required
    with pytest.raises(SignatureError) as exc:
        await verifier.averify(signed_request(ed_world, ed_world.person_token()), resolve)
    assert exc.value.code == "invalid_jwt" and isinstance(exc.value.__cause__, TokenError)
    # a valid auth token, but the request signed by a key other than cnf
    request = signed_request(ed_world, ed_world.auth_token(), key=ed_world.other_key)
    with pytest.raises(SignatureError) as exc:
        await verifier.averify(request, resolve)
    assert exc.value.code == "invalid_signature"
