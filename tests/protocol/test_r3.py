"""R3 on the wire (draft-hardt-aauth-r3): content addressing, R3 documents and per-call
proposals, operations, ``r3_uri``, parameter comparison -- with property tests for every
parser (a value or a typed error, nothing else)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol.r3 import (
    MAX_DOCUMENT_BYTES,
    MCP_VOCABULARY,
    Display,
    check_r3_uri,
    is_digest,
    json_equal,
    parameters_match,
    parse_r3_document,
    parse_r3_operations,
    r3_s256,
    s256_of,
)
from aauth_agents.protocol.wire import WireFormatError

RESOURCE = "https://resource.example"
# The draft's example proposal (§Proposal Document), its digest made real.
EXAMPLE = {
    "vocabulary": MCP_VOCABULARY,
    "operations": [{"tool": "send_email"}],
    "parameters": {
        "to": "mom@example.com",
        "subject": "Dinner Sunday?",
        "body": {
            "s256": s256_of("Hi Mom, are you free Sunday?"),
            "excerpt": "Hi Mom, are you free…",
            "media_type": "text/plain",
        },
    },
    "display": {
        "summary": "Send an email as you",
        "detail": "## Action\nSend an email\n\n## To\nmom@example.com",
    },
}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def test_r3_s256_hashes_the_bytes_as_served() -> None:
    document = json.dumps(EXAMPLE).encode()
    expected = base64.urlsafe_b64encode(hashlib.sha256(document).digest()).decode().rstrip("=")
    assert r3_s256(document) == expected
    # no canonicalization: the same JSON serialized otherwise is another document
    assert r3_s256(json.dumps(EXAMPLE, indent=1).encode()) != expected
    with pytest.raises(TypeError):
        r3_s256("text")  # type: ignore[arg-type]


def test_the_drafts_example_proposal_parses() -> None:
    parsed = parse_r3_document(json.dumps(EXAMPLE).encode())
    assert parsed.per_call and parsed.vocabulary == MCP_VOCABULARY
    assert parsed.granted.to_json() == {
        "vocabulary": MCP_VOCABULARY,
        "operations": [{"tool": "send_email"}],
    }
    assert parsed.display == Display("Send an email as you", EXAMPLE["display"]["detail"])
    assert parsed.parameters is not None and is_digest(parsed.parameters["body"])
    assert not is_digest(parsed.parameters["to"])
    # a class document (no parameters) may name many operations
    document = {
        "vocabulary": MCP_VOCABULARY,
        "operations": [{"tool": "a"}, {"tool": "b"}],
        "account": "work",
        "display": {"summary": "Two tools", "irreversible": "Sent mail stays sent"},
    }
    parsed = parse_r3_document(json.dumps(document).encode())
    assert not parsed.per_call and parsed.account == "work"
    assert parsed.display is not None and parsed.display.irreversible == "Sent mail stays sent"


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"[]",
        b"not json",
        b'{"a":1,"a":2}',
        b"\xff",
        json.dumps({"operations": [{"tool": "x"}]}).encode(),  # no vocabulary
        json.dumps({"vocabulary": "mcp", "operations": [{"tool": "x"}]}).encode(),  # not a URI
        json.dumps({"vocabulary": MCP_VOCABULARY, "operations": {}}).encode(),
        json.dumps({"vocabulary": MCP_VOCABULARY, "operations": [{}]}).encode(),
        json.dumps({"vocabulary": MCP_VOCABULARY, "operations": [{"name": "x"}]}).encode(),
        json.dumps(
            {
                "vocabulary": MCP_VOCABULARY,
                "operations": [{"tool": "x"}],
                "display": {"detail": "no summary"},
            }
        ).encode(),
        json.dumps(
            {
                "vocabulary": MCP_VOCABULARY,
                "operations": [{"tool": "x"}],
                "display": {"summary": ""},
            }
        ).encode(),
        json.dumps(
            {"vocabulary": MCP_VOCABULARY, "operations": [{"tool": "x"}], "parameters": []}
        ).encode(),
        # a proposal is for exactly one operation
        json.dumps(
            {
                "vocabulary": MCP_VOCABULARY,
                "operations": [{"tool": "x"}, {"tool": "y"}],
                "parameters": {},
            }
        ).encode(),
        json.dumps({"vocabulary": MCP_VOCABULARY, "operations": [], "parameters": {}}).encode(),
        b'{"vocabulary":"'
        + MCP_VOCABULARY.encode()
        + b'","operations":[{"tool":"x"}],"p":"'
        + b"x" * MAX_DOCUMENT_BYTES
        + b'"}',
    ],
)
def test_malformed_documents_are_refused(document: bytes) -> None:
    with pytest.raises(WireFormatError) as caught:
        parse_r3_document(document)
    assert caught.value.code == "invalid_request"


@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_parse_r3_document_returns_a_document_or_a_typed_error(data: bytes) -> None:
    try:
        parsed = parse_r3_document(data)
    except WireFormatError:
        return
    assert parsed.operations is not None


documents = st.fixed_dictionaries(
    {
        "vocabulary": st.sampled_from([MCP_VOCABULARY, "urn:x", "", 5]),
        "operations": st.lists(
            st.dictionaries(st.sampled_from(["tool", "x"]), json_values, max_size=2), max_size=3
        )
        | json_values,
    },
    optional={
        "display": st.dictionaries(
            st.sampled_from(["summary", "detail", "implications", "irreversible"]),
            json_values,
            max_size=4,
        )
        | json_values,
        "parameters": json_values,
        "account": json_values,
    },
)


@given(documents)
def test_structured_documents_parse_or_fail_typed(document: dict[str, Any]) -> None:
    try:
        parsed = parse_r3_document(json.dumps(document).encode())
    except WireFormatError:
        return
    if parsed.per_call:
        assert len(parsed.operations) == 1
    if parsed.display is not None:
        assert isinstance(parsed.display.summary, str) and parsed.display.summary


@given(json_values | documents)
def test_parse_r3_operations_returns_operations_or_a_typed_error(value: Any) -> None:
    try:
        ops = parse_r3_operations(value, "r3_granted")
    except WireFormatError as exc:
        assert exc.detail.startswith("r3_granted")
        return
    assert parse_r3_operations(ops.to_json()) == ops


@given(json_values)
def test_display_from_json_returns_a_display_or_a_typed_error(value: Any) -> None:
    try:
        display = Display.from_json(value)
    except WireFormatError:
        return
    assert Display.from_json(display.to_json()) == display


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("https://resource.example/aauth/r3/abc", True),
        ("https://resource.example/", True),
        ("http://resource.example/aauth/r3/abc", False),
        ("https://resource.example:8443/r3", False),
        ("https://other.example/r3", False),
        ("https://user@resource.example/r3", False),
        ("https://resource.example/r3#frag", False),
        ("https://resource.example", False),
        ("https://RESOURCE.example/r3", False),
        (7, False),
    ],
)
def test_r3_uri_is_https_on_the_resources_origin(uri: Any, ok: bool) -> None:
    if ok:
        assert check_r3_uri(uri, RESOURCE) == uri
    else:
        with pytest.raises(ValueError):
            check_r3_uri(uri, RESOURCE)


@given(st.text(max_size=60))
def test_check_r3_uri_returns_or_raises_value_error(text: str) -> None:
    for candidate in (text, RESOURCE + "/" + text):
        try:
            check_r3_uri(candidate, RESOURCE)
        except ValueError:
            continue


# -- comparing a call's parameters with a proposal's (Flow step 3) -------------------------------


def test_json_equality_is_json_not_python() -> None:
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert json_equal({"a": 1, "b": 2}, {"b": 2, "a": 1})  # member order does not matter
    assert not json_equal(True, 1) and not json_equal(1, True) and not json_equal(0, False)
    assert not json_equal([1, 2], [2, 1]) and not json_equal("1", 1)
    assert not json_equal(None, {}) and not json_equal({"a": 1}, {"a": 1, "b": 1})


@given(json_values)
def test_json_equality_is_reflexive_and_survives_a_round_trip(value: Any) -> None:
    assert json_equal(value, value)
    assert json_equal(value, json.loads(json.dumps(value)))


def test_parameters_match_inline_and_digested_values() -> None:
    proposed = EXAMPLE["parameters"]
    digested = frozenset({"body"})
    call = {
        "to": "mom@example.com",
        "subject": "Dinner Sunday?",
        "body": "Hi Mom, are you free Sunday?",
    }
    assert parameters_match(proposed, digested, call)
    assert not parameters_match(proposed, digested, {**call, "to": "boss@example.com"})
    assert not parameters_match(proposed, digested, {**call, "body": "Hi Mom, are you free?"})
    assert not parameters_match(proposed, digested, {**call, "cc": "x@example.com"})
    assert not parameters_match(proposed, digested, {"to": "mom@example.com"})
    # a digest object is compared by digest only where the resource says it digested
    assert not parameters_match(proposed, frozenset(), call)
    assert not parameters_match(proposed, digested, {**call, "body": proposed["body"]})
