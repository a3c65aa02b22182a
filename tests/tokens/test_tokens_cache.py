"""The verified-token cache: one verification per token string, never past ``exp``, bounded,
dropped on revocation of the token, its agent or its person."""

from __future__ import annotations

from support.tokens import AGENT_ID, PERSON_SUB, PS, RESOURCE, World

from aauth_agents.httpsig.types import KeyResolution, SignatureKey
from aauth_agents.tokens import VerifiedTokenCache, token_key_resolver


def jwt_key(token: str) -> SignatureKey:
    return SignatureKey("jwt", {"jwt": token})


def counting_resolver(world: World) -> tuple[list[str], object]:
    calls: list[str] = []
    resolve = token_key_resolver(keys=world.keys, audience=RESOURCE, clock=world.clock)

    def counted(key: SignatureKey) -> KeyResolution:
        calls.append(key.jwt or "")
        return resolve(key)

    return calls, counted


def test_a_token_is_verified_once_then_served_until_exp(world: World) -> None:
    cache = VerifiedTokenCache(clock=world.clock)
    calls, resolve = counting_resolver(world)
    cached = cache.wrap(resolve)  # type: ignore[arg-type]
    token = world.agent_token(lifetime=60)
    first = cached(jwt_key(token))
    assert cached(jwt_key(token)) is first
    assert calls == [token]
    other = world.agent_token(lifetime=60, jti="another")
    cached(jwt_key(other))  # a different string never hits
    assert calls == [token, other]
    world.clock.advance(60)  # now == exp: the entry is not used (and the token is refused)
    assert cache.get(jwt_key(token)) is None
    assert len(cache) == 1


def test_the_cache_is_bounded_least_recently_used_first(ed_world: World) -> None:
    cache = VerifiedTokenCache(2, clock=ed_world.clock)
    resolver = token_key_resolver(keys=ed_world.keys, audience=RESOURCE, clock=ed_world.clock)
    resolve = cache.wrap(resolver)
    a, b, c = (ed_world.agent_token(jti=j) for j in "abc")
    resolve(jwt_key(a))
    resolve(jwt_key(b))
    resolve(jwt_key(a))  # a used again: b is now the oldest
    resolve(jwt_key(c))
    assert cache.get(jwt_key(a)) is not None and cache.get(jwt_key(c)) is not None
    assert cache.get(jwt_key(b)) is None
    off = VerifiedTokenCache(0, clock=ed_world.clock)  # size 0: no cache at all
    off.wrap(resolver)(jwt_key(a))
    assert len(off) == 0


def test_revocations_drop_matching_entries(ed_world: World) -> None:
    cache = VerifiedTokenCache(clock=ed_world.clock)
    resolve = cache.wrap(
        token_key_resolver(keys=ed_world.keys, audience=RESOURCE, clock=ed_world.clock)
    )
    agent, person, auth = ed_world.agent_token(), ed_world.person_token(), ed_world.auth_token()
    for token in (agent, person, auth):
        resolve(jwt_key(token))
    assert len(cache) == 3
    assert cache.forget(token=("https://nobody.example", "x")) == 0
    assert cache.forget(agents=[AGENT_ID]) == 1  # the agent token names the agent
    assert cache.get(jwt_key(agent)) is None
    assert cache.forget(person=(PS, PERSON_SUB)) == 2  # person and auth tokens
    assert len(cache) == 0
    for token in (agent, person, auth):
        resolve(jwt_key(token))
    assert cache.forget(agents=[ed_world.jkt]) == 3  # the key thumbprint matches every token
    resolve(jwt_key(auth))
    jti = cache.get(jwt_key(auth)).context.jti  # type: ignore[union-attr]
    assert cache.forget(token=(PS, jti)) == 1
