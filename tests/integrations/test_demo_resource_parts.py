"""The demo resource's parts: the file store's limits (in memory and in Redis, alike),
``mapped_discovery``'s egress rules, and the constructor's checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aauth_agents.discovery import AsyncDiscovery
from aauth_agents.protocol.errors import ConfigurationError, EgressDeniedError
from aauth_agents.servers.demo_resource import (
    WELCOME,
    DemoFileError,
    DemoFiles,
    RedisDemoFiles,
    demo_resource,
    mapped_discovery,
)
from aauth_agents.tokens import StaticIssuerKeys

ALICE = ("https://ps.example", "alice")
BOB = ("https://ps.example", "bob")

Files = DemoFiles | RedisDemoFiles


@pytest.fixture(params=["memory", "redis"])
def make_files(request: pytest.FixtureRequest) -> Iterator[Callable[..., Files]]:
    """Build the file store under test: :class:`DemoFiles`, or :class:`RedisDemoFiles` on
    a real, emptied Redis (``max_people`` is the memory store's bound alone)."""
    if request.param == "memory":
        yield DemoFiles
        return
    from aauth_agents.stores.redis import RedisConnection

    with RedisConnection(request.getfixturevalue("redis_url")) as conn:

        def build(*args: Any, max_people: int | None = None, **kwargs: Any) -> Files:
            return RedisDemoFiles(conn, *args, **kwargs)

        yield build


def test_each_person_has_a_folder_seeded_with_the_welcome_file(
    make_files: Callable[..., Files],
) -> None:
    files = make_files()
    assert files.write(ALICE, "a.txt", "hello") == {"name": "a.txt", "size": 5, "created": True}
    assert files.write(ALICE, "a.txt", "héllo") == {"name": "a.txt", "size": 6, "created": False}
    assert [f["name"] for f in files.list(ALICE)] == ["a.txt", "welcome.txt"]
    assert files.read(BOB, "a.txt") is None
    assert files.read(BOB, "welcome.txt") == WELCOME["welcome.txt"]


@pytest.mark.parametrize("name", ["", ".hidden", "../x", "a/b", "x" * 65, "naïve.txt", 7])
def test_bad_names_are_refused_and_nothing_is_written(
    name: object, make_files: Callable[..., Files]
) -> None:
    files = make_files()
    with pytest.raises(DemoFileError):
        files.write(ALICE, name, "x")  # type: ignore[arg-type]
    assert files.list(ALICE) == [{"name": "welcome.txt", "size": 43}]


def test_limits(make_files: Callable[..., Files]) -> None:
    files = make_files(seed={}, max_files=2, max_bytes=4, max_people=2)
    with pytest.raises(DemoFileError):
        files.write(ALICE, "big", "12345")
    with pytest.raises(DemoFileError):
        files.write(ALICE, "bytes", "ééé")  # 6 bytes in UTF-8
    with pytest.raises(DemoFileError):
        files.write(ALICE, "notes", None)  # type: ignore[arg-type]
    files.write(ALICE, "one", "1")
    files.write(ALICE, "two", "2")
    with pytest.raises(DemoFileError):
        files.write(ALICE, "three", "3")
    files.write(ALICE, "two", "22")  # replacing is not adding
    assert files.read(BOB, "b") is None  # reading creates no folder
    files.write(BOB, "b", "b")
    assert files.delete(BOB, "b") and not files.delete(BOB, "b")
    assert files.list(BOB) == []  # an emptied folder is not seeded again
    files.write(BOB, "b", "b")
    if isinstance(files, DemoFiles):
        files.write(("https://ps.example", "carol"), "c", "c")  # a third folder: alice's goes
        assert files.list(ALICE) == []
    assert files.read(BOB, "b") == "b"


async def test_the_async_twins_share_the_store(make_files: Callable[..., Files]) -> None:
    files = make_files()
    assert await files.awrite(ALICE, "a.txt", "hé") == {"name": "a.txt", "size": 3, "created": True}
    assert files.read(ALICE, "a.txt") == await files.aread(ALICE, "a.txt") == "hé"
    assert await files.alist(ALICE) == files.list(ALICE)
    assert [f["name"] for f in await files.alist(ALICE)] == ["a.txt", "welcome.txt"]
    assert await files.adelete(ALICE, "welcome.txt")
    assert await files.aread(ALICE, "welcome.txt") is None
    assert await files.alist(BOB) == [{"name": "welcome.txt", "size": 43}]


async def test_mapped_discovery_admits_loopback_for_mapped_hosts_only() -> None:
    discovery = mapped_discovery({"https://agents.example": "http://127.0.0.1:9"})
    assert [
        str(a)
        for a in discovery.egress.admit("https://agents.example/.well-known/aauth-agent.json")
    ] == ["127.0.0.1"]
    with pytest.raises((EgressDeniedError, OSError)):  # localhost is not mapped
        discovery.egress.admit("https://localhost/.well-known/aauth-agent.json")
    with pytest.raises(EgressDeniedError):  # https only, as ever
        discovery.egress.admit("http://agents.example/.well-known/aauth-agent.json")
    await discovery.aclose()
    plain = mapped_discovery({})
    assert isinstance(plain, AsyncDiscovery) and not plain.egress.allow_loopback
    await plain.aclose()


def test_the_issuer_must_be_a_server_identifier() -> None:
    for issuer in ("http://resource.example", "https://resource.example/", "resource"):
        with pytest.raises(ConfigurationError):
            demo_resource(issuer, issuer_keys=StaticIssuerKeys({}))
