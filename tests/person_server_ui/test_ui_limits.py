"""Limits of the person's pages against a PS served by uvicorn on loopback (issue 15): password
guessing is stopped per account and per client address with growing lockouts, refused
unhashed; password hashes run two at a time however many sign-ins arrive; wrong interaction
codes count per address only for real interactions; forwarding headers are believed only
from a configured trusted proxy; every count lives in the PS database, so two PS processes on
one file (two workers) share it."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.ps import PASSWORD, RES, World, make_world
from support.ui import csrf

from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.person_server import accounts, person_server_of
from aauth_agents.servers.person_server.ui import create_person_server_with_ui
from aauth_agents.stores import StoreUnavailableError


class Hashes:
    """Counts scrypt derivations as they run: how many in all, and the most at once. While
    ``gate`` is cleared, every derivation waits for it (hashes that take their time)."""

    def __init__(self) -> None:
        self.total = 0
        self.running = 0
        self.peak = 0
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hashes]:
    seen = Hashes()
    derive = accounts._derive

    def counted(*args: Any) -> bytes:
        with seen._lock:
            seen.total += 1
            seen.running += 1
            seen.peak = max(seen.peak, seen.running)
        try:
            seen.gate.wait(timeout=60)
            return derive(*args)
        finally:
            with seen._lock:
                seen.running -= 1

    monkeypatch.setattr(accounts, "_derive", counted)
    yield seen
    seen.gate.set()


class Served:
    """One PS app with the UI on uvicorn: ``url`` and a browser for it."""

    def __init__(self, app: Any, url: str) -> None:
        self.app = app
        self.url = url

    def browser(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60)

    async def sign_in(self, client: httpx.AsyncClient, username: str, password: str) -> int:
        """POST the /signin form (from a fresh session when the client has none)."""
        form = await client.get("/signin")
        response = await client.post(
            "/signin",
            data={"csrf": csrf(form), "username": username, "password": password, "next": "/"},
            headers={"origin": self.url},
        )
        return response.status_code


def build(world: World, **options: Any) -> Any:
    """A PS app with the UI for ``world`` (``config_*`` options go to the config)."""
    config = {k.removeprefix("config_"): v for k, v in options.items() if k.startswith("config_")}
    ui = {k: v for k, v in options.items() if not k.startswith("config_")}
    return create_person_server_with_ui(world.config(**config), **ui)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = make_world()
    try:
        yield w
    finally:
        await w.close()


def serve(world: World, app: Any, *, accounts_too: bool = True) -> LoopbackServer:
    ps = person_server_of(app)
    if world.ps is None:
        world.app, world.ps = app, ps
    if accounts_too:
        ps.accounts.create_account("alice", PASSWORD)
        ps.accounts.create_account("bob", PASSWORD)
    server = LoopbackServer(app).start()
    if world.client is None:
        world.attach(server.url)
    return server


async def ask(world: World) -> tuple[str, str]:
    """A new agent asks for a person token: the link's path and its code."""
    pending = await world.agent().post("/person", {"resource": RES})
    assert pending.status_code == 202, pending.text
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    return requirement.url.removeprefix("https://ps.example"), requirement.code


def wrong(code: str) -> str:
    return "ZZZZ-ZZZZ" if code != "ZZZZ-ZZZZ" else "YYYY-YYYY"


# -- password guessing -----------------------------------------------------------------------------


async def test_password_guessing_is_stopped_after_five_and_locks_grow(
    world: World, hashes: Hashes
) -> None:
    server = serve(world, build(world))
    try:
        site = Served(world.app, server.url)
        async with site.browser() as browser:
            for _ in range(5):
                assert await site.sign_in(browser, "alice", "guess") == 401
            hashed = hashes.total
            # The sixth attempt is refused unhashed, even with the right password.
            form = await browser.get("/signin")
            refused = await browser.post(
                "/signin",
                data={"csrf": csrf(form), "username": "Alice", "password": PASSWORD},
                headers={"origin": site.url},
            )
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) == 60
            assert "Too many wrong passwords" in refused.text
            assert hashes.total == hashed
            # The interaction link's sign-in is the same check.
            path, code = await ask(world)
            async with site.browser() as fresh:
                page = await fresh.get(path, params={"code": code})
                token = csrf(page)
                linked = await fresh.post(
                    path,
                    data={"csrf": token, "code": code, "username": "alice", "password": PASSWORD},
                    headers={"origin": site.url},
                )
            assert linked.status_code == 429 and "retry-after" in linked.headers
            assert hashes.total == hashed
            # After the lockout the right password works and forgets the count ...
            world.clock.advance(61)
            assert await site.sign_in(browser, "alice", PASSWORD) == 303
            for _ in range(5):
                assert await site.sign_in(browser, "alice", "guess") == 401
            world.clock.advance(61)
            for _ in range(5):
                assert await site.sign_in(browser, "alice", "guess") == 401
            # ... and a second lockout the same day lasts twice as long.
            assert await site.sign_in(browser, "alice", PASSWORD) == 429
            world.clock.advance(61)
            assert await site.sign_in(browser, "alice", PASSWORD) == 429
            world.clock.advance(60)
            assert await site.sign_in(browser, "alice", PASSWORD) == 303
    finally:
        server.stop()


