"""Property-based tests: every parser and verifier returns a value or raises TokenError (an
AAuthError), never anything else -- on random text and on random, correctly signed headers and
claims."""

from __future__ import annotations

import copy
import json
import string
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.tokens import AGENT_ID, AP, AS, MISSION_S256, NOW, PERSON_SUB, PS, RESOURCE, World
from support.tokens import forge as forge_token

from aauth_agents.httpsig.types import SignatureKey
from aauth_agents.protocol.encoding import b64url_encode
from aauth_agents.protocol.errors import TokenError
from aauth_agents.tokens import (
    TYP_AGENT,
    TYP_AUTH,
    TYP_PERSON,
    TYP_RESOURCE,
    check_auth_token_response,
    check_resource_challenge,
    peek,
    token_key_resolver,
    verify_agent_token,
    verify_auth_token,
    verify_person_token,
    verify_resource_token,
)

WORLD = World("Ed25519")
AGENT_JWK = WORLD.agent_key.public_key.to_jwk(kid=False)
ISSUER_KEYS = {
    "ap-1": WORLD.ap_key,
    "ps-1": WORLD.ps_key,
    "res-1": WORLD.res_key,
    "as-1": WORLD.as_key,
}
RESOURCE_TOKEN = check_resource_challenge(
    WORLD.resource_token(),
    resource=RESOURCE,
    agent_key=WORLD.agent_key.public_key,
    ps=PS,
    person_sub=PERSON_SUB,
    keys=WORLD.keys,
    clock=WORLD.clock,
)

R3_URI = RESOURCE + "/aauth/r3/p1"
R3_GRANT = {"vocabulary": "urn:aauth:vocabulary:mcp", "operations": [{"tool": "send_note"}]}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


#: Plausible alternatives for each header member and claim; mutations also use random JSON.
HEADER_ALTERNATIVES: dict[str, list[Any]] = {
    "typ": [TYP_AGENT, TYP_PERSON, TYP_RESOURCE, TYP_AUTH, "JWT"],
    "alg": ["Ed25519", "ES256", "EdDSA", "none", "HS256"],
    "kid": [*ISSUER_KEYS, "gone"],
    "crit": [["b64"]],
}
CLAIM_ALTERNATIVES: dict[str, list[Any]] = {
    "iss": [AP, PS, RESOURCE, AS, "http://ps.example", "https://PS.example"],
    "dwk": ["aauth-agent.json", "aauth-person.json", "aauth-resource.json", "aauth-access.json"],
    "aud": [RESOURCE, PS, AS, [RESOURCE]],
    "sub": [AGENT_ID, PERSON_SUB, ""],
    "jti": ["j-1", "pt-1"],
    "iat": [NOW, NOW - 30, NOW + 3, NOW + 100, 1e400],
    "exp": [NOW + 60, NOW + 300, NOW + 3600, NOW, NOW + 10**6],
    "nbf": [NOW, NOW + 100],
    "cnf": [
        {"jwk": AGENT_JWK},
        {"jwk": {**AGENT_JWK, "alg": "EdDSA"}},
        {"jwk": {"kty": "EC", "x": "a"}},
        {"jwk": {**AGENT_JWK, "x": "AAAA"}},
    ],
    "ps": [PS, AS, "https://ps.example/"],
    "parent_agent": ["aauth:boss@ap.example", "boss"],
    "scope": ["read", "read write", "a  b", ""],
    "account": ["acct"],
    "tenant": ["acme"],
    "mission_s256": [MISSION_S256, "short"],
    "presented_jti": ["pt-1", "pt-2"],
    "person_token_jti": ["pt-1", "pt-2"],
    "agent_jkt": [WORLD.jkt, "A" * 43],
    "interaction": [{"url": "https://resource.example/i", "code": "C"}, {"url": "http://x"}],
    # R3: the pin, and grants in the vocabulary format
    "r3_uri": [
        R3_URI,
        "https://other.example/r3/1",
        "http://resource.example/r3/1",
        "https://resource.example:444/r3",
    ],
    "r3_s256": [MISSION_S256, "short"],
    "r3_granted": [
        R3_GRANT,
        {"vocabulary": "urn:aauth:vocabulary:mcp", "operations": [{}]},
        {"vocabulary": "mcp", "operations": []},
        {"operations": []},
    ],
    "r3_per_call": [R3_GRANT, {"vocabulary": "urn:x", "operations": "all"}],
}
#: Valid tokens of every type, as (header, claims), to mutate.
BASES = [
    peek(t)
    for t in (
        WORLD.agent_token(),
        WORLD.person_token(),
        WORLD.resource_token(),
        WORLD.auth_token(),
        WORLD.auth_token(iss=AS),
        WORLD.resource_token(r3_uri=R3_URI, r3_s256=MISSION_S256),
        WORLD.auth_token(
            r3_uri=R3_URI, r3_s256=MISSION_S256, r3_granted=R3_GRANT, r3_per_call=R3_GRANT
        ),
    )
]


