"""Verification of the four token types: round trips and one test per rejection, in the
order of §Agent/§Person/§Resource/§Auth Token Verification."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

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
    forge,
    resign,
    segment,
)

from aauth_agents.keys import PrivateKey, PublicKey
from aauth_agents.protocol.errors import (
    DiscoveryError,
    IssuerMismatchError,
    IssuerMissingError,
    TokenError,
    UnknownKeyError,
    UnsupportedAlgorithmError,
)
from aauth_agents.tokens import (
    DWK_ACCESS,
    DWK_PERSON,
    AgentToken,
    AuthToken,
    PersonToken,
    ResourceToken,
    StaticIssuerKeys,
    averify_agent_token,
    averify_auth_token,
    averify_person_token,
    averify_resource_token,
    peek,
    verify_agent_token,
    verify_auth_token,
    verify_person_token,
    verify_resource_token,
)

# -- round trips -----------------------------------------------------------------------------


def test_agent_round_trip(world: World) -> None:
    token = world.agent_token(parent_agent="aauth:boss@ap.example")
    agent = verify_agent_token(
        token, keys=world.keys, signing_key=world.agent_key.public_key, clock=world.clock
    )
    assert isinstance(agent, AgentToken)
    assert (agent.iss, agent.sub, agent.agent, agent.ps) == (AP, AGENT_ID, AGENT_ID, PS)
    assert agent.parent_agent == "aauth:boss@ap.example" and agent.is_subagent
    assert agent.cnf.same_key(world.agent_key.public_key)
    assert (agent.iat, agent.exp, agent.kid, agent.raw) == (NOW, NOW + 3600, "ap-1", token)
    assert agent.header["alg"] == world.alg and agent.claims["jti"] == agent.jti


def test_person_round_trip(world: World) -> None:
    person = verify_person_token(
        world.person_token(),
        keys=world.keys,
        audience=RESOURCE,
        signing_key=world.agent_key.public_key,
        clock=world.clock,
    )
    assert isinstance(person, PersonToken)
    assert person.person == (PS, PERSON_SUB) and person.aud == RESOURCE
    assert person.mission_s256 == MISSION_S256 and person.tenant == "acme"
    assert person.jti == "pt-1" and person.cnf.same_key(world.agent_key.public_key)


def test_resource_round_trip(world: World) -> None:
    token = world.resource_token(
        account="acct", interaction={"url": "https://resource.example/i", "code": "XY12"}
    )
    rt = verify_resource_token(
        token, keys=world.keys, audience=PS, agent_jkt=world.jkt, clock=world.clock
    )
    assert isinstance(rt, ResourceToken)
    assert (rt.iss, rt.aud, rt.ps, rt.sub) == (RESOURCE, PS, PS, PERSON_SUB)
    assert rt.person == (PS, PERSON_SUB) and rt.presented_jti == "pt-1"
    assert rt.scopes == ("read", "write") and rt.scope == "read write"
    assert rt.account == "acct" and rt.mission_s256 == MISSION_S256 and rt.tenant == "acme"
    assert rt.interaction is not None and rt.interaction.code == "XY12"
    assert rt.agent_jkt == world.jkt


@pytest.mark.parametrize(("iss", "dwk"), [(PS, None), (AS, None), (PS, DWK_ACCESS)])
def test_auth_round_trip(world: World, iss: str, dwk: str | None) -> None:
    token = world.auth_token(
        iss=iss, dwk=dwk, account="acct", tenant="acme", extra={"email": "p@example.com"}
    )
    auth = verify_auth_token(
        token,
        keys=world.keys,
        audience=RESOURCE,
        signing_key=world.agent_key.public_key,
        clock=world.clock,
    )
    assert isinstance(auth, AuthToken)
    assert auth.person == (iss, PERSON_SUB) and auth.ps == PS and auth.aud == RESOURCE
    assert auth.scopes == ("read",) and auth.account == "acct" and auth.tenant == "acme"
    assert auth.mission_s256 == MISSION_S256 and auth.claims["email"] == "p@example.com"
    assert auth.issued_by_ps == (iss == PS and dwk is None)
    assert auth.cnf.same_key(world.agent_key.public_key)


async def test_async_round_trips(world: World) -> None:
    signing = world.agent_key.public_key
    agent = await averify_agent_token(
        world.agent_token(), keys=world.keys, signing_key=signing, clock=world.clock
    )
    person = await averify_person_token(
        world.person_token(),
        keys=world.keys,
        audience=RESOURCE,
        signing_key=signing,
        clock=world.clock,
    )
    rt = await averify_resource_token(
        world.resource_token(), keys=world.keys, audience=PS, agent_jkt=world.jkt, clock=world.clock
    )
    auth = await averify_auth_token(
        world.auth_token(),
        keys=world.keys,
        audience=RESOURCE,
        signing_key=signing,
        clock=world.clock,
    )
    assert (agent.sub, person.sub, rt.sub, auth.sub) == (
        AGENT_ID,
        PERSON_SUB,
        PERSON_SUB,
        PERSON_SUB,
    )


async def test_async_rejects_like_sync(ed_world: World) -> None:
    token = resign(ed_world.auth_token(), ed_world.ps_key, header={"kid": "gone"})
    with pytest.raises(TokenError) as exc:
        await averify_auth_token(
            token, keys=ed_world.keys, audience=RESOURCE, signing_key=None, clock=ed_world.clock
        )
    assert exc.value.reason == "unknown_key"


# -- the same rejections for every type ------------------------------------------------------

Verify = Callable[[World, str], Any]

TYPES: dict[str, tuple[str, int, str, str, Verify]] = {
    # name: (mint method, cap, invalid code, expired code, verify)
    "agent": (
        "agent_token",
        86_400,
        "invalid_agent_token",
        "expired_agent_token",
        lambda w, t: verify_agent_token(
            t, keys=w.keys, signing_key=w.agent_key.public_key, clock=w.clock
        ),
    ),
    "person": (
        "person_token",
        3600,
        "invalid_person_token",
        "invalid_person_token",
        lambda w, t: verify_person_token(
            t, keys=w.keys, audience=RESOURCE, signing_key=w.agent_key.public_key, clock=w.clock
        ),
    ),
    "resource": (
        "resource_token",
        300,
        "invalid_resource_token",
        "expired_resource_token",
        lambda w, t: verify_resource_token(
            t, keys=w.keys, audience=PS, agent_jkt=w.jkt, clock=w.clock
        ),
    ),
    "auth": (
        "auth_token",
        3600,
        "invalid_auth_token",
        "expired_auth_token",
        lambda w, t: verify_auth_token(
            t, keys=w.keys, audience=RESOURCE, signing_key=w.agent_key.public_key, clock=w.clock
        ),
    ),
}


def issuer(world: World, kind: str) -> PrivateKey:
    return {
        "agent": world.ap_key,
        "person": world.ps_key,
        "resource": world.res_key,
        "auth": world.ps_key,
    }[kind]


def mint(world: World, kind: str, **kw: Any) -> str:
    return str(getattr(world, TYPES[kind][0])(**kw))


def rejected(world: World, kind: str, token: str) -> TokenError:
    with pytest.raises(TokenError) as exc:
        TYPES[kind][4](world, token)
    return exc.value


COMMON: list[tuple[str, dict[str, Any], str]] = [
    ("wrong typ", {"header": {"typ": "JWT"}}, "typ"),
    ("no typ", {"drop_header": ["typ"]}, "typ"),
    ("EdDSA", {"header": {"alg": "EdDSA"}}, "alg"),
    ("alg none", {"header": {"alg": "none"}}, "alg"),
    ("HS256", {"header": {"alg": "HS256"}}, "alg"),
    ("crit", {"header": {"crit": ["x"], "x": 1}}, "malformed"),
    ("no kid", {"drop_header": ["kid"]}, "kid"),
    ("kid not a string", {"header": {"kid": 7}}, "kid"),
    ("wrong dwk", {"claims": {"dwk": "aauth-other.json"}}, "dwk"),
    ("no dwk", {"drop": ["dwk"]}, "dwk"),
    ("iss not https", {"claims": {"iss": "http://ap.example"}}, "iss"),
    ("iss with path", {"claims": {"iss": "https://ap.example/x"}}, "iss"),
    ("iss missing", {"drop": ["iss"]}, "iss"),
    ("unknown kid", {"header": {"kid": "rotated-away"}}, "unknown_key"),
    ("expired", {"claims": {"exp": NOW}}, "exp"),
    ("exp missing", {"drop": ["exp"]}, "claims"),
    ("exp a string", {"claims": {"exp": str(NOW + 60)}}, "claims"),
    ("exp a boolean", {"claims": {"exp": True}}, "claims"),
    ("iat missing", {"drop": ["iat"]}, "claims"),
    ("iat in the future", {"claims": {"iat": NOW + 60, "exp": NOW + 120}}, "iat"),
    ("nbf in the future", {"claims": {"nbf": NOW + 60}}, "nbf"),
    ("jti missing", {"drop": ["jti"]}, "claims"),
]


@pytest.mark.parametrize("kind", list(TYPES))
@pytest.mark.parametrize(("case", "change", "reason"), COMMON, ids=[c[0] for c in COMMON])
def test_common_rejections(
    world: World, kind: str, case: str, change: dict[str, Any], reason: str
) -> None:
    token = mint(world, kind)
    err = rejected(world, kind, resign(token, issuer(world, kind), **change))
    assert err.reason == reason, case
    _, _, invalid, expired, _ = TYPES[kind]
    assert err.code == (expired if reason == "exp" else invalid)
    assert err.signature_error == {"exp": "expired_jwt", "unknown_key": "unknown_key"}.get(
        reason, "invalid_jwt"
    )


@pytest.mark.parametrize("kind", list(TYPES))
def test_lifetime_over_cap(world: World, kind: str) -> None:
    cap = TYPES[kind][1]
    token = resign(mint(world, kind), issuer(world, kind), claims={"exp": NOW + cap + 1})
    assert rejected(world, kind, token).reason == "lifetime"
    ok = resign(mint(world, kind), issuer(world, kind), claims={"exp": NOW + cap})
    TYPES[kind][4](world, ok)


@pytest.mark.parametrize("kind", list(TYPES))
def test_expiry_boundaries_and_skew(world: World, kind: str) -> None:
    token = mint(world, kind)
    exp = peek(token)[1]["exp"]
    world.clock.now = exp - 1
    TYPES[kind][4](world, token)
    world.clock.now = exp
    err = rejected(world, kind, token)
    assert err.reason == "exp" and err.status == (401 if kind == "auth" else 400)
    world.clock.now = NOW
    within = resign(token, issuer(world, kind), claims={"iat": NOW + 5})
    TYPES[kind][4](world, within)


@pytest.mark.parametrize("kind", list(TYPES))
def test_tampering(world: World, kind: str) -> None:
    token = mint(world, kind)
    header, payload, sig = token.split(".")
    _, claims = peek(token)
    claims["sub"] = "someone-else"
    assert rejected(world, kind, f"{header}.{segment(claims)}.{sig}").reason == "signature"
    bad_sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    assert rejected(world, kind, f"{header}.{payload}.{bad_sig}").reason == "signature"
    impostor = PrivateKey.generate(world.alg, kid=issuer(world, kind).kid)
    assert rejected(world, kind, resign(token, impostor)).reason == "signature"
    assert rejected(world, kind, token + "x").reason in {"malformed", "signature"}
    assert rejected(world, kind, "not a jwt").reason == "malformed"


@pytest.mark.parametrize("kind", list(TYPES))
def test_issuer_key_of_another_algorithm(world: World, kind: str) -> None:
    """The JWKS key under that kid is ES256 but the token claims Ed25519 (or vice versa)."""
    other = PrivateKey.generate(
        "ES256" if world.alg == "Ed25519" else "Ed25519", kid=issuer(world, kind).kid
    )
    token = resign(mint(world, kind), other, header={"alg": other.alg})
    assert rejected(world, kind, token).reason == "alg"


class RecordingKeys:
    """An IssuerKeys that records every lookup."""

    def __init__(self, inner: StaticIssuerKeys) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str, str]] = []

    def get_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        self.calls.append((iss, dwk, kid))
        return self.inner.get_key(iss, dwk, kid)

    async def aget_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        return self.get_key(iss, dwk, kid)


@pytest.mark.parametrize(
    "iss",
    [
        "http://evil.example",
        "https://10.0.0.1",
        "https://a.example:8443",
        "https://EVIL.example",
        5,
        None,
    ],
)
def test_malformed_iss_is_never_fetched(ed_world: World, iss: object) -> None:
    keys = RecordingKeys(ed_world.keys)
    token = resign(ed_world.auth_token(), ed_world.ps_key, claims={"iss": iss})
    with pytest.raises(TokenError) as exc:
        verify_auth_token(
            token, keys=keys, audience=RESOURCE, signing_key=None, clock=ed_world.clock
        )
    assert exc.value.reason == "iss" and keys.calls == []


def test_wrong_dwk_is_never_fetched(ed_world: World) -> None:
    keys = RecordingKeys(ed_world.keys)
    token = resign(ed_world.agent_token(), ed_world.ap_key, claims={"dwk": "aauth-person.json"})
    with pytest.raises(TokenError):
        verify_agent_token(token, keys=keys, signing_key=None, clock=ed_world.clock)
    assert keys.calls == []


def test_lookup_uses_iss_dwk_kid(ed_world: World) -> None:
    keys = RecordingKeys(ed_world.keys)
    verify_auth_token(
        ed_world.auth_token(iss=AS),
        keys=keys,
        audience=RESOURCE,
        signing_key=None,
        clock=ed_world.clock,
    )
    assert keys.calls == [(AS, DWK_ACCESS, "as-1")]


class FailingKeys:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        raise self.error

    async def aget_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        raise self.error


@pytest.mark.parametrize(
    ("error", "reason", "signature_error"),
    [
        (UnknownKeyError("no such kid"), "unknown_key", "unknown_key"),
        (IssuerMismatchError("issuer differs"), "discovery", "issuer_mismatch"),
        (IssuerMissingError("no issuer"), "discovery", "issuer_missing"),
        (DiscoveryError("connection refused"), "discovery", "invalid_jwt"),
        (UnsupportedAlgorithmError("alg EdDSA"), "discovery", "invalid_jwt"),
    ],
)
async def test_discovery_errors(
    ed_world: World, error: Exception, reason: str, signature_error: str
) -> None:
    token, keys = ed_world.agent_token(), FailingKeys(error)
    with pytest.raises(TokenError) as sync:
        verify_agent_token(token, keys=keys, signing_key=None, clock=ed_world.clock)
    with pytest.raises(TokenError) as asynchronous:
        await averify_agent_token(token, keys=keys, signing_key=None, clock=ed_world.clock)
    for exc in (sync, asynchronous):
        assert (exc.value.reason, exc.value.signature_error) == (reason, signature_error)
        assert exc.value.as_signature_error().code == signature_error


def test_leeway_and_max_lifetime(ed_world: World) -> None:
    token = ed_world.agent_token(lifetime=86_400)
    ed_world.clock.now = NOW + 86_400
    verify_agent_token(token, keys=ed_world.keys, signing_key=None, clock=ed_world.clock, leeway=10)
    ed_world.clock.now = NOW
    with pytest.raises(TokenError) as exc:
        verify_agent_token(
            token, keys=ed_world.keys, signing_key=None, clock=ed_world.clock, max_lifetime=3600
        )
    assert exc.value.reason == "lifetime"


# -- cnf: §Request-Context Binding step 6 (agent, person and auth tokens) ---------------------

CNF_KINDS = ["agent", "person", "auth"]
ED = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}

CNF_CASES: list[tuple[str, Any, str]] = [
    ("absent", None, "cnf_missing"),
    ("not an object", "jwk", "cnf_missing"),
    ("no jwk", {"jkt": "abc"}, "cnf_missing"),
    ("jwk not an object", {"jwk": "x"}, "cnf_missing"),
    ("no kty", {"jwk": {"crv": "Ed25519", "x": ED["x"], "alg": "Ed25519"}}, "cnf_incomplete"),
    (
        "OKP without x",
        {"jwk": {"kty": "OKP", "crv": "Ed25519", "alg": "Ed25519"}},
        "cnf_incomplete",
    ),
    ("OKP without crv", {"jwk": {"kty": "OKP", "x": ED["x"], "alg": "Ed25519"}}, "cnf_incomplete"),
    (
        "EC without y",
        {"jwk": {"kty": "EC", "crv": "P-256", "x": ED["x"], "alg": "ES256"}},
        "cnf_incomplete",
    ),
    ("RSA without e", {"jwk": {"kty": "RSA", "n": "abc", "alg": "RS256"}}, "cnf_incomplete"),
    ("symmetric kty", {"jwk": {"kty": "oct", "k": "abc"}}, "cnf_invalid"),
    ("unknown kty", {"jwk": {"kty": "PQ", "pub": "abc", "alg": "ML-DSA-44"}}, "cnf_invalid"),
    ("kty not a string", {"jwk": {"kty": 1, "x": "abc"}}, "cnf_incomplete"),
    ("x empty", {"jwk": {**ED, "x": "", "alg": "Ed25519"}}, "cnf_incomplete"),
    ("no alg", {"jwk": ED}, "cnf_invalid"),
    ("EdDSA", {"jwk": {**ED, "alg": "EdDSA"}}, "cnf_invalid"),
    (
        "RSA (complete but unsupported)",
        {"jwk": {"kty": "RSA", "n": "abc", "e": "AQAB", "alg": "RS256"}},
        "cnf_invalid",
    ),
    ("kty/alg disagree", {"jwk": {**ED, "alg": "ES256"}}, "cnf_invalid"),
    ("x not base64url", {"jwk": {**ED, "x": "!!!", "alg": "Ed25519"}}, "cnf_invalid"),
    ("x short", {"jwk": {**ED, "x": "AAAA", "alg": "Ed25519"}}, "cnf_invalid"),
    ("private key", {"jwk": {**ED, "alg": "Ed25519", "d": "AAAA"}}, "cnf_invalid"),
    ("another key", {"jwk": {**ED, "alg": "Ed25519"}}, "cnf_mismatch"),
]


@pytest.mark.parametrize("kind", CNF_KINDS)
@pytest.mark.parametrize(("case", "cnf", "reason"), CNF_CASES, ids=[c[0] for c in CNF_CASES])
def test_cnf(ed_world: World, kind: str, case: str, cnf: Any, reason: str) -> None:
    change: dict[str, Any] = {"drop": ["cnf"]} if cnf is None else {"claims": {"cnf": cnf}}
    token = resign(mint(ed_world, kind), issuer(ed_world, kind), **change)
    assert rejected(ed_world, kind, token).reason == reason, case


@pytest.mark.parametrize("kind", CNF_KINDS)
def test_cnf_mismatch_es256_signer(ed_world: World, kind: str) -> None:
    """The request was signed by a different key than the token binds."""
    token = mint(ed_world, kind)
    verify: Verify = {
        "agent": lambda w, t: verify_agent_token(
            t, keys=w.keys, signing_key=w.other_key.public_key, clock=w.clock
        ),
        "person": lambda w, t: verify_person_token(
            t, keys=w.keys, audience=RESOURCE, signing_key=w.other_key.public_key, clock=w.clock
        ),
        "auth": lambda w, t: verify_auth_token(
            t, keys=w.keys, audience=RESOURCE, signing_key=w.other_key.public_key, clock=w.clock
        ),
    }[kind]
    with pytest.raises(TokenError) as exc:
        verify(ed_world, token)
    assert exc.value.reason == "cnf_mismatch"


def test_cnf_kid_is_ignored(ed_world: World) -> None:
    jwk = {**ed_world.agent_key.public_key.to_jwk(), "kid": "agent-local-name"}
    token = resign(ed_world.auth_token(), ed_world.ps_key, claims={"cnf": {"jwk": jwk}})
    verify_auth_token(
        token,
        keys=ed_world.keys,
        audience=RESOURCE,
        signing_key=ed_world.agent_key.public_key,
        clock=ed_world.clock,
    )


def test_es256_cnf(ed_world: World) -> None:
    token = ed_world.auth_token(cnf=ed_world.other_key.public_key)
    auth = verify_auth_token(
        token,
        keys=ed_world.keys,
        audience=RESOURCE,
        signing_key=ed_world.other_key.public_key,
        clock=ed_world.clock,
    )
    assert auth.cnf.alg == "ES256"


# -- agent token steps 6-7 and sub -----------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"ps": "https://ps.example/"}, "ps"),
        ({"ps": "ps.example"}, "ps"),
        ({"ps": 1}, "ps"),
        ({"parent_agent": "boss@ap.example"}, "parent_agent"),
        ({"parent_agent": 3}, "parent_agent"),
        ({"sub": "Assistant@ap.example"}, "sub"),
        ({"sub": None}, "sub"),
    ],
)
def test_agent_claims(ed_world: World, claims: dict[str, Any], reason: str) -> None:
    token = resign(ed_world.agent_token(), ed_world.ap_key, claims=claims)
    assert rejected(ed_world, "agent", token).reason == reason


def test_agent_without_ps(ed_world: World) -> None:
    token = resign(ed_world.agent_token(), ed_world.ap_key, drop=["ps"])
    agent = TYPES["agent"][4](ed_world, token)
    assert agent.ps is None and not agent.is_subagent


def test_agent_ignores_unknown_claims(ed_world: World) -> None:
    token = ed_world.agent_token(extra={"attestation": {"platform": "x"}})
    assert TYPES["agent"][4](ed_world, token).claims["attestation"] == {"platform": "x"}


# -- person token ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"claims": {"aud": "https://other.example"}}, "aud"),
        ({"claims": {"aud": [RESOURCE]}}, "aud"),
        ({"drop": ["aud"]}, "aud"),
        ({"claims": {"scope": "read"}}, "claims"),
        ({"claims": {"account": "acct"}}, "claims"),
        ({"drop": ["sub"]}, "sub"),
        ({"claims": {"sub": ""}}, "sub"),
        ({"claims": {"mission_s256": "short"}}, "claims"),
        ({"claims": {"tenant": 5}}, "claims"),
    ],
)
def test_person_claims(ed_world: World, change: dict[str, Any], reason: str) -> None:
    token = resign(ed_world.person_token(), ed_world.ps_key, **change)
    assert rejected(ed_world, "person", token).reason == reason


def test_person_token_where_auth_token_required(ed_world: World) -> None:
    """§Person Token Is Not Authorization: only typ tells them apart."""
    person = ed_world.person_token()
    err = rejected(ed_world, "auth", person)
    assert (err.reason, err.code) == ("typ", "invalid_auth_token")
    # even carrying every auth-token claim and the auth typ's dwk
    disguised = resign(person, ed_world.ps_key, claims={"ps": PS, "scope": "read"})
    assert rejected(ed_world, "auth", disguised).reason == "typ"


@pytest.mark.parametrize("kind", ["agent", "resource", "auth"])
def test_other_tokens_are_not_person_tokens(ed_world: World, kind: str) -> None:
    assert rejected(ed_world, "person", mint(ed_world, kind)).reason == "typ"


# -- resource token --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"claims": {"aud": "https://other-ps.example"}}, "aud"),
        ({"claims": {"agent_jkt": "A" * 43}}, "agent_jkt"),
        ({"drop": ["agent_jkt"]}, "agent_jkt"),
        ({"claims": {"person_token_jti": "pt-other"}}, "claims"),
        ({"drop": ["presented_jti", "person_token_jti"]}, "claims"),
        ({"drop": ["ps"]}, "ps"),
        ({"claims": {"ps": "https://ps.example:444"}}, "ps"),
        ({"drop": ["sub"]}, "sub"),
        ({"claims": {"scope": "read  write"}}, "claims"),
        ({"claims": {"scope": ["read"]}}, "claims"),
        ({"claims": {"mission_s256": 42}}, "claims"),
        ({"claims": {"account": ""}}, "claims"),
        ({"claims": {"interaction": {"url": "http://x.example/i", "code": "1"}}}, "claims"),
        ({"claims": {"interaction": {"url": "https://x.example/i"}}}, "claims"),
        ({"claims": {"interaction": "https://x.example/i"}}, "claims"),
    ],
)
def test_resource_claims(ed_world: World, change: dict[str, Any], reason: str) -> None:
    token = resign(ed_world.resource_token(), ed_world.res_key, **change)
    assert rejected(ed_world, "resource", token).reason == reason


@pytest.mark.parametrize("drop", ["presented_jti", "person_token_jti"])
def test_resource_either_jti_name(ed_world: World, drop: str) -> None:
    token = resign(ed_world.resource_token(), ed_world.res_key, drop=[drop])
    assert TYPES["resource"][4](ed_world, token).presented_jti == "pt-1"


def test_resource_without_scope(ed_world: World) -> None:
    """Companion specifications may replace scope with another authorization claim."""
    token = resign(
        ed_world.resource_token(),
        ed_world.res_key,
        drop=["scope"],
        claims={"authorization_details": [{"type": "x"}]},
    )
    rt = TYPES["resource"][4](ed_world, token)
    assert rt.scopes == () and rt.claims["authorization_details"] == [{"type": "x"}]


def test_resource_agent_jkt_of_subagent(ed_world: World) -> None:
    """Parent-mediated: agent_jkt is checked against the sub-agent's key, not the signer's."""
    sub_agent = PrivateKey.generate()
    token = ed_world.resource_token(
        person=None, ps=PS, sub=PERSON_SUB, presented_jti="pt-1", agent_jkt=sub_agent.thumbprint()
    )
    with pytest.raises(TokenError):
        verify_resource_token(
            token, keys=ed_world.keys, audience=PS, agent_jkt=ed_world.jkt, clock=ed_world.clock
        )
    verify_resource_token(
        token,
        keys=ed_world.keys,
        audience=PS,
        agent_jkt=sub_agent.thumbprint(),
        clock=ed_world.clock,
    )


def test_resource_token_to_an_as(ed_world: World) -> None:
    token = ed_world.resource_token(aud=AS)
    assert (
        verify_resource_token(
            token, keys=ed_world.keys, audience=AS, agent_jkt=ed_world.jkt, clock=ed_world.clock
        ).aud
        == AS
    )
    with pytest.raises(TokenError):
        verify_resource_token(
            token, keys=ed_world.keys, audience=PS, agent_jkt=ed_world.jkt, clock=ed_world.clock
        )


# -- auth token ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"claims": {"aud": "https://other.example"}}, "aud"),
        ({"drop": ["aud"]}, "aud"),
        ({"drop": ["sub"]}, "sub"),
        ({"claims": {"sub": 7}}, "sub"),
        ({"drop": ["ps"]}, "ps"),
        ({"claims": {"ps": "https://other-ps.example"}}, "ps"),  # PS-issued: ps must be iss
        ({"claims": {"ps": "http://ps.example"}}, "ps"),
        ({"claims": {"scope": 5}}, "claims"),
        ({"claims": {"mission_s256": "x"}}, "claims"),
    ],
)
def test_auth_claims(ed_world: World, change: dict[str, Any], reason: str) -> None:
    token = resign(ed_world.auth_token(), ed_world.ps_key, **change)
    assert rejected(ed_world, "auth", token).reason == reason


def test_as_issued_auth_token_names_another_ps(ed_world: World) -> None:
    token = ed_world.auth_token(iss=AS, ps="https://other-ps.example")
    auth = TYPES["auth"][4](ed_world, token)
    assert auth.ps == "https://other-ps.example" and not auth.issued_by_ps


def test_auth_token_dwk_must_match_issuer_role(ed_world: World) -> None:
    """An AS key is published under aauth-access.json only: a token claiming the person dwk
    is looked up there and not found."""
    token = resign(
        ed_world.auth_token(iss=AS), ed_world.as_key, claims={"dwk": DWK_PERSON, "ps": AS}
    )
    assert rejected(ed_world, "auth", token).reason == "unknown_key"


def test_forged_auth_token_by_agent(ed_world: World) -> None:
    """An agent signing its own auth token with its own key: unknown to the PS's JWKS."""
    _, claims = peek(ed_world.auth_token())
    token = forge(
        {"alg": "Ed25519", "typ": "aa-auth+jwt", "kid": "ps-1"}, claims, ed_world.agent_key
    )
    assert rejected(ed_world, "auth", token).reason == "signature"


