from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.ps import PASSWORD, World, make_world


@pytest.fixture(params=["sqlite", "postgres"])
def ps_database(request: pytest.FixtureRequest) -> str:
    """Where the PS of ``world``, ``bare`` and ``auto`` keeps its state: SQLite in memory,
    or a fresh PostgreSQL database (the same tests pass on both)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return ":memory:"


@pytest.fixture
async def world(ps_database: str) -> AsyncIterator[World]:
    """A PS with the default policy (interactive consent) and one person, alice."""
    w = make_world()
    w.database = ps_database
    w.start()
    assert w.ps is not None
    w.ps.accounts.create_account(
        "alice",
        PASSWORD,
        claims={"email": "alice@example.com", "email_verified": True, "name": "Alice Example"},
    )
    try:
        yield w
    finally:
        await w.close()


@pytest.fixture
async def bare(ps_database: str) -> AsyncIterator[World]:
    """A world whose PS each test starts itself (``world.start(...)``)."""
    w = make_world()
    w.database = ps_database
    try:
        yield w
    finally:
        await w.close()


@pytest.fixture
async def auto(ps_database: str) -> AsyncIterator[World]:
    """A PS that approves everything for alice (unattended runs)."""
    from aauth_agents.servers.person_server import AutoApprove

    w = make_world()
    w.database = ps_database
    w.start(policy=AutoApprove(), default_person="alice")
    assert w.ps is not None
    w.ps.accounts.create_account(
        "alice",
        PASSWORD,
        tenant=None,
        claims={
            "email": "alice@example.com",
            "email_verified": True,
            "name": "Alice Example",
            "phone_number": "+1 555 0100",
        },
    )
    try:
        yield w
    finally:
        await w.close()
