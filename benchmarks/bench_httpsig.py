"""Cost of the RFC 9421 profile relative to the raw signature operations it wraps.

Run: ``python benchmarks/bench_httpsig.py``. Prints, per algorithm, the time of
``sign_request`` and ``SignatureVerifier.verify`` as a ratio of a bare sign / verify over a
signature base of the same size, all measured in this run (DESIGN.md, Tests).
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

NOW = 1_730_217_600
ROUNDS = 2000


def _run(fn: Callable[[], object]) -> float:
    return timeit.timeit(fn, number=ROUNDS) / ROUNDS


def bench(alg: str) -> None:
    key = PrivateKey.generate(alg)
    payload = {"cnf": {"jwk": key.public_key.to_jwk()}}
    token = ".".join(b64url_encode(json.dumps(p).encode()) for p in ({}, payload, {}))
    signature_key = SignatureKey.from_jwt(token)
    request = HttpRequest(
        "POST", "https://ps.example/token?x=1", {"content-type": "application/json"},
        b'{"resource_token": "' + b"x" * 400 + b'"}',
    )
    headers = sign_request(request, key=key, signature_key=signature_key, created=NOW)
    signed = request.with_headers(headers)
    components = ["@method", "@authority", "@path", "@query", "content-type",
                  "content-digest", "signature-key"]
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
    print(f"{alg:8} sign   x{profile_sign / raw_sign:5.2f} of a raw sign")
    print(f"{alg:8} verify x{profile_verify / raw_verify:5.2f} of a raw verify")


def main() -> None:
    for alg in (ED25519, ES256):
        bench(alg)


if __name__ == "__main__":
    main()
