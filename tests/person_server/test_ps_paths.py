"""Per-PS endpoint paths (``PersonServerConfig.paths``): the metadata publishes the moved
URLs, every endpoint answers at its new path and not at its old one, the person's pages
follow the interact path, and bad overrides are refused with a typed error."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from support.ps import PASSWORD, PS, RES, World, problem

from aauth_agents.protocol import ConfigurationError
from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers.person_server import (
    FIXED_PATHS,
    PATHS,
    AutoApprove,
    PersonServerConfig,
    create_person_server,
    person_server_of,
)
from aauth_agents.servers.person_server.ui import create_person_server_with_ui

#: mockin's layout (its /.well-known/aauth-person.json), plus the endpoints mockin lacks.
MOVED = {
    "jwks": "/aauth/jwks.json",
    "person_token": "/aauth/token/person",
    "auth_token": "/aauth/token/auth",
    "pending": "/aauth/pending",
    "mission": "/aauth/mission",
    "permission": "/aauth/permission",
    "audit": "/aauth/audit",
    "interaction": "/aauth/interaction",
    "revocation": "/aauth/revoke",
    "interact": "/aauth/consent",
}

#: Metadata member of each endpoint (§Person Server Metadata).
MEMBERS = {
    "jwks": "jwks_uri",
    "person_token": "person_token_endpoint",
    "auth_token": "auth_token_endpoint",
    "mission": "mission_endpoint",
    "permission": "permission_endpoint",
    "audit": "audit_endpoint",
    "interaction": "interaction_endpoint",
    "revocation": "revocation_endpoint",
}

#: (method, endpoint name, sub-path) of every protocol endpoint.
ENDPOINTS = [
    ("GET", "jwks", ""),
    ("POST", "person_token", ""),
    ("POST", "auth_token", ""),
    ("GET", "pending", "/some-id"),
    ("POST", "pending", "/some-id"),
    ("DELETE", "pending", "/some-id"),
    ("POST", "mission", ""),
    ("POST", "mission", "/some-s256"),
    ("POST", "permission", ""),
    ("POST", "audit", ""),
    ("POST", "interaction", ""),
    ("POST", "revocation", ""),
]


def start(world: World, **overrides: Any) -> None:
    app = create_person_server_with_ui(world.config(paths=MOVED, **overrides))
    world.app = app
    world.ps = person_server_of(app)
    world.attach(app)
    world.ps.accounts.create_account("alice", PASSWORD)


def starlette_404(response: httpx.Response) -> bool:
    """No route at all (not a PS answer, which is always JSON or problem+json)."""
    return response.status_code == 404 and "json" not in response.headers.get("content-type", "")


async def test_metadata_lists_the_moved_urls(bare: World) -> None:
    start(bare)
    response = await bare.client.get(f"{PS}/.well-known/aauth-person.json")
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == PS
    for name, member in MEMBERS.items():
        assert document[member] == PS + MOVED[name], member
    assert bare.ps is not None and bare.ps.config.paths == {**PATHS, **MOVED}
    assert bare.ps.config.url("pending", "x") == f"{PS}/aauth/pending/x"


@pytest.mark.parametrize(("method", "name", "sub"), ENDPOINTS)
async def test_every_endpoint_moves(bare: World, method: str, name: str, sub: str) -> None:
    start(bare)
    content = b"{}" if method == "POST" else None
    moved = await bare.client.request(method, PS + MOVED[name] + sub, content=content)
    old = await bare.client.request(method, PS + PATHS[name] + sub, content=content)
    assert not starlette_404(moved), (moved.status_code, moved.text)
    if name == "jwks":
        assert moved.status_code == 200 and moved.json()["keys"]
    else:  # an unsigned request: the PS itself refuses it
        assert moved.status_code == 401 and problem(moved)
    assert starlette_404(old) or old.status_code == 405, (old.status_code, old.text)


async def test_tokens_and_the_interaction_url_at_the_moved_paths(bare: World) -> None:
    start(bare)
    agent = bare.agent()
    pending = await agent.post(MOVED["person_token"], {"resource": RES})
    assert pending.status_code == 202, pending.text
    assert pending.headers["location"].startswith(f"{PS}/aauth/pending/")
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    assert requirement.url.startswith(f"{PS}/aauth/consent/")
    path = requirement.url.removeprefix(PS)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=bare.app), base_url="http://127.0.0.1"
    ) as browser:
        page = await browser.get(f"{path}?code={requirement.code}")  # signed out
        assert page.status_code == 200 and f'action="{path}"' in page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        signed = await browser.post(
            path,
            data={
                "csrf": token.group(1),
                "code": requirement.code,
                "username": "alice",
                "password": PASSWORD,
            },
            headers={"origin": "http://127.0.0.1"},
        )
        assert signed.status_code == 303 and signed.headers["location"].startswith("/consent/")
        assert 'id="approve"' in (await browser.get(signed.headers["location"])).text
        assert (
            await browser.get(f"/interact/{path.rsplit('/', 1)[1]}?code=x")
        ).status_code == 404  # the old page path is gone too
    polled = await agent.get(pending.headers["location"])
    assert polled.status_code == 202 and polled.json()["status"] == "interacting"


async def test_auto_approved_tokens_at_the_moved_paths(bare: World) -> None:
    app = create_person_server(
        bare.config(paths=MOVED, policy=AutoApprove(), default_person="alice")
    )
    bare.app, bare.ps = app, person_server_of(app)
    bare.attach(app)
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    issued = await agent.post(MOVED["person_token"], {"resource": RES})
    assert issued.status_code == 200, issued.text
    token = issued.json()["person_token"]
    await bare.check_person_token(token, agent.public)
    resource_token = await bare.resource.resource_token(token, agent.public)
    granted = await agent.post(MOVED["auth_token"], {"resource_token": resource_token})
    assert granted.status_code == 200, granted.text
    assert (
        await agent.post(PATHS["auth_token"], {"resource_token": resource_token})
    ).status_code == 404


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ({"metadata": "/aauth/person.json"}, "fixed by the specification"),
        ({"nope": "/aauth/nope"}, "unknown endpoint"),
        ({"jwks": "aauth/jwks.json"}, "absolute path"),
        ({"jwks": "//evil.example/jwks"}, "absolute path"),
        ({"jwks": "/aauth/"}, "absolute path"),
        ({"jwks": "/"}, "absolute path"),
        ({"jwks": "/aauth/jwks?x=1"}, "absolute path"),
        ({"jwks": "/aauth/{kid}"}, "absolute path"),
        ({"jwks": "/aauth /jwks"}, "absolute path"),
        ({"jwks": 5}, "absolute path"),
        ({"audit": "/permission"}, "share /permission"),
        ({"audit": "/x", "permission": "/x"}, "share /x"),
        ({"audit": "/pending/audit"}, "below the sub-paths of pending"),
        ({"interact": "/aauth", "jwks": "/aauth/interact/jwks"}, "below the sub-paths"),
    ],
)
def test_bad_overrides_are_refused(paths: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PersonServerConfig(issuer=PS, paths=paths)


def test_the_fixed_path_may_be_named_unchanged() -> None:
    assert FIXED_PATHS == {"metadata"}
    config = PersonServerConfig(issuer=PS, paths={"metadata": PATHS["metadata"]})
    assert config.paths == PATHS
    assert PersonServerConfig(issuer=PS).paths == PATHS
