"""Keys: Ed25519 and ES256 as JWKs with a fully-specified ``alg``, and RFC 7638 thumbprints.

§Signature Algorithms of draft-hardt-oauth-aauth-protocol-11: every key AAuth conveys carries
``alg``; it is fully specified (``Ed25519``, ``ES256``), never the polymorphic ``EdDSA``, never
``none``, never symmetric (``oct``, ``HS*``); a key whose ``kty``/``crv`` disagrees with its
``alg`` is rejected. The checks run in the order of §Verification step 6, each failure a
typed error: :class:`UnsupportedAlgorithmError` for the algorithm, :class:`InvalidKeyError`
for the key material.

Signatures are returned in the form both JWS (RFC 7518 §3.4) and RFC 9421 (§3.3.4,
``ecdsa-p256-sha256``) use: Ed25519's 64 bytes, or ES256's fixed-width ``r || s``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from .protocol.encoding import b64url_decode, b64url_encode
from .protocol.errors import ConfigurationError, InvalidKeyError, UnsupportedAlgorithmError

#: The fully-specified JWS algorithm name of Ed25519 keys (``EdDSA`` is refused).
ED25519 = "Ed25519"
#: The JWS algorithm of P-256 keys.
ES256 = "ES256"

#: The algorithms this package implements, in order of preference (§Signature Algorithms).
SUPPORTED_ALGORITHMS: tuple[str, ...] = (ED25519, ES256)

#: ``alg`` -> the ``kty`` and ``crv`` that algorithm requires.
_KEY_TYPE: Mapping[str, tuple[str, str]] = {ED25519: ("OKP", "Ed25519"), ES256: ("EC", "P-256")}
#: ES256 signing and verification: ECDSA with SHA-256 (immutable, built once).
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())

#: Fully specified algorithms this package recognises but does not implement: rejected with
#: ``unsupported_algorithm`` rather than ``invalid_key``.
_KNOWN_UNIMPLEMENTED = frozenset(
    {
        "Ed448",
        "ES384",
        "ES512",
        "ES256K",
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ML-DSA-44",
        "ML-DSA-65",
        "ML-DSA-87",
    }
)
_POLYMORPHIC = frozenset({"EdDSA"})
_FORBIDDEN = frozenset({"none", "HS256", "HS384", "HS512"})

#: RFC 7638 §3.2: the members each key type requires besides ``kty`` -- the only ones a
#: thumbprint hashes, and the structural check of §Request-Context Binding step 6.
KEY_TYPE_MEMBERS: Mapping[str, tuple[str, ...]] = {
    "OKP": ("crv", "x"),
    "EC": ("crv", "x", "y"),
    "RSA": ("e", "n"),
}
#: JWK members that carry private key material: never published, never in a ``cnf``.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

_CryptoPublic = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
_CryptoPrivate = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the required members, sorted, compact.

    Raises :class:`InvalidKeyError` when a required member is missing or not a string.
    """
    kty = jwk.get("kty")
    required = KEY_TYPE_MEMBERS.get(kty) if isinstance(kty, str) else None
    if required is None:
        raise InvalidKeyError(f"cannot compute a thumbprint for kty {kty!r}")
    canonical: dict[str, str] = {}
    for name in ("kty", *required):
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidKeyError(f"JWK member {name!r} missing")
        canonical[name] = value
    encoded = json.dumps(canonical, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return b64url_encode(hashlib.sha256(encoded.encode("utf-8")).digest())


def check_algorithm(jwk: Mapping[str, Any], accepted: Iterable[str] = SUPPORTED_ALGORITHMS) -> str:
    """Determine a key's algorithm per §Signature Algorithms / §Verification step 6.

    Returns the ``alg``. Raises :class:`UnsupportedAlgorithmError` (carrying the accepted
    set for ``Accept-Signature-Alg``) when ``alg`` is absent, polymorphic, forbidden,
    unimplemented or not accepted, and :class:`InvalidKeyError` when ``kty`` or ``crv``
    disagrees with it.
    """
    accepted = tuple(accepted)
    if not isinstance(jwk, Mapping):
        raise InvalidKeyError("a JWK must be a JSON object")
    alg = jwk.get("alg")
    kty = jwk.get("kty")
    if kty == "oct":
        raise UnsupportedAlgorithmError("symmetric keys are not allowed", accept_algs=accepted)
    if alg is None:
        raise UnsupportedAlgorithmError("the key has no alg member", accept_algs=accepted)
    if not isinstance(alg, str):
        raise UnsupportedAlgorithmError("alg must be a string", accept_algs=accepted)
    if alg in _POLYMORPHIC:
        raise UnsupportedAlgorithmError(
            f"polymorphic alg {alg!r} is not allowed; use Ed25519", accept_algs=accepted
        )
    if alg in _FORBIDDEN or alg.startswith("HS"):
        raise UnsupportedAlgorithmError(f"alg {alg!r} is forbidden", accept_algs=accepted)
    expected = _KEY_TYPE.get(alg)
    if expected is None:
        raise UnsupportedAlgorithmError(f"alg {alg!r} is not implemented", accept_algs=accepted)
    want_kty, want_crv = expected
    if kty != want_kty:
        raise InvalidKeyError(f"kty {kty!r} disagrees with alg {alg!r}")
    crv = jwk.get("crv")
    if crv != want_crv:
        raise InvalidKeyError(f"crv {crv!r} disagrees with alg {alg!r}")
    if alg not in accepted:
        raise UnsupportedAlgorithmError(f"alg {alg!r} is not accepted here", accept_algs=accepted)
    return alg


def _coordinate(jwk: Mapping[str, Any], name: str, size: int) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise InvalidKeyError(f"JWK member {name!r} missing")
    try:
        raw = b64url_decode(value)
    except ValueError as exc:
        raise InvalidKeyError(f"JWK member {name!r} is not base64url") from exc
    if len(raw) != size:
        raise InvalidKeyError(f"JWK member {name!r} must be {size} bytes")
    return raw


def _public_from_jwk(alg: str, jwk: Mapping[str, Any]) -> _CryptoPublic:
    if alg == ED25519:
        return ed25519.Ed25519PublicKey.from_public_bytes(_coordinate(jwk, "x", 32))
    x = int.from_bytes(_coordinate(jwk, "x", 32), "big")
    y = int.from_bytes(_coordinate(jwk, "y", 32), "big")
    try:
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except ValueError as exc:
        raise InvalidKeyError("EC point is not on P-256") from exc


#: The JWK members :meth:`PublicKey.from_jwk` reads; its result depends on nothing else.
_LOADED_MEMBERS = ("kty", "crv", "x", "y", "alg", "kid")
_ABSENT = object()
#: Keys loaded by :meth:`PublicKey.from_jwk`, by those members and the accepted algorithms
#: (bounded: cleared when full).
_LOADED: dict[tuple[object, ...], PublicKey] = {}
_LOADED_SIZE = 1024


def _cache_key(jwk: object, accepted: tuple[str, ...]) -> tuple[object, ...] | None:
    """``from_jwk``'s inputs as a key to look up (``None`` when ``jwk`` is no mapping).

    A key holding a member that is not a string matches no stored key (only
    :func:`_storable` keys are stored); it may be unhashable (``TypeError`` on lookup)."""
    if type(jwk) is not dict and not isinstance(jwk, Mapping):  # dict: no ABC check
        return None
    get = jwk.get
    absent = _ABSENT
    return (
        get("kty", absent),
        get("crv", absent),
        get("x", absent),
        get("y", absent),
        get("alg", absent),
        get("kid", absent),
        accepted,
    )


def _storable(cache_key: tuple[object, ...]) -> bool:
    """Every JWK member in ``cache_key`` is a plain string or absent."""
    return all(type(m) is str or m is _ABSENT for m in cache_key[:-1])


@dataclass(frozen=True)
class PublicKey:
    """A validated public key. ``jwk`` holds the public members, ``alg`` and ``kid``."""

    alg: str
    jwk: Mapping[str, Any] = field(repr=False)
    crypto: _CryptoPublic = field(repr=False, compare=False)

    @classmethod
    def from_jwk(
        cls, jwk: Mapping[str, Any], *, accepted: Iterable[str] = SUPPORTED_ALGORITHMS
    ) -> PublicKey:
        """Validate and load a public JWK (private members, if any, are dropped).

        The result depends only on :data:`_LOADED_MEMBERS` and ``accepted``; when those
        members are strings (or absent) a key loaded before is returned again -- a verifier
        meets one agent's key on every request, and loading a P-256 point costs as much as a
        signature check. A JWK that fails is never remembered: it fails again. The returned
        key is shared: never mutate its ``jwk``.
        """
        if type(accepted) is not tuple:
            accepted = tuple(accepted)
        cache_key = _cache_key(jwk, accepted)
        if cache_key is not None:
            try:
                known = _LOADED.get(cache_key)
            except TypeError:  # an unhashable entry in ``accepted``
                known, cache_key = None, None
            if known is not None:
                return known
        public = cls._load(jwk, accepted)
        if cache_key is not None and _storable(cache_key):
            if len(_LOADED) >= _LOADED_SIZE:
                _LOADED.clear()
            _LOADED[cache_key] = public
        return public

    @classmethod
    def _load(cls, jwk: Mapping[str, Any], accepted: Iterable[str]) -> PublicKey:
        alg = check_algorithm(jwk, accepted)
        crypto = _public_from_jwk(alg, jwk)
        members = (
            ("kty", "crv", "x", "y", "alg", "kid")
            if alg == ES256
            else ("kty", "crv", "x", "alg", "kid")
        )
        public = {k: jwk[k] for k in members if k in jwk}
        if "kid" in public and not isinstance(public["kid"], str):
            raise InvalidKeyError("kid must be a string")
        return cls(alg=alg, jwk=public, crypto=crypto)

    @property
    def kid(self) -> str | None:
        kid = self.jwk.get("kid")
        return kid if isinstance(kid, str) else None

    def thumbprint(self) -> str:
        """RFC 7638 SHA-256 thumbprint."""
        return self._thumbprint

    @cached_property
    def _thumbprint(self) -> str:
        return jwk_thumbprint(self.jwk)

    def to_jwk(self, *, kid: bool = True) -> dict[str, Any]:
        """The public JWK, always with ``alg``; without ``kid`` when ``kid=False``."""
        out = dict(self.jwk)
        if not kid:
            out.pop("kid", None)
        return out

    def same_key(self, other: PublicKey | Mapping[str, Any]) -> bool:
        """True when both name the same key material (compared by thumbprint)."""
        jwk = other.jwk if isinstance(other, PublicKey) else other
        try:
            return jwk_thumbprint(jwk) == self.thumbprint()
        except InvalidKeyError:
            return False

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` (raw, JWS / RFC 9421 form) is valid over ``data``."""
        try:
            if isinstance(self.crypto, ed25519.Ed25519PublicKey):
                self.crypto.verify(signature, data)
            else:
                if len(signature) != 64:
                    return False
                r = int.from_bytes(signature[:32], "big")
                s = int.from_bytes(signature[32:], "big")
                self.crypto.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class PrivateKey:
    """A signing key. Never logged: ``repr`` shows only the algorithm and ``kid``."""

    alg: str
    kid: str | None
    crypto: _CryptoPrivate = field(repr=False, compare=False)

    @classmethod
    def generate(cls, alg: str = ED25519, *, kid: str | None = None) -> PrivateKey:
        """A fresh key. ``kid`` defaults to the key's RFC 7638 thumbprint."""
        crypto: _CryptoPrivate
        if alg == ED25519:
            crypto = ed25519.Ed25519PrivateKey.generate()
        elif alg == ES256:
            crypto = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ConfigurationError(
                f"cannot generate {alg!r} keys; use one of {SUPPORTED_ALGORITHMS}"
            )
        key = cls(alg=alg, kid=None, crypto=crypto)
        return cls(alg=alg, kid=kid or key.public_key.thumbprint(), crypto=crypto)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> PrivateKey:
        """Load a private JWK, applying the same algorithm rules as public keys."""
        alg = check_algorithm(jwk)
        d = _coordinate(jwk, "d", 32)
        crypto: _CryptoPrivate
        if alg == ED25519:
            crypto = ed25519.Ed25519PrivateKey.from_private_bytes(d)
        else:
            try:
                crypto = ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())
            except ValueError as exc:
                raise InvalidKeyError("invalid P-256 private scalar") from exc
        key = cls(
            alg=alg, kid=jwk.get("kid") if isinstance(jwk.get("kid"), str) else None, crypto=crypto
        )
        if not key.public_key.same_key(jwk):
            raise InvalidKeyError("public members do not match the private key")
        return key

    @cached_property
    def public_key(self) -> PublicKey:
        """Built once per key: thumbprints and JWKs are asked for on every request."""
        crypto = self.crypto.public_key()
        jwk: dict[str, Any]
        if isinstance(crypto, ed25519.Ed25519PublicKey):
            from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

            raw = crypto.public_bytes(Encoding.Raw, PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw), "alg": ED25519}
        else:
            numbers = crypto.public_numbers()
            jwk = {
                "kty": "EC",
                "crv": "P-256",
                "x": b64url_encode(numbers.x.to_bytes(32, "big")),
                "y": b64url_encode(numbers.y.to_bytes(32, "big")),
                "alg": ES256,
            }
        if self.kid:
            jwk["kid"] = self.kid
        return PublicKey(alg=self.alg, jwk=jwk, crypto=crypto)

    def thumbprint(self) -> str:
        return self.public_key.thumbprint()

    def to_jwk(self, *, private: bool = True) -> dict[str, Any]:
        """The JWK; with ``d`` only when ``private`` is true."""
        jwk = self.public_key.to_jwk()
        if private:
            if isinstance(self.crypto, ed25519.Ed25519PrivateKey):
                from cryptography.hazmat.primitives.serialization import (
                    Encoding,
                    NoEncryption,
                    PrivateFormat,
                )

                d = self.crypto.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
            else:
                d = self.crypto.private_numbers().private_value.to_bytes(32, "big")
            jwk["d"] = b64url_encode(d)
        return jwk

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``: 64 raw bytes for both Ed25519 and ES256 (``r || s``)."""
        if isinstance(self.crypto, ed25519.Ed25519PrivateKey):
            return self.crypto.sign(data)
        r, s = decode_dss_signature(self.crypto.sign(data, _ECDSA_SHA256))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def public_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """``jwk`` without private members: safe to publish or embed in ``cnf``."""
    return {k: v for k, v in jwk.items() if k not in PRIVATE_MEMBERS}


__all__ = [
    "ED25519",
    "ES256",
    "KEY_TYPE_MEMBERS",
    "PRIVATE_MEMBERS",
    "SUPPORTED_ALGORITHMS",
    "PrivateKey",
    "PublicKey",
    "check_algorithm",
    "jwk_thumbprint",
    "public_jwk",
]
