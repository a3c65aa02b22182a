"""Compact JWS with a private PyJWT registry holding exactly ``Ed25519`` and ``ES256``.

§Signature Algorithms: a fully-specified ``alg`` is required; ``none``, the polymorphic
``EdDSA`` and every symmetric algorithm are rejected. PyJWT 2.x knows Ed25519 keys only under
``EdDSA``, so this module builds its own :class:`jwt.PyJWS` whose registry starts empty and
holds two :class:`jwt.algorithms.Algorithm` subclasses delegating to :mod:`aauth_agents.keys`
(ES256 signatures are raw ``r || s``, RFC 7518 §3.4). PyJWT's global registry is never touched.

:func:`peek` is the strict unverified decoder every verifier starts from: three segments,
unpadded base64url, UTF-8 JSON objects without duplicate members. Tokens are signed through
that PyJWT instance; verification (:func:`verify_peeked`) makes the checks its
``decode_complete`` makes after :func:`peek`, directly on what :func:`peek` decoded, instead
of decoding the token a second and third time (a test holds the two to the same answers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn, cast

import jwt
from jwt.algorithms import Algorithm

from ..keys import ED25519, ES256, PrivateKey, PublicKey
from ..protocol.encoding import b64url_decode, loads_json_object
from ..protocol.errors import ConfigurationError, TokenError

#: The only JWS ``alg`` values accepted anywhere (§Signature Algorithms).
JWS_ALGORITHMS: tuple[str, ...] = (ED25519, ES256)

#: Tokens longer than this are refused before any decoding: AAuth tokens are a few hundred
#: bytes, and an unauthenticated caller should not make us parse megabytes.
MAX_TOKEN_LENGTH = 32_768

#: Generic code for failures outside a typed verifier; the verifiers pass their own.
GENERIC_CODE = "invalid_token"


class _KeysAlgorithm(Algorithm):
    """A PyJWT algorithm that signs with :class:`PrivateKey` and verifies with
    :class:`PublicKey` of one fixed ``alg``; any other key object is refused."""

    def __init__(self, name: str) -> None:
        self.name = name

    def prepare_key(self, key: Any) -> PrivateKey | PublicKey:
        if isinstance(key, (PrivateKey, PublicKey)) and key.alg == self.name:
            return key
        raise jwt.InvalidKeyError(f"{self.name} needs an aauth_agents key of that algorithm")

    def sign(self, msg: bytes, key: Any) -> bytes:
        if not isinstance(key, PrivateKey):
            raise jwt.InvalidKeyError("signing needs a PrivateKey")
        return key.sign(msg)

    def verify(self, msg: bytes, key: Any, sig: bytes) -> bool:
        return isinstance(key, PublicKey) and key.verify(sig, msg)

    @staticmethod
    def to_jwk(key_obj: Any, as_dict: bool = False) -> NoReturn:
        raise NotImplementedError("use aauth_agents.keys for JWKs")

    @staticmethod
    def from_jwk(jwk: Any) -> NoReturn:
        raise NotImplementedError("use aauth_agents.keys for JWKs")


def _private_jws() -> jwt.PyJWS:
    # ``algorithms=[]`` strips the defaults from this instance's own copy of the registry.
    jws = jwt.PyJWS(algorithms=[])
    for name in JWS_ALGORITHMS:
        jws.register_algorithm(name, _KeysAlgorithm(name))
    return jws


#: Configured once and never mutated afterwards.
_JWS = _private_jws()


def _fail(reason: str, detail: str, code: str) -> NoReturn:
    raise TokenError(detail, code=code, reason=reason)


def _json_object(segment: str, what: str, code: str) -> dict[str, Any]:
    try:
        return loads_json_object(b64url_decode(segment))
    except ValueError as exc:  # bad base64url, bad UTF-8, not a JSON object
        _fail("malformed", f"JWT {what} is not a base64url JSON object: {exc}", code)


def _segments(token: object, code: str) -> list[str]:
    if not isinstance(token, str):
        _fail("malformed", "a JWT must be a string", code)
    if len(token) > MAX_TOKEN_LENGTH:
        _fail("malformed", "JWT is too long", code)
    parts = token.split(".")
    if len(parts) != 3:
        _fail("malformed", "a JWS must have exactly three segments", code)
    return parts


#: Decoded JOSE headers by their exact segment. One issuer key signs many tokens with one
#: header (``alg``, ``kid``, ``typ``): the segment recurs byte for byte across them, so its
#: decoding is done once (RFC 7515 §7.1: the header is the segment's base64url JSON, a
#: function of the segment alone). Only segments that decoded to a JSON object of plain
#: members are kept; bounded: cleared when full.
_HEADERS: dict[str, dict[str, Any]] = {}
_HEADERS_MAX = 256
#: Longer header segments are decoded every time (a header is a few dozen bytes).
_HEADER_SIZE = 512


def _flat(header: dict[str, Any]) -> bool:
    """Every member a string, number or boolean: a shallow copy is a full copy."""
    return all(type(v) in (str, int, float, bool) for v in header.values())


def peek(token: object, *, code: str = GENERIC_CODE) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decode ``(header, claims)`` WITHOUT verifying anything.

    Strict (RFC 7515 §7.1 compact form): three segments, unpadded base64url, UTF-8 JSON
    objects, no duplicate members. The signature segment must be base64url but may be empty,
    so an ``alg: none`` token is reported for its ``alg`` by the caller. Anything else raises
    :class:`TokenError` with reason ``malformed``.
    """
    header_b64, payload_b64, signature_b64 = _segments(token, code)
    known = _HEADERS.get(header_b64)
    if known is not None:
        header = dict(known)  # the caller's own copy: the remembered one is never handed out
    else:
        header = _json_object(header_b64, "header", code)
        if len(header_b64) <= _HEADER_SIZE and _flat(header):
            if len(_HEADERS) >= _HEADERS_MAX:
                _HEADERS.clear()
            _HEADERS[header_b64] = dict(header)
    claims = _json_object(payload_b64, "payload", code)
    try:
        b64url_decode(signature_b64)
    except ValueError:
        _fail("malformed", "JWT signature is not base64url", code)
    return header, claims


