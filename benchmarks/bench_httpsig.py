"""Cost of the RFC 9421 profile and of AAuth tokens relative to the raw signature operations
they wrap.

Run: ``python benchmarks/bench_httpsig.py``. Prints, per algorithm, the time of
``sign_request``, ``SignatureVerifier.verify`` (key given), a full ``scheme=jwt`` verification
(the agent token's JWS verified too) and agent-token minting / verification, each as a ratio
of a bare sign or verify measured in this run (ARCHITECTURE.md, Speed), next to its goal. Exits 1
when a ratio misses its goal.
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable

from aauth_agents.clock import FrozenClock
from aauth_agents.httpsig import (
    HttpRequest,
    KeyResolution,
    SignatureKey,
    SignatureVerifier,
    sign_request,
    signature_base,
)
from aauth_agents.keys import ED25519, ES256, PrivateKey
from aauth_agents.protocol.encoding import b64url_encode
from aauth_agents.tokens import (
    StaticIssuerKeys,
    mint_agent_token,
    token_key_resolver,
    verify_agent_token,
)

NOW = 1_730_217_600
AP = "https://agent.example"
ROUNDS = 2000


def _run(fn: Callable[[], object]) -> float:
    return timeit.timeit(fn, number=ROUNDS) / ROUNDS


def bench(alg: str) -> int:
    key = PrivateKey.generate(alg)
    payload = {"cnf": {"jwk": key.public_key.to_jwk()}}
    token = ".".join(b64url_encode(json.dumps(p).encode()) for p in ({}, payload, {}))
    signature_key = SignatureKey.from_jwt(token)
    request = HttpRequest(
        "POST",
        "https://ps.example/token?x=1",
        {"content-type": "application/json"},
        b'{"resource_token": "' + b"x" * 400 + b'"}',
    )
    headers = sign_request(request, key=key, signature_key=signature_key, created=NOW)
    signed = request.with_headers(headers)
    components = [
        "@method",
        "@authority",
        "@path",
        "@query",
        "content-type",
        "content-digest",
        "signature-key",
    ]
    base = signature_base(signed, components, {"created": NOW})
    raw_signature = key.sign(base)
    public = key.public_key
    jwk = public.to_jwk()
    verifier = SignatureVerifier(clock=FrozenClock(NOW), require_body_digest=True)

    def resolver(_: SignatureKey) -> KeyResolution:
        return KeyResolution(jwk=jwk)

    raw_sign = _run(lambda: key.sign(base))
    raw_verify = _run(lambda: public.verify(raw_signature, base))
    profile_sign = _run(
        lambda: sign_request(request, key=key, signature_key=signature_key, created=NOW)
    )
    profile_verify = _run(lambda: verifier.verify(signed, resolver))
    # A real agent token, verified by the token layer on every request (scheme=jwt).
    provider = PrivateKey.generate(ED25519)
    agent_token = mint_agent_token(
        provider,
        iss=AP,
        sub="aauth:bench@agent.example",
        cnf=public,
        lifetime=3600,
        clock=FrozenClock(NOW),
    )
    issuer_keys = StaticIssuerKeys({(AP, "aauth-agent.json"): [provider.public_key]})
    token_resolver = token_key_resolver(
        keys=issuer_keys, audience=None, accept=("aa-agent+jwt",), clock=FrozenClock(NOW)
    )
    jwt_headers = sign_request(
        request, key=key, signature_key=SignatureKey.from_jwt(agent_token), created=NOW
    )
    jwt_signed = request.with_headers(jwt_headers)
    full_verify = _run(lambda: verifier.verify(jwt_signed, token_resolver))
    token_verify = _run(
        lambda: verify_agent_token(
            agent_token, keys=issuer_keys, signing_key=None, clock=FrozenClock(NOW)
        )
    )
    mint = _run(
        lambda: mint_agent_token(
            provider,
            iss=AP,
            sub="aauth:bench@agent.example",
            cnf=public,
            lifetime=3600,
            clock=FrozenClock(NOW),
        )
    )
    # Minting and token verification use the provider's Ed25519 key: compare with Ed25519.
    ed = PrivateKey.generate(ED25519)
    ed_sig = ed.sign(base)
    ed_sign = _run(lambda: ed.sign(base))
    ed_public = ed.public_key
    ed_verify = _run(lambda: ed_public.verify(ed_sig, base))
    rows = [
        ("sign_request", profile_sign / raw_sign, "raw sign", GOALS["sign_request"]),
        ("verify (key given)", profile_verify / raw_verify, "raw verify", GOALS["verify"]),
        (
            "verify (agent token)",
            full_verify / (raw_verify + ed_verify),
            "raw verify + Ed25519 verify",
            GOALS["verify_jwt"],
        ),
        ("verify_agent_token", token_verify / ed_verify, "Ed25519 verify", GOALS["token_verify"]),
        ("mint_agent_token", mint / ed_sign, "Ed25519 sign", GOALS["token_mint"]),
    ]
    missed = 0
    for name, ratio, baseline, goal in rows:
        ok = ratio <= goal
        missed += not ok
        print(
            f"{alg:8} {name:22} x{ratio:5.2f} of {baseline:28} goal <= x{goal:<4} "
            f"{'ok' if ok else 'MISSED'}"
        )
    return missed


#: Ratio goals. The profile's own work (component derivation, structured fields, token
#: claim checks) should stay a small multiple of the cryptography it wraps.
GOALS = {
    "sign_request": 10.0,
    "verify": 8.0,
    "verify_jwt": 6.0,
    "token_verify": 4.0,
    "token_mint": 6.0,
}


def main() -> int:
    return 1 if sum(bench(alg) for alg in (ED25519, ES256)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
