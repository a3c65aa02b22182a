"""The ``scheme=jwt`` resolver's fast path for agent tokens agrees with the full path.

:func:`token_key_resolver` checks a well-formed agent token in one pass and falls back to
the step-by-step verification (peek, precheck, key and signature, claims) for anything
else. On any token -- valid, with each header member and claim replaced by near-misses,
altered one character at a time -- the resolver returns the same token or raises the same
error (type, code, reason, detail, Signature-Error) as the step-by-step path."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aauth_agents.clock import FrozenClock
from aauth_agents.httpsig.types import SignatureKey
from aauth_agents.keys import ED25519, ES256, PrivateKey
from aauth_agents.protocol.encoding import b64url_encode
from aauth_agents.protocol.errors import AAuthError
from aauth_agents.tokens import StaticIssuerKeys, async_token_key_resolver, token_key_resolver
from aauth_agents.tokens.checks import _signed_key
from aauth_agents.tokens.resolver import _Resolver

NOW = 1_730_217_600
AP = "https://agent.example"
ISSUER = PrivateKey.generate(ED25519, kid="k1")
OTHER = PrivateKey.generate(ED25519, kid="k1")
AGENT_KEYS = {alg: PrivateKey.generate(alg) for alg in (ED25519, ES256)}
CLOCK = FrozenClock(NOW)
KEYS = StaticIssuerKeys({(AP, "aauth-agent.json"): [ISSUER.public_key]})
ACCEPTS = [("aa-agent+jwt",), ("aa-agent+jwt", "aa-person+jwt", "aa-auth+jwt")]

#: Values a member may take instead of its valid one: near-misses of every type.
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([NOW, NOW - 10, NOW + 10, NOW + 3600, NOW + 86_401, 1e400, 1.5, NOW + 0.5]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "",
            AP,
            AP + "/",
            "https://Agent.example",
            "http://agent.example",
            "aauth:a@agent.example",
            "aauth:a+b@agent.example",
            "aauth:+a@agent.example",
            "aauth:a@",
            "aa-agent+jwt",
            "aa-person+jwt",
            "aauth-agent.json",
            "aauth-person.json",
            ED25519,
            ES256,
            "EdDSA",
            "none",
            "k1",
            "k2",
        ]
    ),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["jwk", "kty", "x"]), st.text(max_size=3), max_size=2),
)


#: Times at the edges of the checks: now, the iat skew (5 s), the 24 h lifetime from
#: ``iat = NOW - 60``, as integers and floats.
TIMES = st.sampled_from(
    [NOW + d for d in (-86_460, -61, -60, -1, 0, 1, 4, 5, 6, 86_339, 86_340, 86_341)]
    + [NOW + 5.5, NOW - 0.5, float(NOW + 3000), True]
)


def _cnf(alg: str) -> dict[str, Any]:
    return {"jwk": AGENT_KEYS[alg].public_key.to_jwk()}


def _jwk_variants(alg: str) -> st.SearchStrategy[Any]:
    jwk = AGENT_KEYS[alg].public_key.to_jwk()
    return st.one_of(
        st.just({"jwk": jwk}),
        st.just({"jwk": {**jwk, "d": "AAAA"}}),
        st.just({"jwk": {k: v for k, v in jwk.items() if k != "x"}}),
        st.just({"jwk": {**jwk, "x": jwk["x"][:-2]}}),
        st.just({"jwk": {**jwk, "kty": "RSA"}}),
        st.just({"jwk": {**jwk, "kty": "oct"}}),
        st.just({"jwk": {**jwk, "alg": "EdDSA"}}),
        st.just({"jwk": {**jwk, "kid": 7}}),
        st.just({"jwk": {**jwk, "x": 7}}),
        st.just({"jwk": jwk, "jkt": "x"}),
        st.just(jwk),
        ODD,
    )


def _few(names: list[str]) -> st.SearchStrategy[list[str]]:
    """Mostly none of ``names``, sometimes one or two: most tokens stay near the valid one."""
    return st.sampled_from([0, 0, 0, 1, 1, 2]).flatmap(
        lambda n: st.lists(st.sampled_from(names), min_size=n, max_size=n)
    )


@st.composite
def tokens(draw: st.DrawFn) -> str:
    alg = draw(st.sampled_from([ED25519, ES256]))
    header: dict[str, Any] = {"alg": ED25519, "typ": "aa-agent+jwt", "kid": "k1"}
    claims: dict[str, Any] = {
        "iss": AP,
        "dwk": "aauth-agent.json",
        "sub": "aauth:a@agent.example",
        "jti": "j1",
        "cnf": _cnf(alg),
        "iat": NOW - 60,
        "exp": NOW + 3000,
    }
    if draw(st.integers(0, 4)) == 0:  # the header, less often: most fail it outright
        for name in draw(_few(["typ", "alg", "kid", "crit", "b64", "x"])):
            header[name] = draw(ODD)
        for name in draw(_few(["typ", "kid"])):
            header.pop(name, None)
    optional = ["ps", "parent_agent", "nbf", "extra", "scope"]
    if draw(st.booleans()):
        claims["ps"] = "https://ps.example"
    names = ["iss", "dwk", "sub", "jti", "iat", "exp", *optional]
    for name in draw(_few(names)):
        claims[name] = draw(TIMES if name in ("iat", "exp", "nbf") else ODD)
    if draw(st.integers(0, 3)) == 0:
        claims["cnf"] = draw(_jwk_variants(alg))
    for name in draw(_few(names)):
        claims.pop(name, None)
    segments = [
        b64url_encode(json.dumps(header).encode()),
        b64url_encode(json.dumps(claims).encode()),
    ]
    signer = draw(st.sampled_from([ISSUER, ISSUER, OTHER]))
    signature = b64url_encode(signer.sign(".".join(segments).encode()))
    token = ".".join([*segments, signature])
    if draw(st.integers(0, 7)) == 0:  # one character altered, anywhere
        at = draw(st.integers(0, len(token) - 1))
        char = draw(st.sampled_from(list('AQgw_-.=+/ "{}1')))
        token = token[:at] + char + token[at + 1 :]
    return token


def _outcome(call: Any) -> tuple[Any, ...]:
    try:
        resolution = call()
    except AAuthError as exc:
        return (
            "error",
            type(exc),
            exc.code,
            getattr(exc, "reason", None),
            exc.detail,
            getattr(exc, "signature_error", None),
        )
    token = resolution.context
    fields = {name: getattr(token, name) for name in vars(token) if name != "cnf"}
    return ("ok", type(token), fields, token.cnf.jwk, dict(resolution.jwk), resolution.key)


def _step_by_step(resolver: _Resolver, key: SignatureKey) -> Any:
    """The resolver as it was, without the fast path."""
    pre = resolver.precheck(key)
    _signed_key(resolver.keys, pre)
    return resolver.finish(pre)


@settings(max_examples=400, deadline=None)
@given(tokens(), st.sampled_from(ACCEPTS), st.sampled_from([0, 5]))
def test_the_resolver_agrees_with_the_step_by_step_path(
    token: str, accept: tuple[str, ...], leeway: int
) -> None:
    audience = None if len(accept) == 1 else "https://resource.example"
    args = dict(keys=KEYS, audience=audience, accept=accept, clock=CLOCK, leeway=leeway)
    reference = _Resolver(KEYS, audience, accept, CLOCK, leeway, 5.0)
    key = SignatureKey.from_jwt(token)
    expected = _outcome(lambda: _step_by_step(reference, key))
    assert _outcome(lambda: token_key_resolver(**args)(key)) == expected
    resolve = async_token_key_resolver(**args)
    assert _outcome(lambda: asyncio.run(resolve(key))) == expected


def test_a_well_formed_token_takes_the_fast_path() -> None:
    """The bench's shape (the fast path's reason to exist) is one it handles."""
    from aauth_agents.tokens import mint_agent_token

    token = mint_agent_token(
        ISSUER, iss=AP, sub="aauth:a@agent.example", cnf=AGENT_KEYS[ES256].public_key,
        lifetime=3600, clock=CLOCK, ps="https://ps.example",
    )  # fmt: skip
    resolver = _Resolver(KEYS, None, ("aa-agent+jwt",), CLOCK, 0, 5.0)
    assert resolver.fast(SignatureKey.from_jwt(token)) is not None
