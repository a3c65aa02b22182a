"""aauth_agents and @hellocoop/httpsig 2.x verify each other's signed requests.

Both directions, for GET and for POST with Content-Digest, for Signature-Key ``jwt`` (an AAuth
agent token) and ``hwk``, with Ed25519 and ES256 agent keys. A tampered method, path,
authority, body or Signature-Key fails on both sides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from support.interop import NodePeer

from aauth_agents.httpsig import HttpRequest, SignatureKey, SignatureVerifier, sign_request
from aauth_agents.keys import ED25519, ES256, PrivateKey
from aauth_agents.protocol.errors import SignatureError
from aauth_agents.tokens import StaticIssuerKeys, mint_agent_token, token_key_resolver

AP = "https://agent.example"
AGENT_ID = "aauth:assistant@agent.example"
URL = "https://resource.example/api/documents"
BODY = json.dumps({"title": "Quarterly report", "tags": ["q3", "finance"]})

pytestmark = pytest.mark.interop


@dataclass
class Agent:
    key: PrivateKey
    token: str
    provider: PrivateKey

    @property
    def issuer_keys(self) -> StaticIssuerKeys:
        return StaticIssuerKeys({(AP, "aauth-agent.json"): [self.provider.public_key]})

    def signature_key(self, scheme: str) -> SignatureKey:
        return (
            SignatureKey.from_jwt(self.token)
            if scheme == "jwt"
            else SignatureKey.from_public_key(self.key.public_key)
        )

    def node_signature_key(self, scheme: str) -> dict[str, str]:
        return {"type": "jwt", "jwt": self.token} if scheme == "jwt" else {"type": "hwk"}


def make_agent(alg: str) -> Agent:
    provider = PrivateKey.generate(ED25519)
    key = PrivateKey.generate(alg)
    token = mint_agent_token(provider, iss=AP, sub=AGENT_ID, cnf=key.public_key, lifetime=3600)
    return Agent(key, token, provider)


CASES = [
    pytest.param(alg, scheme, method, id=f"{alg}-{scheme}-{method}")
    for alg in (ED25519, ES256)
    for scheme in ("jwt", "hwk")
    for method in ("GET", "POST")
]


def our_request(method: str) -> HttpRequest:
    if method == "GET":
        return HttpRequest("GET", URL)
    return HttpRequest("POST", URL, {"Content-Type": "application/json"}, BODY.encode())


def node_verify(
    peer: NodePeer, method: str, url: str, headers: dict[str, str], body: str | None
) -> dict[str, Any]:
    parts = urlsplit(url)
    result: dict[str, Any] = peer.call(
        "verify",
        method=method,
        authority=parts.netloc,
        path=parts.path,
        query=parts.query or None,
        headers=headers,
        body=body,
        requireContentDigest=body is not None,
    )["result"]
    return result


def our_verifier(agent: Agent, *, body: bool) -> tuple[SignatureVerifier, Any]:
    verifier = SignatureVerifier(accepted_schemes=("jwt", "hwk"), require_body_digest=body)
    resolver = token_key_resolver(keys=agent.issuer_keys, audience=None, accept=("aa-agent+jwt",))
    return verifier, resolver


# -- aauth_agents signs, @hellocoop/httpsig verifies ------------------------------------------


@pytest.mark.parametrize(("alg", "scheme", "method"), CASES)
def test_node_verifies_our_signature(
    node_peer: NodePeer, alg: str, scheme: str, method: str
) -> None:
    agent = make_agent(alg)
    request = our_request(method)
    added = sign_request(request, key=agent.key, signature_key=agent.signature_key(scheme))
    headers = {k: v for k, v in request.headers} | added
    body = BODY if method == "POST" else None

    result = node_verify(node_peer, method, URL, headers, body)

    assert result["verified"] is True, result
    assert result["keyType"] == scheme
    assert result["thumbprint"] == agent.key.thumbprint()  # RFC 7638 agrees across both
    if scheme == "jwt":
        assert result["jwt"]["payload"]["sub"] == AGENT_ID
    if method == "POST":
        assert "content-digest" in added["Signature-Input"]


TAMPERS = ["method", "path", "authority", "body", "signature-key"]


def _tamper(
    what: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: str | None,
    other: Agent,
    scheme: str,
) -> tuple[str, str, dict[str, str], str | None]:
    if what == "method":
        method = "DELETE" if method == "GET" else "PUT"
    elif what == "path":
        url = url.replace("/documents", "/secrets")
    elif what == "authority":
        url = url.replace("resource.example", "attacker.example")
    elif what == "body":
        body = (body or "") + " "
    elif what == "signature-key":
        from aauth_agents.httpsig import serialize_signature_key

        headers = {
            **headers,
            "signature-key": serialize_signature_key("sig", other.signature_key(scheme)),
        }
    return method, url, headers, body


@pytest.mark.parametrize("what", TAMPERS)
@pytest.mark.parametrize("scheme", ["jwt", "hwk"])
def test_node_rejects_tampered_requests(node_peer: NodePeer, what: str, scheme: str) -> None:
    agent, other = make_agent(ED25519), make_agent(ED25519)
    method = "POST" if what == "body" else "GET"
    request = our_request(method)
    added = sign_request(request, key=agent.key, signature_key=agent.signature_key(scheme))
    headers = {k: v for k, v in request.headers} | {k.lower(): v for k, v in added.items()}
    body = BODY if method == "POST" else None

    assert node_verify(node_peer, method, URL, headers, body)["verified"] is True
    t_method, t_url, t_headers, t_body = _tamper(what, method, URL, headers, body, other, scheme)
    result = node_verify(node_peer, t_method, t_url, t_headers, t_body)
    assert result["verified"] is False, result


# -- @hellocoop/httpsig signs, aauth_agents verifies ------------------------------------------


def node_sign(peer: NodePeer, agent: Agent, scheme: str, method: str) -> dict[str, str]:
    headers: dict[str, str] = peer.call(
        "sign",
        url=URL,
        method=method,
        headers={"content-type": "application/json"} if method == "POST" else {},
        body=BODY if method == "POST" else None,
        signingKey=agent.key.to_jwk(),
        signatureKey=agent.node_signature_key(scheme),
    )["headers"]
    return headers


@pytest.mark.parametrize(("alg", "scheme", "method"), CASES)
def test_we_verify_node_signature(node_peer: NodePeer, alg: str, scheme: str, method: str) -> None:
    agent = make_agent(alg)
    headers = node_sign(node_peer, agent, scheme, method)
    body = BODY.encode() if method == "POST" else None
    verifier, resolver = our_verifier(agent, body=body is not None)

    verified = verifier.verify(HttpRequest(method, URL, headers, body), resolver)

    assert verified.scheme == scheme
    assert verified.thumbprint == agent.key.thumbprint()
    if scheme == "jwt":
        assert verified.context.sub == AGENT_ID  # the agent token was verified, not just decoded
    if method == "POST":
        assert "content-digest" in verified.components


@pytest.mark.parametrize("what", TAMPERS)
@pytest.mark.parametrize("scheme", ["jwt", "hwk"])
def test_we_reject_tampered_node_requests(node_peer: NodePeer, what: str, scheme: str) -> None:
    agent, other = make_agent(ED25519), make_agent(ED25519)
    method = "POST" if what == "body" else "GET"
    headers = node_sign(node_peer, agent, scheme, method)
    body = BODY if method == "POST" else None
    verifier, resolver = our_verifier(agent, body=body is not None)
    if what == "signature-key" and scheme == "jwt":
        # The other agent's token comes from another provider: trust it too, so only the
        # signature can fail.
        resolver = token_key_resolver(
            keys=StaticIssuerKeys(
                {(AP, "aauth-agent.json"): [agent.provider.public_key, other.provider.public_key]}
            ),
            audience=None,
            accept=("aa-agent+jwt",),
        )
    verifier.verify(HttpRequest(method, URL, headers, body.encode() if body else None), resolver)

    t_method, t_url, t_headers, t_body = _tamper(what, method, URL, headers, body, other, scheme)
    with pytest.raises(SignatureError) as info:
        verifier.verify(
            HttpRequest(t_method, t_url, t_headers, t_body.encode() if t_body else None), resolver
        )
    assert info.value.code == "invalid_signature"
    assert info.value.status == 401


# -- query strings ----------------------------------------------------------------------------
# httpsig 2.x neither covers ``@query`` by default nor derives it with RFC 9421's leading "?".
# Our verifier requires ``@query`` when a URL has a query (a signature that leaves the query
# unprotected lets it be rewritten); ``require_query=False`` is the explicit opt-out for peers
# that sign without it.


def test_node_request_with_uncovered_query(node_peer: NodePeer) -> None:
    agent = make_agent(ED25519)
    url = URL + "?folder=inbox"
    headers: dict[str, str] = node_peer.call(
        "sign",
        url=url,
        method="GET",
        headers={},
        body=None,
        signingKey=agent.key.to_jwk(),
        signatureKey=agent.node_signature_key("jwt"),
    )["headers"]
    resolver = token_key_resolver(keys=agent.issuer_keys, audience=None, accept=("aa-agent+jwt",))

    with pytest.raises(SignatureError) as info:
        SignatureVerifier().verify(HttpRequest("GET", url, headers), resolver)
    assert info.value.code == "invalid_input"
    assert info.value.required_input is not None and "@query" in info.value.required_input

    lenient = SignatureVerifier(require_query=False)
    assert lenient.verify(HttpRequest("GET", url, headers), resolver).context.sub == AGENT_ID


def test_identical_requests_kept_apart_verify_on_both_sides(node_peer: NodePeer) -> None:
    """The agent signs one POST many times in one second (new MCP sessions each open with
    the same ``initialize``): ``created`` moves ahead a few seconds, then a ``nonce``
    signature parameter keeps the signed content apart. @hellocoop/httpsig verifies every
    one; our verifier with a replay cache accepts every one once, and refuses each again."""
    import time

    from aauth_agents.agent.signer import RequestSigner
    from aauth_agents.httpsig import MemoryReplayCache
    from aauth_agents.httpsig.verify import InvalidSignatureError

    agent = make_agent(ED25519)
    signer = RequestSigner()
    now = float(int(time.time()))  # (the peer checks created against its clock)
    headers = [("content-type", "application/json")]
    signed = []
    for _ in range(8):
        added, _covered = signer.sign_message(
            "POST",
            URL,
            headers,
            BODY.encode(),
            key=agent.key,
            signature_key=agent.signature_key("jwt"),
            now=now,
            key_id="k",
        )
        signed.append({"Content-Type": "application/json", **added})
    inputs = [h["Signature-Input"] for h in signed]
    assert len(set(inputs)) == 8  # eight distinct signed contents
    assert [";nonce=" in i for i in inputs] == [False] * 6 + [True] * 2
    for h in signed:
        result = node_verify(node_peer, "POST", URL, h, BODY)
        assert result["verified"] is True, (result.get("error"), h["Signature-Input"])
    from aauth_agents.clock import FrozenClock

    verifier = SignatureVerifier(
        replay_cache=MemoryReplayCache(), clock=FrozenClock(now), require_body_digest=True
    )
    resolver = token_key_resolver(keys=agent.issuer_keys, audience=None, accept=("aa-agent+jwt",))
    for h in signed:
        verifier.verify(HttpRequest("POST", URL, h, BODY.encode()), resolver)
    for h in signed:
        with pytest.raises(InvalidSignatureError):
            verifier.verify(HttpRequest("POST", URL, h, BODY.encode()), resolver)
