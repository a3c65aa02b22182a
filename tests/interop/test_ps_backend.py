"""The adapter that runs our PS behind mockin's interface (support/ps_backend.py): trust, the
mapping of mockin's settings, reset, consent through the real pages, injected errors in the
PS's own rendering -- and the mission scenario done as the spec requires (proposed and
approved first), which mockin's version skips."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.agent import AP, RESOURCE
from support.mockin import Setup
from support.ps_backend import ACCOUNT, ISSUER, MOCKIN_PATHS, AAuthPS, form_fields

from aauth_agents.protocol.errors import InvalidJWTError, ProtocolError
from aauth_agents.servers.person_server.pending import Reply


@pytest.fixture
def backend(aauth_ps_server: AAuthPS) -> Iterator[AAuthPS]:
    aauth_ps_server.reset()
    yield aauth_ps_server


@pytest.fixture
def mockin(backend: AAuthPS) -> AAuthPS:
    """The scenarios' ``setup`` and ``resource_url`` (conftest.py), on our PS only."""
    return backend


async def test_mission_proposed_approved_then_flows_to_the_auth_token(
    setup: Setup, resource_url: str
) -> None:
    """test_mission_flows_from_person_token_to_auth_token, with the mission proposed and
    approved first (§Person Token Endpoint: the PS MUST verify the mission exists)."""
    auth = setup.auth()
    client = setup.client(auth, resource_url)
    approval = await setup.governance(auth, client, "propose_mission", "Interop mission")
    response = await setup.request(client, "GET", f"{RESOURCE}/data")
    assert response.status_code == 200, response.text
    person = list(setup.resource.persons.values())
    assert person and person[0].mission_s256 == approval.s256
    assert setup.ps_hits["/aauth/mission"] == 1
    assert setup.ps_hits["/aauth/token/person"] == setup.ps_hits["/aauth/token/auth"] == 1
    assert setup.mockin.ps is not None
    mission = await _on_ps(setup.mockin, setup.mockin.ps.mission(approval.s256))
    assert mission is not None and mission.state == "active"


async def _on_ps(backend: AAuthPS, work: Any) -> Any:
    """Run a PS coroutine on the PS's own event loop (the loopback server's thread)."""
    import asyncio

    assert backend._loop is not None
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, backend._loop))


async def test_trust_and_reset(setup: Setup, resource_url: str) -> None:
    """Trusted documents are what the PS's discovery sees; reset forgets them along with
    the whole PS state (database, keys) and the settings."""
    backend: AAuthPS = setup.mockin
    assert backend.ps is not None
    first_ps, first_kid = backend.ps, backend.ps.keys.current.kid
    backend.configure(permission="denied")
    backend.reset()
    assert backend.ps is not first_ps and backend.ps.keys.current.kid != first_kid
    assert backend.settings["permission"] == "granted" and backend.directory.trusted == {}
    # The agent provider is no longer trusted: the PS cannot verify the agent token.
    client = setup.client(setup.auth(), resource_url)
    with pytest.raises(InvalidJWTError, match="not trusted"):
        await setup.request(client, "GET", f"{RESOURCE}/profile")
    # Trusted again through mockin's trusted_servers setting, effective at once.
    backend.configure(
        trusted_servers={
            AP: {
                "metadata": {"issuer": AP, "jwks_uri": f"{AP}/.well-known/jwks.json"},
                "jwks": {"keys": [setup.ap_key.public_key.to_jwk()]},
            },
            RESOURCE: {"metadata": setup.resource.metadata, "jwks": setup.resource.jwks},
        }
    )
    again = setup.client(setup.auth(), resource_url)
    assert (await setup.request(again, "GET", f"{RESOURCE}/profile")).status_code == 200


