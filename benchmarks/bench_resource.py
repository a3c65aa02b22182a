"""Throughput of a protected Starlette endpoint relative to the same endpoint unprotected.

Run: ``python benchmarks/bench_resource.py``. ``protected_endpoint_rate()`` serves one
Starlette endpoint twice in this run -- bare, and behind :class:`AAuthMiddleware` requiring an
auth token -- over real HTTP (uvicorn on loopback, one keep-alive ``httpx`` client), and
returns requests per second protected / unprotected. The agent holds a cached auth token:
each protected request is verified in full (RFC 9421 signature, ``Signature-Key`` parsing,
request binding, revocation lookup, scope check), with the auth token's own JWS verification
served from the resource's verified-token cache, as in steady state. Every request differs
(its path, query and ``created``, so its signature), as real traffic does; requests are
signed before timing. Each rate is requests over the CPU time of this process (the client's
thread and the server's, nothing else's: what other processes do to the machine is not
counted, and time spent waiting is counted for neither, which would bring the ratio closer to
1); many short rounds alternate A/B and the median ratio is reported. Goal (issue 16): >= 0.7.
"""

from __future__ import annotations

import statistics
import sys
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.keys import PrivateKey
from aauth_agents.resource import (
    AAuthMiddleware,
    AAuthResource,
    AccessRule,
    ResourceConfig,
    RoutePolicy,
)
from aauth_agents.servers import LoopbackServer
from aauth_agents.stores import Stores
from aauth_agents.tokens import DWK_PERSON, StaticIssuerKeys, mint_auth_token
from aauth_agents.transport import MappedTransport

PS = "https://ps.example"
RESOURCE = "https://resource.example"
GOAL = 0.7
ROUNDS = 41
REQUESTS = 100


async def _endpoint(request: Request) -> JSONResponse:
    caller = getattr(request.state, "aauth", None)
    return JSONResponse({"items": [1, 2, 3], "sub": caller.person[1] if caller else None})


def _apps() -> tuple[Starlette, Starlette, dict[str, str]]:
    ps_key = PrivateKey.generate("Ed25519", kid="ps-1")
    agent_key = PrivateKey.generate("Ed25519")
    resource = AAuthResource(
        ResourceConfig(
            identifier=RESOURCE,
            signing_key=PrivateKey.generate("Ed25519", kid="res-1"),
            issuer_keys=StaticIssuerKeys({(PS, DWK_PERSON): [ps_key.public_key]}),
            scope_descriptions={"data.read": "Read"},
            stores=Stores.memory(),
        )
    )
    bare = Starlette(routes=[Route("/data/{n}", _endpoint)])
    protected = Starlette(routes=[Route("/data/{n}", _endpoint)])
    protected.add_middleware(
        AAuthMiddleware,
        resource=resource,
        policy=RoutePolicy({"/data/{n}": AccessRule.auth("data.read")}),
    )
    token = mint_auth_token(
        ps_key,
        iss=PS,
        aud=RESOURCE,
        ps=PS,
        sub="person-1",
        cnf=agent_key.public_key,
        scope="data.read",
    )
    signature_key = SignatureKey.from_jwt(token)

    def signed(n: int) -> tuple[str, dict[str, str]]:
        url = f"{RESOURCE}/data/{n}?page={n % 7}"
        request = HttpRequest("GET", url, {"host": "resource.example"})
        headers = sign_request(
            request, key=agent_key, signature_key=signature_key, created=int(time.time()) - n % 5
        )
        return url, headers

    return bare, protected, signed


Requests = list[tuple[str, dict[str, str]]]


def _rate(client: httpx.Client, requests: Requests) -> float:
    """Requests per second of this process's CPU time (client and server threads)."""
    start = time.process_time()
    for url, headers in requests:
        response = client.get(url, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"unexpected {response.status_code}: {response.text}")
    return len(requests) / (time.process_time() - start)


def protected_endpoint_rate(rounds: int = ROUNDS) -> float:
    """Requests per second of the protected endpoint as a fraction of the unprotected one,
    both measured in this call (median of alternating rounds)."""
    bare, protected, signed = _apps()
    numbers = iter(range(10**9))

    def batch(sign: bool) -> Requests:
        requests = [signed(next(numbers)) for _ in range(REQUESTS)]
        return requests if sign else [(url, {}) for url, _ in requests]

    ratios = []
    with LoopbackServer(bare) as plain_server, LoopbackServer(protected) as guarded_server:
        plain = httpx.Client(transport=MappedTransport({RESOURCE: plain_server.url}))
        guarded = httpx.Client(transport=MappedTransport({RESOURCE: guarded_server.url}))
        with plain, guarded:
            _rate(plain, batch(False)), _rate(guarded, batch(True))  # warm up both
            for n in range(rounds):
                a, b = batch(True), batch(False)
                if n % 2:
                    ratios.append(_rate(guarded, a) / _rate(plain, b))
                else:
                    plain_rate = _rate(plain, b)
                    ratios.append(_rate(guarded, a) / plain_rate)
    return statistics.median(ratios)


def benchmark() -> int:
    """Print the row for ``benchmarks/run.py``; 1 when the goal is missed."""
    ratio = protected_endpoint_rate()
    ok = ratio >= GOAL
    print(
        f"{'protected-endpoint-rate':38} x{ratio:5.2f} of {'the unprotected endpoint':30} "
        f"goal >= x{GOAL:<4} {'ok' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(benchmark())


__all__ = ["benchmark", "protected_endpoint_rate"]
