"""Signing and verifying round trips (-11 §Signing (Agent), §Verification)."""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.httpsig import NOW, fake_jwt

from aauth_agents.clock import FrozenClock
from aauth_agents.httpsig import (
    HttpRequest,
    KeyResolution,
    MemoryReplayCache,
    SignatureKey,
    SignatureVerifier,
    default_components,
    parse_signature_input,
    parse_signature_key,
    sign_request,
    unverified_jwt_cnf_resolver,
)
from aauth_agents.keys import ED25519, ES256, PrivateKey
from aauth_agents.protocol.errors import ConfigurationError, InvalidJWTError

KEYS = {alg: PrivateKey.generate(alg) for alg in (ED25519, ES256)}


def _sign(request: HttpRequest, key: PrivateKey, **kwargs: Any) -> HttpRequest:
    token = fake_jwt(key.public_key.to_jwk())
    kwargs.setdefault("signature_key", SignatureKey.from_jwt(token))
    kwargs.setdefault("clock", FrozenClock(NOW))
    return request.with_headers(sign_request(request, key=key, **kwargs))


def test_signed_headers_follow_the_profile(ed_key: PrivateKey) -> None:
    token = fake_jwt(ed_key.public_key.to_jwk())
    request = HttpRequest(
        "POST",
        "https://ps.example/token?x=1",
        {"Content-Type": "application/json", "Authorization": "AAuth session"},
        b'{"a": 1}',
    )
    headers = sign_request(
        request, key=ed_key, signature_key=SignatureKey.from_jwt(token), created=NOW
    )
    assert set(headers) == {"Signature-Key", "Signature-Input", "Signature", "Content-Digest"}
    assert headers["Signature-Key"] == f'sig=jwt;jwt="{token}"'
    assert headers["Signature-Input"] == (
        'sig=("@method" "@authority" "@path" "@query" "authorization" "content-type" '
        f'"content-digest" "signature-key");created={NOW}'
    )
    digest = base64.b64encode(hashlib.sha256(b'{"a": 1}').digest()).decode()
    assert headers["Content-Digest"] == f"sha-256=:{digest}:"
    assert headers["Signature"].startswith("sig=:") and headers["Signature"].endswith(":")


def test_no_alg_or_keyid_and_expires_when_asked(ed_key: PrivateKey) -> None:
    signed = _sign(HttpRequest("GET", "https://r.example/"), ed_key, expires=NOW + 30)
    parsed = parse_signature_input(signed.header("signature-input") or "")["sig"]
    assert dict(parsed.params) == {"created": NOW, "expires": NOW + 30}
    assert parsed.components == ("@method", "@authority", "@path", "signature-key")


def test_default_components() -> None:
    get = HttpRequest("GET", "https://r.example/x")
    assert default_components(get) == ["@method", "@authority", "@path", "signature-key"]
    assert default_components(get, extra_components=["content-digest", "x-a", "signature-key"]) == [
        "@method",
        "@authority",
        "@path",
        "x-a",
        "signature-key",
    ]
    post = HttpRequest("POST", "https://r.example/x?", {"content-type": "a/b"}, b"1")
    assert default_components(post, cover_body=False) == [
        "@method",
        "@authority",
        "@path",
        "signature-key",
    ]
    assert default_components(post, extra_components=["content-digest"], cover_body=False) == [
        "@method",
        "@authority",
        "@path",
        "content-digest",
        "signature-key",
    ]


def test_body_without_content_type_is_a_configuration_error(ed_key: PrivateKey) -> None:
    with pytest.raises(ConfigurationError):
        _sign(HttpRequest("POST", "https://r.example/", {}, b"x"), ed_key)


@pytest.mark.parametrize("label", ["Sig", "1sig", "", "a b"])
def test_bad_label_is_a_configuration_error(ed_key: PrivateKey, label: str) -> None:
    with pytest.raises(ConfigurationError):
        _sign(HttpRequest("GET", "https://r.example/"), ed_key, label=label)


def test_created_must_be_an_integer(ed_key: PrivateKey) -> None:
    with pytest.raises(ConfigurationError):
        _sign(HttpRequest("GET", "https://r.example/"), ed_key, created=1.5)
    with pytest.raises(ConfigurationError):
        _sign(HttpRequest("GET", "https://r.example/"), ed_key, created=True)


def test_verified_signature_fields(ed_key: PrivateKey) -> None:
    signed = _sign(HttpRequest("DELETE", "https://r.example/a?b=c"), ed_key, label="agent")
    result = SignatureVerifier(clock=FrozenClock(NOW)).verify(signed, unverified_jwt_cnf_resolver)
    assert result.label == "agent"
    assert result.scheme == "jwt"
    assert result.public_key.same_key(ed_key.public_key)
    assert result.thumbprint == ed_key.thumbprint()
    assert result.created == NOW and result.expires is None
    assert result.components == ("@method", "@authority", "@path", "@query", "signature-key")
    assert result.context["iss"] == "https://agent.example"
    assert result.signature_key.scheme == "jwt"


