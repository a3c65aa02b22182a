"""Keys: fully-specified algorithms, RFC 7638 thumbprints, sign/verify (§Signature Algorithms)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.keys import (
    ED25519,
    ES256,
    PrivateKey,
    PublicKey,
    check_algorithm,
    jwk_thumbprint,
    public_jwk,
)
from aauth_agents.protocol.errors import (
    AAuthError,
    InvalidKeyError,
    UnsupportedAlgorithmError,
)

# RFC 7638 §3.1: the RSA example key and its thumbprint.
RFC7638_KEY = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qv"
    "zqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0"
    "fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}

# RFC 8037 Appendix A.1 / A.3: an Ed25519 key and its thumbprint.
RFC8037_KEY = {
    "kty": "OKP",
    "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}


def test_rfc7638_thumbprint() -> None:
    assert jwk_thumbprint(RFC7638_KEY) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_rfc8037_thumbprint_and_signature() -> None:
    assert jwk_thumbprint(RFC8037_KEY) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    key = PrivateKey.from_jwk({**RFC8037_KEY, "alg": ED25519})
    # RFC 8037 A.4: the JWS signing input and its signature.
    signing_input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    expected = (
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    )
    from aauth_agents.protocol.encoding import b64url_encode

    assert b64url_encode(key.sign(signing_input)) == expected


@pytest.mark.parametrize("alg", [ED25519, ES256])
def test_sign_verify_roundtrip(alg: str) -> None:
    key = PrivateKey.generate(alg)
    sig = key.sign(b"payload")
    assert len(sig) == 64
    assert key.public_key.verify(sig, b"payload")
    assert not key.public_key.verify(sig, b"payloaD")
    assert not key.public_key.verify(sig[:-1] + bytes([sig[-1] ^ 1]), b"payload")


@pytest.mark.parametrize("alg", [ED25519, ES256])
def test_jwk_export_import(alg: str) -> None:
    key = PrivateKey.generate(alg)
    jwk = key.to_jwk()
    assert jwk["alg"] == alg and "d" in jwk and jwk["kid"] == key.thumbprint()
    again = PrivateKey.from_jwk(jwk)
    assert again.thumbprint() == key.thumbprint()
    public = key.to_jwk(private=False)
    assert "d" not in public and public_jwk(jwk) == public
    assert PublicKey.from_jwk(public).same_key(key.public_key)
    assert jwk["d"] not in repr(key)


def test_private_jwk_with_foreign_public_part_rejected() -> None:
    a, b = PrivateKey.generate(), PrivateKey.generate()
    forged = {**a.to_jwk(), "x": b.to_jwk()["x"]}
    with pytest.raises(InvalidKeyError):
        PrivateKey.from_jwk(forged)


def _ed() -> dict[str, str]:
    return dict(PrivateKey.generate(ED25519).to_jwk(private=False))


def _ec() -> dict[str, str]:
    return dict(PrivateKey.generate(ES256).to_jwk(private=False))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda j: {**j, "alg": "EdDSA"},
        lambda j: {**j, "alg": "none"},
        lambda j: {**j, "alg": "HS256"},
        lambda j: {k: v for k, v in j.items() if k != "alg"},
        lambda j: {"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"},
        lambda j: {"kty": "oct", "k": "c2VjcmV0"},
        lambda j: {**j, "alg": "Ed448"},
        lambda j: {**j, "alg": 7},
    ],
    ids=["EdDSA", "none", "HS256", "no-alg", "oct", "oct-no-alg", "Ed448", "alg-not-string"],
)
def test_algorithm_rejections(mutate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnsupportedAlgorithmError) as info:
        PublicKey.from_jwk(mutate(_ed()))
    status, headers, body = info.value.to_response()
    assert status == 401
    assert headers["Signature-Error"] == "error=unsupported_algorithm"
    assert headers["Accept-Signature-Alg"] == "Ed25519, ES256"
    assert json.loads(body)["error"] == "unsupported_algorithm"


@pytest.mark.parametrize(
    "jwk",
    [
        lambda: {**_ed(), "alg": ES256},
        lambda: {**_ec(), "alg": ED25519},
        lambda: {**_ec(), "crv": "P-384"},
        lambda: {**_ed(), "crv": "X25519"},
    ],
    ids=["okp-as-es256", "ec-as-ed25519", "es256-p384", "ed25519-x25519"],
)
def test_kty_crv_disagreeing_with_alg_is_invalid_key(jwk) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidKeyError) as info:
        PublicKey.from_jwk(jwk())
    assert info.value.headers() == {"Signature-Error": "error=invalid_key"}


def test_not_accepted_algorithm_names_the_accepted_set() -> None:
    with pytest.raises(UnsupportedAlgorithmError) as info:
        check_algorithm(_ec(), accepted=[ED25519])
    assert info.value.accept_algs == (ED25519,)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda j: {**j, "x": j["x"][:-2]},
        lambda j: {**j, "x": "not base64!"},
        lambda j: {k: v for k, v in j.items() if k != "x"},
    ],
)
def test_malformed_key_material(mutate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidKeyError):
        PublicKey.from_jwk(mutate(_ed()))


def test_ec_point_off_curve() -> None:
    jwk = _ec()
    jwk["y"] = jwk["x"]
    with pytest.raises(InvalidKeyError):
        PublicKey.from_jwk(jwk)


def test_thumbprint_ignores_non_required_members() -> None:
    jwk = _ed()
    assert jwk_thumbprint(jwk) == jwk_thumbprint({**jwk, "kid": "other", "use": "sig"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=60),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.sampled_from(["kty", "crv", "x", "y", "alg", "kid", "d", "n", "e", "k"]),
        json_values,
    )
)
def test_public_key_parser_only_raises_typed_errors(jwk: dict[str, object]) -> None:
    try:
        key = PublicKey.from_jwk(jwk)
    except AAuthError:
        return
    assert key.alg in (ED25519, ES256)
