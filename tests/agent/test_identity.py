"""AgentIdentity: key + agent token, refreshed before expiry, generation bumped on change."""

from __future__ import annotations

import pytest

from aauth_agents.agent import AgentIdentity
from aauth_agents.clock import FrozenClock
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.errors import ConfigurationError
from aauth_agents.tokens import mint_agent_token

AP = "https://agent.example"


def make(clock: FrozenClock) -> tuple[PrivateKey, PrivateKey, list[str]]:
    """A provider key, an agent key and the list of agent tokens minted so far."""
    return PrivateKey.generate(), PrivateKey.generate(), []


def source(provider: PrivateKey, clock: FrozenClock, minted: list[str], lifetime: int = 3600):  # type: ignore[no-untyped-def]
    def mint(key: PrivateKey) -> str:
        token = mint_agent_token(
            provider,
            iss=AP,
            sub="aauth:a@agent.example",
            cnf=key.public_key,
            ps="https://ps.example",
            lifetime=lifetime,
            clock=clock,
        )
        minted.append(token)
        return token

    return mint


def test_claims_and_refresh_before_expiry() -> None:
    clock = FrozenClock()
    provider, key, minted = make(clock)
    mint = source(provider, clock, minted)
    identity = AgentIdentity(key, mint(key), token_source=mint, refresh_margin=300, clock=clock)
    assert identity.agent_id == "aauth:a@agent.example"
    assert identity.ps == "https://ps.example" and identity.issuer == AP
    first = identity.current_token()
    assert first == minted[0] and identity.generation == 0
    clock.advance(3600 - 301)
    assert identity.current_token() == first
    clock.advance(2)
    assert identity.current_token() == minted[1] != first
    assert identity.generation == 1


def test_rotation_replaces_key_and_token() -> None:
    clock = FrozenClock()
    provider, key, minted = make(clock)
    mint = source(provider, clock, minted)
    identity = AgentIdentity(key, mint(key), token_source=mint, clock=clock)
    new_key = PrivateKey.generate()
    identity.rotate(new_key)
    assert identity.key is new_key and identity.generation == 1
    assert identity.agent_token == minted[-1]


def test_token_for_another_key_is_refused() -> None:
    clock = FrozenClock()
    provider, key, minted = make(clock)
    other = PrivateKey.generate()
    token = source(provider, clock, minted)(other)
    with pytest.raises(ConfigurationError):
        AgentIdentity(key, token, clock=clock)
    identity = AgentIdentity(other, token, clock=clock)
    with pytest.raises(ConfigurationError):
        identity.rotate(key, token)  # a token for `other` cannot vouch for `key`
    assert identity.key is other and identity.generation == 0


def test_rotation_without_source_needs_a_token() -> None:
    clock = FrozenClock()
    provider, key, minted = make(clock)
    identity = AgentIdentity(key, source(provider, clock, minted)(key), clock=clock)
    with pytest.raises(ConfigurationError):
        identity.rotate(PrivateKey.generate())
