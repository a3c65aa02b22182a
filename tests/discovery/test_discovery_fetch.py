"""Discovery against real Starlette issuers, on both front ends (the ``kind`` fixture).

Request counts at the server prove what was fetched; a FrozenClock moves time."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import anyio
import pytest

from aauth_agents.clock import FrozenClock
from aauth_agents.discovery import AsyncDiscovery, Discovery, DiscoveryCache
from aauth_agents.keys import PrivateKey, PublicKey
from aauth_agents.protocol.errors import (
    ConfigurationError,
    DiscoveryError,
    EgressDeniedError,
    InvalidKeyError,
    IssuerMismatchError,
    IssuerMissingError,
    UnknownKeyError,
    UnsupportedAlgorithmError,
)
from aauth_agents.transport import AsyncMappedTransport, MappedTransport

ISSUER = "https://ps.example"
DWK = "aauth-person.json"
META = f"/.well-known/{DWK}"
JWKS = "/.well-known/jwks.json"
HOUR, DAY = 3600, 86400


# ----------------------------------------------------------------------------- basics


async def test_fetches_once_then_serves_from_cache(front: Any, server: Any) -> None:
    metadata = await front.metadata()
    assert metadata["issuer"] == ISSUER
    key = await front.get_key("k1")
    assert isinstance(key, PublicKey)
    assert key.same_key(server.signing_keys["k1"].public_key)
    for _ in range(3):
        await front.metadata()
        await front.get_key("k1")
        await front.jwks()
    assert server.hits == {META: 1, JWKS: 1}
    # the server saw the identifier's host, as if DNS pointed there
    assert {seen["host"] for seen in server.seen} == {"ps.example"}


async def test_returned_documents_are_copies(front: Any, server: Any) -> None:
    metadata = await front.metadata()
    metadata["issuer"] = "https://evil.example"
    (await front.jwks()).clear()
    assert (await front.metadata())["issuer"] == ISSUER
    assert len(await front.jwks()) == 1


async def test_max_age_is_respected(front: Any, server: Any, clock: FrozenClock) -> None:
    server.set_jwks(headers={"Cache-Control": "public, max-age=300"})
    await front.get_key()
    clock.advance(299)
    await front.get_key()
    assert server.hits[JWKS] == 1
    clock.advance(2)
    await front.get_key()
    assert server.hits[JWKS] == 2


async def test_age_is_subtracted(front: Any, server: Any, clock: FrozenClock) -> None:
    server.set_jwks(headers={"Cache-Control": "max-age=300", "Age": "200"})
    await front.get_key()
    clock.advance(99)
    await front.get_key()
    assert server.hits[JWKS] == 1
    clock.advance(2)
    await front.get_key()
    assert server.hits[JWKS] == 2


async def test_lifetimes_are_capped_at_24h(front: Any, server: Any, clock: FrozenClock) -> None:
    forever = {"Cache-Control": "max-age=31536000"}
    server.set_metadata(headers=forever)
    server.set_jwks(headers=forever)
    await front.get_key()
    clock.advance(DAY - 1)
    await front.get_key()
    assert server.hits == {META: 1, JWKS: 1}
    clock.advance(2)
    await front.get_key()
    assert server.hits == {META: 2, JWKS: 2}


async def test_default_lifetime_is_one_hour(front: Any, server: Any, clock: FrozenClock) -> None:
    await front.get_key()
    clock.advance(HOUR - 1)
    await front.get_key()
    assert server.hits == {META: 1, JWKS: 1}
    clock.advance(2)
    await front.get_key()
    assert server.hits == {META: 2, JWKS: 2}


async def test_expires_counts_from_date(front: Any, server: Any, clock: FrozenClock) -> None:
    # Date and Expires from a server whose clock is a year off: only their difference counts
    date = clock.now - 365 * DAY
    server.set_jwks(
        headers={
            "Date": formatdate(date, usegmt=True),
            "Expires": formatdate(date + 600, usegmt=True),
        }
    )
    await front.get_key()
    clock.advance(599)
    await front.get_key()
    assert server.hits[JWKS] == 1
    clock.advance(2)
    await front.get_key()
    assert server.hits[JWKS] == 2


@pytest.mark.parametrize("directive", ["no-store", "no-cache", "max-age=0", "private, no-store"])
async def test_uncacheable_documents_are_revalidated_under_the_floor(
    front: Any, server: Any, clock: FrozenClock, directive: str
) -> None:
    server.set_jwks(headers={"Cache-Control": directive})
    await front.get_key()
    clock.advance(30)
    await front.get_key()  # stale, but refetching now would break the once-a-minute floor
    assert server.hits[JWKS] == 1
    clock.advance(31)
    await front.get_key()
    assert server.hits[JWKS] == 2


# ----------------------------------------------------------------------------- metadata


async def test_issuer_missing(front: Any, server: Any) -> None:
    server.set_metadata(drop=("issuer",))
    with pytest.raises(IssuerMissingError) as caught:
        await front.metadata()
    assert caught.value.code == "issuer_missing"


@pytest.mark.parametrize(
    "claimed",
    [
        "https://ps.example/",
        "https://PS.example",
        "https://Ps.Example",
        "https://other.example",
        "http://ps.example",
        "https://ps.example:443",
        "https://ps.example.",
        " https://ps.example",
        "",
        None,
        42,
        ["https://ps.example"],
    ],
)
async def test_issuer_mismatch(front: Any, server: Any, claimed: Any) -> None:
    server.set_metadata(issuer=claimed)
    with pytest.raises(IssuerMismatchError) as caught:
        await front.get_key()
    assert caught.value.code == "issuer_mismatch"
    assert server.hits[JWKS] == 0  # a mismatched document's jwks_uri is never followed


@pytest.mark.parametrize(
    "jwks_uri",
    [
        "http://ps.example/.well-known/jwks.json",
        "ps.example/jwks",
        "/.well-known/jwks.json",
        "file:///etc/passwd",
        7,
    ],
)
async def test_jwks_uri_must_be_https(front: Any, server: Any, jwks_uri: Any) -> None:
    server.set_metadata(jwks_uri=jwks_uri)
    with pytest.raises(DiscoveryError) as caught:
        await front.get_key()
    assert caught.value.code == "invalid_jwt"
    assert server.hits[JWKS] == 0


async def test_metadata_without_jwks_uri(front: Any, server: Any) -> None:
    server.set_metadata(drop=("jwks_uri",))  # allowed for a resource that signs nothing
    assert "jwks_uri" not in await front.metadata()
    with pytest.raises(DiscoveryError, match="no jwks_uri"):
        await front.get_key()


@pytest.mark.parametrize(
    "issuer",
    [
        "http://ps.example",
        "https://ps.example/",
        "https://PS.example",
        "https://ps.example:8443",
        "https://127.0.0.1",
        "ps.example",
    ],
)
async def test_issuer_must_be_a_server_identifier(front: Any, server: Any, issuer: str) -> None:
    with pytest.raises(DiscoveryError):
        await front.metadata(issuer)
    assert not server.hits


@pytest.mark.parametrize(
    "dwk",
    [
        "",
        "..",
        "../jwks.json",
        "a/b",
        ".hidden",
        "Aauth.json",
        "aauth-person.json?x",
        "a%2fb",
        "x" * 200,
    ],
)
async def test_dwk_must_be_a_plain_name(front: Any, server: Any, dwk: str) -> None:
    with pytest.raises(DiscoveryError):
        await front.metadata(ISSUER, dwk)
    assert not server.hits


@pytest.mark.parametrize(
    "dwk", ["aauth-agent.json", "aauth-resource.json", "aauth-access.json", "example-configuration"]
)
async def test_other_dwk_names(front: Any, server: Any, dwk: str) -> None:
    server.set_metadata(dwk=dwk)
    assert (await front.metadata(ISSUER, dwk))["issuer"] == ISSUER


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'"https://ps.example"',
        b"",
        b'{"issuer": "https://evil.example", "issuer": "https://ps.example"}',
        b'{"issuer": NaN}',
        b"\xff\xfe{}",
    ],
)
async def test_bad_documents(front: Any, server: Any, body: bytes) -> None:
    server.set(META, raw=body)
    with pytest.raises(DiscoveryError):
        await front.metadata()


@pytest.mark.parametrize("status", [201, 204, 301, 302, 304, 307, 404, 500, 503])
async def test_only_200_counts_and_redirects_are_not_followed(
    front: Any, server: Any, status: int
) -> None:
    server.set(
        META,
        {"issuer": ISSUER},
        status=status,
        headers={"Location": "https://ps.example/elsewhere"},
    )
    server.set("/elsewhere", {"issuer": ISSUER})
    with pytest.raises(DiscoveryError, match=str(status)):
        await front.metadata()
    assert server.hits["/elsewhere"] == 0


async def test_document_size_is_limited(make_front: Any, server: Any) -> None:
    front = make_front({ISSUER: server.app}, max_document_bytes=1024)
    server.set_jwks(keys=[{"kid": f"pad{i}", "kty": "none", "x": "A" * 100} for i in range(20)])
    with pytest.raises(DiscoveryError, match="larger than 1024"):
        await front.get_key()


# ----------------------------------------------------------------------------- keys


async def test_unusable_members_do_not_break_selection(front: Any, server: Any) -> None:
    good = server.signing_keys["k1"].public_key.to_jwk()
    server.set_jwks(
        keys=[
            {"kty": "AKP", "alg": "ML-DSA-65", "kid": "pq", "pub": "AAAA"},
            {"kty": "RSA", "kid": "rsa", "n": "xyz", "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": "legacy", "x": "AAAA"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            "not a key",
            17,
            None,
            [],
            {"kid": ["k1"]},
            good,
        ]
    )
    key = await front.get_key("k1")
    assert key.same_key(server.signing_keys["k1"].public_key)
    assert len(await front.jwks()) == 10  # published as-is, unusable members included
    with pytest.raises(UnsupportedAlgorithmError):
        await front.get_key("pq")  # selecting an unusable member is what fails


async def test_selected_key_needs_alg(front: Any, server: Any) -> None:
    jwk = server.signing_keys["k1"].public_key.to_jwk()
    del jwk["alg"]
    server.set_jwks(keys=[jwk])
    with pytest.raises(UnsupportedAlgorithmError):
        await front.get_key("k1")


async def test_selected_key_with_eddsa_is_rejected(front: Any, server: Any) -> None:
    jwk = {**server.signing_keys["k1"].public_key.to_jwk(), "alg": "EdDSA"}
    server.set_jwks(keys=[jwk])
    with pytest.raises(UnsupportedAlgorithmError):
        await front.get_key("k1")


async def test_selected_key_must_match_its_alg(front: Any, server: Any) -> None:
    jwk = {**server.signing_keys["k1"].public_key.to_jwk(), "alg": "ES256"}
    server.set_jwks(keys=[jwk])
    with pytest.raises(InvalidKeyError):
        await front.get_key("k1")


async def test_es256_keys(front: Any, server: Any) -> None:
    es = PrivateKey.generate("ES256", kid="ec")
    server.set_jwks(keys=[es.public_key.to_jwk()])
    assert (await front.get_key("ec")).alg == "ES256"


async def test_duplicate_kids_are_refused(front: Any, server: Any) -> None:
    jwk = server.signing_keys["k1"].public_key.to_jwk()
    other = PrivateKey.generate(kid="k1").public_key.to_jwk()
    server.set_jwks(keys=[jwk, other])
    with pytest.raises(DiscoveryError, match="kid"):
        await front.get_key("k1")


async def test_jwks_must_have_keys(front: Any, server: Any) -> None:
    server.set(JWKS, {"keys": {"kid": "k1"}})
    with pytest.raises(DiscoveryError, match="keys"):
        await front.get_key()


# ----------------------------------------------------------------------------- unknown kid


async def test_unknown_kid_refetches_at_most_once_a_minute(
    front: Any, server: Any, clock: FrozenClock
) -> None:
    await front.get_key("k1")
    assert server.hits[JWKS] == 1
    server.rotate("k2")
    for _ in range(5):  # the JWKS was fetched just now: no refetch yet
        with pytest.raises(UnknownKeyError) as caught:
            await front.get_key("k2")
        assert caught.value.code == "unknown_key"
    clock.advance(59)
    for kid in ("k2", "k3", "k4"):
        with pytest.raises(UnknownKeyError):
            await front.get_key(kid)
    assert server.hits[JWKS] == 1
    clock.advance(1)
    assert (await front.get_key("k2")).kid == "k2"  # one refetch follows the rotation
    assert server.hits[JWKS] == 2
    for kid in ("k3", "k4", "k5"):  # and the floor holds again
        with pytest.raises(UnknownKeyError):
            await front.get_key(kid)
    assert server.hits[JWKS] == 2
    clock.advance(60)
    with pytest.raises(UnknownKeyError):
        await front.get_key("k3")  # one refetch, still unknown
    assert server.hits[JWKS] == 3
    assert server.hits[META] == 1


async def test_the_floor_is_per_issuer(
    make_front: Any, make_server: Any, loopback_policy: Any
) -> None:
    first, second = make_server(), make_server("https://as.example")
    front = make_front(
        {ISSUER: first.app, "https://as.example": second.app},
        egress=loopback_policy("ps.example", "as.example"),
    )
    await front.get_key("k1")
    second.set_metadata(dwk="aauth-access.json")
    await front.get_key("k1", "https://as.example", "aauth-access.json")
    second.rotate("k2")
    with pytest.raises(UnknownKeyError):
        await front.get_key("k2")  # ps.example: no such key, floor holds
    with pytest.raises(UnknownKeyError):
        await front.get_key("k2", "https://as.example", "aauth-access.json")
    assert first.hits[JWKS] == 1 and second.hits[JWKS] == 1


async def test_refresh_key_after_silent_rekeying(
    front: Any, server: Any, clock: FrozenClock
) -> None:
    old = await front.get_key("k1")
    server.signing_keys["k1"] = PrivateKey.generate(kid="k1")  # same kid, new material
    server.set_jwks()
    assert await front.refresh_key("k1") is None  # too soon: nothing new to try
    assert server.hits[JWKS] == 1
    clock.advance(60)
    new = await front.refresh_key("k1")
    assert new is not None and not new.same_key(old)
    assert new.same_key(server.signing_keys["k1"].public_key)
    assert (await front.get_key("k1")).same_key(new)
    assert await front.refresh_key("k1") is None
    assert server.hits[JWKS] == 2
    clock.advance(60)
    server.set_jwks(keys=[])
    with pytest.raises(UnknownKeyError):
        await front.refresh_key("k1")


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize("status", [500, 404, 302])
async def test_stale_jwks_is_used_when_the_refetch_fails(
    front: Any, server: Any, clock: FrozenClock, status: int
) -> None:
    server.set_jwks(headers={"Cache-Control": "max-age=60"})
    await front.get_key()
    server.fail(JWKS, status)
    clock.advance(61)
    key = await front.get_key()
    assert key.same_key(server.signing_keys["k1"].public_key)
    assert server.hits[JWKS] == 2


async def test_stale_metadata_is_used_when_the_refetch_is_invalid(
    front: Any, server: Any, clock: FrozenClock
) -> None:
    await front.metadata()
    server.set_metadata(issuer="https://evil.example")
    clock.advance(HOUR + 1)
    assert (await front.metadata())["issuer"] == ISSUER
    assert server.hits[META] == 2


async def test_failures_back_off_exponentially(front: Any, server: Any, clock: FrozenClock) -> None:
    server.set_jwks(headers={"Cache-Control": "max-age=60"})
    await front.get_key()
    server.fail(JWKS)
    attempted_at = []
    for second in range(1, 16 * 60 + 1):  # 16 minutes, a request every second
        clock.advance(1)
        before = server.hits[JWKS]
        await front.get_key()  # always answered, from the stale copy
        if server.hits[JWKS] != before:
            attempted_at.append(second)
    # refetches 60 s after the copy went stale, then 60, 120, 240, 480 s apart
    assert attempted_at == [60, 120, 240, 480, 960]
    hits = server.hits[JWKS]
    server.set_jwks(headers={"Cache-Control": "max-age=60"})
    clock.advance(960)
    await front.get_key()
    clock.advance(61)
    await front.get_key()  # success reset the backoff: back to the plain floor
    assert server.hits[JWKS] == hits + 2


async def test_without_a_cached_copy_failures_raise(
    front: Any, server: Any, clock: FrozenClock
) -> None:
    server.fail(JWKS, 503)
    with pytest.raises(DiscoveryError, match="503"):
        await front.get_key()
    with pytest.raises(DiscoveryError, match="next attempt"):  # no hammering meanwhile
        await front.get_key()
    assert server.hits[JWKS] == 1
    server.set_jwks()
    clock.advance(60)
    assert (await front.get_key()).kid == "k1"


async def test_typed_errors_survive_the_backoff(front: Any, server: Any) -> None:
    server.set_metadata(issuer="https://evil.example")
    for _ in range(2):
        with pytest.raises(IssuerMismatchError):
            await front.metadata()
    assert server.hits[META] == 1


async def test_stale_copies_are_discarded_after_24h(
    front: Any, server: Any, clock: FrozenClock
) -> None:
    server.set_metadata(headers={"Cache-Control": "max-age=86400"})
    server.set_jwks(headers={"Cache-Control": "max-age=60"})
    await front.get_key()
    server.fail(JWKS)
    clock.advance(DAY - 60)
    await front.get_key()  # stale for almost a day, still trusted while the issuer is down
    clock.advance(61)
    with pytest.raises(DiscoveryError):
        await front.get_key()  # removed keys must stop being trusted


# ----------------------------------------------------------------------------- egress


async def test_egress_is_applied_before_fetching(make_front: Any, server: Any) -> None:
    from aauth_agents.discovery import EgressPolicy

    front = make_front(
        {ISSUER: server.app}, egress=EgressPolicy.for_mapped_hosts({"ps.example": "127.0.0.1"})
    )
    with pytest.raises(EgressDeniedError) as caught:
        await front.get_key()
    assert caught.value.code == "invalid_jwt"
    assert not server.hits


async def test_cross_origin_jwks_needs_permission(
    make_front: Any, make_server: Any, loopback_policy: Any
) -> None:
    issuer, keys = make_server(), make_server("https://keys.example")
    issuer.set_metadata(jwks_uri="https://keys.example/.well-known/jwks.json")
    keys.signing_keys = issuer.signing_keys
    keys.set_jwks()
    mapping = {ISSUER: issuer.app, "https://keys.example": keys.app}
    strict = make_front(mapping, egress=loopback_policy("ps.example", "keys.example"))
    with pytest.raises(EgressDeniedError, match="cross-origin"):
        await strict.get_key()
    assert keys.hits[JWKS] == 0
    relaxed = make_front(
        mapping, egress=loopback_policy("ps.example", "keys.example", allow_cross_origin_jwks=True)
    )
    assert (await relaxed.get_key()).kid == "k1"


# ----------------------------------------------------------------------------- concurrency


async def test_concurrent_first_fetches_share_one_request(front: Any, server: Any) -> None:
    results: list[Any] = []

    async def one() -> None:
        results.append(await front.get_key())

    async with anyio.create_task_group() as group:
        for _ in range(12):
            group.start_soon(one)
    assert len(results) == 12
    assert server.hits == {META: 1, JWKS: 1}


# ----------------------------------------------------------------------------- front ends


async def test_async_discovery_get_key_answers_from_cache_only(
    server: Any, clock: FrozenClock, loopback_policy: Any
) -> None:
    async with AsyncDiscovery(
        transport=AsyncMappedTransport({ISSUER: server.app}, strict=True),
        egress=loopback_policy(),
        clock=clock,
    ) as discovery:
        with pytest.raises(DiscoveryError, match="aget_key"):
            discovery.get_key(ISSUER, DWK, "k1")
        assert not server.hits
        key = await discovery.aget_key(ISSUER, DWK, "k1")
        assert discovery.get_key(ISSUER, DWK, "k1") == key
        assert discovery.refresh_key(ISSUER, DWK, "k1") is None


async def test_sync_discovery_aget_key(
    server: Any, clock: FrozenClock, loopback_policy: Any
) -> None:
    with Discovery(
        transport=MappedTransport({ISSUER: server.app}, strict=True),
        egress=loopback_policy(),
        clock=clock,
    ) as discovery:
        key = await discovery.aget_key(ISSUER, DWK, "k1")
        assert key == discovery.get_key(ISSUER, DWK, "k1")
        assert await discovery.arefresh_key(ISSUER, DWK, "k1") is None


def test_sync_and_async_can_share_one_cache(
    server: Any, clock: FrozenClock, loopback_policy: Any
) -> None:
    cache = DiscoveryCache(clock=clock)
    with Discovery(
        transport=MappedTransport({ISSUER: server.app}, strict=True),
        egress=loopback_policy(),
        cache=cache,
    ) as sync_discovery:
        sync_discovery.get_key(ISSUER, DWK, "k1")
    async_discovery = AsyncDiscovery(
        transport=AsyncMappedTransport({ISSUER: server.app}), egress=loopback_policy(), cache=cache
    )
    assert async_discovery.get_key(ISSUER, DWK, "k1").kid == "k1"
    assert server.hits == {META: 1, JWKS: 1}


def test_issuer_keys_protocol() -> None:
    issuer_keys = pytest.importorskip("aauth_agents.tokens.issuer_keys")
    for cls in (Discovery, AsyncDiscovery):
        instance = cls.__new__(cls)
        assert isinstance(instance, issuer_keys.IssuerKeys)


def test_cache_configuration_is_checked() -> None:
    with pytest.raises(ConfigurationError):
        DiscoveryCache(min_refetch_interval=10)
    with pytest.raises(ConfigurationError):
        DiscoveryCache(max_ttl=2 * DAY)
    with pytest.raises(ConfigurationError):
        DiscoveryCache(max_entries=0)


async def test_the_cache_is_bounded(
    make_front: Any, make_server: Any, loopback_policy: Any, clock: FrozenClock
) -> None:
    hosts = [f"ps{i}.example" for i in range(3)]
    servers = {f"https://{h}": make_server(f"https://{h}") for h in hosts}
    front = make_front(
        {i: s.app for i, s in servers.items()},
        egress=loopback_policy(*hosts),
        cache=DiscoveryCache(clock=clock, max_entries=2),
    )
    for issuer in servers:
        await front.metadata(issuer)
    assert front.discovery.cache.size() == 2
    await front.metadata("https://ps0.example")  # evicted: fetched again
    assert servers["https://ps0.example"].hits[META] == 2
