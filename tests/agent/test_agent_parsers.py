"""The agent's own parsers (Retry-After, Location, Prefer) and the cached signer, property
tested: each returns a value or its typed error, never anything else; the signer's output is
byte-for-byte what aauth_agents.httpsig.sign_request produces."""

from __future__ import annotations

import email.utils

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aauth_agents.agent import (
    DeferredResponseError,
    format_prefer_wait,
    parse_prefer_wait,
    parse_retry_after,
    resolve_location,
)
from aauth_agents.agent.flow.config import resource_identifier
from aauth_agents.agent.polling import DEFAULT_POLL_INTERVAL, MAX_RETRY_AFTER
from aauth_agents.agent.signer import RequestSigner, split_url
from aauth_agents.clock import FrozenClock
from aauth_agents.httpsig import (
    HttpRequest,
    KeyResolution,
    SignatureKey,
    SignatureVerifier,
    sign_request,
)
from aauth_agents.httpsig.request import ComponentError, split_target
from aauth_agents.keys import ED25519, ES256, PrivateKey

NOW = 1_730_217_600

# -- Retry-After ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 5.0),
        ("", 5.0),
        ("0", 0.0),
        ("7", 7.0),
        (" 3 ", 3.0),
        ("-1", 5.0),
        ("1.5", 5.0),
        ("soon", 5.0),
        ("99999999999999999999", MAX_RETRY_AFTER),
    ],
)
def test_retry_after_examples(value: str | None, expected: float) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after(date, now=NOW) == 30.0
    assert parse_retry_after(email.utils.formatdate(NOW - 30, usegmt=True), now=NOW) == 0.0
    assert parse_retry_after(date) == DEFAULT_POLL_INTERVAL  # a date needs a clock


@given(
    st.one_of(
        st.none(), st.text(), st.integers(min_value=0).map(str), st.floats(allow_nan=True).map(str)
    ),
    st.one_of(st.none(), st.floats(min_value=0, max_value=4e9)),
)
def test_retry_after_always_a_bounded_wait(value: str | None, now: float | None) -> None:
    wait = parse_retry_after(value, now=now)
    assert isinstance(wait, float) and 0.0 <= wait <= MAX_RETRY_AFTER


@given(st.integers(min_value=0, max_value=10**30))
def test_retry_after_seconds(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == min(float(seconds), MAX_RETRY_AFTER)


# -- Location ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/pending/abc", "https://ps.example/pending/abc"),
        ("pending/abc", "https://ps.example/aauth/pending/abc"),
        ("https://ps.example/pending/abc?x=1", "https://ps.example/pending/abc?x=1"),
        ("https://ps.example:443/p", "https://ps.example/p"),
        ("//ps.example/p", "https://ps.example/p"),
    ],
)
def test_location_same_origin(location: str, expected: str) -> None:
    assert resolve_location(location, base="https://ps.example/aauth/token") == expected


@pytest.mark.parametrize(
    "location",
    [
        None,
        "",
        "   ",
        "https://evil.example/pending",
        "http://ps.example/pending",
        "https://ps.example:8443/pending",
        "//evil.example/p",
        "https://user@ps.example/p",
        "/pending#frag",
        "javascript:alert(1)",
        "https://ps.example.evil.example/p",
    ],
)
def test_location_refused(location: str | None) -> None:
    with pytest.raises(DeferredResponseError):
        resolve_location(location, base="https://ps.example/token")


@given(st.one_of(st.none(), st.text(), st.from_regex(r"(https?:)?//[a-z.:0-9@]*/?[a-z/]*")))
def test_location_same_origin_or_typed_error(location: str | None) -> None:
    try:
        resolved = resolve_location(location, base="https://ps.example/token")
    except DeferredResponseError as exc:
        assert exc.code == "invalid_request"
        return
    assert resolved.startswith("https://ps.example/") or resolved.startswith(
        "https://ps.example:443/"
    )


# -- Prefer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("wait=30", 30),
        ("WAIT=5", 5),
        ('wait="7"', 7),
        ("respond-async, wait=10", 10),
        ("handling=lenient; x=y, wait = 3", 3),
        ("wait=x", None),
        ("wait", None),
        ("", None),
        (None, None),
        ("respond-async", None),
        ("wait=1, wait=2", 1),
    ],
)
def test_prefer_examples(header: str | None, expected: int | None) -> None:
    assert parse_prefer_wait(header) == expected


@given(st.integers(min_value=0, max_value=10**9 - 1))
def test_prefer_round_trip(seconds: int) -> None:
    assert parse_prefer_wait(format_prefer_wait(seconds)) == seconds


def test_prefer_wait_is_at_most_nine_digits() -> None:
    with pytest.raises(ValueError):
        format_prefer_wait(10**9)
    assert parse_prefer_wait("wait=1000000000") is None