def test_results_are_hashable_values_without_tokens_in_repr(ed_world: World) -> None:
    token = ed_world.auth_token()
    one = TYPES["auth"][4](ed_world, token)
    two = TYPES["auth"][4](ed_world, token)
    assert one == two and hash(one) == hash(two) and len({one, two}) == 1
    assert token not in repr(one) and token.split(".")[2] not in repr(one)


# -- silent re-keying: refresh once, then retry (§JWKS Discovery and Caching) -----------------


class RotatingKeys:
    """A cache holding a stale key under ``kid`` until refreshed; counts refreshes."""

    def __init__(self, stale: PublicKey, fresh: PublicKey | Exception | None) -> None:
        self.stale, self.fresh, self.refreshes = stale, fresh, 0

    def get_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        return self.stale

    async def aget_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        return self.stale

    def refresh_key(self, iss: str, dwk: str, kid: str) -> PublicKey | None:
        self.refreshes += 1
        if isinstance(self.fresh, Exception):
            raise self.fresh
        return self.fresh

    async def arefresh_key(self, iss: str, dwk: str, kid: str) -> PublicKey | None:
        return self.refresh_key(iss, dwk, kid)


def stale_key(world: World, alg: str | None = None) -> PublicKey:
    return PrivateKey.generate(alg or world.alg, kid="ps-1").public_key