def test_hwk_round_trip(ec_key: PrivateKey) -> None:
    sk = SignatureKey.from_public_key(ec_key.public_key)
    signed = _sign(HttpRequest("GET", "https://r.example/"), ec_key, signature_key=sk)
    label, parsed = parse_signature_key(signed.header("signature-key") or "")
    assert label == "sig" and "kid" not in parsed.params and parsed.params["alg"] == "ES256"
    verifier = SignatureVerifier(clock=FrozenClock(NOW), accepted_schemes=("jwt", "hwk"))
    result = verifier.verify(signed)
    assert result.scheme == "hwk" and result.context is None
    assert result.thumbprint == ec_key.thumbprint()


def test_body_round_trip_with_required_digest(ed_key: PrivateKey) -> None:
    request = HttpRequest("POST", "https://ps.example/token", {"content-type": "a/b"}, b"{}")
    signed = _sign(request, ed_key, digest_algorithms=("sha-256", "sha-512"))
    verifier = SignatureVerifier(clock=FrozenClock(NOW), require_body_digest=True)
    assert verifier.verify(signed, unverified_jwt_cnf_resolver).components[-3:] == (
        "content-type",
        "content-digest",
        "signature-key",
    )


def test_window_edges_are_inclusive(ed_key: PrivateKey) -> None:
    signed = _sign(HttpRequest("GET", "https://r.example/"), ed_key)
    for offset in (-60, 60):
        clock = FrozenClock(NOW + offset)
        assert SignatureVerifier(clock=clock).verify(signed, unverified_jwt_cnf_resolver)


def test_multiple_field_lines_are_combined(ed_key: PrivateKey) -> None:
    """Another signature added by an intermediary, on its own lines, does not disturb ours."""
    signed = _sign(HttpRequest("GET", "https://r.example/"), ed_key)
    extra = HttpRequest(
        signed.method,
        signed.url,
        [
            *signed.headers,
            ("Signature-Input", 'proxy=("@method");created=1'),
            ("Signature", "proxy=:AAAA:"),
        ],
    )
    assert SignatureVerifier(clock=FrozenClock(NOW)).verify(extra, unverified_jwt_cnf_resolver)


def test_replay_cache_skips_safe_methods(ed_key: PrivateKey) -> None:
    verifier = SignatureVerifier(clock=FrozenClock(NOW), replay_cache=MemoryReplayCache())
    signed = _sign(HttpRequest("GET", "https://r.example/"), ed_key)
    verifier.verify(signed, unverified_jwt_cnf_resolver)
    verifier.verify(signed, unverified_jwt_cnf_resolver)


def test_memory_replay_cache_expires_and_bounds() -> None:
    clock = FrozenClock(100)
    cache = MemoryReplayCache(max_entries=2, clock=clock)
    key = ("t", 1, "POST", "a", "/")
    assert cache.check_and_store(key, 160)
    assert not cache.check_and_store(key, 160)
    clock.advance(61)
    assert cache.check_and_store(key, 221)  # the old entry expired
    assert cache.check_and_store(("t", 2, "POST", "a", "/"), 221)
    assert cache.check_and_store(("t", 3, "POST", "a", "/"), 221)
    assert len(cache) == 2


class _ReplayModel:
    """What a bounded replay cache must answer, without its mechanics: a key is refused while
    its last stored window is open and it is among the ``cap`` keys stored most recently."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.order: list[tuple[str, float]] = []  # (key, expires_at), least recent first

    def check_and_store(self, key: str, expires_at: float, now: float) -> bool:
        recent = self.order[-self.cap :]
        if any(k == key and until >= now for k, until in recent):
            return False
        self.order = [(k, until) for k, until in self.order if k != key] + [(key, expires_at)]
        return True


@settings(max_examples=200)
@given(
    cap=st.integers(1, 6),
    steps=st.lists(
        st.tuples(st.integers(0, 7), st.sampled_from("abcdefgh"), st.integers(-2, 12)),
        max_size=60,
    ),
)
def test_memory_replay_cache_agrees_with_a_model(
    cap: int, steps: list[tuple[int, str, int]]
) -> None:
    """Replays within the window are refused, expired entries are accepted again, the cap
    evicts the oldest and bounds the size, whatever the order of arrivals and expiries."""
    clock = FrozenClock(100)
    cache, model = MemoryReplayCache(max_entries=cap, clock=clock), _ReplayModel(cap)
    for advance, name, lifetime in steps:
        clock.advance(advance)
        key = ("t", 1, "POST", "a", name)
        expires_at = clock() + lifetime
        assert cache.check_and_store(key, expires_at) == model.check_and_store(
            name, expires_at, clock()
        )
        assert len(cache) <= cap


def test_memory_replay_cache_expires_from_the_front() -> None:
    clock = FrozenClock(100)
    cache = MemoryReplayCache(max_entries=1000, clock=clock)
    for n in range(500):
        assert cache.check_and_store(("t", n, "POST", "a", "/"), 160 + n / 100)
    clock.advance(70)  # every window has closed
    assert cache.check_and_store(("t", 0, "POST", "a", "/"), 230)  # accepted again
    assert len(cache) == 1  # one check dropped every expired entry


class _CountingEntries(OrderedDict[Any, float]):
    """An OrderedDict counting the entries any iteration over it visits."""

    visited = 0

    def _count(self, items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            type(self).visited += 1
            yield item

    def __iter__(self) -> Iterator[Any]:
        return self._count(super().__iter__())

    def items(self) -> Any:
        return list(self._count(super().items()))

    def keys(self) -> Any:
        return list(self._count(super().keys()))

    def values(self) -> Any:
        return list(self._count(super().values()))


def test_memory_replay_cache_check_does_not_visit_every_entry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A check looks at the front entry, never at the whole cache: neither below the cap
    nor at it (where each check evicts one entry, and the log says so once, not per check)."""
    clock = FrozenClock(100)
    cache = MemoryReplayCache(max_entries=2000, clock=clock)
    cache._entries = entries = _CountingEntries()
    for n in range(2000):
        cache.check_and_store(("t", n, "POST", "a", "/"), 160)
    _CountingEntries.visited = 0
    with caplog.at_level("WARNING", logger="aauth_agents.httpsig"):
        for n in range(2000, 2500):
            assert cache.check_and_store(("t", n, "POST", "a", "/"), 160)
    assert len(entries) == 2000 and ("t", 0, "POST", "a", "/") not in entries
    assert _CountingEntries.visited <= 500
    assert [r.getMessage() for r in caplog.records] == [
        "replay cache full (2000 entries): evicted 1 signature(s), oldest first"
    ]
    clock.advance(61)
    cache.check_and_store(("t", 1, "POST", "a", "/"), 221)  # the window of all others closed
    assert len(entries) == 1


