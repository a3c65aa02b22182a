"""Property-based tests: every parser in aauth_agents.resource returns a value or a typed
error, never anything else; the scope matchers obey their algebra."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from aauth_agents.httpsig import HttpRequest
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.errors import ConfigurationError
from aauth_agents.protocol.wire import WireFormatError
from aauth_agents.resource import (
    AccessRule,
    HeldRequest,
    HeldResult,
    RoutePolicy,
    SessionTokenError,
    WildcardScopeMatcher,
    compile_path,
    exact_scope_matcher,
    mcp_tool_calls,
    mcp_tool_rules,
    mint_session_token,
    missing_scopes,
    parse_authorization_request,
    parse_interaction_form,
    parse_revocation_request,
    verify_session_token,
)

scope_token = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters='"\\'),
    min_size=1,
    max_size=12,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)
some_bytes = st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())


# -- scope matchers -----------------------------------------------------------------------------


@given(st.sets(scope_token, max_size=6), scope_token)
def test_exact_matcher_is_membership(granted: set[str], required: str) -> None:
    assert exact_scope_matcher(granted, required) == (required in granted)


@given(st.sets(scope_token, max_size=6), scope_token)
def test_wildcard_matcher_only_widens_exact(granted: set[str], required: str) -> None:
    matcher = WildcardScopeMatcher()
    if exact_scope_matcher(granted, required):
        assert matcher(granted, required)
    if matcher(granted, required) and not exact_scope_matcher(granted, required):
        assert "*" in granted or any(
            g.endswith(":*") and required.startswith(g[:-1]) and len(required) > len(g) - 1
            for g in granted
        )


@given(st.sets(scope_token, max_size=6), scope_token)
def test_star_satisfies_everything(granted: set[str], required: str) -> None:
    assert WildcardScopeMatcher()(granted | {"*"}, required)


@given(scope_token.filter(lambda s: ":" not in s and "*" not in s), scope_token, scope_token)
def test_prefix_wildcard(prefix: str, rest: str, other: str) -> None:
    matcher = WildcardScopeMatcher()
    assert matcher({f"{prefix}:*"}, f"{prefix}:{rest}")
    assert not matcher({f"{prefix}:*"}, prefix)  # the bare prefix is not under it
    assume(not other.startswith(prefix + ":"))
    assert not matcher({f"{prefix}:*"}, other)


@given(st.sets(scope_token, max_size=5), st.lists(scope_token, max_size=5))
def test_missing_scopes_is_the_unsatisfied_required(granted: set[str], required: list[str]) -> None:
    missing = missing_scopes(granted, required)
    assert all(r not in granted for r in missing)
    assert all(r in granted or r in missing for r in required)


# -- path patterns and the route policy -----------------------------------------------------------


@given(st.text(max_size=30))
def test_compile_path_returns_a_regex_or_a_configuration_error(pattern: str) -> None:
    try:
        regex = compile_path(pattern)
    except ConfigurationError:
        return
    assert isinstance(regex, re.Pattern)


@given(st.lists(st.text(alphabet="abcxyz09-._~", min_size=1, max_size=6), min_size=1, max_size=4))
def test_literal_patterns_match_themselves_only(segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    regex = compile_path(path)
    assert regex.fullmatch(path)
    assert not regex.fullmatch(path + "/x")


@given(st.text(alphabet="abc/{}:*", max_size=20), st.text(alphabet="abc/", max_size=20))
def test_route_policy_match_never_raises(pattern: str, path: str) -> None:
    try:
        policy = RoutePolicy([("GET", "/" + pattern, AccessRule.public())])
    except ConfigurationError:
        return
    assert isinstance(policy.match("GET", "/" + path), AccessRule)


def test_path_parameters() -> None:
    assert compile_path("/docs/{id}").fullmatch("/docs/42")
    assert not compile_path("/docs/{id}").fullmatch("/docs/42/x")
    assert compile_path("/files/{rest:path}").fullmatch("/files/a/b/c")
    assert compile_path("/static/*").fullmatch("/static/x/y")


# -- request bodies -------------------------------------------------------------------------------


@given(some_bytes)
def test_authorization_request_parser(body: bytes) -> None:
    try:
        parsed = parse_authorization_request(body)
    except WireFormatError:
        return
    assert parsed.scopes and all(" " not in s for s in parsed.scopes)


@given(st.lists(scope_token, min_size=1, max_size=4), st.none() | st.text(min_size=1, max_size=20))
def test_authorization_request_round_trip(scopes: list[str], account: str | None) -> None:
    body = {"scope": " ".join(scopes)}
    if account is not None:
        body["account"] = account
    try:
        parsed = parse_authorization_request(json.dumps(body).encode())
    except WireFormatError:
        assert account is not None and not account.isprintable()
        return
    assert parsed.scopes == tuple(dict.fromkeys(scopes)) and parsed.account == account


@given(some_bytes)
def test_revocation_request_parser(body: bytes) -> None:
    try:
        parsed = parse_revocation_request(body)
    except WireFormatError:
        return
    assert parsed.iss and parsed.jti


@given(st.binary(max_size=100) | st.text(max_size=60).map(str.encode))
def test_interaction_form_parser(body: bytes) -> None:
    try:
        parsed = parse_interaction_form(body)
    except WireFormatError:
        return
    assert parsed.decision in ("approve", "deny") and parsed.page_token


@given(json_values)
def test_held_request_parser(data: object) -> None:
    try:
        held = HeldRequest.from_json(data)
    except ValueError:
        return
    assert HeldRequest.from_json(held.to_json()) == held


@given(
    st.sampled_from(["GET", "POST", "DELETE"]),
    st.text(max_size=20),
    st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=3),
    st.binary(max_size=50),
)
def test_held_request_round_trip(
    method: str, path: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    held = HeldRequest(method, "/" + path, "/" + path, "", tuple(headers), body)
    assert HeldRequest.from_json(json.loads(json.dumps(held.to_json()))) == held


@given(json_values)
def test_held_result_parser(data: object) -> None:
    try:
        result = HeldResult.from_json(data)
    except ValueError:
        return
    assert HeldResult.from_json(result.to_json()) == result


@given(some_bytes)
def test_mcp_tool_calls_never_raises(body: bytes) -> None:
    names = mcp_tool_calls(body)
    assert names is None or all(isinstance(n, str) for n in names)


@given(st.lists(st.sampled_from(["read_doc", "delete_doc", "other"]), min_size=1, max_size=4))
def test_mcp_batch_requires_the_strictest(tools: list[str]) -> None:
    rules = {"read_doc": AccessRule.person(), "delete_doc": AccessRule.auth("docs.delete")}
    rule_for = mcp_tool_rules(rules, default=AccessRule.agent())
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": t}}
        for i, t in enumerate(tools)
    ]
    rule = rule_for(HttpRequest("POST", "https://r.example/mcp", {}, json.dumps(batch).encode()))
    if "delete_doc" in tools:
        assert rule.level == "auth" and rule.scopes == ("docs.delete",)
    elif "read_doc" in tools:
        assert rule.level == "person"
    else:
        assert rule.level == "agent"


KEY = PrivateKey.generate("Ed25519", kid="res-1")


@given(st.text(max_size=300))
def test_session_token_verifier_never_raises_untyped(token: str) -> None:
    try:
        verify_session_token(
            token, keys=[KEY.public_key], resource="https://r.example", agent_jkt="j", now=0
        )
    except SessionTokenError:
        return
    raise AssertionError("random text verified as a session token")


def test_session_token_round_trip_and_binding() -> None:
    token, session = mint_session_token(
        KEY,
        resource="https://r.example",
        sub="alice",
        agent_jkt="jkt",
        scopes=["a"],
        now=100,
        lifetime=60,
    )
    assert (
        verify_session_token(
            token, keys=[KEY.public_key], resource="https://r.example", agent_jkt="jkt", now=159
        )
        == session
    )
    for kwargs in ({"agent_jkt": "other"}, {"resource": "https://x.example"}):
        args = {
            "keys": [KEY.public_key],
            "resource": "https://r.example",
            "agent_jkt": "jkt",
            "now": 100,
            **kwargs,
        }
        with pytest.raises(SessionTokenError) as refused:
            verify_session_token(token, **args)  # type: ignore[arg-type]
        assert not refused.value.expired
    with pytest.raises(SessionTokenError) as lapsed:
        verify_session_token(
            token, keys=[KEY.public_key], resource="https://r.example", agent_jkt="jkt", now=160
        )
    assert lapsed.value.expired