async def test_refresh_cures_a_rekeyed_issuer(world: World) -> None:
    for stale in (
        stale_key(world),
        stale_key(world, "ES256" if world.alg == "Ed25519" else "Ed25519"),
    ):
        keys = RotatingKeys(stale, world.ps_key.public_key)
        verify_auth_token(
            world.auth_token(), keys=keys, audience=RESOURCE, signing_key=None, clock=world.clock
        )
        await averify_auth_token(
            world.auth_token(), keys=keys, audience=RESOURCE, signing_key=None, clock=world.clock
        )
        assert keys.refreshes == 2


@pytest.mark.parametrize(
    ("fresh", "reason", "signature_error"),
    [
        (None, "signature", "invalid_jwt"),  # the once-a-minute floor: nothing refetched
        ("other", "signature", "invalid_jwt"),  # refreshed, still wrong
        (UnknownKeyError("kid gone"), "unknown_key", "unknown_key"),
    ],  # kid no longer published
)
async def test_refresh_that_does_not_help(
    ed_world: World, fresh: Any, reason: str, signature_error: str
) -> None:
    fresh_key = stale_key(ed_world) if fresh == "other" else fresh
    keys = RotatingKeys(stale_key(ed_world), fresh_key)
    token = ed_world.person_token()
    with pytest.raises(TokenError) as sync:
        verify_person_token(
            token, keys=keys, audience=RESOURCE, signing_key=None, clock=ed_world.clock
        )
    with pytest.raises(TokenError) as asynchronous:
        await averify_person_token(
            token, keys=keys, audience=RESOURCE, signing_key=None, clock=ed_world.clock
        )
    for exc in (sync, asynchronous):
        assert (exc.value.reason, exc.value.signature_error) == (reason, signature_error)
    assert keys.refreshes == 2