def test_configure_maps_mockins_settings_and_refuses_the_rest(backend: AAuthPS) -> None:
    current = backend.configure(requirement="approval", permission="denied")
    assert current["requirement"] == "approval" and current["permission"] == "denied"
    assert current["auto_approve"] is True and current["trusted_servers"] == {}
    with pytest.raises(ValueError, match="claims"):
        backend.configure(claims={"email": "x"})
    assert backend.settings["requirement"] == "approval"  # nothing changed by the refusal


async def test_auto_approve_completes_an_interaction_nobody_opens(
    setup: Setup, resource_url: str
) -> None:
    """mockin's default auto_approve: requirement=interaction is approved at once."""
    setup.mockin.configure(requirement="interaction")
    shown: list[tuple[str, str]] = []
    client = setup.client(
        setup.auth(on_interaction=lambda url, code: shown.append((url, code))), resource_url
    )
    assert (await setup.request(client, "GET", f"{RESOURCE}/data")).status_code == 200
    assert [url for url, _ in shown] == [f"{ISSUER}/aauth/consent"]


async def test_consent_goes_through_the_real_pages(setup: Setup, resource_url: str) -> None:
    backend: AAuthPS = setup.mockin
    backend.configure(auto_approve=False, person_requirement="interaction")
    codes: list[str] = []
    statuses: list[int] = []

    def person(url: str, code: str) -> None:
        codes.append(code)
        statuses.append(backend.consent(code.lower()))  # as typed: case-insensitive
        statuses.append(backend.consent(code))  # the code was used up

    client = setup.client(setup.auth(on_interaction=person), resource_url)
    assert (await setup.request(client, "GET", f"{RESOURCE}/profile")).status_code == 200
    assert statuses == [200, 410]
    assert backend.consent("AAAA-AAAA") == 410  # no such interaction
    assert backend.ps is not None
    binding = backend.ps.state.binding(AP, setup.identity.agent_id)
    assert binding is not None and binding.account == ACCOUNT


def test_form_fields_reads_what_a_browser_submits() -> None:
    html = (
        '<ul><li><input type="checkbox" form="decide" name="scope" value="a" checked>'
        '<input type="checkbox" form="decide" name="scope" value="b"></li></ul>'
        '<form id="decide"><input type="hidden" name="csrf" value="t">'
        '<button name="action" value="approve"></button></form>'
        '<form id="other"><input name="x" value="y"></form>'
    )
    assert form_fields(html, "decide") == [("scope", "a"), ("csrf", "t")]
    assert form_fields(html, "missing") is None


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("invalid_request", 400),
        ("expired_resource_token", 400),
        ("denied", 403),
        ("user_unreachable", 403),
        ("server_error", 500),
    ],
)
def test_injected_errors_are_rendered_by_the_ps(backend: AAuthPS, error: str, status: int) -> None:
    backend.configure(error=error, error_endpoint="token")
    expected = Reply.error(ProtocolError(f"Mock error: {error}", code=error))
    with httpx.Client(base_url=backend.url, headers={"host": "ps.example"}) as http:
        injected = http.post(MOCKIN_PATHS["auth_token"], json={})
        assert injected.status_code == expected.status == status
        assert injected.headers["content-type"] == "application/problem+json"
        assert injected.headers["cache-control"] == "no-store"
        assert injected.json() == json.loads(expected.body)
        # Scoped to the token endpoint: the person token endpoint is the PS's own, which
        # renders its refusal of this unsigned request the same way.
        own = http.post(MOCKIN_PATHS["person_token"], json={})
        assert own.status_code == 401
        assert own.headers["content-type"] == "application/problem+json"
        assert set(own.json()) >= {"error", "detail"} and "Mock" not in own.json()["detail"]
        # Unscoped, mockin's error applies to both token endpoints.
        backend.configure(error_endpoint=None)
        assert http.post(MOCKIN_PATHS["person_token"], json={}).json()["error"] == error
        assert http.get(MOCKIN_PATHS["jwks"]).status_code == 200  # nothing else is touched
