"""Every §Verification rejection, with the exact Signature-Error code and headers it renders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from http_sfv.dictionary import Dictionary
from support.httpsig import NOW, fake_jwt

from aauth_agents.clock import FrozenClock
from aauth_agents.httpsig import (
    HttpRequest,
    KeyResolution,
    MemoryReplayCache,
    SignatureKey,
    SignatureVerifier,
    build_signature_base,
    serialize_signature_input,
    serialize_signature_key,
    sign_request,
    signature_base,
    signature_params,
    unverified_jwt_cnf_resolver,
)
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.errors import SignatureError, TokenError

BASE4 = ("@method", "@authority", "@path", "signature-key")
RESOLVER = unverified_jwt_cnf_resolver


def jwt_key(key: PrivateKey, **jwk_overrides: Any) -> SignatureKey:
    return SignatureKey.from_jwt(fake_jwt({**key.public_key.to_jwk(), **jwk_overrides}))


def signed(request: HttpRequest, key: PrivateKey, **kwargs: Any) -> HttpRequest:
    kwargs.setdefault("signature_key", jwt_key(key))
    kwargs.setdefault("clock", FrozenClock(NOW))
    return request.with_headers(sign_request(request, key=key, **kwargs))


def signed_raw(
    request: HttpRequest,
    key: PrivateKey,
    components: Sequence[str],
    params: Mapping[str, Any],
    signature_key: SignatureKey | None = None,
    label: str = "sig",
) -> HttpRequest:
    """Sign with arbitrary signature parameters, which sign_request deliberately refuses."""
    sk = serialize_signature_key(label, signature_key or jwt_key(key))
    with_key = request.with_headers({"Signature-Key": sk})
    signature = Dictionary()
    signature[label] = key.sign(signature_base(with_key, components, params))
    return with_key.with_headers(
        {
            "Signature-Input": serialize_signature_input(label, components, params),
            "Signature": str(signature),
        }
    )


def reject(
    request: HttpRequest, verifier: SignatureVerifier | None = None, resolver: Any = RESOLVER
) -> SignatureError:
    verifier = verifier or SignatureVerifier(clock=FrozenClock(NOW))
    with pytest.raises(SignatureError) as info:
        verifier.verify(request, resolver)
    error = info.value
    status, headers, _ = error.to_response()
    assert status == 401
    assert headers["Signature-Error"].startswith(f"error={error.code}")
    return error


GET = HttpRequest("GET", "https://r.example/items")


# -- step 1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["signature", "signature-input", "signature-key"])
def test_missing_header(ed_key: PrivateKey, header: str) -> None:
    request = signed(GET, ed_key)
    stripped = HttpRequest(
        request.method, request.url, [(k, v) for k, v in request.headers if k != header]
    )
    assert reject(stripped).code == "invalid_request"


def test_two_signature_key_members(ed_key: PrivateKey) -> None:
    request = signed(GET, ed_key)
    doubled = request.with_headers(
        {"Signature-Key": f'{request.header("signature-key")}, other=jwt;jwt="x"'}
    )
    assert reject(doubled).code == "invalid_request"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("signature-key", 'other=jwt;jwt="x"'),  # label absent from Signature-Input
        ("signature", "other=:AAAA:"),  # label absent from Signature
        ("signature", 'sig="not bytes"'),
        ("signature-input", "sig=(@method)"),
        ("signature-input", 'sig="@method"'),
        ("signature-input", "sig=(a b)"),  # tokens, not strings
        ("signature-key", 'sig="jwt";jwt="x"'),  # scheme must be a token
        ("signature-key", "sig"),
        ("signature-key", "not a dictionary"),
    ],
)
def test_malformed_or_mislabelled(ed_key: PrivateKey, header: str, value: str) -> None:
    assert reject(signed(GET, ed_key).with_headers({header: value})).code == "invalid_request"


# -- step 2 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", BASE4)
def test_uncovered_required_component(ed_key: PrivateKey, missing: str) -> None:
    components = [c for c in BASE4 if c != missing]
    error = reject(signed(GET, ed_key, components=components))
    assert error.code == "invalid_input"
    assert error.required_input == BASE4
    assert error.headers()["Signature-Error"] == (
        'error=invalid_input, required_input=("@method" "@authority" "@path" "signature-key")'
    )


def test_uncovered_query(ed_key: PrivateKey) -> None:
    request = HttpRequest("GET", "https://r.example/items?page=2")
    error = reject(signed(request, ed_key, components=BASE4))
    assert error.code == "invalid_input"
    assert error.required_input == ("@method", "@authority", "@path", "@query", "signature-key")
    lenient = SignatureVerifier(clock=FrozenClock(NOW), require_query=False)
    assert lenient.verify(signed(request, ed_key, components=BASE4), RESOLVER)


def test_additional_component_missing(ed_key: PrivateKey) -> None:
    verifier = SignatureVerifier(clock=FrozenClock(NOW), additional_components=("x-tenant",))
    request = GET.with_headers({"X-Tenant": "t1"})
    error = reject(signed(request, ed_key), verifier)
    assert error.code == "invalid_input"
    assert error.required_input == ("@method", "@authority", "@path", "x-tenant", "signature-key")
    assert verifier.verify(signed(request, ed_key, extra_components=["x-tenant"]), RESOLVER)


def test_body_components_required_by_ps(ed_key: PrivateKey) -> None:
    verifier = SignatureVerifier(clock=FrozenClock(NOW), require_body_digest=True)
    request = HttpRequest("POST", "https://ps.example/token", {"content-type": "a/b"}, b"{}")
    error = reject(signed(request, ed_key, cover_body=False), verifier)
    assert error.code == "invalid_input"
    assert error.required_input == (
        "@method",
        "@authority",
        "@path",
        "content-type",
        "content-digest",
        "signature-key",
    )


def test_additional_body_components_only_apply_to_bodies(ed_key: PrivateKey) -> None:
    verifier = SignatureVerifier(
        clock=FrozenClock(NOW), additional_components=("content-type", "content-digest")
    )
    assert verifier.verify(signed(GET, ed_key), RESOLVER)
    request = HttpRequest("POST", "https://r.example/", {"content-type": "a/b"}, b"1")
    assert reject(signed(request, ed_key, cover_body=False), verifier).code == "invalid_input"


def test_uncovered_authorization(ed_key: PrivateKey) -> None:
    request = GET.with_headers({"Authorization": "AAuth session"})
    error = reject(signed(request, ed_key, components=BASE4))
    assert error.code == "invalid_input"
    assert error.required_input is not None and "authorization" in error.required_input


def test_component_parameters_are_refused(ed_key: PrivateKey) -> None:
    """A signature that would verify if ``;sf`` were silently ignored is still refused."""
    components = ["@method", "@authority", "@path", "x-d", "signature-key"]
    inner = signature_params(components, {"created": NOW})
    inner[3].params["sf"] = True
    request = GET.with_headers(
        {"X-D": "a=1,  b=2", "Signature-Key": serialize_signature_key("sig", jwt_key(ed_key))}
    )
    signature, signature_input = Dictionary(), Dictionary()
    signature["sig"] = ed_key.sign(build_signature_base(request, components, str(inner)))
    signature_input["sig"] = inner
    request = request.with_headers(
        {"Signature-Input": str(signature_input), "Signature": str(signature)}
    )
    assert '"x-d";sf' in (request.header("signature-input") or "")
    assert reject(request).code == "invalid_signature"


@pytest.mark.parametrize("component", ["@status", "@query-param", "x-absent", "@signature-params"])
def test_underivable_covered_component(ed_key: PrivateKey, component: str) -> None:
    request = signed(GET, ed_key)
    value = (request.header("signature-input") or "").replace(
        '"signature-key"', f'"{component}" "signature-key"'
    )
    assert reject(request.with_headers({"Signature-Input": value})).code == "invalid_signature"


# -- step 3 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-61, 61, -3600])
def test_created_outside_window(ed_key: PrivateKey, offset: int) -> None:
    assert reject(signed(GET, ed_key, created=NOW + offset)).code == "invalid_signature"


@pytest.mark.parametrize(
    "params", [{}, {"created": str(NOW)}, {"created": True}, {"expires": NOW + 10}]
)
def test_created_missing_or_not_integer(ed_key: PrivateKey, params: dict[str, Any]) -> None:
    assert reject(signed_raw(GET, ed_key, BASE4, params)).code == "invalid_signature"


def test_created_decimal(ed_key: PrivateKey) -> None:
    from decimal import Decimal

    request = signed_raw(GET, ed_key, BASE4, {"created": Decimal("1730217600.5")})
    assert reject(request).code == "invalid_signature"


def test_expires_in_the_past(ed_key: PrivateKey) -> None:
    assert reject(signed(GET, ed_key, expires=NOW - 1)).code == "invalid_signature"
    request = signed_raw(GET, ed_key, BASE4, {"created": NOW, "expires": "soon"})
    assert reject(request).code == "invalid_signature"


# -- step 4 ------------------------------------------------------------------------------------


def test_hwk_when_only_jwt_is_accepted(ed_key: PrivateKey) -> None:
    request = signed(GET, ed_key, signature_key=SignatureKey.from_public_key(ed_key.public_key))
    error = reject(request)
    assert error.code == "unsupported_scheme"
    assert error.headers()["Accept-Signature-Scheme"] == "jwt"


@pytest.mark.parametrize(
    "sk",
    [
        SignatureKey("x509", {"x5u": "https://a.example/c"}),
        SignatureKey("future-scheme", {}),
        SignatureKey("jwks_uri", {"id": "https://a.example"}),
    ],  # bad params: still step 4 first
)
def test_unknown_or_unaccepted_scheme(ed_key: PrivateKey, sk: SignatureKey) -> None:
    error = reject(signed(GET, ed_key, signature_key=sk))
    assert error.code == "unsupported_scheme"
    assert error.headers()["Accept-Signature-Scheme"] == "jwt"


def test_jwt_without_resolver(ed_key: PrivateKey) -> None:
    verifier = SignatureVerifier(clock=FrozenClock(NOW), accepted_schemes=("jwt", "hwk"))
    error = reject(signed(GET, ed_key), verifier, resolver=None)
    assert error.code == "unsupported_scheme"
    assert error.headers()["Accept-Signature-Scheme"] == "hwk"


# -- step 5 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"kty": "OKP", "alg": "Ed25519", "crv": "Ed25519"},  # no x
        {"kty": "OKP", "crv": "Ed25519", "x": "abc", "alg": "Ed25519", "kid": "k"},
        {"kty": "OKP", "crv": "Ed25519", "x": "abc"},
    ],  # no alg
)
def test_hwk_missing_material(ed_key: PrivateKey, params: dict[str, str]) -> None:
    verifier = SignatureVerifier(clock=FrozenClock(NOW), accepted_schemes=("hwk",))
    request = signed(GET, ed_key, signature_key=SignatureKey("hwk", params))
    assert reject(request, verifier).code == "invalid_key"


@pytest.mark.parametrize(
    ("token_error", "code"),
    [
        (
            TokenError(
                "exp", code="expired_agent_token", reason="exp", signature_error="expired_jwt"
            ),
            "expired_jwt",
        ),
        (TokenError("sig", code="invalid_agent_token", reason="signature"), "invalid_jwt"),
    ],
)
def test_resolver_token_error_is_converted(
    ed_key: PrivateKey, token_error: TokenError, code: str
) -> None:
    def resolver(key: SignatureKey) -> KeyResolution:
        raise token_error

    error = reject(signed(GET, ed_key), resolver=resolver)
    assert error.code == code
    assert error.__cause__ is token_error


# -- step 6 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "none", "HS256", None, "RS256"])
def test_unsupported_algorithm(ed_key: PrivateKey, alg: str | None) -> None:
    jwk = {k: v for k, v in ed_key.public_key.to_jwk().items() if k != "alg"}
    if alg is not None:
        jwk["alg"] = alg
    request = signed(GET, ed_key, signature_key=SignatureKey.from_jwt(fake_jwt(jwk)))
    error = reject(request)
    assert error.code == "unsupported_algorithm"
    assert error.headers()["Accept-Signature-Alg"] == "Ed25519, ES256"


def test_algorithm_not_accepted_here(ec_key: PrivateKey) -> None:
    verifier = SignatureVerifier(clock=FrozenClock(NOW), accepted_algorithms=("Ed25519",))
    error = reject(signed(GET, ec_key), verifier)
    assert error.code == "unsupported_algorithm"
    assert error.headers()["Accept-Signature-Alg"] == "Ed25519"


def test_hwk_with_eddsa(ed_key: PrivateKey) -> None:
    sk = SignatureKey.from_public_key(ed_key.public_key)
    sk = SignatureKey("hwk", {**sk.params, "alg": "EdDSA"})
    verifier = SignatureVerifier(clock=FrozenClock(NOW), accepted_schemes=("hwk",))
    assert reject(signed(GET, ed_key, signature_key=sk), verifier).code == "unsupported_algorithm"


@pytest.mark.parametrize(("member", "value"), [("kty", "EC"), ("crv", "X25519"), ("kty", "oct")])
def test_kty_or_crv_disagrees_with_alg(ed_key: PrivateKey, member: str, value: str) -> None:
    request = signed(GET, ed_key, signature_key=jwt_key(ed_key, **{member: value}))
    expected = "unsupported_algorithm" if value == "oct" else "invalid_key"
    assert reject(request).code == expected


# -- step 7 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "https://r.example/items"),
        ("GET", "https://r.example/other"),
        ("GET", "https://evil.example/items"),
        ("GET", "https://r.example:8443/items"),
        ("GET", "https://r.example/items?admin=1"),
        ("GET", "http://r.example/items"),
    ],
)
def test_tampered_request_line(ed_key: PrivateKey, method: str, url: str) -> None:
    original = signed(HttpRequest("GET", "https://r.example/items"), ed_key)
    tampered = HttpRequest(method, url, original.headers)
    # http:// differs only in a component not covered by default; cover it to see it fail
    if url.startswith("http:"):
        original = signed(
            HttpRequest("GET", "https://r.example/items"), ed_key, extra_components=["@scheme"]
        )
        tampered = HttpRequest(method, url, original.headers)
    error = reject(tampered)
    assert error.code in ("invalid_signature", "invalid_input")
    if "?" not in url:
        assert error.code == "invalid_signature"


def test_tampered_query(ed_key: PrivateKey) -> None:
    original = signed(HttpRequest("GET", "https://r.example/items?page=1"), ed_key)
    tampered = HttpRequest("GET", "https://r.example/items?page=2", original.headers)
    assert reject(tampered).code == "invalid_signature"


def _post(key: PrivateKey) -> HttpRequest:
    request = HttpRequest("POST", "https://ps.example/token", {"content-type": "a/b"}, b'{"a":1}')
    return signed(request, key)


def test_tampered_body(ed_key: PrivateKey) -> None:
    original = _post(ed_key)
    tampered = HttpRequest(original.method, original.url, original.headers, b'{"a":2}')
    assert reject(tampered).code == "invalid_signature"


def test_tampered_content_digest(ed_key: PrivateKey) -> None:
    from aauth_agents.httpsig import content_digest

    original = _post(ed_key)
    forged = HttpRequest(original.method, original.url, original.headers, b'{"a":2}')
    forged = forged.with_headers({"Content-Digest": content_digest(b'{"a":2}')})
    assert reject(forged).code == "invalid_signature"
    for junk in ("sha-256=:AAAA:", "md5=:AAAA:", "sha-256=1", "???"):
        assert reject(original.with_headers({"Content-Digest": junk})).code == "invalid_signature"


def test_tampered_content_type(ed_key: PrivateKey) -> None:
    original = _post(ed_key)
    assert reject(original.with_headers({"Content-Type": "text/plain"})).code == "invalid_signature"


def test_tampered_signature_key(ed_key: PrivateKey) -> None:
    original = signed(GET, ed_key)
    other = serialize_signature_key("sig", jwt_key(ed_key, kid="swapped"))
    assert reject(original.with_headers({"Signature-Key": other})).code == "invalid_signature"


def test_substituted_key(ed_key: PrivateKey, ec_key: PrivateKey) -> None:
    original = signed(GET, ed_key)
    other = serialize_signature_key("sig", jwt_key(ec_key))
    assert reject(original.with_headers({"Signature-Key": other})).code == "invalid_signature"


def test_tampered_signature_and_created(ed_key: PrivateKey) -> None:
    original = signed(GET, ed_key)
    assert reject(original.with_headers({"Signature": "sig=:AAAA:"})).code == "invalid_signature"
    value = (original.header("signature-input") or "").replace(str(NOW), str(NOW + 1))
    assert reject(original.with_headers({"Signature-Input": value})).code == "invalid_signature"


def test_alg_parameter_is_ignored(ed_key: PrivateKey) -> None:
    request = signed_raw(GET, ed_key, BASE4, {"created": NOW, "alg": "rsa-pss-sha512"})
    verifier = SignatureVerifier(clock=FrozenClock(NOW))
    assert verifier.verify(request, RESOLVER).public_key.alg == "Ed25519"


def test_keyid_must_name_the_signature_key_key(ed_key: PrivateKey) -> None:
    verifier = SignatureVerifier(clock=FrozenClock(NOW))
    thumbprint = ed_key.thumbprint()
    for keyid in (thumbprint, f"urn:ietf:params:oauth:jwk-thumbprint:sha-256:{thumbprint}"):
        request = signed_raw(GET, ed_key, BASE4, {"created": NOW, "keyid": keyid})
        assert verifier.verify(request, RESOLVER)
    request = signed_raw(GET, ed_key, BASE4, {"created": NOW, "keyid": "someone-else"})
    assert reject(request).code == "invalid_signature"


def test_replay_detected(ed_key: PrivateKey) -> None:
    clock = FrozenClock(NOW)
    verifier = SignatureVerifier(clock=clock, replay_cache=MemoryReplayCache(clock=clock))
    request = _post(ed_key)
    assert verifier.verify(request, RESOLVER)
    clock.advance(5)
    assert reject(request, verifier).code == "invalid_signature"
    # a fresh signature on the same request is not a replay
    assert verifier.verify(signed(request, ed_key, created=NOW + 1), RESOLVER)


def test_forged_signature_does_not_poison_the_replay_cache(ed_key: PrivateKey) -> None:
    cache = MemoryReplayCache()
    verifier = SignatureVerifier(clock=FrozenClock(NOW), replay_cache=cache)
    genuine = _post(ed_key)
    assert reject(genuine.with_headers({"Signature": "sig=:AAAA:"}), verifier)
    assert len(cache) == 0
    assert verifier.verify(genuine, RESOLVER)


async def test_averify_rejects_the_same_way(ed_key: PrivateKey) -> None:
    verifier = SignatureVerifier(clock=FrozenClock(NOW))
    request = signed(GET, ed_key, components=["@method", "signature-key"])
    with pytest.raises(SignatureError) as info:
        await verifier.averify(request, RESOLVER)
    assert info.value.code == "invalid_input"
