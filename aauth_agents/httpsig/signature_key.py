"""The ``Signature-Key`` request header (draft-hardt-httpbis-signature-key, as profiled by
draft-hardt-oauth-aauth-protocol-11 §Keying Material and implemented by
``@hellocoop/httpsig`` 2.x).

An RFC 8941 Dictionary with exactly one member: the signature label, whose value is the
scheme as a Token and whose parameters are the scheme's Strings::

    Signature-Key: sig=jwt;jwt="eyJ..."
    Signature-Key: sig=hwk;kty="OKP";crv="Ed25519";x="...";alg="Ed25519"
    Signature-Key: sig=jwks_uri;id="https://agent.example";dwk="aauth-agent.json";kid="k1"

Parsing is split in two so a verifier can answer ``unsupported_scheme`` (§Verification
step 4) before applying any scheme-specific rule: :func:`parse_signature_key_member` checks
only the structure; :func:`check_signature_key` checks a known scheme's parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from http_sfv.dictionary import Dictionary
from http_sfv.item import Item
from http_sfv.types import Token

from ..protocol.errors import ConfigurationError, InvalidKeyError, MissingSignatureError
from .base import plain_value
from .sfv import (
    canonical_token_item,
    parse_dictionary,
    serialize_bare,
    serialize_key,
    serialize_params,
)
from .types import SCHEME_HWK, SCHEME_JKT_JWT, SCHEME_JWKS_URI, SCHEME_JWT, SignatureKey

#: Parameters each known scheme requires (Signature-Key §Schemes; ``alg`` per -11
#: §Signature Algorithms: every key carries it, ``hwk`` included).
REQUIRED_PARAMS: Mapping[str, tuple[str, ...]] = {
    SCHEME_JWT: ("jwt",),
    SCHEME_JKT_JWT: ("jwt",),
    SCHEME_JWKS_URI: ("id", "dwk", "kid"),
    SCHEME_HWK: ("kty", "alg"),
}
#: ``hwk`` key material by ``kty`` (the JWK members of RFC 7517 / RFC 7518).
_HWK_MATERIAL: Mapping[str, tuple[str, ...]] = {
    "OKP": ("crv", "x"),
    "EC": ("crv", "x", "y"),
    "RSA": ("n", "e"),
}


#: Schemes serialised as Tokens by :func:`serialize_signature_key` (a few recur; bounded).
_SCHEMES: dict[str, str] = {}


def serialize_signature_key(label: str, key: SignatureKey) -> str:
    """The one-member ``Signature-Key`` value for ``label``: scheme Token, String params."""
    scheme = _SCHEMES.get(key.scheme) if type(key.scheme) is str else None
    if scheme is None:
        scheme = serialize_bare(Token(key.scheme))
        if scheme is not None and type(key.scheme) is str:
            if len(_SCHEMES) >= 64:
                _SCHEMES.clear()
            _SCHEMES[key.scheme] = scheme
    params = serialize_params(key.params)
    if scheme is not None and params is not None and serialize_key(label) is not None:
        return f"{label}={scheme}{params}"
    value = Item(Token(key.scheme))
    for name, param in key.params.items():
        value.params[name] = param
    field_value = Dictionary()
    field_value[label] = value
    try:
        return str(field_value)
    except (ValueError, IndexError) as exc:  # http_sfv: IndexError on an empty key
        raise ConfigurationError(f"cannot serialise Signature-Key: {exc}") from exc


@lru_cache(maxsize=1024)
def parse_signature_key_member(header: str) -> tuple[str, SignatureKey]:
    """The label and scheme of a ``Signature-Key`` field, without scheme-specific checks.

    Raises :class:`MissingSignatureError` (``invalid_request``) unless the field is a
    Dictionary with exactly one member whose value is a Token. Any scheme parses, so that an
    unknown one can be answered with ``unsupported_scheme``.

    Results are cached by field value: an agent presents the same Signature-Key for as long
    as its token lives, and parsing it (a ~600-character String) costs more than the Ed25519
    verification it enables. The returned key is immutable.
    """
    canonical = canonical_token_item(header)
    if canonical is not None:
        only, scheme, strings = canonical
        return only, SignatureKey(scheme=str(scheme), params=MappingProxyType(strings))
    members = parse_dictionary(header)
    if members is not None and len(members) == 1:
        ((label, (value, fields)),) = members
        if type(value) is Token:
            plain = MappingProxyType({name: plain_value(v) for name, v in fields.items()})
            return label, SignatureKey(scheme=str(value), params=plain)
    parsed = Dictionary()
    try:
        parsed.parse(header.encode("latin-1"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise MissingSignatureError("Signature-Key is not a structured Dictionary") from exc
    if len(parsed) != 1:
        raise MissingSignatureError("Signature-Key must have exactly one member")
    ((label, member),) = parsed.items()
    if not isinstance(member, Item) or not isinstance(member.value, Token):
        raise MissingSignatureError("a Signature-Key member must be a scheme Token")
    params = MappingProxyType({name: plain_value(v) for name, v in member.params.items()})
    return label, SignatureKey(scheme=str(member.value), params=params)


def check_signature_key(key: SignatureKey) -> None:
    """Check a known scheme's parameters; unknown schemes pass untouched.

    Raises :class:`InvalidKeyError` for a missing or non-String parameter, and for ``hwk``
    carrying ``kid`` (the key is inline, a ``kid`` selects nothing) or lacking key material.
    """
    required = REQUIRED_PARAMS.get(key.scheme)
    if required is None:
        return
    for name, value in key.params.items():
        if not isinstance(value, str):
            raise InvalidKeyError(f"Signature-Key parameter {name!r} must be a String")
    if key.scheme == SCHEME_HWK:
        if "kid" in key.params:
            raise InvalidKeyError("Signature-Key hwk must not carry kid")
        required = required + _HWK_MATERIAL.get(str(key.params.get("kty")), ())
    for name in required:
        if not key.params.get(name):
            raise InvalidKeyError(f"Signature-Key {key.scheme} is missing {name!r}")


def parse_signature_key(header: str) -> tuple[str, SignatureKey]:
    """Parse a ``Signature-Key`` field: structure, then the known scheme's parameters."""
    label, key = parse_signature_key_member(header)
    check_signature_key(key)
    return label, key


def hwk_jwk(key: SignatureKey) -> dict[str, str]:
    """The JWK an ``hwk`` member carries (its parameters are JWK members)."""
    if key.scheme != SCHEME_HWK:
        raise ConfigurationError(f"scheme {key.scheme!r} does not carry an inline key")
    check_signature_key(key)
    return {name: str(value) for name, value in key.params.items()}


__all__ = [
    "REQUIRED_PARAMS",
    "check_signature_key",
    "hwk_jwk",
    "parse_signature_key",
    "parse_signature_key_member",
    "serialize_signature_key",
]
