"""§Server Identifiers, §Endpoint URLs, §Agent Identifiers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol.identifiers import (
    is_agent_identifier,
    is_server_identifier,
    is_sub_agent_of,
    server_identifier_of,
    validate_endpoint_url,
    validate_https_url,
)


@pytest.mark.parametrize(
    "value", ["https://agent.example", "https://xn--nxasmq6b.example", "https://a.b.c.example"]
)
def test_valid_server_identifiers(value: str) -> None:
    assert is_server_identifier(value)


@pytest.mark.parametrize(
    "value",
    [
        "http://agent.example",
        "https://Agent.Example",
        "https://agent.example:8443",
        "https://agent.example/v1",
        "https://agent.example/",
        "https://agent.example?x",
        "https://agent.example#f",
        "https://user@agent.example",
        "https://127.0.0.1",
        "https://localhost",
        "https://-bad.example",
        "https://agent..example",
        " https://agent.example",
        "https://bücher.example",
        None,
        42,
    ],
)
def test_invalid_server_identifiers(value: object) -> None:
    assert not is_server_identifier(value)


@pytest.mark.parametrize(
    "value",
    [
        "aauth:assistant-v2@agent.example",
        "aauth:planner.7f3c@vendor.example",
        "aauth:planner.7f3c+search1@vendor.example",
    ],
)
def test_valid_agent_identifiers(value: str) -> None:
    assert is_agent_identifier(value)


@pytest.mark.parametrize(
    "value",
    [
        "My Agent@agent.example",
        "aauth:My Agent@agent.example",
        "aauth:@agent.example",
        "aauth:agent@http://agent.example",
        "aauth:Agent@agent.example",
        "aauth:a+b+c@agent.example",
        "aauth:+x@agent.example",
        "aauth:x+@agent.example",
        "aauth:" + "a" * 256 + "@agent.example",
        "aauth:agent@Agent.Example",
    ],
)
def test_invalid_agent_identifiers(value: str) -> None:
    assert not is_agent_identifier(value)


def test_sub_agent_naming_is_display_only_helper() -> None:
    assert is_sub_agent_of("aauth:planner+s1@vendor.example", "aauth:planner@vendor.example")
    assert not is_sub_agent_of("aauth:planner+s1@other.example", "aauth:planner@vendor.example")


def test_server_identifier_of_url() -> None:
    assert server_identifier_of("https://ps.example/token?x=1") == "https://ps.example"
    with pytest.raises(ValueError):
        server_identifier_of("https://ps.example:8443/token")


def test_endpoint_urls() -> None:
    assert validate_endpoint_url("https://ps.example/token")
    for bad in [
        "http://ps.example/token",
        "https://ps.example/token?x=1",
        "https://ps.example/t#f",
    ]:
        with pytest.raises(ValueError):
            validate_endpoint_url(bad)
    assert validate_https_url("https://ps.example/jwks.json?v=1")
    with pytest.raises(ValueError):
        validate_https_url("http://ps.example/jwks.json")


@given(st.text(max_size=80))
def test_identifier_validators_never_crash(value: str) -> None:
    for check in (is_server_identifier, is_agent_identifier):
        assert check(value) in (True, False)
    if is_server_identifier(value):
        assert value == value.lower() and value.startswith("https://") and value.count("/") == 2
