"""aauth-agents: AAuth (draft-hardt-oauth-aauth-protocol-11) for AI agents."""

from __future__ import annotations

from .keys import ED25519, ES256, SUPPORTED_ALGORITHMS, PrivateKey, PublicKey, jwk_thumbprint
from .protocol.errors import (
    AAuthError,
    ProtocolError,
    SignatureError,
    TokenError,
)

__version__ = "0.1.0"

__all__ = [
    "ED25519",
    "ES256",
    "SUPPORTED_ALGORITHMS",
    "AAuthError",
    "PrivateKey",
    "ProtocolError",
    "PublicKey",
    "SignatureError",
    "TokenError",
    "__version__",
    "jwk_thumbprint",
]
