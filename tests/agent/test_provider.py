"""The self-hosted agent provider: agent tokens for its own domain, sub-agents one level deep,
metadata and JWKS over real HTTP, and local agents kept in a key store."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.agent import AgentIdentity
from aauth_agents.agent.provider import (
    AGENT_ENTRY,
    AGENT_KEY_ENTRY,
    PROVIDER_KEY_ENTRY,
    AgentExistsError,
    AgentNotFoundError,
    LocalAgentProvider,
    init_local_agent,
    load_identity,
    load_local_agent,
)
from aauth_agents.agent.storage import (
    DirectoryKeyStore,
    KeyStoreError,
    MemoryKeyStore,
    read_json,
    write_json,
)
from aauth_agents.clock import FrozenClock
from aauth_agents.discovery import Discovery, EgressPolicy
from aauth_agents.keys import ES256, PrivateKey
from aauth_agents.protocol.errors import ConfigurationError, TokenError
from aauth_agents.protocol.metadata import AgentProviderMetadata
from aauth_agents.servers import LoopbackServer
from aauth_agents.tokens import StaticIssuerKeys, peek, verify_agent_token
from aauth_agents.transport import MappedTransport

AP = "https://agent.example"
PS = "https://ps.example"


def provider(clock: FrozenClock | None = None, **kwargs: object) -> LocalAgentProvider:
    return LocalAgentProvider(
        AP,
        PrivateKey.generate(),
        ps=PS,
        clock=clock or FrozenClock(),
        **kwargs,  # type: ignore[arg-type]
    )


def keys_of(p: LocalAgentProvider) -> StaticIssuerKeys:
    return StaticIssuerKeys().add_jwks(AP, "aauth-agent.json", p.jwks())


# -- minting --


def test_top_level_agent_token_verifies_against_the_published_jwks() -> None:
    clock = FrozenClock()
    p = provider(clock)
    agent = PrivateKey.generate()
    token = p.mint(agent, "aauth:assistant@agent.example")
    verified = verify_agent_token(token, keys=keys_of(p), signing_key=agent.public_key, clock=clock)
    assert verified.iss == AP and verified.sub == "aauth:assistant@agent.example"
    assert verified.ps == PS and verified.parent_agent is None
    assert verified.exp - verified.iat == 3600
    header, claims = peek(token)
    assert header["kid"] == p.key.kid and claims["dwk"] == "aauth-agent.json"
    assert claims["cnf"]["jwk"]["alg"] == "Ed25519" and "d" not in claims["cnf"]["jwk"]


def test_ps_can_be_overridden_per_token_and_left_out() -> None:
    p = LocalAgentProvider(AP, PrivateKey.generate(), clock=FrozenClock())
    agent = PrivateKey.generate()
    assert "ps" not in peek(p.mint(agent, "aauth:a@agent.example"))[1]
    assert peek(p.mint(agent, "aauth:a@agent.example", ps=PS))[1]["ps"] == PS


def test_sub_agent_token_names_its_parent() -> None:
    clock = FrozenClock()
    p = provider(clock)
    sub = PrivateKey.generate(ES256)
    token = p.mint(
        sub,
        "aauth:planner.7f3c+search1@agent.example",
        parent_agent="aauth:planner.7f3c@agent.example",
    )
    verified = verify_agent_token(token, keys=keys_of(p), signing_key=sub.public_key, clock=clock)
    assert verified.parent_agent == "aauth:planner.7f3c@agent.example"
    assert verified.is_subagent and verified.cnf.alg == ES256


@pytest.mark.parametrize(
    ("agent_id", "parent", "reason"),
    [
        ("aauth:a@other.example", None, "not in this provider's domain"),
        ("aauth:a@sub.agent.example", None, "not in this provider's domain"),
        ("aauth:a+b@agent.example", None, "sub-agent delimiter"),
        ("aauth:a+b+c@agent.example", "aauth:a+b@agent.example", "sub-agent"),
        ("aauth:a+c@agent.example", "aauth:a+b@agent.example", "never nested"),
        ("aauth:x+c@agent.example", "aauth:a@agent.example", "is named aauth:a\\+DISCRIMINATOR"),
        ("aauth:a@agent.example", "aauth:a@agent.example", "is named"),
        ("aauth:a+c@agent.example", "aauth:a@other.example", "parent agent"),
        ("Agent@agent.example", None, "not an agent identifier"),
        ("aauth:a+c@agent.example", "not-an-id", "not an agent identifier"),
    ],
)
def test_identifiers_the_provider_refuses(agent_id: str, parent: str | None, reason: str) -> None:
    p = provider()
    with pytest.raises(ConfigurationError, match=reason):
        p.mint(PrivateKey.generate(), agent_id, parent_agent=parent)
    with pytest.raises(ConfigurationError):
        p.token_source(agent_id, parent_agent=parent)


def test_the_provider_key_is_never_an_agent_key() -> None:
    p = provider()
    with pytest.raises(ConfigurationError, match="provider's signing key"):
        p.mint(p.key, "aauth:a@agent.example")


def test_configuration_is_checked() -> None:
    key = PrivateKey.generate()
    for bad_issuer in ("http://agent.example", "https://agent.example/", "https://Agent.example"):
        with pytest.raises(ConfigurationError):
            LocalAgentProvider(bad_issuer, key)
    with pytest.raises(ConfigurationError, match="kid"):
        LocalAgentProvider(AP, PrivateKey(alg=key.alg, kid=None, crypto=key.crypto))
    with pytest.raises(ConfigurationError, match="lifetime"):
        LocalAgentProvider(AP, key, lifetime=86_401)
    with pytest.raises(ConfigurationError):
        LocalAgentProvider(AP, key, ps="https://ps.example:8443")


_local = st.text(alphabet="abc+.-_", min_size=0, max_size=8)
_domain = st.sampled_from(["agent.example", "other.example", "AGENT.example", ""])


@given(
    local=_local,
    domain=_domain,
    parent=st.none() | st.tuples(_local, _domain).map(lambda t: f"aauth:{t[0]}@{t[1]}"),
)
def test_every_token_minted_obeys_the_rules(local: str, domain: str, parent: str | None) -> None:
    """Whatever it is asked, the provider issues a token that keeps the rules or refuses with
    a typed error."""
    clock = FrozenClock()
    p = provider(clock)
    key = PrivateKey.generate()
    agent_id = f"aauth:{local}@{domain}"
    try:
        token = p.mint(key, agent_id, parent_agent=parent)
    except ConfigurationError:
        return
    verified = verify_agent_token(token, keys=keys_of(p), signing_key=key.public_key, clock=clock)
    sub_local, _, sub_domain = verified.sub[len("aauth:") :].rpartition("@")
    assert sub_domain == "agent.example"
    if verified.parent_agent is None:
        assert "+" not in sub_local
    else:
        parent_local, _, parent_domain = verified.parent_agent[len("aauth:") :].rpartition("@")
        assert parent_domain == "agent.example" and "+" not in parent_local
        assert sub_local.startswith(parent_local + "+")


# -- refresh through AgentIdentity --


def test_token_source_refreshes_and_follows_rotation() -> None:
    clock = FrozenClock()
    p = provider(clock, lifetime=600)
    key = PrivateKey.generate()
    identity = p.identity(key, "aauth:a@agent.example", refresh_margin=60)
    first = identity.current_token()
    clock.advance(600 - 59)
    second = identity.current_token()
    assert second != first and identity.generation == 1
    assert peek(second)[1]["exp"] == int(clock()) + 600
    new_key = PrivateKey.generate()
    identity.rotate(new_key)
    assert identity.key is new_key
    verify_agent_token(
        identity.current_token(), keys=keys_of(p), signing_key=new_key.public_key, clock=clock
    )


def test_a_token_minted_by_another_provider_key_does_not_verify() -> None:
    clock = FrozenClock()
    p, impostor = provider(clock), provider(clock)
    key = PrivateKey.generate()
    token = impostor.mint(key, "aauth:a@agent.example")
    with pytest.raises(TokenError):
        verify_agent_token(token, keys=keys_of(p), signing_key=key.public_key, clock=clock)


# -- published documents over real HTTP --


def test_metadata_and_jwks_served_over_loopback_verify_a_token() -> None:
    clock = FrozenClock()
    old = PrivateKey.generate(kid="old")
    p = provider(clock, name="Local agents", previous_keys=[old.public_key], cache_max_age=120)
    agent = PrivateKey.generate()
    token = p.mint(agent, "aauth:a@agent.example")
    with LoopbackServer(p.app()) as server:
        transport = MappedTransport({AP: server.url}, strict=True)
        with httpx.Client(transport=transport) as client:
            response = client.get(f"{AP}/.well-known/aauth-agent.json")
            assert response.headers["cache-control"] == "public, max-age=120"
            metadata = AgentProviderMetadata.from_json(response.json(), expected_issuer=AP)
            assert metadata.jwks_uri == f"{AP}/.well-known/jwks.json"
            assert metadata.name == "Local agents"
            jwks = client.get(metadata.jwks_uri).json()
            assert [k["kid"] for k in jwks["keys"]] == [p.key.kid, "old"]
            assert all("d" not in k and k["alg"] for k in jwks["keys"])
            assert client.post(f"{AP}/.well-known/jwks.json").status_code == 405
        discovery = Discovery(
            transport=MappedTransport({AP: server.url}, strict=True),
            egress=EgressPolicy.for_mapped_hosts(
                {"agent.example": "127.0.0.1"}, allow_loopback=True
            ),
            clock=clock,
        )
        with discovery:
            verified = verify_agent_token(
                token, keys=discovery, signing_key=agent.public_key, clock=clock
            )
    assert verified.sub == "aauth:a@agent.example"


# -- local agents in a key store --


@pytest.fixture(params=["memory", "directory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MemoryKeyStore | DirectoryKeyStore:
    return MemoryKeyStore() if request.param == "memory" else DirectoryKeyStore(tmp_path / "k")


def test_init_then_load_gives_the_same_agent(store: MemoryKeyStore | DirectoryKeyStore) -> None:
    clock = FrozenClock()
    created = init_local_agent(store, "aauth:dev@agent.example", ps=PS, name="Dev", clock=clock)
    loaded = load_local_agent(store, clock=clock)
    assert loaded.agent_id == created.agent_id and loaded.ps == PS
    assert loaded.thumbprint == created.thumbprint
    assert loaded.provider.key.public_key.same_key(created.provider.key.public_key)
    assert loaded.provider.issuer == AP and loaded.provider.name == "Dev"
    identity = load_identity(store, clock=clock)
    assert isinstance(identity, AgentIdentity)
    assert identity.agent_id == "aauth:dev@agent.example" and identity.ps == PS
    verify_agent_token(
        identity.current_token(),
        keys=StaticIssuerKeys().add_jwks(AP, "aauth-agent.json", loaded.provider.jwks()),
        signing_key=created.key.public_key,
        clock=clock,
    )
    documents = loaded.provider_documents()
    assert documents["issuer"] == AP and documents["metadata"]["issuer"] == AP
    assert documents["jwks"] == loaded.provider.jwks()


def test_init_refuses_to_overwrite_unless_asked(store: MemoryKeyStore | DirectoryKeyStore) -> None:
    first = init_local_agent(store, "aauth:dev@agent.example", ps=PS)
    with pytest.raises(AgentExistsError):
        init_local_agent(store, "aauth:other@agent.example")
    assert load_local_agent(store).thumbprint == first.thumbprint
    second = init_local_agent(store, "aauth:other@agent.example", replace=True)
    loaded = load_local_agent(store)
    assert loaded.thumbprint == second.thumbprint != first.thumbprint
    assert loaded.agent_id == "aauth:other@agent.example" and loaded.ps is None


@pytest.mark.parametrize(
    "agent_id", ["aauth:dev+sub@agent.example", "aauth:dev@agent.example:8443", "nope"]
)
def test_init_with_a_bad_identifier_writes_nothing(tmp_path: Path, agent_id: str) -> None:
    store = DirectoryKeyStore(tmp_path / "k")
    with pytest.raises(ConfigurationError):
        init_local_agent(store, agent_id)
    assert not (tmp_path / "k").exists()


def test_load_from_an_empty_or_damaged_store(store: MemoryKeyStore | DirectoryKeyStore) -> None:
    with pytest.raises(AgentNotFoundError, match="keys init"):
        load_local_agent(store)
    init_local_agent(store, "aauth:dev@agent.example", ps=PS)
    settings = read_json(store, AGENT_ENTRY)
    assert settings is not None
    write_json(store, AGENT_ENTRY, {**settings, "issuer": "https://evil.example"})
    with pytest.raises(KeyStoreError, match="does not match"):
        load_local_agent(store)
    write_json(store, AGENT_ENTRY, {**settings, "lifetime": 10**9})
    with pytest.raises(KeyStoreError, match="lifetime"):
        load_local_agent(store)
    write_json(store, AGENT_ENTRY, settings)
    store.delete(AGENT_KEY_ENTRY)
    with pytest.raises(AgentNotFoundError, match="incomplete"):
        load_local_agent(store)


def test_directory_layout_is_private(tmp_path: Path) -> None:
    init_local_agent(DirectoryKeyStore(tmp_path / "k"), "aauth:dev@agent.example", ps=PS)
    names = sorted(os.listdir(tmp_path / "k"))
    assert names == sorted([AGENT_ENTRY, AGENT_KEY_ENTRY, PROVIDER_KEY_ENTRY])
    if os.name == "posix":
        assert all((os.stat(tmp_path / "k" / n).st_mode & 0o777) == 0o600 for n in names)


def test_sub_agent_identity() -> None:
    clock = FrozenClock()
    agent = init_local_agent(MemoryKeyStore(), "aauth:planner@agent.example", ps=PS, clock=clock)
    child = agent.sub_agent("search1")
    assert child.agent_id == "aauth:planner+search1@agent.example"
    assert child.parent_agent == "aauth:planner@agent.example"
    assert not child.key.public_key.same_key(agent.key.public_key)
    verified = verify_agent_token(
        child.current_token(),
        keys=StaticIssuerKeys().add_jwks(AP, "aauth-agent.json", agent.provider.jwks()),
        signing_key=child.key.public_key,
        clock=clock,
    )
    assert verified.parent_agent == agent.agent_id
    with pytest.raises(ConfigurationError):
        agent.sub_agent("")