def test_no_refresh_for_claim_failures(ed_world: World) -> None:
    keys = RotatingKeys(ed_world.ps_key.public_key, None)
    token = resign(ed_world.auth_token(), ed_world.ps_key, claims={"aud": "https://x.example"})
    with pytest.raises(TokenError):
        verify_auth_token(
            token, keys=keys, audience=RESOURCE, signing_key=None, clock=ed_world.clock
        )
    assert keys.refreshes == 0


def test_hs256_signed_with_the_issuer_public_key(ed_world: World) -> None:
    """Algorithm confusion at the verifier: HMAC keyed with the PS's published JWK."""
    import hashlib
    import hmac
    import json

    from aauth_agents.protocol.encoding import b64url_encode

    _, claims = peek(ed_world.auth_token())
    secret = json.dumps(ed_world.ps_key.public_key.to_jwk()).encode()
    signing_input = (
        f"{segment({'alg': 'HS256', 'typ': 'aa-auth+jwt', 'kid': 'ps-1'})}.{segment(claims)}"
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    err = rejected(ed_world, "auth", f"{signing_input}.{b64url_encode(mac)}")
    assert (err.reason, err.signature_error) == ("alg", "invalid_jwt")


def test_verified_tokens_are_whole_dataclasses(world: World) -> None:
    """Verification builds tokens without the generated ``__init__`` (one per request):
    each still holds exactly its fields and equals the token ``__init__`` would build."""
    signing = world.agent_key.public_key
    tokens = [
        verify_agent_token(
            world.agent_token(), keys=world.keys, signing_key=signing, clock=world.clock
        ),
        verify_person_token(
            world.person_token(),
            keys=world.keys,
            audience=RESOURCE,
            signing_key=signing,
            clock=world.clock,
        ),
        verify_resource_token(
            world.resource_token(),
            keys=world.keys,
            audience=PS,
            agent_jkt=world.jkt,
            clock=world.clock,
        ),
        verify_auth_token(
            world.auth_token(),
            keys=world.keys,
            audience=RESOURCE,
            signing_key=signing,
            clock=world.clock,
        ),
    ]
    for token in tokens:
        names = {f.name for f in dataclasses.fields(token)}
        assert set(vars(token)) == names
        rebuilt = type(token)(**{name: getattr(token, name) for name in names})
        assert rebuilt == token and hash(rebuilt) == hash(token)
        with pytest.raises(dataclasses.FrozenInstanceError):
            token.jti = "other"  # type: ignore[misc]
