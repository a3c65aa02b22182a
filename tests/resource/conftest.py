from __future__ import annotations

import pytest
from resource_support import World


@pytest.fixture
def world() -> World:
    return World()
