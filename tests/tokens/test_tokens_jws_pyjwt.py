""":func:`verify_jws` checks a signature without PyJWT's decoder; on any token -- valid,
altered one character at a time, re-encoded with stray trailing bits, with odd headers -- it
accepts exactly what ``PyJWT.decode_complete`` (after :func:`peek`'s checks) accepts, and
refuses for the same reason."""

from __future__ import annotations

import json
from typing import Any, cast

import jwt
from hypothesis import given, settings
from hypothesis import strategies as st

from aauth_agents.keys import ED25519, ES256, PrivateKey, PublicKey
from aauth_agents.protocol.encoding import b64url_decode, b64url_encode
from aauth_agents.protocol.errors import TokenError
from aauth_agents.tokens.jws import _JWS, encode_jws, peek, verify_jws

KEYS = {alg: PrivateKey.generate(alg) for alg in (ED25519, ES256)}
OTHER = PrivateKey.generate(ED25519)


def _reference(token: str, key: PublicKey) -> tuple[str, str] | dict[str, Any]:
    """The verification as it was: peek, the alg and crit checks, then PyJWT."""
    try:
        header, claims = peek(token)
        alg = header.get("alg")
        if alg not in (ED25519, ES256) or alg != key.alg:
            return ("error", "alg")
        if "crit" in header:
            return ("error", "malformed")
        try:
            _JWS.decode_complete(token, key=cast(Any, key), algorithms=[key.alg])
        except jwt.PyJWTError as exc:
            return ("error", f"signature: JWT signature verification failed: {exc}")
        return claims
    except TokenError as exc:
        return ("error", exc.reason or "")


def _subject(token: str, key: PublicKey) -> tuple[str, str] | dict[str, Any]:
    try:
        return verify_jws(token, key)
    except TokenError as exc:
        if exc.reason == "signature":
            return ("error", f"signature: {exc.detail}")
        return ("error", exc.reason or "")


headers = st.fixed_dictionaries(
    {"typ": st.just("JWT")},
    optional={
        "kid": st.one_of(st.text(max_size=4), st.integers()),
        "b64": st.booleans(),
        "crit": st.just(["b64"]),
        "alg": st.sampled_from([ED25519, ES256, "EdDSA", "none"]),
    },
)


@st.composite
def tokens(draw: Any) -> tuple[str, PublicKey]:
    signer = KEYS[draw(st.sampled_from([ED25519, ES256]))]
    header = draw(headers)
    header = {"alg": signer.alg, **header}
    claims = {"sub": draw(st.text(max_size=6)), "n": draw(st.integers())}
    segments = [b64url_encode(json.dumps(part).encode()) for part in (header, claims)]
    segments.append(b64url_encode(signer.sign(f"{segments[0]}.{segments[1]}".encode())))
    which = draw(st.integers(0, 2))
    change = draw(st.sampled_from(["none", "char", "bits"]))
    segment = segments[which]
    if change == "char" and segment:
        i = draw(st.integers(0, len(segment) - 1))
        segments[which] = segment[:i] + draw(st.sampled_from("AQgw_-x=.")) + segment[i + 1 :]
    elif change == "bits" and len(segment) % 4 in (2, 3):
        # the same bytes with a non-zero unused trailing bit: another encoding of them
        last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        segments[which] = segment[:-1] + last[last.index(segment[-1]) | 1]
    verifier = draw(st.sampled_from([signer.public_key, OTHER.public_key]))
    return ".".join(segments), verifier


@settings(max_examples=1500, deadline=None)
@given(tokens())
def test_verify_jws_agrees_with_pyjwt(case: tuple[str, PublicKey]) -> None:
    token, key = case
    assert _subject(token, key) == _reference(token, key)


def test_stray_trailing_bits_are_refused_everywhere() -> None:
    signer = KEYS[ED25519]
    token = encode_jws({"typ": "JWT"}, {"sub": "x"}, signer)
    head, body, sig = token.split(".")
    assert verify_jws(token, signer.public_key) == {"sub": "x"}
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    altered = f"{head}.{body}.{sig[:-1]}{last[last.index(sig[-1]) | 1]}"
    assert b64url_decode(altered.split(".")[2]) == b64url_decode(sig)
    assert _subject(altered, signer.public_key) == _reference(altered, signer.public_key)
    assert _subject(altered, signer.public_key)[0] == "error"
