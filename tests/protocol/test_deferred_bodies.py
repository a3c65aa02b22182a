"""Deferred response bodies and the agent's answers (§Deferred Responses, §Clarification Chat,
§Claims Required)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol import (
    AAuthError,
    MalformedBodyError,
    PendingBody,
    Requirement,
    clarification_body,
    clarification_response,
    parse_pending_action,
    parse_pending_body,
    updated_request,
)


def test_spec_clarification_example() -> None:
    body = parse_pending_body(
        b'{"status": "pending", "clarification": "Why do you need write access to my calendar?",'
        b' "timeout": 120}',
        Requirement.clarification(),
    )
    assert body.status == "pending" and body.timeout == 120
    assert body.clarification == "Why do you need write access to my calendar?"


def test_spec_claims_example() -> None:
    body = parse_pending_body(
        {"status": "pending", "required_claims": ["email", "tenant"]}, Requirement.claims()
    )
    assert body.required_claims == ("email", "tenant")


def test_status_values() -> None:
    assert parse_pending_body({"status": "interacting"}).status == "interacting"
    assert parse_pending_body({"status": "thinking"}).status == "pending"  # unknown -> pending
    assert parse_pending_body(None).status == "pending"
    assert parse_pending_body(b"").status == "pending"
    assert parse_pending_body({"status": "pending", "location": "x"}).members["location"] == "x"


@pytest.mark.parametrize(
    ("body", "requirement"),
    [
        ({"status": "pending"}, Requirement.clarification()),
        ({"clarification": 5}, None),
        ({"clarification": "q", "timeout": "120"}, None),
        ({"clarification": "q", "timeout": -1}, None),
        ({"clarification": "q", "options": "yes"}, None),
        ({"status": "pending"}, Requirement.claims()),
        ({"required_claims": ["email", 1]}, Requirement.claims()),
        (b"[1]", None),
        (b"{", None),
    ],
)
def test_rejections(body: object, requirement: Requirement | None) -> None:
    with pytest.raises(MalformedBodyError):
        parse_pending_body(body, requirement)  # type: ignore[arg-type]


def test_builders_and_server_side_action_parsing() -> None:
    body = clarification_body("Why?", timeout=60, options=["a", "b"])
    assert parse_pending_body(body, Requirement.clarification()) == PendingBody(
        "pending", "Why?", 60, ("a", "b"), None, body
    )
    answer = clarification_response("I need to create a meeting invite.")
    assert answer == {
        "action": "clarification_response",
        "clarification_response": "I need to create a meeting invite.",
    }
    assert parse_pending_action(answer)[0] == "clarification_response"
    update = updated_request("eyJ...", "I've reduced my request to read-only access.")
    assert parse_pending_action(update) == ("updated_request", update)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"action": "cancel"},
        {"action": "clarification_response"},
        {"action": "updated_request", "resource_token": ""},
        {"action": "updated_request", "resource_token": "x", "justification": 3},
        b"nope",
    ],
)
def test_bad_actions_are_400(body: object) -> None:
    with pytest.raises(MalformedBodyError) as info:
        parse_pending_action(body)  # type: ignore[arg-type]
    assert info.value.status == 400


@given(
    st.one_of(
        st.binary(max_size=50),
        st.text(max_size=50),
        st.dictionaries(
            st.sampled_from(
                [
                    "status",
                    "clarification",
                    "timeout",
                    "options",
                    "required_claims",
                    "action",
                    "resource_token",
                ]
            ),
            st.none()
            | st.integers()
            | st.text(max_size=5)
            | st.lists(st.text(max_size=3), max_size=2),
            max_size=5,
        ),
    )
)
def test_parsers_typed(body: object) -> None:
    for requirement in (None, Requirement.clarification(), Requirement.claims()):
        try:
            parse_pending_body(body, requirement)  # type: ignore[arg-type]
        except AAuthError:
            pass
    try:
        parse_pending_action(body)  # type: ignore[arg-type]
    except AAuthError:
        pass
