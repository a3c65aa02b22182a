"""Signature-Key, Signature-Input and Content-Digest parsers: exact behaviour, then fuzzing
(every input yields a value or a typed AAuthError, nothing else)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from support.httpsig import NOW, fake_jwt

from aauth_agents.clock import FrozenClock
from aauth_agents.httpsig import (
    HttpRequest,
    SignatureKey,
    SignatureVerifier,
    check_signature_key,
    content_digest,
    hwk_jwk,
    parse_content_digest,
    parse_signature_input,
    parse_signature_key,
    parse_signature_key_member,
    serialize_signature_key,
    sign_request,
    unverified_jwt_cnf_resolver,
    verify_content_digest,
)
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.errors import (
    AAuthError,
    ConfigurationError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingSignatureError,
)

# -- Signature-Key ------------------------------------------------------------------------------


def test_jwt_serialisation() -> None:
    assert serialize_signature_key("sig", SignatureKey.from_jwt("a.b.c")) == 'sig=jwt;jwt="a.b.c"'
    assert serialize_signature_key("sig", SignatureKey.from_jkt_jwt("a.b.c")) == (
        'sig=jkt-jwt;jwt="a.b.c"'
    )


def test_jwks_uri_serialisation() -> None:
    sk = SignatureKey.from_jwks_uri(id="https://a.example", dwk="aauth-agent.json", kid="k1")
    value = serialize_signature_key("sig", sk)
    assert value == 'sig=jwks_uri;id="https://a.example";dwk="aauth-agent.json";kid="k1"'
    assert parse_signature_key(value) == ("sig", sk)


def test_hwk_carries_alg_and_no_kid(ed_key: PrivateKey, ec_key: PrivateKey) -> None:
    ed = SignatureKey.from_public_key(ed_key.public_key)
    x = ed_key.public_key.jwk["x"]
    assert serialize_signature_key("sig", ed) == (
        f'sig=hwk;kty="OKP";crv="Ed25519";x="{x}";alg="Ed25519"'
    )
    ec = SignatureKey.from_public_key(ec_key.public_key)
    assert list(ec.params) == ["kty", "crv", "x", "y", "alg"]
    _label, parsed = parse_signature_key(serialize_signature_key("sig", ec))
    assert hwk_jwk(parsed) == {k: v for k, v in ec_key.public_key.jwk.items() if k != "kid"}


def test_parse_accepts_tokens_for_string_params() -> None:
    _label, sk = parse_signature_key('sig=hwk;kty=OKP;crv=Ed25519;x="abc";alg=Ed25519')
    assert sk.params == {"kty": "OKP", "crv": "Ed25519", "x": "abc", "alg": "Ed25519"}
    assert all(type(v) is str for v in sk.params.values())


@pytest.mark.parametrize(
    "header",
    [
        'sig=jwt;jwt="a", sig2=jwt;jwt="b"',
        "",
        "sig",
        'sig="jwt"',
        "sig=(jwt)",
        "sig=1",
        "SIG=jwt",
        'sig=jwt;jwt="a",',
    ],
)
def test_structurally_invalid(header: str) -> None:
    with pytest.raises(MissingSignatureError):
        parse_signature_key(header)


@pytest.mark.parametrize(
    "header",
    [
        "sig=jwt",
        "sig=jwt;jwt=1",
        'sig=jwt;jwt=""',
        'sig=jkt-jwt;x="y"',
        'sig=jwks_uri;id="https://a.example";dwk="d"',
        'sig=hwk;kty="OKP";crv="Ed25519";x="a"',
        'sig=hwk;kty="EC";crv="P-256";x="a";alg="ES256"',
        'sig=hwk;kty="OKP";crv="Ed25519";x="a";alg="Ed25519";kid="k"',
        "sig=jwt;jwt=:AAAA:",
    ],
)
def test_missing_or_mistyped_params(header: str) -> None:
    with pytest.raises(InvalidKeyError):
        parse_signature_key(header)


def test_unknown_scheme_parses() -> None:
    label, sk = parse_signature_key("agent=x509;x5u=?1;n=2")
    assert (label, sk.scheme, dict(sk.params)) == ("agent", "x509", {"x5u": True, "n": 2})
    check_signature_key(sk)


def test_member_parse_defers_scheme_rules() -> None:
    _label, sk = parse_signature_key_member("sig=jwt")
    assert sk == SignatureKey("jwt", {})
    with pytest.raises(InvalidKeyError):
        check_signature_key(sk)


def test_serialise_rejects_what_cannot_be_sent() -> None:
    cases = [
        ("Sig", SignatureKey.from_jwt("a")),
        ("sig", SignatureKey("1x", {})),
        ("sig", SignatureKey.from_jwt("é")),
        ("sig", SignatureKey("jwt", {"A": "x"})),
    ]
    for label, sk in cases:
        with pytest.raises(ConfigurationError):
            serialize_signature_key(label, sk)
    with pytest.raises(ConfigurationError):
        hwk_jwk(SignatureKey.from_jwt("a.b.c"))


_PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@given(st.sampled_from(["jwt", "jkt-jwt"]), st.from_regex(r"[A-Za-z0-9_.-]{1,60}", fullmatch=True))
def test_jwt_round_trip(scheme: str, token: str) -> None:
    sk = SignatureKey(scheme, {"jwt": token})
    assert parse_signature_key(serialize_signature_key("sig", sk)) == ("sig", sk)


@given(st.text(max_size=80) | _PRINTABLE)
@example('sig=jwt;jwt="a\\"b"')
@example('sig=jwt;jwt=%"a"')
@example("sig=jwt;jwt=@12")
def test_signature_key_parser_fuzz(header: str) -> None:
    try:
        label, sk = parse_signature_key(header)
    except AAuthError:
        return
    assert isinstance(label, str) and isinstance(sk, SignatureKey)


# -- Signature-Input ----------------------------------------------------------------------------


def test_signature_input_keeps_token_and_string_params_apart() -> None:
    header = 'sig=("@method" "x");created=1;tag=tok;nonce="str", other=("a");created=2'
    parsed = parse_signature_input(header)
    assert set(parsed) == {"sig", "other"}
    assert parsed["sig"].value == '("@method" "x");created=1;tag=tok;nonce="str"'
    assert parsed["sig"].params == {"created": 1, "tag": "tok", "nonce": "str"}
    assert parsed["sig"].created == 1 and parsed["sig"].expires is None
    assert parsed["other"].components == ("a",)


def test_signature_input_component_params_are_kept() -> None:
    parsed = parse_signature_input('sig=("a";sf "b";key="k");created=1')["sig"]
    assert parsed.components == ("a", "b")
    assert parsed.component_params == ({"sf": True}, {"key": "k"})
    assert parsed.value == '("a";sf "b";key="k");created=1'


@pytest.mark.parametrize("header", ["sig=1", "sig=(a)", 'sig=("a" 1)', "", "sig=(", "sig=?0"])
def test_signature_input_malformed(header: str) -> None:
    with pytest.raises(MissingSignatureError):
        parse_signature_input(header)


@given(st.text(max_size=80) | _PRINTABLE)
@example('sig=("@method");created=1.5')
@example('sig=("@method");created=-999999999999999')
@example('sig=("a";x=%"b")')
def test_signature_input_parser_fuzz(header: str) -> None:
    try:
        parsed = parse_signature_input(header)
    except AAuthError:
        return
    for label, member in parsed.items():
        assert member.label == label
        assert member.created is None or type(member.created) is int
        assert parse_signature_input(f"{label}={member.value}")[label] == member


# -- Content-Digest ----------------------------------------------------------------------------


def test_content_digest_ignores_unknown_algorithms() -> None:
    body = b"hello"
    value = f"md5=:AAAA:, unixsum=12, {content_digest(body)}"
    assert verify_content_digest(value, body) == ("sha-256",)
    assert parse_content_digest("md5=:AAAA:, unixsum=12") == {}


@pytest.mark.parametrize(
    "header",
    [
        "md5=:AAAA:",
        "",
        "sha-256",
        "sha-256=1",
        'sha-256="abc"',
        "sha-256=:AAAA:",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:AAAA:",
    ],
)
def test_content_digest_rejections(header: str) -> None:
    with pytest.raises(InvalidSignatureError):
        verify_content_digest(header, b'{"hello": "world"}')


def test_content_digest_configuration() -> None:
    with pytest.raises(ConfigurationError):
        content_digest(b"", ("md5",))
    with pytest.raises(ConfigurationError):
        content_digest(b"", ())
    assert verify_content_digest(content_digest(b""), None) == ("sha-256",)


@given(st.binary(max_size=300), st.lists(st.sampled_from(["sha-256", "sha-512"]), min_size=1))
def test_content_digest_round_trip(body: bytes, algorithms: list[str]) -> None:
    names = tuple(dict.fromkeys(algorithms))
    assert verify_content_digest(content_digest(body, names), body) == names
    with pytest.raises(InvalidSignatureError):
        verify_content_digest(content_digest(body, names), body + b"x")


@given(st.text(max_size=80) | _PRINTABLE, st.binary(max_size=20))
@example("sha-256=:YQ==:", b"")
def test_content_digest_parser_fuzz(header: str, body: bytes) -> None:
    try:
        verify_content_digest(header, body)
    except AAuthError:
        pass


# -- the verifier as a whole, on arbitrary header values ---------------------------------------

_KEY = PrivateKey.generate()
_HEADER = st.sampled_from(["signature", "signature-input", "signature-key", "content-digest"])


@given(st.dictionaries(_HEADER, st.text(max_size=60) | _PRINTABLE), st.binary(max_size=10))
def test_verifier_fuzz(headers: dict[str, str], body: bytes) -> None:
    verifier = SignatureVerifier(clock=FrozenClock(NOW), accepted_schemes=("jwt", "hwk"))
    request = HttpRequest("POST", "https://r.example/x", headers, body)
    try:
        verifier.verify(request, unverified_jwt_cnf_resolver)
    except AAuthError:
        return
    raise AssertionError("an unsigned request verified")


@given(
    st.sampled_from(
        ["signature", "signature-input", "signature-key", "content-digest", "content-type"]
    ),
    st.text(max_size=60) | _PRINTABLE,
)
def test_verifier_fuzz_one_header_of_a_signed_request(name: str, value: str) -> None:
    key = _KEY
    request = HttpRequest("POST", "https://r.example/x", {"content-type": "a/b"}, b"{}")
    headers = sign_request(
        request,
        key=key,
        signature_key=SignatureKey.from_jwt(fake_jwt(key.public_key.to_jwk())),
        created=NOW,
    )
    signed = request.with_headers(headers)
    mutated = signed.with_headers({name: value})
    verifier = SignatureVerifier(clock=FrozenClock(NOW))
    try:
        verifier.verify(mutated, unverified_jwt_cnf_resolver)
    except AAuthError:
        return
    assert mutated.header(name) == signed.header(name)


def test_parsed_signature_input_is_a_whole_dataclass() -> None:
    """The fast parse builds SignatureInput without ``__init__``: it holds exactly its
    fields and equals what ``__init__`` builds from them."""
    import dataclasses

    from aauth_agents.httpsig import parse_signature_input

    parsed = parse_signature_input('sig=("@method" "@path");created=1;keyid="k"')["sig"]
    names = {f.name for f in dataclasses.fields(parsed)}
    assert set(vars(parsed)) == names
    assert type(parsed)(**{name: getattr(parsed, name) for name in names}) == parsed
    assert (parsed.components, parsed.created, parsed.params["keyid"]) == (
        ("@method", "@path"),
        1,
        "k",
    )
