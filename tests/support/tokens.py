"""Shared test helpers for aauth_agents.tokens: a small world of issuers, and a forger that
signs any header and claims (valid or not) with a real key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aauth_agents.clock import FrozenClock
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.encoding import b64url_encode
from aauth_agents.tokens import (
    DWK_ACCESS,
    DWK_AGENT,
    DWK_PERSON,
    DWK_RESOURCE,
    PersonToken,
    StaticIssuerKeys,
    mint_agent_token,
    mint_auth_token,
    mint_person_token,
    mint_resource_token,
    peek,
)

AP = "https://ap.example"
PS = "https://ps.example"
RESOURCE = "https://resource.example"
AS = "https://as.example"
AGENT_ID = "aauth:assistant@ap.example"
PERSON_SUB = "8f14e45fceea167a5a36dedd4bea2543"
MISSION_S256 = b64url_encode(hashlib.sha256(b'{"description":"plan a trip"}').digest())
NOW = 1_730_217_600


def segment(value: Any) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode())


def forge(header: Mapping[str, Any], claims: Mapping[str, Any], key: PrivateKey) -> str:
    """A compact JWS over any header and claims, signed with ``key`` whatever ``alg`` says."""
    signing_input = f"{segment(dict(header))}.{segment(dict(claims))}"
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode()))}"


def resign(
    token: str,
    key: PrivateKey,
    *,
    header: Mapping[str, Any] | None = None,
    claims: Mapping[str, Any] | None = None,
    drop: Iterable[str] = (),
    drop_header: Iterable[str] = (),
) -> str:
    """``token`` with header/claims changed (``drop`` removes claims), re-signed by ``key``."""
    h, c = peek(token)
    h.update(header or {})
    c.update(claims or {})
    for name in drop:
        c.pop(name, None)
    for name in drop_header:
        h.pop(name, None)
    return forge(h, c, key)


@dataclass
class World:
    """Issuers of every kind with keys of one algorithm, an agent key, a frozen clock."""

    alg: str
    clock: FrozenClock = field(default_factory=lambda: FrozenClock(NOW))

    def __post_init__(self) -> None:
        self.ap_key = PrivateKey.generate(self.alg, kid="ap-1")
        self.ps_key = PrivateKey.generate(self.alg, kid="ps-1")
        self.res_key = PrivateKey.generate(self.alg, kid="res-1")
        self.as_key = PrivateKey.generate(self.alg, kid="as-1")
        self.agent_key = PrivateKey.generate("Ed25519")
        self.other_key = PrivateKey.generate("ES256")
        self.keys = StaticIssuerKeys(
            {
                (AP, DWK_AGENT): [self.ap_key.public_key],
                (PS, DWK_PERSON): [self.ps_key.public_key],
                (RESOURCE, DWK_RESOURCE): [self.res_key.public_key],
                (AS, DWK_ACCESS): [self.as_key.public_key],
                # the PS in the PS-AS collapse role
                (PS, DWK_ACCESS): [self.ps_key.public_key],
            }
        )

    @property
    def jkt(self) -> str:
        return self.agent_key.thumbprint()

    def agent_token(self, **kw: Any) -> str:
        key = kw.pop("issuer_key", self.ap_key)
        args: dict[str, Any] = {
            "iss": AP,
            "sub": AGENT_ID,
            "cnf": self.agent_key.public_key,
            "ps": PS,
            "clock": self.clock,
        }
        args.update(kw)
        return mint_agent_token(key, **args)

    def person_token(self, **kw: Any) -> str:
        args: dict[str, Any] = {
            "iss": PS,
            "aud": RESOURCE,
            "sub": PERSON_SUB,
            "cnf": self.agent_key.public_key,
            "not_after": NOW + 86_400,
            "mission_s256": MISSION_S256,
            "tenant": "acme",
            "jti": "pt-1",
            "clock": self.clock,
        }
        args.update(kw)
        return mint_person_token(self.ps_key, **args)

    def person(self) -> PersonToken:
        from aauth_agents.tokens import verify_person_token

        return verify_person_token(
            self.person_token(),
            keys=self.keys,
            audience=RESOURCE,
            signing_key=self.agent_key.public_key,
            clock=self.clock,
        )

    def resource_token(self, **kw: Any) -> str:
        args: dict[str, Any] = {
            "iss": RESOURCE,
            "aud": PS,
            "agent_jkt": self.jkt,
            "scope": "read write",
            "person": self.person(),
            "clock": self.clock,
        }
        args.update(kw)
        return mint_resource_token(self.res_key, **args)

    def auth_token(self, **kw: Any) -> str:
        args: dict[str, Any] = {
            "iss": PS,
            "aud": RESOURCE,
            "ps": PS,
            "sub": PERSON_SUB,
            "cnf": self.agent_key.public_key,
            "scope": "read",
            "mission_s256": MISSION_S256,
            "clock": self.clock,
        }
        args.update(kw)
        key = self.as_key if args["iss"] == AS else self.ps_key
        return mint_auth_token(key, **args)