def encode_jws(header: Mapping[str, Any], claims: Mapping[str, Any], key: PrivateKey) -> str:
    """Sign ``claims`` as a compact JWS. ``alg`` comes from ``key`` (an ``alg`` already in
    ``header`` must agree: :class:`ConfigurationError`); ``typ`` defaults to ``JWT`` as in
    PyJWT, so AAuth callers always pass theirs."""
    if header.get("alg", key.alg) != key.alg:
        raise ConfigurationError(f"header alg {header.get('alg')!r} is not the key's {key.alg}")
    payload = json.dumps(dict(claims), separators=(",", ":"), allow_nan=False).encode()
    return _JWS.encode(payload, cast(Any, key), algorithm=key.alg, headers=dict(header))


def verify_jws(token: str, key: PublicKey, *, code: str = GENERIC_CODE) -> dict[str, Any]:
    """Verify ``token``'s signature with ``key`` and return its claims.

    ``alg`` must be ``Ed25519`` or ``ES256`` and equal to ``key.alg`` (no algorithm
    confusion: the key, not the header, decides); a ``crit`` header is refused because no
    extension is understood. Failures raise :class:`TokenError` (``malformed``, ``alg``,
    ``signature``).
    """
    header, claims = peek(token, code=code)
    verify_peeked(token, header, key, code=code)
    return claims


def verify_peeked(
    token: str, header: Mapping[str, Any], key: PublicKey, *, code: str = GENERIC_CODE
) -> None:
    """:func:`verify_jws` for a ``token`` that :func:`peek` already decoded to ``header``.

    The checks PyJWT's ``decode_complete`` makes after :func:`peek`'s, in its order and with
    its messages, without decoding the token again: each segment in canonical base64url (no
    stray trailing bits), no ``b64: false``, a string ``kid``, then the signature over the
    first two segments as sent.
    """
    alg = header.get("alg")
    if alg not in JWS_ALGORITHMS:
        _fail("alg", f"JWS alg {alg!r} is not allowed; use one of {JWS_ALGORITHMS}", code)
    if alg != key.alg:
        _fail("alg", f"JWS alg {alg!r} does not match the issuer key's {key.alg!r}", code)
    if "crit" in header:
        _fail("malformed", "no critical JWS extension is supported", code)
    signing_input, _, signature_b64 = token.rpartition(".")
    header_b64, _, payload_b64 = signing_input.partition(".")
    _canonical(header_b64, "header", code)
    if header.get("b64", True) is False:
        _refused("Payload segment must be empty when 'b64' is false.", code)
    _canonical(payload_b64, "payload", code)
    _canonical(signature_b64, "crypto", code)
    if "kid" in header and not isinstance(header["kid"], str):
        _refused("Key ID header parameter must be a string", code)
    if not key.verify(b64url_decode(signature_b64), signing_input.encode("ascii")):
        _refused("Signature verification failed", code)


def _refused(reason: str, code: str) -> NoReturn:
    _fail("signature", f"JWT signature verification failed: {reason}", code)


#: base64url digits by value; a final digit carries 2 (or 4) unused bits when the segment's
#: length is 3 (or 2) modulo 4, and they must be zero for the segment to be the one
#: encoding of its bytes (RFC 4648 §3.5).
_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_UNUSED_BITS = {2: 0b1111, 3: 0b11}


def _canonical(segment: str, name: str, code: str) -> None:
    """Refuse (as PyJWT refuses it) a segment :func:`peek` accepted whose unused trailing
    bits are not zero: another encoding of the same bytes."""
    mask = _UNUSED_BITS.get(len(segment) % 4)
    if mask is not None and _DIGITS.index(segment[-1]) & mask:
        _refused(f"Invalid {name} padding", code)


__all__ = [
    "GENERIC_CODE",
    "JWS_ALGORITHMS",
    "MAX_TOKEN_LENGTH",
    "encode_jws",
    "peek",
    "verify_jws",
    "verify_peeked",
]
