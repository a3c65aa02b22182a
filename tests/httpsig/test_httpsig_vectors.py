"""Published vectors: RFC 9421 (§2.1, §2.2, Appendix B.2.4 and B.2.6) and RFC 9530."""

from __future__ import annotations

import base64

import pytest

from aauth_agents.httpsig import (
    ComponentError,
    HttpRequest,
    component_value,
    content_digest,
    parse_signature_input,
    signature_base,
    signature_params,
    verify_content_digest,
)
from aauth_agents.keys import PrivateKey, PublicKey

# RFC 9421 Appendix B.1.4, test-key-ed25519, as a JWK (plus the alg AAuth requires).
ED25519_TEST_KEY = {
    "kty": "OKP",
    "crv": "Ed25519",
    "alg": "Ed25519",
    "kid": "test-key-ed25519",
    "d": "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU",
    "x": "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs",
}
# RFC 9421 Appendix B.1.3, test-key-ecc-p256 (public part), as a JWK.
ECC_P256_TEST_KEY = {
    "kty": "EC",
    "crv": "P-256",
    "alg": "ES256",
    "x": "qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA",
    "y": "Mc4nN9LTDOBhfoUeg8Ye9WedFRhnZXZJA12Qp0zZ6F0",
}

# RFC 9421 Appendix B.2: the test-request message.
TEST_REQUEST_DIGEST = (
    "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+"
    "AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
)
TEST_REQUEST = HttpRequest(
    "POST",
    "https://example.com/foo?param=Value&Pet=dog",
    [
        ("Host", "example.com"),
        ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("Content-Type", "application/json"),
        ("Content-Digest", TEST_REQUEST_DIGEST),
        ("Content-Length", "18"),
    ],
    b'{"hello": "world"}',
)

B26_BASE = (
    b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    b'"@method": POST\n'
    b'"@path": /foo\n'
    b'"@authority": example.com\n'
    b'"content-type": application/json\n'
    b'"content-length": 18\n'
    b'"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
    b'"content-length");created=1618884473;keyid="test-key-ed25519"'
)
B26_SIGNATURE = (
    "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
)
B26_COMPONENTS = ["date", "@method", "@path", "@authority", "content-type", "content-length"]


def test_b26_signature_base_byte_for_byte() -> None:
    base = signature_base(
        TEST_REQUEST, B26_COMPONENTS, {"created": 1618884473, "keyid": "test-key-ed25519"}
    )
    assert base == B26_BASE


def test_b26_signature_value_byte_for_byte() -> None:
    key = PrivateKey.from_jwk(ED25519_TEST_KEY)
    assert base64.b64encode(key.sign(B26_BASE)).decode() == B26_SIGNATURE
    assert key.public_key.verify(base64.b64decode(B26_SIGNATURE), B26_BASE)


def test_b26_signature_input_round_trips_to_the_same_base() -> None:
    header = (
        'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
        ';created=1618884473;keyid="test-key-ed25519"'
    )
    parsed = parse_signature_input(header)["sig-b26"]
    assert parsed.components == tuple(B26_COMPONENTS)
    assert parsed.created == 1618884473
    assert parsed.params["keyid"] == "test-key-ed25519"
    assert signature_base(TEST_REQUEST, parsed.components, parsed.params) == B26_BASE


def test_b24_ecdsa_signature_verifies() -> None:
    """B.2.4 signs a response (``@status``), which a request model cannot derive; the base is
    written out and only its ``@signature-params`` line comes from our serialiser. ECDSA is
    randomised, so the RFC's signature is verified rather than reproduced."""
    params = signature_params(
        ["@status", "content-type", "content-digest", "content-length"],
        {"created": 1618884473, "keyid": "test-key-ecc-p256"},
    )
    assert str(params) == (
        '("@status" "content-type" "content-digest" "content-length")'
        ';created=1618884473;keyid="test-key-ecc-p256"'
    )
    body = b'{"message": "good dog"}'
    digest = (
        "sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJu"
        "ahq4l5aGgfLQ==:"
    )
    assert content_digest(body, ("sha-512",)) == digest
    base = (
        f'"@status": 200\n"content-type": application/json\n"content-digest": {digest}\n'
        f'"content-length": 23\n"@signature-params": {params}'
    ).encode()
    signature = base64.b64decode(
        "wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw=="
    )
    key = PublicKey.from_jwk(ECC_P256_TEST_KEY)
    assert key.verify(signature, base)
    assert not key.verify(signature, base.replace(b"200", b"201"))


# -- RFC 9530 and the RFC 9421 test-request digest ---------------------------------------