async def test_averify_accepts_sync_and_async_resolvers(ed_key: PrivateKey) -> None:
    signed = _sign(HttpRequest("PUT", "https://r.example/p"), ed_key)
    verifier = SignatureVerifier(clock=FrozenClock(NOW))

    async def resolver(key: SignatureKey) -> KeyResolution:
        return unverified_jwt_cnf_resolver(key)

    assert (await verifier.averify(signed, resolver)).thumbprint == ed_key.thumbprint()
    assert (await verifier.averify(signed, unverified_jwt_cnf_resolver)).label == "sig"
    with pytest.raises(TypeError):
        verifier.verify(signed, resolver)  # type: ignore[arg-type]


def test_unverified_resolver_rejects_what_it_cannot_read() -> None:
    for key in (
        SignatureKey("jwt", {"jwt": "abc"}),
        SignatureKey("jwt", {"jwt": "a.e30.c"}),
        SignatureKey("hwk", {"kty": "OKP"}),
    ):
        with pytest.raises(InvalidJWTError):
            unverified_jwt_cnf_resolver(key)


# -- property-based round trips --------------------------------------------------------------

_SEGMENT = st.text("abcXYZ019-._~%!$&'()*+,;=:@", min_size=0, max_size=12)
_QUERY = st.text("abcXYZ019-._~%!$&'()*+,;=:@/?", max_size=20)
_METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY", "m-1"])


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    alg=st.sampled_from([ED25519, ES256]),
    method=_METHODS,
    host=st.sampled_from(["r.example", "R.Example:443", "r.example:8443", "[::1]:9"]),
    segments=st.lists(_SEGMENT, max_size=4),
    query=st.none() | _QUERY,
    body=st.none() | st.binary(max_size=200),
    authorization=st.none() | st.just("AAuth token"),
)
def test_sign_verify_round_trip(
    alg: str,
    method: str,
    host: str,
    segments: list[str],
    query: str | None,
    body: bytes | None,
    authorization: str | None,
) -> None:
    url = f"https://{host}/{'/'.join(segments)}" + ("" if query is None else f"?{query}")
    headers = {"Content-Type": "application/octet-stream"}
    if authorization:
        headers["Authorization"] = authorization
    request = HttpRequest(method, url, headers, body)
    key = KEYS[alg]
    signed = _sign(request, key)
    verifier = SignatureVerifier(
        clock=FrozenClock(NOW), require_body_digest=True, replay_cache=MemoryReplayCache()
    )
    result = verifier.verify(signed, unverified_jwt_cnf_resolver)
    assert result.public_key.alg == alg
    assert ("@query" in result.components) == bool(query)
    assert ("content-digest" in result.components) == bool(body)


def test_verified_signature_is_a_whole_dataclass(ed_key: PrivateKey) -> None:
    """The verifier builds its result without the generated ``__init__``: it still holds
    exactly its fields, equals what ``__init__`` builds, and stays frozen."""
    import dataclasses

    request = _sign(
        HttpRequest("POST", "https://ps.example/t", {"content-type": "a/b"}, b"x"), ed_key
    )
    verifier = SignatureVerifier(clock=FrozenClock(NOW))
    verified = verifier.verify(request, unverified_jwt_cnf_resolver)
    names = {f.name for f in dataclasses.fields(verified)}
    assert set(vars(verified)) == names
    rebuilt = type(verified)(**{name: getattr(verified, name) for name in names})
    assert rebuilt == verified and rebuilt.replay_key == verified.replay_key
    with pytest.raises(dataclasses.FrozenInstanceError):
        verified.created = 0  # type: ignore[misc]
