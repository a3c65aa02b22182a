"""The request-kind registry: one class per kind of PS request, found by lookup, each
saying what the person may edit and how the consent page presents it."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from aauth_agents.protocol.errors import ProtocolError
from aauth_agents.servers.person_server import InteractionError
from aauth_agents.servers.person_server.kinds import (
    KINDS,
    ConsentPage,
    Edits,
    RequestKind,
    kind_of,
)
from aauth_agents.servers.person_server.pending import PendingRequest
from aauth_agents.servers.person_server.policy import (
    AUTH_TOKEN,
    MISSION,
    MISSION_UPDATE,
    PERMISSION,
    PERSON_TOKEN,
    QUESTION,
    RELAY,
)
from aauth_agents.servers.person_server.policy import KINDS as POLICY_KINDS

PACKAGE = pathlib.Path(__file__).parents[2] / "aauth_agents" / "servers" / "person_server"


def _req(kind: str, **request: Any) -> PendingRequest:
    return PendingRequest(
        kind=kind,
        agent_iss="https://ap.example",
        agent_id="aauth:a@ap.example",
        subject_jwk={},
        requirement="",
        request=request,
    )


def test_every_kind_has_one_registered_class() -> None:
    assert set(KINDS) == set(POLICY_KINDS) | {RELAY}
    for name, kind in KINDS.items():
        assert isinstance(kind, RequestKind)
        assert kind.name == name
        assert kind_of(name) is kind
    with pytest.raises(ProtocolError) as info:
        kind_of("teleport")
    assert info.value.code == "server_error"


def test_consent_pages() -> None:
    auth = kind_of(AUTH_TOKEN).describe(
        _req(AUTH_TOKEN, resource="https://r.example", scopes=["read", "write"])
    )
    assert isinstance(auth, ConsentPage)
    assert auth.choose_scopes and not auth.asks_answer
    assert auth.editable == frozenset({"scopes"})
    assert any("read write" in line for line in auth.summary)
    r3 = kind_of(AUTH_TOKEN).describe(
        _req(AUTH_TOKEN, resource="https://r.example", scopes=["read"], r3={"uri": "x"})
    )
    assert not r3.choose_scopes
    question = kind_of(QUESTION).describe(_req(QUESTION, question="Which one?"))
    assert question.asks_answer
    assert [(f.name, f.value) for f in question.fields] == [("question", "Which one?")]
    permission = kind_of(PERMISSION).describe(_req(PERMISSION, action="pay", description=None))
    assert [f.name for f in permission.fields] == ["action"]
    mission = kind_of(MISSION).describe(
        _req(MISSION, description="Plan", tools=[], resources=["https://r.example"])
    )
    assert {f.name for f in mission.fields if f.editable} == {"description", "tools", "resources"}
    for name in KINDS:
        assert kind_of(name).describe(_req(name, resource="https://r.example")).title


def test_what_the_person_may_edit() -> None:
    token = _req(AUTH_TOKEN, scopes=["read", "write"])
    assert kind_of(AUTH_TOKEN).overrides(token, Edits(scopes=["read", "admin"]), 0) == {
        "scopes": ["read"]
    }
    with pytest.raises(InteractionError, match="only a mission proposal"):
        kind_of(AUTH_TOKEN).overrides(token, Edits(description="x"), 0)
    with pytest.raises(InteractionError, match="scopes narrow a token request only"):
        kind_of(MISSION).overrides(_req(MISSION), Edits(scopes=["read"]), 0)
    proposal = _req(
        MISSION,
        description="d",
        tools=[{"name": "a", "description": ""}],
        resources=["https://r.example"],
    )
    edited = kind_of(MISSION).overrides(
        proposal,
        Edits(
            tools=[{"name": "a"}, {"name": "b"}],
            resources=["https://other.example"],
            expires_at=10.0,
        ),
        5,
    )
    assert edited == {
        "tools": [{"name": "a", "description": ""}],
        "resources": [],
        "expires_at": 10.0,
    }
    with pytest.raises(InteractionError, match="in the past"):
        kind_of(MISSION).overrides(proposal, Edits(expires_at=4.0), 5)
    with pytest.raises(InteractionError, match="with an answer"):
        kind_of(QUESTION).overrides(_req(QUESTION), Edits(), 0)
    assert kind_of(QUESTION).overrides(_req(QUESTION), Edits(answer="yes"), 0) == {"answer": "yes"}
    # An answer to anything but a question is ignored, as before.
    assert kind_of(PERSON_TOKEN).overrides(_req(PERSON_TOKEN), Edits(answer="yes"), 0) == {}
    assert kind_of(MISSION_UPDATE).overrides(_req(MISSION_UPDATE), Edits(), 0) == {}


def test_refusals() -> None:
    assert kind_of(PERMISSION).refusal(_req(PERMISSION), "no").status == 200
    denied = kind_of(AUTH_TOKEN).refusal(_req(AUTH_TOKEN), None)
    assert denied.status == 403
