"""The account store (scrypt), and property-based tests of every parser the PS adds: each
returns a value or raises its typed error, never anything else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aauth_agents.protocol.wire import WireFormatError
from aauth_agents.servers.person_server import AccountError, callback_redirect
from aauth_agents.servers.person_server.accounts import (
    Accounts,
    PasswordHashError,
    hash_password,
    normalize_username,
    parse_password_hash,
    verify_password,
)
from aauth_agents.servers.person_server.database import PSDatabase
from aauth_agents.servers.person_server.pending import PendingRequest
from aauth_agents.servers.person_server.requests import (
    RequestParams,
    parse_audit_request,
    parse_auth_token_request,
    parse_interaction_request,
    parse_json_object,
    parse_mission_action,
    parse_mission_proposal,
    parse_permission_request,
    parse_person_token_request,
    parse_prefer_wait,
    parse_request_params,
    parse_revocation_request,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def accounts() -> Accounts:
    return Accounts(PSDatabase(":memory:"), log2_n=14)


def test_accounts_authenticate(accounts: Accounts) -> None:
    created = accounts.create_account(
        "Alice", PASSWORD, claims={"email": "a@example.com"}, tenant="acme"
    )
    assert created.username == "alice"
    account = accounts.authenticate("ALICE", PASSWORD)
    assert account is not None and account.claims == {"email": "a@example.com"}
    assert account.tenant == "acme"
    assert accounts.authenticate("alice", PASSWORD + "!") is None
    assert accounts.authenticate("nobody", PASSWORD) is None
    assert accounts.authenticate("", PASSWORD) is None


def test_passwords_are_stored_as_scrypt_hashes(accounts: Accounts) -> None:
    accounts.create_account("alice", PASSWORD)
    (stored,) = accounts.db.fetchone("SELECT password_hash FROM ps_accounts")
    assert PASSWORD not in stored and stored.startswith("scrypt$14$8$1$")
    parsed = parse_password_hash(stored)
    assert len(parsed.salt) == 16 and len(parsed.key) == 32


def test_duplicate_and_invalid_accounts(accounts: Accounts) -> None:
    accounts.create_account("alice", PASSWORD)
    with pytest.raises(AccountError):
        accounts.create_account("ALICE", PASSWORD)
    for name in ("", "a b", "x" * 65, "tab\there"):
        with pytest.raises(AccountError):
            accounts.create_account(name, PASSWORD)
    with pytest.raises(AccountError):
        accounts.create_account("bob", "")
    with pytest.raises(AccountError):
        accounts.create_account("bob", PASSWORD, claims={"ssn": "123"})


def test_disabled_and_changed_passwords(accounts: Accounts) -> None:
    accounts.create_account("alice", PASSWORD)
    accounts.set_password("alice", "new password")
    assert accounts.authenticate("alice", PASSWORD) is None
    assert accounts.authenticate("alice", "new password") is not None
    accounts.set_disabled("alice")
    assert accounts.authenticate("alice", "new password") is None


def test_released_claims_follow_the_scopes(accounts: Accounts) -> None:
    account = accounts.create_account(
        "alice",
        PASSWORD,
        claims={
            "email": "a@example.com",
            "email_verified": True,
            "name": "Alice",
            "groups": ["x"],
            "phone_number": "1",
        },
    )
    assert account.released_claims(("openid",)) == {}
    assert account.released_claims(("email",)) == {"email": "a@example.com", "email_verified": True}
    assert account.released_claims(("profile", "groups")) == {"name": "Alice", "groups": ["x"]}


@settings(max_examples=8, deadline=None)  # scrypt is slow on purpose
@given(st.text(max_size=40))
def test_password_roundtrip(password: str) -> None:
    if not password:
        with pytest.raises(AccountError):
            hash_password(password, log2_n=14)
        return
    encoded = hash_password(password, log2_n=14)
    assert verify_password(password, encoded)
    assert not verify_password(password + "x", encoded)


@settings(max_examples=300)
@given(
    st.one_of(
        st.text(max_size=200),
        st.builds(
            lambda parts: "$".join(parts),
            st.lists(st.text(alphabet="scrypt0123456789ABCDEFabcdef-_$", max_size=30), max_size=8),
        ),
    )
)
def test_parse_password_hash_returns_a_hash_or_a_typed_error(value: str) -> None:
    try:
        parsed = parse_password_hash(value)
    except PasswordHashError:
        return
    assert parse_password_hash(parsed.encode()) == parsed


@given(st.text(max_size=80))
def test_normalize_username_returns_a_name_or_a_typed_error(value: str) -> None:
    try:
        name = normalize_username(value)
    except AccountError:
        return
    assert name == normalize_username(name) and 0 < len(name) <= 64


# -- request parsers ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
members = st.sampled_from(
    [
        "resource",
        "mission_s256",
        "subagent_token",
        "upstream_token",
        "justification",
        "login_hint",
        "tenant",
        "domain_hint",
        "prompt",
        "platform",
        "device",
        "capabilities",
        "resource_token",
        "description",
        "tools",
        "resources",
        "action",
        "summary",
        "parameters",
        "result",
        "type",
        "url",
        "code",
        "max_wait",
        "question",
        "iss",
        "jti",
    ]
)
interesting = st.sampled_from(
    [
        "https://resource.example",
        "A" * 43,
        "web",
        "none",
        "login consent",
        ["interaction"],
        [{"name": "T", "description": "d"}],
        ["https://a.example"],
        "update",
        "completion",
        "interaction",
        "question",
        "https://x.example/p",
        30,
        "x.y.z",
        {"k": 1},
    ]
)
bodies = st.dictionaries(members, json_values | interesting, max_size=8)

PARSERS = [
    parse_request_params,
    parse_person_token_request,
    parse_auth_token_request,
    parse_mission_proposal,
    parse_mission_action,
    parse_permission_request,
    parse_audit_request,
    parse_interaction_request,
    parse_revocation_request,
]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_body_parsers_return_a_value_or_a_typed_error(parser: Any, body: dict) -> None:
    try:
        parser(body)
    except WireFormatError as exc:
        assert exc.code == "invalid_request" and exc.status == 400


@settings(max_examples=300)
@given(
    st.binary(max_size=200) | bodies.map(lambda b: json.dumps(b).encode()),
    st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", None]),
)
def test_parse_json_object(body: bytes, content_type: str | None) -> None:
    try:
        value = parse_json_object(body, content_type)
    except WireFormatError as exc:
        assert exc.code == "invalid_request"
        return
    assert isinstance(value, dict)


@settings(max_examples=500)
@given(
    st.text(max_size=60)
    | st.builds(
        lambda a, n, b: f"{a}wait={n}{b}",
        st.sampled_from(["", "respond-async, ", "x;y=1, "]),
        st.integers(min_value=0, max_value=10**12),
        st.sampled_from(["", ", handling=lenient", ";p=1"]),
    )
)
def test_parse_prefer_wait_returns_seconds_or_none(header: str) -> None:
    value = parse_prefer_wait(header)
    assert value is None or (isinstance(value, int) and value >= 0)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("wait=45", 45),
        ("respond-async, wait=10", 10),
        ("WAIT = 7", 7),
        ('wait="3"', 3),
        ("wait=5;x=1", 5),
        ("wait=-1", None),
        ("wait", None),
        ("wait=1.5", None),
        (None, None),
        ("handling=strict", None),
        ("wait=99999999999", None),
    ],
)
def test_parse_prefer_wait_examples(header: str | None, expected: int | None) -> None:
    assert parse_prefer_wait(header) == expected


def test_request_params_roundtrip() -> None:
    params = parse_request_params(
        {
            "justification": "# why",
            "prompt": "login consent",
            "platform": "desktop",
            "device": "Laptop",
            "capabilities": ["interaction", "telepathy", "clarification"],
        }
    )
    assert params.capabilities == ("interaction", "clarification")
    assert RequestParams.from_json(params.to_json()) == params


def test_pending_request_roundtrip() -> None:
    req = PendingRequest(
        kind="auth_token",
        agent_iss="https://a.example",
        agent_id="aauth:x@a.example",
        subject_jwk={"kty": "OKP"},
        requirement="interaction",
        request={"scopes": ["a"]},
        conversation=({"question": "q", "answer": None},),
    )
    assert PendingRequest.from_json(json.loads(json.dumps(req.to_json()))) == req
    assert req.open_question == {"question": "q", "answer": None}


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (None, "https://agent.example/cb?state=1"),
        ("denied", "https://agent.example/cb?state=1&error=access_denied"),
        ("abandoned", "https://agent.example/cb?state=1&error=user_abandoned"),
        ("expired", "https://agent.example/cb?state=1&error=interaction_expired"),
        ("server_error", "https://agent.example/cb?state=1&error=server_error"),
        (
            "temporarily_unavailable",
            "https://agent.example/cb?state=1&error=temporarily_unavailable",
        ),
    ],
)
def test_callback_redirect(outcome: str | None, expected: str) -> None:
    assert callback_redirect("https://agent.example/cb?state=1", outcome) == expected


def test_callback_redirect_refuses_unknown_errors() -> None:
    with pytest.raises(ValueError):
        callback_redirect("https://agent.example/cb", "teapot")