def test_rfc9421_test_request_digests() -> None:
    body = b'{"hello": "world"}'
    assert content_digest(body) == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    assert content_digest(body, ("sha-512",)) == TEST_REQUEST_DIGEST
    assert verify_content_digest(TEST_REQUEST_DIGEST, body) == ("sha-512",)


def test_rfc9530_b1_and_section_2_examples() -> None:
    body = b'{"hello": "world"}\n'  # RFC 9530 B.1: the JSON object followed by an LF
    assert content_digest(body) == "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
    both = (
        "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:, "
        "sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:"
    )
    assert content_digest(body, ("sha-256", "sha-512")) == both
    assert verify_content_digest(both, body) == ("sha-256", "sha-512")


# -- RFC 9421 §2.1 and §2.2 examples --------------------------------------------------------


def test_header_fields_section_2_1() -> None:
    request = HttpRequest(
        "GET",
        "https://www.example.com/",
        [
            ("Host", "www.example.com"),
            ("X-OWS-Header", "   Leading and trailing whitespace.   "),
            ("X-Obs-Fold-Header", "Obsolete\r\n    line folding."),
            ("Cache-Control", "max-age=60"),
            ("Cache-Control", "   must-revalidate"),
            ("Example-Dict", " a=1,    b=2;x=1;y=2,   c=(a   b   c)"),
            ("X-Empty-Header", ""),
        ],
    )
    assert component_value(request, "x-ows-header") == "Leading and trailing whitespace."
    assert component_value(request, "x-obs-fold-header") == "Obsolete line folding."
    assert component_value(request, "cache-control") == "max-age=60, must-revalidate"
    assert component_value(request, "example-dict") == "a=1,    b=2;x=1;y=2,   c=(a   b   c)"
    assert component_value(request, "x-empty-header") == ""
    base = signature_base(request, ["x-empty-header"], {})
    assert base == b'"x-empty-header": \n"@signature-params": ("x-empty-header")'


@pytest.mark.parametrize(
    ("url", "name", "value"),
    [
        (
            "https://www.example.com/path?param=value",
            "@target-uri",
            "https://www.example.com/path?param=value",
        ),
        ("https://WWW.Example.COM:443/path", "@authority", "www.example.com"),
        ("https://www.example.com:8443/path", "@authority", "www.example.com:8443"),
        ("http://www.example.com:80/", "@authority", "www.example.com"),
        ("https://user:pw@www.example.com/", "@authority", "www.example.com"),
        ("https://[::1]:8443/", "@authority", "[::1]:8443"),
        ("HTTPS://www.example.com/", "@scheme", "https"),
        ("http://www.example.com/", "@scheme", "http"),
        ("https://www.example.com/path?param=value", "@request-target", "/path?param=value"),
        ("https://www.example.com/path?param=value", "@path", "/path"),
        ("https://www.example.com", "@path", "/"),
        ("https://www.example.com/a%2Fb/", "@path", "/a%2Fb/"),
        (
            "https://www.example.com/path?param=value&foo=bar&baz=bat%2Dman",
            "@query",
            "?param=value&foo=bar&baz=bat%2Dman",
        ),
        ("https://www.example.com/path?queryString", "@query", "?queryString"),
        ("https://www.example.com/path", "@query", "?"),
        ("https://www.example.com/path#frag", "@target-uri", "https://www.example.com/path"),
    ],
)
def test_derived_components_section_2_2(url: str, name: str, value: str) -> None:
    assert component_value(HttpRequest("POST", url), name) == value


def test_method_is_not_normalised() -> None:
    assert component_value(HttpRequest("post", "https://a.example/"), "@method") == "post"


@pytest.mark.parametrize(
    "name", ["@status", "@query-param", "@unknown", "@signature-params", "Content-Type", "absent"]
)
def test_underivable_components_are_errors(name: str) -> None:
    with pytest.raises(ComponentError):
        component_value(HttpRequest("GET", "https://a.example/"), name)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/relative",
        "ftp://a.example/",
        "https:///nohost",
        "https://a.example/a b",
        "https://a.example/\n",
        "https://a.example:99999/",
        "https://a.example/é",
    ],
)
def test_unusable_urls_are_errors(url: str) -> None:
    with pytest.raises(ComponentError):
        component_value(HttpRequest("GET", url), "@path")


def test_duplicate_component_and_line_break_are_errors() -> None:
    request = HttpRequest("GET", "https://a.example/", {"X-A": "1"})
    with pytest.raises(ComponentError):
        signature_base(request, ["@method", "@method"], {})
    with pytest.raises(ComponentError):
        signature_base(HttpRequest("GET", "https://a.example/", {"X-A": "a\nb"}), ["x-a"], {})
