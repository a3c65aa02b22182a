"""Helpers shared by the httpsig tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aauth_agents.protocol.encoding import b64url_encode

NOW = 1_730_217_600


def fake_jwt(cnf_jwk: Mapping[str, Any], **claims: Any) -> str:
    """A JWT-shaped string carrying ``cnf.jwk``; its signature is junk (never verified here)."""
    header = {"alg": "Ed25519", "typ": "aa-agent+jwt"}
    payload = {"iss": "https://agent.example", "cnf": {"jwk": dict(cnf_jwk)}, **claims}
    parts = [json.dumps(part).encode() for part in (header, payload)]
    return ".".join([*(b64url_encode(p) for p in parts), b64url_encode(b"not-a-signature")])
