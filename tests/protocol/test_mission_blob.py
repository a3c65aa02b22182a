"""Mission blobs, s256 and the approval response (§Mission Approval, §Mission Identifier)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol import (
    AAuthError,
    ConfigurationError,
    InvalidMissionError,
    MissionMismatchError,
    build_mission_blob,
    decode_mission,
    encode_mission,
    is_s256,
    mission_approval_response,
    mission_s256,
    validate_s256,
    verify_mission_approval,
)

# The spec's example blob, with its literal line breaks joined.
SPEC_BLOB = {
    "approver": "https://ps.example",
    "agent": "aauth:assistant@agent.example",
    "approved_at": "2026-04-07T14:30:00Z",
    "expires_at": "2026-05-07T14:30:00Z",
    "description": "# Plan Japan Vacation\n\nPlan and book a trip to Japan next month.",
    "approved_tools": [{"name": "WebSearch", "description": "Search the web"}],
    "approved_resources": ["https://flights.example", "https://hotels.example"],
}


def test_s256_is_unpadded_base64url_sha256() -> None:
    blob = b'{"a":1}'
    expected = base64.urlsafe_b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert mission_s256(blob) == expected and len(expected) == 43
    assert mission_s256(b"") == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"


def test_spec_mission_prefix_decodes() -> None:
    # The example `mission` value starts with the encoding of `{"approver":"https://ps.example","agent":"`.
    prefix = "eyJhcHByb3ZlciI6Imh0dHBzOi8vcHMuZXhhbXBsZSIsImFnZW50Ijoi"
    assert base64.urlsafe_b64decode(prefix) == b'{"approver":"https://ps.example","agent":"'


def test_spec_s256_has_valid_form() -> None:
    assert validate_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX",
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk=",
        "dBjftJeZ4CVP+mB92K27uhbUJU1p1r/wW1gFWFOEjXk",
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
        None,
        43,
    ],
)
def test_bad_s256_forms(bad: object) -> None:
    assert not is_s256(bad)
    with pytest.raises(InvalidMissionError) as info:
        validate_s256(bad)
    assert info.value.code == "invalid_request" and info.value.status == 400


def test_approval_round_trip() -> None:
    blob = build_mission_blob(**SPEC_BLOB)
    response = mission_approval_response(
        blob,
        capabilities=["interaction", "payment"],
        person_tokens={"https://flights.example": "eyJ.a.b"},
    )
    assert response["s256"] == mission_s256(blob)
    assert response["capabilities"] == ["interaction", "payment"]
    decoded, s256 = verify_mission_approval(json.loads(json.dumps(response)))
    assert decoded == SPEC_BLOB and s256 == response["s256"]


def test_digest_is_over_bytes_not_over_reserialized_json() -> None:
    blob = (
        b'{ "approver": "https://ps.example", "agent": "aauth:a@agent.example",'
        b' "approved_at": "2026-04-07T14:30:00Z", "description": "x", "extra": {"k": 1} }'
    )
    response = {"s256": mission_s256(blob), "mission": encode_mission(blob)}
    decoded, s256 = verify_mission_approval(response)
    assert decoded["extra"] == {"k": 1}  # unknown members are kept
    assert s256 == mission_s256(blob) != mission_s256(json.dumps(decoded).encode())


def test_s256_mismatch() -> None:
    blob = build_mission_blob(**SPEC_BLOB)
    other = build_mission_blob(**{**SPEC_BLOB, "description": "something else"})
    response = {"s256": mission_s256(other), "mission": encode_mission(blob)}
    with pytest.raises(MissionMismatchError):
        verify_mission_approval(response)


@pytest.mark.parametrize(
    "response",
    [
        {},
        {"s256": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"},
        {"s256": "short", "mission": "e30"},
        {"s256": mission_s256(b"[1]"), "mission": encode_mission(b"[1]")},
        {"s256": mission_s256(b"{"), "mission": encode_mission(b"{")},
        {"s256": mission_s256(b"\xff"), "mission": encode_mission(b"\xff")},
        {"s256": mission_s256(b"{}"), "mission": encode_mission(b"{}") + "="},
        {"s256": mission_s256(b"{}"), "mission": encode_mission(b"{}")},  # required members missing
        {
            "s256": mission_s256(
                b'{"approver":"http://ps.example","agent":"aauth:a@b.example",'
                b'"approved_at":"t","description":"d"}'
            ),
            "mission": encode_mission(
                b'{"approver":"http://ps.example","agent":"aauth:a@b.example",'
                b'"approved_at":"t","description":"d"}'
            ),
        },
    ],
)
def test_bad_approval_responses(response: dict[str, object]) -> None:
    with pytest.raises(InvalidMissionError):
        verify_mission_approval(response)


def test_decode_mission() -> None:
    assert decode_mission(encode_mission(b'{"a": [1]}')) == {"a": [1]}
    for bad in ["", "!!", encode_mission(b"1"), encode_mission(b"not json")]:
        with pytest.raises(InvalidMissionError):
            decode_mission(bad)


def test_build_refuses_incomplete_blobs() -> None:
    with pytest.raises(ConfigurationError):
        build_mission_blob(
            approver="https://ps.example", agent="not-an-agent", approved_at="t", description="d"
        )
    with pytest.raises(ConfigurationError):
        mission_s256("text")  # type: ignore[arg-type]


@given(st.binary(max_size=200))
def test_encode_decode_bytes_round_trip(blob: bytes) -> None:
    response = {"s256": mission_s256(blob), "mission": encode_mission(blob)}
    assert is_s256(response["s256"])
    try:
        decoded, s256 = verify_mission_approval(response)
    except InvalidMissionError as exc:
        assert not isinstance(exc, MissionMismatchError)  # the digest always agrees
        return
    assert s256 == response["s256"] and isinstance(decoded, dict)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), _json, max_size=4))
def test_decode_gives_the_object(obj: dict[str, object]) -> None:
    assert decode_mission(encode_mission(json.dumps(obj).encode())) == obj


@given(
    st.one_of(
        st.text(max_size=60),
        st.dictionaries(st.sampled_from(["s256", "mission"]), st.text(max_size=60), max_size=2),
    )
)
def test_parsers_typed(value: object) -> None:
    for parse in (decode_mission, verify_mission_approval, validate_s256):
        try:
            parse(value)  # type: ignore[operator]
        except AAuthError:
            pass
