"""HTTP Message Signatures as AAuth profiles them (draft-hardt-oauth-aauth-protocol-11
§HTTP Message Signatures Profile), sans-I/O.

* RFC 9421 §2 component derivation and the §2.5 signature base (:mod:`.request`, :mod:`.base`);
* the ``Signature-Key`` header (draft-hardt-httpbis-signature-key; -11 §Keying Material);
* ``Content-Digest`` (RFC 9530);
* signing (-11 §Signing (Agent), §Covered Components, §Signature Parameters);
* verification (-11 §Verification steps 1-7, §Scheme Rejection, §Freshness and Replay).

Failures are :class:`~aauth_agents.protocol.errors.SignatureError` subclasses carrying the
Signature-Error code; configuration mistakes on the signing side are
:class:`~aauth_agents.protocol.errors.ConfigurationError`.
"""

from __future__ import annotations

from .base import (
    SignatureInput,
    build_signature_base,
    parse_signature_input,
    serialize_signature_input,
    signature_base,
    signature_params,
)
from .digest import DIGEST_ALGORITHMS, content_digest, parse_content_digest, verify_content_digest
from .request import DERIVED_COMPONENTS, ComponentError, HeadersInput, HttpRequest, component_value
from .sign import BODY_COMPONENTS, DEFAULT_LABEL, default_components, sign_request
from .signature_key import (
    check_signature_key,
    hwk_jwk,
    parse_signature_key,
    parse_signature_key_member,
    serialize_signature_key,
)
from .types import (
    SCHEME_HWK,
    SCHEME_JKT_JWT,
    SCHEME_JWKS_URI,
    SCHEME_JWT,
    AnyKeyResolver,
    AsyncKeyResolver,
    KeyResolution,
    KeyResolver,
    SignatureKey,
)
from .verify import (
    DEFAULT_REQUIRED_COMPONENTS,
    SAFE_METHODS,
    MemoryReplayCache,
    ReplayCache,
    ReplayKey,
    SignatureVerifier,
    VerifiedSignature,
    unverified_jwt_cnf_resolver,
)

__all__ = [
    "BODY_COMPONENTS",
    "DEFAULT_LABEL",
    "DEFAULT_REQUIRED_COMPONENTS",
    "DERIVED_COMPONENTS",
    "DIGEST_ALGORITHMS",
    "SAFE_METHODS",
    "SCHEME_HWK",
    "SCHEME_JKT_JWT",
    "SCHEME_JWKS_URI",
    "SCHEME_JWT",
    "AnyKeyResolver",
    "AsyncKeyResolver",
    "ComponentError",
    "HeadersInput",
    "HttpRequest",
    "KeyResolution",
    "KeyResolver",
    "MemoryReplayCache",
    "ReplayCache",
    "ReplayKey",
    "SignatureInput",
    "SignatureKey",
    "SignatureVerifier",
    "VerifiedSignature",
    "build_signature_base",
    "check_signature_key",
    "component_value",
    "content_digest",
    "default_components",
    "hwk_jwk",
    "parse_content_digest",
    "parse_signature_input",
    "parse_signature_key",
    "parse_signature_key_member",
    "serialize_signature_input",
    "serialize_signature_key",
    "sign_request",
    "signature_base",
    "signature_params",
    "unverified_jwt_cnf_resolver",
    "verify_content_digest",
]