async def test_one_address_guessing_many_accounts_is_locked(world: World, hashes: Hashes) -> None:
    server = serve(world, build(world))
    try:
        site = Served(world.app, server.url)
        async with site.browser() as browser:
            for n in range(20):  # one guess each at twenty (mostly unknown) accounts
                assert await site.sign_in(browser, f"user{n}", "guess") == 401
            hashed = hashes.total
            assert await site.sign_in(browser, "bob", PASSWORD) == 429
            assert hashes.total == hashed
    finally:
        server.stop()


async def test_sixty_concurrent_sign_ins_never_run_more_than_two_hashes(
    world: World, hashes: Hashes
) -> None:
    """Each scrypt takes 16-32 MiB: sixty unauthenticated attempts at once must not run sixty
    (or forty: a thread pool's worth) of them; the hashing pool runs two and refuses what
    does not fit its queue at once."""
    server = serve(world, build(world))
    try:
        site = Served(world.app, server.url)
        async with site.browser() as browser:
            form = await browser.get("/signin")
            token = csrf(form)

            async def attempt(n: int) -> int:
                response = await browser.post(
                    "/signin",
                    data={"csrf": token, "username": f"someone{n}", "password": "guess"},
                    headers={"origin": site.url},
                )
                if response.status_code == 503:
                    assert response.headers["retry-after"] == "1"
                return response.status_code

            hashes.gate.clear()  # the hashes take their time: all sixty arrive meanwhile
            tasks = [asyncio.create_task(attempt(n)) for n in range(60)]
            for _ in range(300):  # until the fifty that find no place are answered (<= 30 s)
                if sum(task.done() for task in tasks) >= 50:
                    break
                await asyncio.sleep(0.1)
            hashes.gate.set()
            statuses = await asyncio.gather(*tasks)
        assert 1 <= hashes.peak <= 2, hashes.peak
        assert sorted(set(statuses)) == [401, 503], statuses
        assert statuses.count(401) == 10  # two hashing, eight waiting; the rest refused at once
        assert person_server_of(site.app).accounts.hashing.admitted == 0
    finally:
        server.stop()


# -- wrong interaction codes -----------------------------------------------------------------------


async def test_made_up_interaction_ids_do_not_lock_out_a_real_link(world: World) -> None:
    server = serve(world, build(world))
    try:
        async with httpx.AsyncClient(base_url=server.url) as browser:
            for n in range(30):
                made_up = await browser.get(f"/interact/made-up-{n}", params={"code": "ABCD-EFGH"})
                assert made_up.status_code == 410
            path, code = await ask(world)
            opened = await browser.get(path, params={"code": code})
            assert opened.status_code == 200 and 'id="agent"' in opened.text
    finally:
        server.stop()


async def test_wrong_codes_for_real_interactions_lock_the_address(world: World) -> None:
    server = serve(world, build(world, code_failures=3, code_window=60))
    try:
        async with httpx.AsyncClient(base_url=server.url) as browser:
            path, code = await ask(world)
            for _ in range(3):
                assert (await browser.get(path, params={"code": wrong(code)})).status_code == 410
            other, other_code = await ask(world)
            limited = await browser.get(other, params={"code": other_code})
            assert limited.status_code == 429 and limited.headers["retry-after"] == "60"
            world.clock.advance(61)
            assert (await browser.get(other, params={"code": other_code})).status_code == 200
    finally:
        server.stop()


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(world: World) -> None:
    """uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 by default; the PS does not unless
    told: three wrong codes each 'from' another address still come from this one."""
    server = serve(world, build(world, code_failures=3))
    try:
        async with httpx.AsyncClient(base_url=server.url) as browser:
            path, code = await ask(world)
            for n in range(3):
                response = await browser.get(
                    path,
                    params={"code": wrong(code)},
                    headers={"x-forwarded-for": f"198.51.100.{n}", "forwarded": f"for=192.0.2.{n}"},
                )
                assert response.status_code == 410
            other, other_code = await ask(world)
            limited = await browser.get(
                other, params={"code": other_code}, headers={"x-forwarded-for": "198.51.100.99"}
            )
            assert limited.status_code == 429
    finally:
        server.stop()


