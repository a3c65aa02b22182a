"""Fixtures for the httpsig tests: keys and a fixed clock."""

from __future__ import annotations

import pytest
from support.httpsig import NOW

from aauth_agents.clock import FrozenClock
from aauth_agents.keys import ED25519, ES256, PrivateKey


@pytest.fixture(scope="session")
def ed_key() -> PrivateKey:
    return PrivateKey.generate(ED25519)


@pytest.fixture(scope="session")
def ec_key() -> PrivateKey:
    return PrivateKey.generate(ES256)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)
