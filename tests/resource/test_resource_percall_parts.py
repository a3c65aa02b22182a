"""The proposals a resource builds for one call of a per-call MCP tool (R3 §Per-Call
Proposals, :mod:`aauth_agents.resource.percall`): parsed back, they match their own call;
large values become digests; the call is read from exactly one ``tools/call``; values shown
in Markdown are inert on the consent page."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aauth_agents.protocol.r3 import (
    Display,
    is_digest,
    parameters_match,
    parse_r3_document,
    r3_s256,
    s256_of,
)
from aauth_agents.protocol.wire import WireFormatError
from aauth_agents.resource.caller import Caller
from aauth_agents.resource.percall import (
    DIGEST_OVER,
    ProposedCall,
    build_proposal,
    md_code,
    read_mcp_call,
)
from aauth_agents.servers.markdown import render_markdown

CALLER = Caller(
    kind="person",
    thumbprint="t" * 43,
    issuer="https://ps.example",
    jti="j",
    expires_at=0,
    person=("https://ps.example", "sub"),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


# -- the proposals a resource builds -------------------------------------------------------------


arguments = st.dictionaries(
    st.text(min_size=1, max_size=10),
    json_values | st.text(min_size=DIGEST_OVER - 5, max_size=DIGEST_OVER + 40),
    max_size=5,
)


@settings(max_examples=60)
@given(arguments)
def test_a_built_proposal_parses_and_matches_its_own_call(args: dict[str, Any]) -> None:
    proposal = build_proposal(ProposedCall("send_note", args, CALLER), None)
    assert proposal.s256 == r3_s256(proposal.document)
    parsed = parse_r3_document(proposal.document)
    assert parsed.per_call and parsed.operations == ({"tool": "send_note"},)
    assert parsed.parameters is not None
    assert parameters_match(parsed.parameters, proposal.digested, args)
    for name in proposal.digested:
        assert len(args[name].encode()) > DIGEST_OVER and is_digest(parsed.parameters[name])
    assert parsed.display is not None and parsed.display.detail is not None
    # the same call builds the same bytes: one call, one address
    assert build_proposal(ProposedCall("send_note", args, CALLER), None) == proposal


def test_large_values_are_proposed_as_digests_and_a_display_keeps_the_arguments() -> None:
    text = "line one\n" + "x" * DIGEST_OVER
    shown = Display("Send a note to bob", irreversible="A sent note stays sent")
    proposal = build_proposal(
        ProposedCall("send_note", {"to": "bob", "text": text}, CALLER), lambda call: shown
    )
    parsed = parse_r3_document(proposal.document)
    assert parsed.parameters is not None and proposal.digested == {"text"}
    assert parsed.parameters["text"] == {
        "s256": s256_of(text),
        "excerpt": text[:80] + "…",
        "media_type": "text/plain",
    }
    assert parsed.display is not None and parsed.display.summary == "Send a note to bob"
    detail = parsed.display.detail or ""
    assert "## Action" in detail and "`bob`" in detail and s256_of(text) in detail
    assert "x" * 100 not in proposal.document.decode()  # the payload stays out
    with pytest.raises(TypeError):
        build_proposal(ProposedCall("t", {}, CALLER), lambda call: "not a display")  # type: ignore


def test_a_call_too_large_to_propose_is_refused() -> None:
    many = {f"a{i}": "y" * 400 for i in range(200)}
    with pytest.raises(WireFormatError):
        build_proposal(ProposedCall("t", many, CALLER), None)


@pytest.mark.parametrize(
    "body",
    [
        None,
        b"",
        b"[]",
        b"{",
        json.dumps({"method": "tools/list"}).encode(),
        json.dumps([{"method": "tools/call", "params": {"name": "a"}}]).encode(),  # a batch
        json.dumps({"method": "tools/call", "params": {"arguments": {}}}).encode(),
        json.dumps({"method": "tools/call", "params": {"name": "a", "arguments": []}}).encode(),
    ],
)
def test_read_mcp_call_refuses_anything_but_one_tool_call(body: bytes | None) -> None:
    with pytest.raises(WireFormatError):
        read_mcp_call(body)


@given(
    st.binary(max_size=200)
    | json_values.map(
        lambda v: json.dumps({"jsonrpc": "2.0", "method": "tools/call", "params": v}).encode()
    )
)
def test_read_mcp_call_returns_a_call_or_a_typed_error(body: bytes) -> None:
    try:
        name, args = read_mcp_call(body)
    except WireFormatError:
        return
    assert isinstance(name, str) and name and isinstance(args, dict)


_TAGS = re.compile(r"<([a-z0-9]+)")


@given(st.text(max_size=80))
def test_md_code_is_inert_on_the_consent_page(value: str) -> None:
    """An argument can forge no heading, link, list or emphasis: rendered, it is code."""
    rendered = render_markdown(f"- name: {md_code(value)}\n\n## Details\n")
    tags = set(_TAGS.findall(rendered))
    assert tags <= {"ul", "li", "code", "pre", "p", "h2"}
    assert rendered.count("<h2>") == 1  # only the real heading
