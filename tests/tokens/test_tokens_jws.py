"""The private JWS registry (§Signature Algorithms) and the strict unverified decoder."""

from __future__ import annotations

import hashlib
import hmac
import json

import jwt
import pytest
from support.tokens import forge, segment

from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.encoding import b64url_decode, b64url_encode
from aauth_agents.protocol.errors import ConfigurationError, TokenError
from aauth_agents.tokens import JWS_ALGORITHMS, encode_jws, peek, verify_jws


@pytest.fixture(params=["Ed25519", "ES256"])
def key(request: pytest.FixtureRequest) -> PrivateKey:
    return PrivateKey.generate(request.param, kid="k1")


def reason(exc: pytest.ExceptionInfo[TokenError]) -> str:
    return exc.value.reason


def test_round_trip(key: PrivateKey) -> None:
    token = encode_jws({"typ": "x+jwt", "kid": "k1"}, {"a": 1}, key)
    header, claims = peek(token)
    assert header == {"alg": key.alg, "typ": "x+jwt", "kid": "k1"}
    assert claims == {"a": 1}
    assert verify_jws(token, key.public_key) == {"a": 1}


def test_pyjwt_global_registry_untouched() -> None:
    assert "Ed25519" not in jwt.api_jws._jws_global_obj.get_algorithms()
    assert "Ed25519" not in jwt.algorithms.get_default_algorithms()
    assert set(JWS_ALGORITHMS) == {"Ed25519", "ES256"}


def test_es256_is_standard_jws() -> None:
    """PyJWT's own ES256 (a separate implementation path) accepts our raw r||s signature."""
    key = PrivateKey.generate("ES256", kid="k1")
    token = encode_jws({"typ": "JWT", "kid": "k1"}, {"a": 1}, key)
    assert jwt.decode(token, key.crypto.public_key(), algorithms=["ES256"]) == {"a": 1}


def test_ed25519_is_standard_jws() -> None:
    """PyJWT's EdDSA implementation verifies our Ed25519 signature over the same input."""
    key = PrivateKey.generate("Ed25519", kid="k1")
    token = encode_jws({"typ": "JWT", "kid": "k1"}, {"a": 1}, key)
    okp = jwt.algorithms.get_default_algorithms()["EdDSA"]
    signing_input, _, sig = token.rpartition(".")
    assert okp.verify(signing_input.encode(), key.crypto.public_key(), b64url_decode(sig))


def test_encode_refuses_header_alg_mismatch(key: PrivateKey) -> None:
    with pytest.raises(ConfigurationError):
        encode_jws({"alg": "EdDSA"}, {}, key)


@pytest.mark.parametrize("alg", ["EdDSA", "none", "HS256", "RS256", "ES384", None, 5])
def test_verify_rejects_other_algs(key: PrivateKey, alg: object) -> None:
    token = forge({"alg": alg, "kid": "k1"}, {"a": 1}, key)
    with pytest.raises(TokenError) as exc:
        verify_jws(token, key.public_key)
    assert reason(exc) == "alg"


def test_alg_none_unsigned() -> None:
    key = PrivateKey.generate()
    token = f"{segment({'alg': 'none'})}.{segment({'a': 1})}."
    assert peek(token)[0] == {"alg": "none"}
    with pytest.raises(TokenError) as exc:
        verify_jws(token, key.public_key)
    assert reason(exc) == "alg"


def test_hs256_with_public_key_as_secret() -> None:
    """The classic confusion: HMAC keyed with the verifier's public key bytes."""
    key = PrivateKey.generate()
    secret = json.dumps(key.public_key.to_jwk()).encode()
    signing_input = f"{segment({'alg': 'HS256', 'kid': 'k1'})}.{segment({'a': 1})}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url_encode(mac)}"
    with pytest.raises(TokenError) as exc:
        verify_jws(token, key.public_key)
    assert reason(exc) == "alg"


def test_alg_must_match_key() -> None:
    ed = PrivateKey.generate("Ed25519")
    ec = PrivateKey.generate("ES256")
    token = encode_jws({}, {"a": 1}, ec)
    with pytest.raises(TokenError) as exc:
        verify_jws(token, ed.public_key)
    assert reason(exc) == "alg"


def test_wrong_key_and_tampering(key: PrivateKey) -> None:
    other = PrivateKey.generate(key.alg)
    token = encode_jws({}, {"a": 1}, key)
    with pytest.raises(TokenError) as exc:
        verify_jws(token, other.public_key)
    assert reason(exc) == "signature"
    h, _, s = token.split(".")
    with pytest.raises(TokenError) as exc:
        verify_jws(f"{h}.{segment({'a': 2})}.{s}", key.public_key)
    assert reason(exc) == "signature"
    flipped = s[:-2] + ("AA" if s[-2:] != "AA" else "BA")
    with pytest.raises(TokenError) as exc:
        verify_jws(f"{h}.{token.split('.')[1]}.{flipped}", key.public_key)
    assert reason(exc) in {"signature", "malformed"}


def test_crit_refused(key: PrivateKey) -> None:
    token = forge({"alg": key.alg, "crit": ["exp"], "exp": 1}, {}, key)
    with pytest.raises(TokenError) as exc:
        verify_jws(token, key.public_key)
    assert reason(exc) == "malformed"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        f"{segment({'alg': 'Ed25519'})}.{segment({})}",
        f"{segment({'alg': 'Ed25519'})}=.{segment({})}.",  # padding
        f"{segment({'alg': 'Ed25519'})}.{segment({})}.!!",  # not base64url
        f"{segment([1])}.{segment({})}.",  # header not an object
        f"{segment({})}.{segment('x')}.",  # payload not an object
        b64url_encode(b'{"a":1,"a":2}') + "." + segment({}) + ".",  # duplicate member
        b64url_encode(b'{"a":NaN}') + "." + segment({}) + ".",  # not JSON
        b64url_encode(b"\xff\xfe") + "." + segment({}) + ".",  # not UTF-8
        b64url_encode(b'"\\ud800"') + "." + segment({}) + ".",  # lone surrogate, not object
        "x" * 40_000,
    ],
)
def test_peek_malformed(token: str) -> None:
    with pytest.raises(TokenError) as exc:
        peek(token)
    assert reason(exc) == "malformed"


@pytest.mark.parametrize("value", [None, b"a.b.c", 5])
def test_peek_non_string(value: object) -> None:
    with pytest.raises(TokenError) as exc:
        peek(value)
    assert reason(exc) == "malformed"


def test_peek_error_code_is_configurable() -> None:
    with pytest.raises(TokenError) as exc:
        peek("nope", code="invalid_auth_token")
    assert exc.value.code == "invalid_auth_token"
    assert exc.value.signature_error == "invalid_jwt"
