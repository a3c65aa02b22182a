from __future__ import annotations

import pytest
from support.tokens import World


@pytest.fixture(params=["Ed25519", "ES256"])
def world(request: pytest.FixtureRequest) -> World:
    """Issuers signing with Ed25519, then with ES256."""
    return World(request.param)


@pytest.fixture
def ed_world() -> World:
    return World("Ed25519")
