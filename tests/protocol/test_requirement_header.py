"""AAuth-Requirement (§Requirement Responses): examples from the spec, rejections, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol import (
    REQUIREMENT_STATUS,
    AAuthError,
    ConfigurationError,
    MalformedHeaderError,
    Requirement,
    UnsupportedRequirementError,
    parse_requirement,
    serialize_requirement,
)

SPEC_INTERACTION = 'requirement=interaction; url="https://example.com/interact"; code="A1B2-C3D4"'


def test_spec_interaction_example() -> None:
    req = parse_requirement(SPEC_INTERACTION)
    assert req.value == "interaction" and req.known and req.status == 202
    assert req.url == "https://example.com/interact"
    assert req.code == "A1B2-C3D4"
    assert req.interaction_link() == "https://example.com/interact?code=A1B2-C3D4"


def test_spec_interaction_example_split_over_lines() -> None:
    # §Resource-Managed Authorization folds the parameters onto a second line.
    # A folded line reaches the parser as one line: obs-fold is replaced by spaces.
    req = parse_requirement(
        'requirement=interaction;    url="https://resource.example/interaction"; code="A1B2-C3D4"'
    )
    assert req.url == "https://resource.example/interaction"


def test_spec_auth_token_example() -> None:
    req = parse_requirement('requirement=auth-token; resource-token="eyJ..."')
    assert req.value == "auth-token" and req.status == 401
    assert req.resource_token == "eyJ..."


@pytest.mark.parametrize(
    ("header", "value", "status"),
    [
        ("requirement=agent-token", "agent-token", 401),
        ("requirement=person-token", "person-token", 401),
        ("requirement=approval", "approval", 202),
        ("requirement=clarification", "clarification", 202),
        ("requirement=claims", "claims", 202),
    ],
)
def test_parameterless_values(header: str, value: str, status: int) -> None:
    req = parse_requirement(header)
    assert (req.value, req.status, req.known) == (value, status, True)
    req.raise_if_unknown()


def test_every_registered_value_has_a_status() -> None:
    assert set(REQUIREMENT_STATUS) == {
        "agent-token",
        "person-token",
        "auth-token",
        "interaction",
        "approval",
        "clarification",
        "claims",
    }


def test_mockin_wire_form() -> None:
    # @hellocoop/mockin writes `requirement=interaction; url="${url}"; code="${code}"` with
    # codes that are not Crockford (mixed case): an agent relays them untouched.
    req = parse_requirement(
        'requirement=interaction; url="https://ps.example/aauth/consent"; code="aB3dE5fG"'
    )
    assert req.code == "aB3dE5fG"


def test_unknown_value_is_surfaced_not_satisfiable() -> None:
    req = parse_requirement("requirement=payment-token; amount=5")
    assert req.value == "payment-token" and not req.known and req.status is None
    with pytest.raises(UnsupportedRequirementError) as info:
        req.raise_if_unknown()
    assert info.value.requirement is req


def test_unknown_parameters_and_members_ignored() -> None:
    req = parse_requirement("requirement=approval;future=?1, other=5")
    assert req.value == "approval" and req.params == {"future": True}


def test_multiple_field_lines_combine() -> None:
    req = parse_requirement(["x=1", 'requirement=auth-token;resource-token="a.b.c"'])
    assert req.resource_token == "a.b.c"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "requirement",  # boolean true, not a Token
        'requirement="auth-token"',  # String, not Token
        "requirement=(auth-token)",  # Inner List
        "other=auth-token",
        "requirement=auth-token",  # missing resource-token
        'requirement=auth-token;resource-token=""',  # empty
        "requirement=auth-token;resource-token=eyJ",  # Token, not String
        'requirement=interaction;code="A1B2-C3D4"',  # missing url
        'requirement=interaction;url="https://example.com/i"',  # missing code
        'requirement=interaction;url="https://example.com/i?x=1";code="A1B2-C3D4"',
        'requirement=interaction;url="https://example.com/i#f";code="A1B2-C3D4"',
        'requirement=interaction;url="http://example.com/i";code="A1B2-C3D4"',
        'requirement=interaction;url="example.com/i";code="A1B2-C3D4"',
        "requirement=approval,",  # trailing comma
        "requirement=approval;",  # dangling parameter
        "requirement=appröval",  # non-ASCII
    ],
)
def test_rejections(header: str) -> None:
    with pytest.raises(MalformedHeaderError) as info:
        parse_requirement(header)
    assert info.value.code == "invalid_request"
    assert isinstance(info.value, ValueError)


def test_constructors_serialize_like_mockin() -> None:
    assert Requirement.agent_token().header_value() == "requirement=agent-token"
    assert Requirement.approval().headers() == {"AAuth-Requirement": "requirement=approval"}
    assert Requirement.auth_token("eyJ.x.y").header_value() == (
        'requirement=auth-token;resource-token="eyJ.x.y"'
    )
    req = Requirement.interaction("https://example.com/interact", "A1B2-C3D4")
    assert req.header_value() == (
        'requirement=interaction;url="https://example.com/interact";code="A1B2-C3D4"'
    )
    assert parse_requirement(req.header_value()) == req


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://example.com/i?x=1", "A1B2-C3D4"),
        ("http://example.com/i", "A1B2-C3D4"),
        ("https://example.com/i", "A1B2"),  # fewer than 8 symbols
        ("https://example.com/i", "a1b2-c3d4"),  # lower case is not emitted
        ("https://example.com/i", "ILOU-1234"),  # outside Crockford
    ],
)
def test_interaction_constructor_enforces_sender_rules(url: str, code: str) -> None:
    with pytest.raises(ConfigurationError):
        Requirement.interaction(url, code)


def test_auth_token_constructor_needs_token() -> None:
    with pytest.raises(ConfigurationError):
        Requirement.auth_token("")


def test_cannot_serialize_invalid_structures() -> None:
    with pytest.raises(ConfigurationError):
        serialize_requirement(Requirement(""))
    with pytest.raises(ConfigurationError):
        serialize_requirement(Requirement("approval", {"Bad Key": 1}))
    with pytest.raises(ConfigurationError):
        serialize_requirement(Requirement("approval", {"k": "tab\there"}))


def test_interaction_link_escapes_and_adds_callback() -> None:
    req = parse_requirement('requirement=interaction;url="https://ps.example/i";code="a b&c"')
    link = req.interaction_link(callback="https://agent.example/cb?s=1")
    assert link == (
        "https://ps.example/i?code=a+b%26c&callback=https%3A%2F%2Fagent.example%2Fcb%3Fs%3D1"
    )
    with pytest.raises(ConfigurationError):
        Requirement.approval().interaction_link()


# --- properties ------------------------------------------------------------------------

_keys = st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,8}", fullmatch=True)
_tokens = st.from_regex(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]{0,12}", fullmatch=True)
_strings = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20)
_values = st.one_of(
    _strings,
    st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1),
    st.booleans(),
    st.binary(max_size=10),
)


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    value = draw(st.one_of(st.sampled_from(sorted(REQUIREMENT_STATUS)), _tokens))
    params = draw(st.dictionaries(_keys, _values, max_size=4))
    if value == "auth-token":
        params["resource-token"] = draw(_strings)
    if value == "interaction":
        params["url"] = "https://example.com/" + draw(
            st.from_regex(r"[a-z0-9/]{0,10}", fullmatch=True)
        )
        params["code"] = draw(_strings)
    return Requirement(value, params)


@given(requirements())
def test_round_trip(req: Requirement) -> None:
    parsed = parse_requirement(serialize_requirement(req))
    assert parsed == req
    assert parsed.known == req.known


@given(st.text(max_size=80))
def test_arbitrary_text_gives_requirement_or_typed_error(text: str) -> None:
    try:
        req = parse_requirement(text)
    except AAuthError:
        return
    assert isinstance(req, Requirement)


@given(
    st.from_regex(
        r'requirement=[a-z\-]{1,14}(;[a-z\-]{1,10}=("[ -!#-\[\]-~]{0,12}"|[0-9]{1,5}|\?[01]))*',
        fullmatch=True,
    )
)
def test_structured_text_gives_requirement_or_typed_error(text: str) -> None:
    try:
        req = parse_requirement(text)
    except MalformedHeaderError:
        return
    assert req.value and serialize_requirement(req)


@given(st.lists(st.text(max_size=30), max_size=3))
def test_field_lines_give_requirement_or_typed_error(lines: list[str]) -> None:
    try:
        parse_requirement(lines)
    except AAuthError:
        pass


@pytest.mark.parametrize("value", [None, b"requirement=approval", 5, [b"x"]])
def test_non_text_input_is_a_typed_error(value: object) -> None:
    with pytest.raises(MalformedHeaderError):
        parse_requirement(value)  # type: ignore[arg-type]
