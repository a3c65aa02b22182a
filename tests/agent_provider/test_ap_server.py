"""The agent provider server over real HTTP (uvicorn on 127.0.0.1): enrolment with a one-time
code and a key that proves possession (``Signature-Key: hwk``), refresh by the same key,
sub-agents, persistence, and revocation reaching a real person server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aauth_agents.clock import FrozenClock
from aauth_agents.discovery import AsyncDiscovery, EgressPolicy
from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.keys import PrivateKey, PublicKey
from aauth_agents.protocol.errors import ProtocolError
from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.agent_provider import (
    AgentProviderClient,
    AgentProviderConfig,
    AgentProviderServer,
)
from aauth_agents.servers.person_server import (
    AutoApprove,
    PersonServerConfig,
    create_person_server,
)
from aauth_agents.tokens import DWK_AGENT, StaticIssuerKeys, peek, verify_agent_token
from aauth_agents.transport import AsyncMappedTransport, MappedTransport

AP = "https://agent.example"
PS = "https://ps.example"
AGENT = "aauth:assistant@agent.example"


class Site:
    def __init__(self, ap: AgentProviderServer, url: str) -> None:
        self.ap = ap
        self.url = url
        self.http = httpx.Client(transport=MappedTransport({AP: url}, strict=True), timeout=10)
        self.client = AgentProviderClient(AP, self.http)

    def verify(self, token: str) -> dict[str, Any]:
        keys = StaticIssuerKeys().add_jwks(
            AP, DWK_AGENT, self.http.get(f"{AP}/.well-known/jwks.json").json()
        )
        claims = peek(token)[1]
        verify_agent_token(token, keys=keys, signing_key=PublicKey.from_jwk(claims["cnf"]["jwk"]))
        return claims


@pytest.fixture(params=["sqlite", "postgres"])
def ap_database(request: pytest.FixtureRequest) -> str:
    """Where the provider keeps its state: SQLite in memory or a fresh PostgreSQL database."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return ":memory:"


@pytest.fixture
def site(ap_database: str) -> Iterator[Site]:
    ap = AgentProviderServer(AgentProviderConfig(issuer=AP, ps=PS, database=ap_database))
    with LoopbackServer(ap.app()) as server:
        s = Site(ap, server.url)
        with s.http:
            yield s
    ap.close()