@given(st.one_of(st.none(), st.text()))
def test_prefer_never_raises(header: str | None) -> None:
    value = parse_prefer_wait(header)
    assert value is None or (isinstance(value, int) and value >= 0)


def test_prefer_format_rejects_bad_values() -> None:
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError):
            format_prefer_wait(bad)  # type: ignore[arg-type]


# -- the cached signer ---------------------------------------------------------------------

_KEYS = {alg: PrivateKey.generate(alg) for alg in (ED25519, ES256)}
_TOKEN = "eyJhbGciOiJFZDI1NTE5In0.eyJjbmYiOnt9fQ.c2ln"


def _assert_as_sign_request_and_verifies(
    request: HttpRequest,
    added: dict[str, str],
    covered: tuple[str, ...],
    key: PrivateKey,
    created: int,
    extra: tuple[str, ...],
    *,
    compare: bool = True,
) -> None:
    """``added`` is what sign_request gives for ``request`` at ``created`` (when ``compare``),
    and ``request`` with it verifies, covering ``covered``."""
    if compare:
        expected = sign_request(
            request,
            key=key,
            signature_key=SignatureKey.from_jwt(_TOKEN),
            created=created,
            extra_components=extra,
            cover_body=False,
        )
        assert added == expected
    verifier = SignatureVerifier(clock=FrozenClock(created))
    verified = verifier.verify(
        request.with_headers(added), lambda _: KeyResolution(jwk=key.public_key.to_jwk())
    )
    assert verified.components == covered


@settings(max_examples=60, deadline=None)
@given(
    alg=st.sampled_from([ED25519, ES256]),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.from_regex(r"/[a-z0-9/._-]{0,20}", fullmatch=True),
    query=st.one_of(st.just(""), st.from_regex(r"[a-z0-9=&]{1,12}", fullmatch=True)),
    body=st.one_of(st.none(), st.binary(min_size=1, max_size=64)),
    session=st.booleans(),
    extra=st.lists(
        st.sampled_from(["content-type", "content-digest", "aauth-capabilities"]), unique=True
    ),
    cover_body=st.booleans(),
)
def test_signer_matches_sign_request(
    alg: str,
    method: str,
    path: str,
    query: str,
    body: bytes | None,
    session: bool,
    extra: list[str],
    cover_body: bool,
) -> None:
    key = _KEYS[alg]
    headers = {"content-type": "application/json", "aauth-capabilities": "interaction"}
    if session:
        headers["authorization"] = "AAuth abc.def"
    url = "https://resource.example" + path + (f"?{query}" if query else "")
    request = HttpRequest(method, url, headers, body)
    signature_key = SignatureKey.from_jwt(_TOKEN)
    signer = RequestSigner()
    for _ in range(2):  # the second run is served from the caches
        added, covered = signer.sign(
            request,
            key=key,
            signature_key=signature_key,
            created=NOW,
            extra_components=extra,
            cover_body=cover_body,
        )
        expected = sign_request(
            request,
            key=key,
            signature_key=signature_key,
            created=NOW,
            extra_components=extra,
            cover_body=cover_body,
        )
        assert added.keys() == expected.keys()
        for name in ("Signature-Key", "Signature-Input", "Content-Digest"):
            assert added.get(name) == expected.get(name)
        verifier = SignatureVerifier(clock=FrozenClock(NOW))
        verified = verifier.verify(
            request.with_headers(added), lambda _: KeyResolution(jwk=key.public_key.to_jwk())
        )
        assert verified.components == covered
        if alg == ED25519:  # deterministic signatures: the bytes must match too
            assert added["Signature"] == expected["Signature"]


