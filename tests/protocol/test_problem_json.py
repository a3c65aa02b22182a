"""problem+json bodies (§Error Response Format) and mapping received errors to typed ones."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol import (
    ERROR_STATUS,
    SIGNATURE_ERROR_CODES,
    AAuthError,
    ConfigurationError,
    ExpiredJWTError,
    InvalidInputError,
    MalformedProblemError,
    MissingSignatureError,
    Problem,
    ProtocolError,
    SignatureError,
    UnexpectedResponseError,
    UnrecognizedSignatureError,
    UnsupportedAlgorithmError,
    UnsupportedSchemeError,
    error_from_response,
    parse_problem,
    problem_body,
)


def test_spec_token_endpoint_example() -> None:
    body = (
        b'{"error": "expired_resource_token",'
        b' "detail": "The resource token expired; obtain a new resource token from the resource'
        b' and retry."}'
    )
    problem = parse_problem(body)
    assert problem.error == "expired_resource_token"
    assert problem.detail is not None and problem.detail.startswith("The resource token expired")
    assert problem.members == {}


def test_rfc9457_members_are_kept() -> None:
    problem = parse_problem(
        {
            "error": "denied",
            "type": "about:blank",
            "title": "Denied",
            "status": 403,
            "instance": "/p/1",
        }
    )
    assert problem.detail is None
    assert problem.members == {
        "type": "about:blank",
        "title": "Denied",
        "status": 403,
        "instance": "/p/1",
    }
    assert problem.to_json()["error"] == "denied"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'"denied"',
        b"{}",
        b'{"error": ""}',
        b'{"error": 5}',
        b'{"error": "x", "detail": 5}',
        b"\xff\xfe",
        b"[" * 100000,
        b'{"error_description": "x"}',
    ],
)
def test_malformed_problem_bodies(body: bytes) -> None:
    with pytest.raises(MalformedProblemError):
        parse_problem(body)


def test_problem_body_builder() -> None:
    assert problem_body("denied", "The user declined the request.") == {
        "error": "denied",
        "detail": "The user declined the request.",
    }
    assert problem_body(
        "mission_terminated", mission_status="terminated", termination_reason="expired"
    ) == {
        "error": "mission_terminated",
        "mission_status": "terminated",
        "termination_reason": "expired",
    }
    with pytest.raises(ConfigurationError):
        problem_body("")


@given(
    st.text(min_size=1, max_size=20),
    st.none() | st.text(max_size=30),
    st.dictionaries(
        st.text(max_size=8).filter(lambda k: k not in ("error", "detail")),
        st.integers() | st.text(max_size=5),
        max_size=3,
    ),
)
def test_problem_round_trip(error: str, detail: str | None, members: dict[str, object]) -> None:
    problem = Problem(error, detail, members)
    assert parse_problem(problem.to_bytes()) == problem


@given(st.one_of(st.binary(max_size=60), st.text(max_size=60)))
def test_parse_problem_typed(body: bytes | str) -> None:
    try:
        assert isinstance(parse_problem(body), Problem)
    except AAuthError:
        pass


# --- error_from_response ---------------------------------------------------------------


def test_spec_denied_example() -> None:
    err = error_from_response(
        403,
        {"Content-Type": "application/problem+json"},
        b'{"error": "denied", "detail": "The user declined the request."}',
    )
    assert type(err) is ProtocolError
    assert (err.code, err.status, err.detail) == ("denied", 403, "The user declined the request.")


def test_mission_terminated_keeps_extras() -> None:
    err = error_from_response(
        403,
        {},
        {
            "error": "mission_terminated",
            "mission_status": "terminated",
            "termination_reason": "expired",
            "status": 403,
        },
    )
    assert isinstance(err, ProtocolError)
    assert err.extra == {"mission_status": "terminated", "termination_reason": "expired"}


def test_401_header_decides_not_body() -> None:
    err = error_from_response(
        401,
        {"signature-error": 'error=invalid_input, required_input=("@method" "content-digest")'},
        b'{"error": "denied", "detail": "body says something else"}',
    )
    assert isinstance(err, InvalidInputError)
    assert err.code == "invalid_input" and err.status == 401
    assert err.required_input == ("@method", "content-digest")
    assert err.detail == "body says something else"


def test_401_accept_headers_attached() -> None:
    err = error_from_response(
        401,
        [("Signature-Error", "error=unsupported_scheme"), ("Accept-Signature-Scheme", "jwt")],
        None,
    )
    assert isinstance(err, UnsupportedSchemeError) and err.accept_schemes == ("jwt",)
    err = error_from_response(
        401,
        {
            "Signature-Error": "error=unsupported_algorithm",
            "Accept-Signature-Alg": "Ed25519, ES256",
        },
        b"",
    )
    assert isinstance(err, UnsupportedAlgorithmError) and err.accept_algs == ("Ed25519", "ES256")


@pytest.mark.parametrize("code", sorted(SIGNATURE_ERROR_CODES))
def test_every_signature_code_maps_to_its_class(code: str) -> None:
    err = error_from_response(401, {"Signature-Error": f"error={code}"}, None)
    assert isinstance(err, SignatureError) and err.code == code and err.status == 401
    if code == "expired_jwt":
        assert isinstance(err, ExpiredJWTError)
    if code == "invalid_request":
        assert isinstance(err, MissingSignatureError)


def test_render_then_read_back_is_the_same_error() -> None:
    original = InvalidInputError("need digest", required_input=["content-digest"])
    status, headers, body = original.to_response()
    err = error_from_response(status, headers, body)
    assert type(err) is InvalidInputError
    assert (err.code, err.detail, err.required_input) == (
        "invalid_input",
        "need digest",
        ("content-digest",),
    )


def test_unknown_signature_code_surfaced() -> None:
    err = error_from_response(401, {"Signature-Error": "error=quantum_key"}, None)
    assert isinstance(err, UnrecognizedSignatureError) and err.code == "quantum_key"


def test_unreadable_signature_error() -> None:
    err = error_from_response(
        401, {"Signature-Error": 'error="x"'}, b'{"error": "invalid_signature"}'
    )
    assert isinstance(err, UnexpectedResponseError) and err.status == 401


def test_401_without_signature_error_uses_body() -> None:
    err = error_from_response(401, {}, b'{"error": "invalid_auth_token"}')
    assert type(err) is ProtocolError and err.code == "invalid_auth_token" and err.status == 401


def test_403_ignores_signature_error_header() -> None:
    err = error_from_response(
        403, {"Signature-Error": "error=invalid_signature"}, b'{"error": "denied"}'
    )
    assert err.code == "denied" and not isinstance(err, SignatureError)


@pytest.mark.parametrize("body", [None, b"<html>bad gateway</html>", b'{"message": "x"}'])
def test_non_aauth_bodies(body: bytes | None) -> None:
    err = error_from_response(502, {}, body)
    assert isinstance(err, UnexpectedResponseError) and err.status == 502


@pytest.mark.parametrize("code", sorted(ERROR_STATUS))
def test_registry_codes_round_trip(code: str) -> None:
    status, headers, body = ProtocolError("why", code=code).to_response()
    if status == 401:
        headers = {}
    err = error_from_response(status, headers, body)
    assert (err.code, err.status, err.detail) == (code, status, "why")


def test_not_an_error_status() -> None:
    with pytest.raises(ConfigurationError):
        error_from_response(202, {}, None)


@given(
    st.integers(min_value=400, max_value=599),
    st.dictionaries(
        st.sampled_from(
            ["Signature-Error", "Accept-Signature-Alg", "accept-signature-scheme", "X"]
        ),
        st.text(max_size=30),
        max_size=3,
    ),
    st.one_of(
        st.none(),
        st.binary(max_size=40),
        st.text(max_size=40),
        st.dictionaries(st.text(max_size=6), st.text(max_size=6) | st.integers(), max_size=4),
    ),
)
def test_error_from_response_always_typed(
    status: int, headers: dict[str, str], body: object
) -> None:
    err = error_from_response(status, headers, body)  # type: ignore[arg-type]
    assert isinstance(err, AAuthError)
    json.dumps(err.problem())