def _raw_post(
    site: Site,
    path: str,
    body: bytes,
    key: PrivateKey,
    signature_key: SignatureKey,
    components: list[str] | None = None,
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    signed = sign_request(
        HttpRequest("POST", AP + path, headers, body),
        key=key,
        signature_key=signature_key,
        components=components,
    )
    return site.http.post(AP + path, content=body, headers={**headers, **signed})


def test_metadata_and_jwks(site: Site) -> None:
    metadata = site.http.get(f"{AP}/.well-known/aauth-agent.json").json()
    assert metadata["issuer"] == AP and metadata["jwks_uri"] == f"{AP}/.well-known/jwks.json"
    keys = site.http.get(metadata["jwks_uri"]).json()["keys"]
    assert [k["kid"] for k in keys] == [site.ap.provider.key.kid]
    assert "d" not in keys[0]


def test_enrolment_binds_the_key_that_signed(site: Site) -> None:
    code = site.ap.create_enrollment(AGENT)
    key = PrivateKey.generate()
    identity = site.client.enroll(code, key)
    claims = site.verify(identity.agent_token)
    assert claims["sub"] == AGENT and claims["iss"] == AP and claims["ps"] == PS
    assert claims["cnf"] == {"jwk": key.public_key.to_jwk(kid=False)}
    assert "parent_agent" not in claims
    record = site.ap.agent(AGENT)
    assert record is not None and record.thumbprint == key.thumbprint()
    # The code is spent: nobody else can enrol with it.
    with pytest.raises(ProtocolError) as info:
        site.client.enroll(code)
    assert info.value.code == "invalid_code" and info.value.status == 403
    assert site.ap.agent(AGENT) == record


def test_unknown_code_and_unsigned_body_change_nothing(site: Site) -> None:
    with pytest.raises(ProtocolError) as info:
        site.client.enroll("not-a-code")
    assert info.value.code == "invalid_code"
    code = site.ap.create_enrollment(AGENT)
    key = PrivateKey.generate()
    body = json.dumps({"code": code}).encode()
    # The body is not covered: refused, and the code is still good.
    response = _raw_post(
        site,
        "/enroll",
        body,
        key,
        SignatureKey.from_public_key(key.public_key),
        components=["@method", "@authority", "@path", "signature-key"],
    )
    assert response.status_code == 401, response.text
    assert site.ap.agent(AGENT) is None
    # An agent token is not how one enrols (the key proves possession inline).
    other = site.ap.provider.mint(key, "aauth:other@agent.example")
    assert _raw_post(site, "/enroll", body, key, SignatureKey.from_jwt(other)).status_code == 401
    assert site.client.enroll(code, key).agent_id == AGENT


@pytest.mark.parametrize(
    "body",
    [
        b'{"code": "%s", "code": "%s"}',  # two parsers could read two different codes
        b'["%s", "%s"]',
        b'{"code": "%s", "n": NaN, "m": "%s"}',
    ],
)
def test_enrolment_body_is_parsed_strictly(site: Site, body: bytes) -> None:
    code = site.ap.create_enrollment(AGENT)
    key = PrivateKey.generate()
    response = _raw_post(
        site,
        "/enroll",
        body % (b"not-a-code", code.encode()),
        key,
        SignatureKey.from_public_key(key.public_key),
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert site.ap.agent(AGENT) is None
    assert site.client.enroll(code, key).agent_id == AGENT


def test_enrolment_refuses_foreign_and_duplicate_agents(site: Site) -> None:
    with pytest.raises(Exception, match="domain"):
        site.ap.create_enrollment("aauth:assistant@elsewhere.example")
    with pytest.raises(Exception, match="sub-agent"):
        site.ap.create_enrollment("aauth:a+b@agent.example")
    site.client.enroll(site.ap.create_enrollment(AGENT))
    with pytest.raises(Exception, match="already enrolled"):
        site.ap.create_enrollment(AGENT)


def test_refresh_by_the_enrolled_key_only(site: Site) -> None:
    key = PrivateKey.generate()
    identity = site.client.enroll(site.ap.create_enrollment(AGENT), key)
    first = identity.agent_token
    fresh = site.client.refresh(key, first)
    assert peek(fresh)[1]["jti"] != peek(first)[1]["jti"]
    assert site.verify(fresh)["sub"] == AGENT
    # The identity refreshes through the provider when its token is near expiry.
    identity.refresh_margin = 10_000
    assert identity.current_token() != first and identity.generation == 1
    # Another key presenting the token cannot sign for it; a token minted by the provider
    # for a key that was never enrolled is refused.
    thief = PrivateKey.generate()
    assert _raw_post(site, "/token", b"{}", thief, SignatureKey.from_jwt(first)).status_code == 401
    stray = site.ap.provider.mint(thief, AGENT)
    response = _raw_post(site, "/token", b"{}", thief, SignatureKey.from_jwt(stray))
    assert response.status_code == 403 and response.json()["error"] == "invalid_agent_token"


def test_sub_agents_are_one_level_deep(site: Site) -> None:
    parent = site.client.enroll(site.ap.create_enrollment(AGENT))
    child_key = PrivateKey.generate()
    child = site.client.subagent(parent, "search1", child_key)
    claims = site.verify(child.agent_token)
    assert claims["sub"] == "aauth:assistant+search1@agent.example"
    assert claims["parent_agent"] == AGENT and claims["ps"] == PS
    assert claims["cnf"] == {"jwk": child_key.public_key.to_jwk(kid=False)}
    # The sub-agent refreshes its own token; it cannot have sub-agents.
    assert site.verify(site.client.refresh(child_key, child.agent_token))["parent_agent"] == AGENT
    with pytest.raises(ProtocolError) as info:
        site.client.subagent(child, "deeper")
    assert info.value.status == 403
    with pytest.raises(ProtocolError):
        site.client.subagent(parent, "Bad Name")
    # The same name with another key is refused.
    with pytest.raises(ProtocolError) as info:
        site.client.subagent(parent, "search1")
    assert info.value.status == 409


def test_state_survives_a_restart(tmp_path: Path) -> None:
    ap = AgentProviderServer(AgentProviderConfig(issuer=AP, database=tmp_path, ps=PS))
    code = ap.create_enrollment(AGENT)
    kid = ap.provider.key.kid
    ap.close()
    again = AgentProviderServer(AgentProviderConfig(issuer=AP, database=tmp_path))
    assert again.provider.key.kid == kid
    with LoopbackServer(again.app()) as server:
        s = Site(again, server.url)
        with s.http:
            identity = s.client.enroll(code)
            assert s.verify(identity.agent_token)["ps"] == PS
    assert [a.agent_id for a in again.agents()] == [AGENT]
    assert (tmp_path / "ap.sqlite3").stat().st_mode & 0o077 == 0
    again.close()


def test_two_providers_share_one_postgres_database(postgres_url: str) -> None:
    """Two provider processes on one PostgreSQL database: one signing key (the first to
    start generated it), and what one enrols the other refreshes."""
    one = AgentProviderServer(AgentProviderConfig(issuer=AP, ps=PS, database=postgres_url))
    two = AgentProviderServer(AgentProviderConfig(issuer=AP, ps=PS, database=postgres_url))
    assert one.provider.key.kid == two.provider.key.kid
    assert one.provider.key.public_key.same_key(two.provider.key.public_key.to_jwk())
    code = one.create_enrollment(AGENT)
    with LoopbackServer(one.app()) as first, LoopbackServer(two.app()) as second:
        a, b = Site(one, first.url), Site(two, second.url)
        with a.http, b.http:
            identity = a.client.enroll(code)
            token = b.client.refresh(identity.key, identity.agent_token)
            assert b.verify(token)["sub"] == AGENT
    assert [r.agent_id for r in two.agents()] == [AGENT]
    one.close()
    two.close()


def test_revocation_reaches_the_person_server(ap_database: str) -> None:
    """The provider revokes an agent; the PS (real, over HTTP) refuses its token from then
    on, and the provider issues no new one."""
    ap = AgentProviderServer(AgentProviderConfig(issuer=AP, ps=PS, database=ap_database))
    with LoopbackServer(ap.app()) as ap_server:
        discovery = AsyncDiscovery(
            transport=AsyncMappedTransport({AP: ap_server.url}, strict=True),
            egress=EgressPolicy.for_mapped_hosts(
                {"agent.example": "127.0.0.1"}, allow_loopback=True
            ),
        )
        ps_app = create_person_server(
            PersonServerConfig(
                issuer=PS,
                discovery=discovery,
                policy=AutoApprove(),
                default_person="alice",
                password_log2_n=14,
                database=ap_database,
            )
        )
        ps = ps_app.state.person_server
        ps.accounts.create_account("alice", "correct horse battery staple")
        with LoopbackServer(ps_app) as ps_server:
            ap.config.connect = {PS: ps_server.url}
            http = httpx.Client(
                transport=MappedTransport({AP: ap_server.url, PS: ps_server.url}, strict=True),
                timeout=10,
            )
            with http:
                client = AgentProviderClient(AP, http)
                identity = client.enroll(ap.create_enrollment(AGENT))
                child = client.subagent(identity, "helper")

                def mission() -> httpx.Response:
                    body = json.dumps({"description": "Say hello"}).encode()
                    headers = {"content-type": "application/json"}
                    signed = sign_request(
                        HttpRequest("POST", f"{PS}/mission", headers, body),
                        key=identity.key,
                        signature_key=SignatureKey.from_jwt(identity.agent_token),
                    )
                    return http.post(f"{PS}/mission", content=body, headers={**headers, **signed})

                assert mission().status_code == 200
                result = asyncio.run(ap.revoke_agent(AGENT))
                assert sorted(result.revoked_agents) == sorted([AGENT, child.agent_id])
                by_agent = {c.agent_id: c for c in result.calls}
                assert by_agent[AGENT].status == 200, by_agent[AGENT]
                assert by_agent[child.agent_id].status == 404  # the PS never saw it
                assert by_agent[AGENT].jti == peek(identity.agent_token)[1]["jti"]
                refused = mission()
                assert refused.status_code == 401, refused.text
                assert refused.headers["signature-error"] == "error=invalid_jwt"
                with pytest.raises(ProtocolError) as info:
                    client.refresh(identity.key, identity.agent_token)
                assert info.value.code == "revoked"
                with pytest.raises(ProtocolError):
                    client.refresh(child.key, child.agent_token)
                # Revoking again calls nobody: nothing unexpired is left unrevoked.
                assert asyncio.run(ap.revoke_agent(AGENT)).calls == []
    ap.close()


def test_housekeeping_forgets_expired_codes_and_token_records(ap_database: str) -> None:
    clock = FrozenClock(time.time())
    ap = AgentProviderServer(
        AgentProviderConfig(
            issuer=AP, ps=PS, clock=clock, purge_interval=1000, database=ap_database
        )
    )

    def rows(table: str) -> int:
        return int(ap.db.execute(f"SELECT COUNT(*) FROM {table}")[0][0])

    with (
        LoopbackServer(ap.app()) as server,
        httpx.Client(transport=MappedTransport({AP: server.url}, strict=True), timeout=10) as http,
    ):
        client = AgentProviderClient(AP, http, clock=clock)
        ap.create_enrollment("aauth:late@agent.example")  # never used: expires after 900 s
        key = PrivateKey.generate()
        first = client.enroll(ap.create_enrollment(AGENT), key)
        assert (rows("ap_enrollments"), rows("ap_tokens")) == (1, 1)
        clock.advance(950)  # the unused code has expired; the pass is not due (1000 s)
        second = client.refresh(key, first.agent_token)
        assert (rows("ap_enrollments"), rows("ap_tokens")) == (1, 2)
        clock.advance(3600 + 301 - 950)  # the first token is past exp + grace; the pass is due
        third = client.refresh(key, second)
        assert rows("ap_enrollments") == 0
        assert rows("ap_tokens") == 2  # the second and the third
        assert peek(third)[1]["sub"] == AGENT
    ap.close()