async def test_forwarded_for_from_a_trusted_proxy_is_used(world: World) -> None:
    server = serve(
        world, build(world, code_failures=3, config_trusted_proxies=["127.0.0.0/8", "10.0.0.1"])
    )
    try:
        async with httpx.AsyncClient(base_url=server.url) as proxy:
            path, code = await ask(world)
            # The client claims to be 192.0.2.1; the proxies saw 203.0.113.7 (10.0.0.1 is ours).
            chain = {"x-forwarded-for": "192.0.2.1, 203.0.113.7, 10.0.0.1"}
            for _ in range(3):
                response = await proxy.get(path, params={"code": wrong(code)}, headers=chain)
                assert response.status_code == 410
            other, other_code = await ask(world)
            limited = await proxy.get(
                other, params={"code": other_code}, headers={"x-forwarded-for": "203.0.113.7"}
            )
            assert limited.status_code == 429
            for someone_else in ({"x-forwarded-for": "192.0.2.1"}, {"forwarded": "for=192.0.2.1"}):
                opened = await proxy.get(other, params={"code": other_code}, headers=someone_else)
                assert opened.status_code == 200
            # The scheme the client used, as the proxy says: the session cookie is Secure.
            https = await proxy.get("/signin", headers={"x-forwarded-proto": "https"})
            assert "Secure" in https.headers["set-cookie"]
            assert "Secure" not in (await proxy.get("/signin")).headers["set-cookie"]
    finally:
        server.stop()


# -- two workers on one database -----------------------------------------------------------------


async def test_limits_hold_across_two_person_servers_on_one_database(
    world: World, tmp_path: Path, hashes: Hashes
) -> None:
    database = str(tmp_path / "ps.sqlite3")
    first = serve(world, build(world, code_failures=3, config_database=database))
    second_app = build(world, code_failures=3, config_database=database)
    second = serve(world, second_app, accounts_too=False)
    try:
        a, b = Served(world.app, first.url), Served(second_app, second.url)
        async with a.browser() as at_a, b.browser() as at_b:
            for site, browser in ((a, at_a), (b, at_b), (a, at_a), (b, at_b), (a, at_a)):
                assert await site.sign_in(browser, "alice", "guess") == 401
            hashed = hashes.total
            assert await b.sign_in(at_b, "alice", PASSWORD) == 429
            assert hashes.total == hashed
            path, code = await ask(world)  # the agent asks the first
            assert (await at_a.get(path, params={"code": wrong(code)})).status_code == 410
            assert (await at_b.get(path, params={"code": wrong(code)})).status_code == 410
            assert (await at_a.get(path, params={"code": wrong(code)})).status_code == 410
            assert (await at_b.get(path, params={"code": code})).status_code == 429
    finally:
        second.stop()
        first.stop()
        await person_server_of(second_app).aclose()


class Unreachable:
    """An attempt store whose backend is down (Redis or PostgreSQL restarting)."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailableError()

        return fail


async def test_an_unreachable_attempt_store_is_a_503_page(world: World) -> None:
    app = build(world)
    server = serve(world, app)
    try:
        unreachable: Any = Unreachable()
        person_server_of(app).attempts = unreachable
        app.state.person_server_ui.signins.attempts = unreachable
        site = Served(app, server.url)
        async with site.browser() as browser:
            path, code = await ask(world)
            form = await browser.get("/signin")
            signin = {"csrf": csrf(form), "username": "alice", "password": PASSWORD}
            for response in (
                await browser.get(path, params={"code": code}),
                await browser.post("/signin", data=signin, headers={"origin": site.url}),
            ):
                assert response.status_code == 503 and response.headers["retry-after"] == "1"
                assert 'id="error-code">temporarily_unavailable<' in response.text
    finally:
        server.stop()


def test_the_signin_refusal_names_the_wait() -> None:
    """The 429 page says how long (a whole number of minutes, at least one)."""
    from aauth_agents.servers.person_server.signins import SignIns

    assert re.search(r"in 1 minute\.", SignIns._too_many(60).message)
    assert re.search(r"in 2 minutes\.", SignIns._too_many(61).message)


def test_limits_that_allow_nothing_are_refused() -> None:
    from aauth_agents.protocol.errors import ConfigurationError
    from aauth_agents.servers.person_server import SignInLimits

    for bad in (
        {"account_failures": 0},
        {"lockout": 0},
        {"lockout": 7200.0},
        {"hashes": 0},
        {"queue": -1},
    ):
        with pytest.raises(ConfigurationError):
            SignInLimits(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        make_world().config(trusted_proxies="127.0.0.1")
    with pytest.raises(ConfigurationError):
        make_world().config(trusted_proxies=["localhost"])
