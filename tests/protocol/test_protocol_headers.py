"""AAuth-Capabilities, AAuth-Access / Authorization: AAuth, Signature-Error, Accept-Signature-*."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol import (
    CAPABILITY_VALUES,
    SIGNATURE_ERROR_CODES,
    AAuthError,
    ConfigurationError,
    InvalidInputError,
    MalformedHeaderError,
    SignatureErrorInfo,
    UnsupportedAlgorithmError,
    format_authorization,
    parse_aauth_access,
    parse_accept_signature_alg,
    parse_accept_signature_scheme,
    parse_authorization,
    parse_capabilities,
    parse_signature_error,
    serialize_aauth_access,
    serialize_accept_signature_alg,
    serialize_accept_signature_scheme,
    serialize_capabilities,
    serialize_signature_error,
    validate_token68,
)

# --- AAuth-Capabilities ---------------------------------------------------------------


def test_spec_capabilities_example() -> None:
    assert parse_capabilities("interaction, clarification, payment") == {
        "interaction",
        "clarification",
        "payment",
    }


def test_capabilities_ignore_unknown_values_params_and_non_tokens() -> None:
    header = 'interaction;v=2, teleport, "payment", (clarification), 7, clarification;x'
    assert parse_capabilities(header) == {"interaction", "clarification"}


def test_capabilities_empty_or_absent_means_none() -> None:
    assert parse_capabilities("") == frozenset()
    assert parse_capabilities([]) == frozenset()


def test_capabilities_over_several_lines() -> None:
    assert parse_capabilities(["interaction", "payment"]) == {"interaction", "payment"}


@pytest.mark.parametrize("header", ["interaction,", "interaction;", "@@", "interaction payment"])
def test_capabilities_malformed(header: str) -> None:
    with pytest.raises(MalformedHeaderError):
        parse_capabilities(header)


def test_serialize_capabilities() -> None:
    assert (
        serialize_capabilities(["interaction", "payment", "interaction"]) == "interaction, payment"
    )
    with pytest.raises(ConfigurationError):
        serialize_capabilities([])
    with pytest.raises(ConfigurationError):
        serialize_capabilities(["two words"])


@given(st.sets(st.sampled_from(sorted(CAPABILITY_VALUES)), min_size=1))
def test_capabilities_round_trip(caps: set[str]) -> None:
    assert parse_capabilities(serialize_capabilities(sorted(caps))) == caps


# --- AAuth-Access and Authorization: AAuth ---------------------------------------------


@pytest.mark.parametrize(
    "token", ["wrapped-session-token-value", "abc", "a+b/c~d.e_f-g==", "Zm9v="]
)
def test_token68_accepts(token: str) -> None:
    assert parse_aauth_access(token) == token
    assert parse_aauth_access(f" {token}\t") == token  # field OWS is not part of the value
    assert parse_authorization(f"AAuth {token}") == token
    assert format_authorization(token) == f"AAuth {token}"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc def", "whitespace"),
        ("abc\tdef", "whitespace"),
        ("abc,def", "more than one"),
        ("abc, def", "more than one"),
        ("abc\x00", "token68"),
        ("abc\x7f", "token68"),
        ("=abc", "token68"),
        ("ab=c", "token68"),
        ("abc\n", "whitespace"),
        ("tök", "token68"),
    ],
)
def test_aauth_access_rejections(header: str, reason: str) -> None:
    with pytest.raises(MalformedHeaderError) as info:
        parse_aauth_access(header)
    assert reason in info.value.detail
    assert "abc" not in info.value.detail  # credentials never end up in messages


def test_aauth_access_two_field_lines_rejected() -> None:
    with pytest.raises(MalformedHeaderError, match="more than one credential"):
        parse_aauth_access(["abc", "def"])


@pytest.mark.parametrize("scheme", ["AAuth", "aauth", "AAUTH", "aAuTh"])
def test_authorization_scheme_is_case_insensitive(scheme: str) -> None:
    assert parse_authorization(f"{scheme} tok") == "tok"


def test_authorization_other_scheme_is_not_ours() -> None:
    assert parse_authorization("Bearer abc") is None
    assert parse_authorization("Digest a=b, c=d") is None


@pytest.mark.parametrize(
    "header",
    [
        "AAuth",
        "AAuth ",
        "AAuth a b",
        "AAuth a,b",
        "AAuth a, AAuth b",
        "AAuth\ta",
        "AAuth a\x01",
        "",
        "(AAuth) a",
    ],
)
def test_authorization_rejections(header: str) -> None:
    with pytest.raises(MalformedHeaderError):
        parse_authorization(header)


def test_authorization_two_credentials_on_two_lines_rejected() -> None:
    with pytest.raises(MalformedHeaderError, match="more than one credential"):
        parse_authorization(["AAuth abc", "AAuth def"])
    with pytest.raises(MalformedHeaderError, match="more than one credential"):
        parse_authorization(["Bearer abc", "AAuth def"])


def test_cannot_format_invalid_session_token() -> None:
    for bad in ["", "a b", "a,b"]:
        with pytest.raises(ConfigurationError):
            format_authorization(bad)
        with pytest.raises(ConfigurationError):
            serialize_aauth_access(bad)


_token68 = st.from_regex(r"[A-Za-z0-9\-._~+/]{1,30}={0,2}", fullmatch=True)


@given(_token68)
def test_token68_round_trip(token: str) -> None:
    assert parse_authorization(format_authorization(token)) == token
    assert parse_aauth_access(serialize_aauth_access(token)) == token


@given(st.text(max_size=40))
def test_validate_token68_typed(text: str) -> None:
    try:
        assert validate_token68(text) == text
    except MalformedHeaderError:
        pass


# --- Signature-Error ------------------------------------------------------------------


def test_signature_key_examples() -> None:
    info = parse_signature_error(
        'error=invalid_input, required_input=("@method" "@authority" "@path"'
        ' "signature-key" "content-digest")'
    )
    assert info == SignatureErrorInfo(
        "invalid_input", ("@method", "@authority", "@path", "signature-key", "content-digest")
    )
    assert parse_signature_error("error=invalid_signature") == SignatureErrorInfo(
        "invalid_signature"
    )


def test_signature_error_ignores_unknown_members() -> None:
    # The -05 draft's example carries a member -11 no longer defines.
    info = parse_signature_error(
        'error=unsupported_algorithm, supported_algorithms=("ed25519" "ecdsa-p256-sha256")'
    )
    assert info.code == "unsupported_algorithm" and info.required_input is None and info.known


def test_signature_error_unknown_code_surfaced() -> None:
    info = parse_signature_error("error=quantum_key")
    assert info.code == "quantum_key" and not info.known


@pytest.mark.parametrize(
    "header",
    [
        "",
        'error="invalid_signature"',
        "error",
        'required_input=("@method")',
        'error=invalid_input, required_input="@method"',
        "error=invalid_input, required_input=(method)",
        "error=invalid_input,",
    ],
)
def test_signature_error_rejections(header: str) -> None:
    with pytest.raises(MalformedHeaderError):
        parse_signature_error(header)


def test_signature_error_serialization_matches_httpsig() -> None:
    assert serialize_signature_error("invalid_signature") == "error=invalid_signature"
    assert serialize_signature_error("invalid_input", ["@method", "@path"]) == (
        'error=invalid_input, required_input=("@method" "@path")'
    )


def test_errors_module_uses_the_same_serialisation() -> None:
    _, headers, _ = InvalidInputError("x", required_input=["@method"]).to_response()
    assert headers["Signature-Error"] == serialize_signature_error("invalid_input", ["@method"])
    _, headers, _ = UnsupportedAlgorithmError("x", accept_algs=["Ed25519", "ES256"]).to_response()
    assert headers["Accept-Signature-Alg"] == "Ed25519, ES256"


_components = st.lists(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=15),
    min_size=1,
    max_size=5,
)


@given(st.sampled_from(sorted(SIGNATURE_ERROR_CODES)), st.none() | _components)
def test_signature_error_round_trip(code: str, required: list[str] | None) -> None:
    info = parse_signature_error(serialize_signature_error(code, required))
    assert info == SignatureErrorInfo(code, tuple(required) if required else None)


# --- Accept-Signature-Scheme / Accept-Signature-Alg ------------------------------------


def test_accept_headers_keep_unknown_values_in_order() -> None:
    assert parse_accept_signature_scheme("jwt, hwk, x509-future") == ("jwt", "hwk", "x509-future")
    assert parse_accept_signature_alg('Ed25519, "ES256", (x), ML-DSA-44') == (
        "Ed25519",
        "ML-DSA-44",
    )
    assert serialize_accept_signature_scheme(["jwt"]) == "jwt"
    assert serialize_accept_signature_alg(["Ed25519", "ES256"]) == "Ed25519, ES256"


def test_accept_headers_reject_malformed() -> None:
    with pytest.raises(MalformedHeaderError):
        parse_accept_signature_alg("Ed25519,,ES256")
    with pytest.raises(ConfigurationError):
        serialize_accept_signature_alg(["not a token"])


_sf_tokens = st.lists(
    st.from_regex(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]{0,12}", fullmatch=True),
    min_size=1,
    max_size=5,
)


@given(_sf_tokens)
def test_accept_headers_round_trip(values: list[str]) -> None:
    assert parse_accept_signature_alg(serialize_accept_signature_alg(values)) == tuple(values)
    assert parse_accept_signature_scheme(serialize_accept_signature_scheme(values)) == tuple(values)


# --- every header parser: a value or a typed error ------------------------------------

_PARSERS = [
    parse_capabilities,
    parse_aauth_access,
    parse_authorization,
    parse_signature_error,
    parse_accept_signature_scheme,
    parse_accept_signature_alg,
]


@pytest.mark.parametrize("parser", _PARSERS, ids=lambda p: p.__name__)
@given(text=st.one_of(st.text(max_size=60), st.lists(st.text(max_size=20), max_size=3)))
def test_parsers_never_raise_untyped(parser: object, text: str | list[str]) -> None:
    try:
        parser(text)  # type: ignore[operator]
    except AAuthError:
        pass


_sf_alphabet = st.sampled_from([*'abcz019-_*;=,()" ?:@%.\t', "error", "jwt", "AAuth "])


@pytest.mark.parametrize("parser", _PARSERS, ids=lambda p: p.__name__)
@given(parts=st.lists(_sf_alphabet, max_size=25))
def test_parsers_on_structured_looking_input(parser: object, parts: list[str]) -> None:
    try:
        parser("".join(parts))  # type: ignore[operator]
    except AAuthError:
        pass
