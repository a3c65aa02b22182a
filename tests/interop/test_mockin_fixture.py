"""The mockin fixture starts a real -11 person server that answers as https://ps.example."""

from __future__ import annotations

from typing import Any

import httpx

from aauth_agents.protocol.metadata import PersonServerMetadata
from aauth_agents.transport import MappedTransport


def test_mockin_metadata_through_mapped_transport(mockin: Any) -> None:
    with httpx.Client(transport=MappedTransport(mockin.mapping, strict=True)) as client:
        response = client.get("https://ps.example/.well-known/aauth-person.json")
    metadata = PersonServerMetadata.from_json(response.json(), expected_issuer="https://ps.example")
    assert metadata.issuer == "https://ps.example"
    assert metadata.person_token_endpoint == "https://ps.example/aauth/token/person"


def test_mockin_configure_and_reset(mockin: Any) -> None:
    assert mockin.configure(auto_approve=False, requirement="interaction")["auto_approve"] is False
    mockin.reset()
    assert mockin.configure()["auto_approve"] is True