def test_created_is_unique_per_state_changing_request() -> None:
    signer = RequestSigner()
    post = HttpRequest("POST", "https://ps.example/token")
    get = HttpRequest("GET", "https://ps.example/token")
    assert [signer.created_for(post, "k", NOW) for _ in range(3)] == [NOW, NOW + 1, NOW + 2]
    assert signer.created_for(get, "k", NOW) == NOW  # safe methods are not replay-cached
    assert signer.created_for(post, "other", NOW) == NOW
    assert signer.created_for(post, "k", NOW + 10) == NOW + 10
    for _ in range(10):  # never more than a few seconds ahead of the clock
        assert signer.created_for(post, "k", NOW + 10) <= NOW + 15


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    path=st.from_regex(r"/[a-z0-9/._-]{0,20}", fullmatch=True),
    query=st.one_of(st.just(""), st.from_regex(r"[a-z0-9=&]{1,12}", fullmatch=True)),
    body=st.one_of(st.none(), st.binary(min_size=1, max_size=64)),
    session=st.booleans(),
    extra=st.lists(
        st.sampled_from(["content-type", "content-digest", "aauth-capabilities"]), unique=True
    ).map(tuple),
)
def test_sign_message_reuses_the_base_of_a_shape(
    method: str, path: str, query: str, body: bytes | None, session: bool, extra: tuple[str, ...]
) -> None:
    """Signing the same request shape again (served from the shape cache) gives what
    sign_request gives for the same ``created``, and it verifies."""
    key = _KEYS[ED25519]
    headers = [("content-type", "application/json"), ("aauth-capabilities", "interaction")]
    if session:
        headers.append(("authorization", "AAuth abc.def"))
    url = "https://resource.example" + path + (f"?{query}" if query else "")
    request = HttpRequest(method, url, headers, body)
    signature_key = SignatureKey.from_jwt(_TOKEN)
    signer = RequestSigner()
    for now in (NOW, NOW + 7):
        added, covered = signer.sign_message(
            method,
            url,
            headers,
            body,
            key=key,
            signature_key=signature_key,
            now=now,
            key_id="k",
            extra_components=extra,
            cover_body=False,
        )
        created = int(added["Signature-Input"].rsplit("created=", 1)[1])
        assert created == now or (method != "GET" and created > now)
        _assert_as_sign_request_and_verifies(request, added, covered, key, created, extra)


_URL_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=12)


@settings(max_examples=400, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "HTTPS", "Http"]),
    userinfo=st.sampled_from(["", "u@", "u:p@"]),
    host=st.sampled_from(
        ["resource.example", "RES.Example", "127.0.0.1", "[::1]", "bücher.example"]
    ),
    port=st.sampled_from(["", ":80", ":443", ":8080", ":0"]),
    path=_URL_TEXT,
    query=st.one_of(st.none(), _URL_TEXT),
    fragment=st.one_of(st.none(), _URL_TEXT),
)
def test_split_url_agrees_with_printing_and_parsing(
    scheme: str,
    userinfo: str,
    host: str,
    port: str,
    path: str,
    query: str | None,
    fragment: str | None,
) -> None:
    """The steady path's split of an httpx URL is the resource identifier and
    ``split_target(str(url))`` the rest of the flow uses, on every URL httpx accepts."""
    text = f"{scheme}://{userinfo}{host}{port}/{path}"
    text += ("" if query is None else f"?{query}") + ("" if fragment is None else f"#{fragment}")
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        return
    try:
        expected = (resource_identifier(url), split_target(str(url)))
    except ComponentError:  # (a URL split_target refuses is left to the flow)
        assert split_url(url) is None
        return
    assert split_url(url) == expected


def test_split_url_refuses_what_split_target_refuses() -> None:
    assert split_url(httpx.URL("ftp://files.example/x")) is None


#: One signer for every example: the shapes it keeps are shared across paths and queries.
_SHARED_SIGNER = RequestSigner()


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST"]),
    origin=st.sampled_from(
        ["https://resource.example", "http://resource.example:8080", "https://r2.example"]
    ),
    path=st.from_regex(r"(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,12}){0,3}", fullmatch=True),
    query=st.one_of(
        st.none(), st.just(""), st.from_regex(r"[a-z0-9=&%/?:@-]{1,16}", fullmatch=True)
    ),
    fragment=st.booleans(),
    extra=st.lists(
        st.sampled_from(
            ["@target-uri", "@request-target", "@query", "@scheme", "aauth-capabilities"]
        ),
        unique=True,
    ).map(tuple),
)
def test_sign_message_shares_a_shape_across_paths_and_queries(
    method: str,
    origin: str,
    path: str,
    query: str | None,
    fragment: bool,
    extra: tuple[str, ...],
) -> None:
    """A shape cached for one path and query signs any other path and query of the same
    origin as sign_request does (the base's path and query parts derived per request)."""
    key = _KEYS[ED25519]
    headers = [("aauth-capabilities", "interaction")]
    url = origin + path + ("" if query is None else f"?{query}") + ("#top" if fragment else "")
    signature_key = SignatureKey.from_jwt(_TOKEN)
    added, covered = _SHARED_SIGNER.sign_message(
        method,
        url,
        headers,
        None,
        key=key,
        signature_key=signature_key,
        now=NOW,
        key_id="k",
        extra_components=extra,
        cover_body=False,
    )
    created = int(added["Signature-Input"].split("created=", 1)[1].split(";", 1)[0])
    request = HttpRequest(method, url, headers)
    # (a repeated POST is told apart by a nonce, which sign_request does not add)
    compare = ";nonce=" not in added["Signature-Input"]
    _assert_as_sign_request_and_verifies(
        request, added, covered, key, created, extra, compare=compare
    )