def _mutate(
    draw: st.DrawFn, target: dict[str, Any], alternatives: dict[str, list[Any]], max_changes: int
) -> None:
    for name in draw(st.sets(st.sampled_from(sorted(alternatives)), max_size=max_changes)):
        action = draw(st.sampled_from(["drop", "alternative", "alternative", "json"]))
        if action == "drop":
            target.pop(name, None)
        elif action == "alternative":
            target[name] = draw(st.sampled_from(alternatives[name]))
        else:
            target[name] = draw(json_values)


@st.composite
def mutated_tokens(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A valid token with a few header members and claims dropped or replaced."""
    header, claims = copy.deepcopy(draw(st.sampled_from(BASES)))
    _mutate(draw, header, HEADER_ALTERNATIVES, 1)
    _mutate(draw, claims, CLAIM_ALTERNATIVES, 3)
    return header, claims


def forge(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Signed by the issuer key the header names, so many tokens get past the signature."""
    kid = header.get("kid")
    key = ISSUER_KEYS.get(kid, WORLD.ps_key) if isinstance(kid, str) else WORLD.ps_key
    return forge_token(header, claims, key)


signing = WORLD.agent_key.public_key
resolve = token_key_resolver(keys=WORLD.keys, audience=RESOURCE, clock=WORLD.clock)

VERIFIERS: dict[str, Callable[[str], Any]] = {
    TYP_AGENT: lambda t: verify_agent_token(
        t, keys=WORLD.keys, signing_key=signing, clock=WORLD.clock
    ),
    TYP_PERSON: lambda t: verify_person_token(
        t, keys=WORLD.keys, audience=RESOURCE, signing_key=signing, clock=WORLD.clock
    ),
    TYP_RESOURCE: lambda t: verify_resource_token(
        t, keys=WORLD.keys, audience=PS, agent_jkt=WORLD.jkt, clock=WORLD.clock
    ),
    TYP_AUTH: lambda t: verify_auth_token(
        t, keys=WORLD.keys, audience=RESOURCE, signing_key=signing, clock=WORLD.clock
    ),
    "challenge": lambda t: check_resource_challenge(
        t,
        resource=RESOURCE,
        agent_key=signing,
        ps=PS,
        person_sub=PERSON_SUB,
        keys=None,
        clock=WORLD.clock,
    ),
    "response": lambda t: check_auth_token_response(
        t,
        resource_token=RESOURCE_TOKEN,
        resource=RESOURCE,
        agent_key=signing,
        keys=None,
        clock=WORLD.clock,
    ),
    "resolver": lambda t: resolve(SignatureKey("jwt", {"jwt": t})).context,
}


def check_all(token: object) -> int:
    """Run every verifier; return how many accepted. Anything but TokenError fails."""
    accepted = 0
    for name, verify in VERIFIERS.items():
        try:
            result = verify(token)  # type: ignore[arg-type]
        except TokenError as exc:
            assert exc.code and exc.reason and exc.signature_error, name
            continue
        accepted += 1
        # an accepted token is of the right type and unexpired
        assert result.exp > WORLD.clock.now, name
        if name.startswith("aa-"):
            assert result.header["typ"] == name
    return accepted


B64 = string.ascii_letters + string.digits + "-_"


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_peek_random_text(text: str) -> None:
    try:
        header, claims = peek(text)
    except TokenError as exc:
        assert exc.reason == "malformed"
    else:
        assert isinstance(header, dict) and isinstance(claims, dict)


@settings(max_examples=300)
@given(st.lists(st.text(alphabet=B64, max_size=40), min_size=1, max_size=5).map(".".join))
def test_peek_random_segments(text: str) -> None:
    try:
        peek(text)
    except TokenError as exc:
        assert exc.reason == "malformed"


@given(json_values, json_values, st.binary(max_size=70))
def test_peek_round_trips_json(header: Any, claims: Any, signature: bytes) -> None:
    def seg(value: Any) -> str:
        return b64url_encode(json.dumps(value).encode())

    token = f"{seg(header)}.{seg(claims)}.{b64url_encode(signature)}"
    try:
        got = peek(token)
    except TokenError as exc:
        assert exc.reason == "malformed"
        assert not (isinstance(header, dict) and isinstance(claims, dict))
    else:
        assert got == (header, claims)


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=300), st.none(), st.integers(), st.binary(max_size=50)))
def test_verifiers_random_input(token: object) -> None:
    assert check_all(token) == 0


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_tokens())
def test_verifiers_random_signed_tokens(token: tuple[dict[str, Any], dict[str, Any]]) -> None:
    check_all(forge(*token))


def test_the_strategy_reaches_acceptance() -> None:
    """Sanity: the plausible values above do make valid tokens of every type."""
    for token in (
        WORLD.agent_token(),
        WORLD.person_token(),
        WORLD.resource_token(),
        WORLD.auth_token(),
        forge(*BASES[-2]),
        forge(*BASES[-1]),
    ):
        assert check_all(token) >= 1
