"""The demo resource's parts: the file store's limits, ``mapped_discovery``'s egress rules,
and the constructor's checks."""

from __future__ import annotations

import pytest

from aauth_agents.discovery import AsyncDiscovery
from aauth_agents.protocol.errors import ConfigurationError, EgressDeniedError
from aauth_agents.servers.demo_resource import (
    WELCOME,
    DemoFileError,
    DemoFiles,
    demo_resource,
    mapped_discovery,
)
from aauth_agents.tokens import StaticIssuerKeys

ALICE = ("https://ps.example", "alice")
BOB = ("https://ps.example", "bob")


def test_each_person_has_a_folder_seeded_with_the_welcome_file() -> None:
    files = DemoFiles()
    assert files.write(ALICE, "a.txt", "hello") == {"name": "a.txt", "size": 5, "created": True}
    assert files.write(ALICE, "a.txt", "héllo") == {"name": "a.txt", "size": 6, "created": False}
    assert [f["name"] for f in files.list(ALICE)] == ["a.txt", "welcome.txt"]
    assert files.read(BOB, "a.txt") is None
    assert files.read(BOB, "welcome.txt") == WELCOME["welcome.txt"]


@pytest.mark.parametrize("name", ["", ".hidden", "../x", "a/b", "x" * 65, "naïve.txt", 7])
def test_bad_names_are_refused_and_nothing_is_written(name: object) -> None:
    files = DemoFiles()
    with pytest.raises(DemoFileError):
        files.write(ALICE, name, "x")  # type: ignore[arg-type]
    assert files.list(ALICE) == [{"name": "welcome.txt", "size": 43}]


def test_limits() -> None:
    files = DemoFiles(seed={}, max_files=2, max_bytes=4, max_people=2)
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
    files.write(("https://ps.example", "carol"), "c", "c")  # a third folder: alice's goes
    assert files.list(ALICE) == []
    assert files.read(BOB, "b") == "b"


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
