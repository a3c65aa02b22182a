"""Errors render the status, headers and problem+json body their registry says."""

from __future__ import annotations

import json

import pytest

from aauth_agents.protocol.errors import (
    ERROR_STATUS,
    ConfigurationError,
    InvalidInputError,
    ProtocolError,
    SignatureError,
    TokenError,
    UnsupportedSchemeError,
)


def test_invalid_input_carries_required_input() -> None:
    err = InvalidInputError(
        "missing", required_input=["@method", "@authority", "@path", "signature-key"]
    )
    status, headers, body = err.to_response()
    assert status == 401
    assert headers["Signature-Error"] == (
        'error=invalid_input, required_input=("@method" "@authority" "@path" "signature-key")'
    )
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["required_input"] == ["@method", "@authority", "@path", "signature-key"]


def test_unsupported_scheme_names_accepted_schemes() -> None:
    _, headers, _ = UnsupportedSchemeError("hwk", accept_schemes=["jwt"]).to_response()
    assert headers["Signature-Error"] == "error=unsupported_scheme"
    assert headers["Accept-Signature-Scheme"] == "jwt"


@pytest.mark.parametrize("code", sorted(ERROR_STATUS))
def test_protocol_error_status_from_registry(code: str) -> None:
    status, headers, body = ProtocolError("why", code=code).to_response()
    assert status == ERROR_STATUS[code]
    assert json.loads(body) == {"error": code, "detail": "why"}
    assert "Signature-Error" not in headers


def test_mission_terminated_extra_members() -> None:
    _, _, body = ProtocolError(
        code="mission_terminated", mission_status="terminated", termination_reason="expired"
    ).to_response()
    assert json.loads(body) == {
        "error": "mission_terminated",
        "detail": "mission_terminated",
        "mission_status": "terminated",
        "termination_reason": "expired",
    }


def test_a_403_never_carries_signature_headers() -> None:
    class Odd(SignatureError):
        pass

    err = Odd("x", code="invalid_signature", accept_algs=["Ed25519"])
    err.status = 403
    _, headers, _ = err.to_response()
    assert not {"Signature-Error", "Accept-Signature-Alg", "Accept-Signature-Scheme"} & set(headers)


def test_signature_error_rejects_foreign_codes() -> None:
    with pytest.raises(ConfigurationError):
        SignatureError("x", code="denied")


def test_token_error_becomes_signature_error() -> None:
    err = TokenError(
        "expired", code="expired_agent_token", reason="exp", signature_error="expired_jwt"
    )
    assert err.status == 400
    sig = err.as_signature_error()
    assert sig.code == "expired_jwt" and sig.status == 401 and sig.__cause__ is err
