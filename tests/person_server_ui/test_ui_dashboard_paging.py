"""The dashboard a page at a time: each list (waiting, agents, missions) shows its count and a
bounded page, its plain "More" / "Previous" links walk every item exactly once, keep the
other lists where they were (escaped in the HTML), and bad page numbers are read sanely.
httpx against the ASGI app, a signed-in session."""

from __future__ import annotations

import html
import re

import httpx
from support.ps import World
from support.ui import client, signed_in

from aauth_agents.protocol.mission import mission_s256
from aauth_agents.servers.person_server.dashboard_queries import PAGE_SIZE, RECENT_LOG
from aauth_agents.servers.person_server.pending import PendingRequest
from aauth_agents.servers.person_server.policy import PERMISSION
from aauth_agents.servers.person_server.state import ACTIVE, Mission
from aauth_agents.stores import PendingRecord

AP = "https://agents.example"
COUNT = 2 * PAGE_SIZE + 3


async def fill(world: World, account: str, count: int) -> None:
    ps = world.ps
    assert ps is not None
    now = float(ps.clock())
    for n in range(count):
        agent_id = f"aauth:{account}{n:03}@agents.example"
        at = now - 1000 + n
        await ps.run(ps.state.bind, AP, agent_id, account, "configured", at)
        req = PendingRequest(
            PERMISSION, AP, agent_id, {}, "approval", {"action": f"act{n:03}"}, account=account
        )
        record = PendingRecord.open(
            f"{account}-p{n:03}", req.kind, "jkt", at, 3600, data=req.to_json(), owner=account
        )
        await ps.run(ps.pending.create, record)
        blob = f'{{"description":"{account} mission {n:03}"}}'.encode()
        s256 = mission_s256(blob)
        await ps.run(
            ps.state.create_mission,
            Mission(s256, AP, agent_id, account, blob, ACTIVE, None, None, (), None, at),
        )
        for e in range(RECENT_LOG + 2 if n == 0 else 1):
            entry = f'{{"type":"audit","action":"step{e}"}}'.encode()
            await ps.run(ps.state.append_log, s256, "audit", entry, at)


def items(page: httpx.Response) -> dict[str, list[str]]:
    return {
        "waiting": re.findall(r'data-pending="([^"]+)"', page.text),
        "agents": re.findall(r"Agent <code>aauth:([a-z]+\d{3})@", page.text),
        "missions": re.findall(r"<p>([a-z]+ mission \d{3})</p>", page.text),
    }


def more(page: httpx.Response, name: str) -> str | None:
    nav = re.search(
        rf'<nav class="pager" aria-label="Pages of [^"]*{name}[^"]*">(.*?)</nav>', page.text, re.S
    )
    if nav is None:
        return None
    found = re.search(r'class="pager-next" href="([^"]+)"', nav.group(1))
    return html.unescape(found.group(1)) if found else None


async def test_the_pages_of_each_list_cover_every_item_once(ui_world: World) -> None:
    await fill(ui_world, "alice", COUNT)
    await fill(ui_world, "bob", 2)
    async with client(ui_world) as alice:
        first = await signed_in(alice)
        assert first.status_code == 200
        for heading in (
            "Waiting for you",
            "Your agents",
            "Missions",
        ):
            assert f'{heading} <span class="count">({COUNT})</span>' in first.text
        assert f"Showing 1\N{EN DASH}{PAGE_SIZE} of {COUNT} (page 1 of 3)" in first.text
        for name, label in (
            ("waiting", "requests"),
            ("agents", "agents"),
            ("missions", "missions"),
        ):
            seen: list[str] = []
            page = first
            while True:
                got = items(page)[name]
                assert 0 < len(got) <= PAGE_SIZE
                seen += got
                link = more(page, label)
                if link is None:
                    break
                page = await alice.get(link)
                assert page.status_code == 200
            assert len(seen) == COUNT and len(set(seen)) == COUNT, name
            assert not any("bob" in s for s in seen)
        # The oldest request first; the newest mission first.
        assert items(first)["waiting"][0] == "alice-p000"
        assert items(first)["missions"][0] == f"alice mission {COUNT - 1:03}"


async def test_page_links_keep_the_other_lists_and_are_escaped(ui_world: World) -> None:
    await fill(ui_world, "alice", COUNT)
    async with client(ui_world) as alice:
        await signed_in(alice)
        page = await alice.get("/dashboard?waiting=2&missions=3")
        assert items(page)["waiting"][0] == f"alice-p{PAGE_SIZE:03}"
        # In the HTML the & between parameters is escaped; the link keeps both other pages.
        assert 'href="/dashboard?waiting=2&amp;agents=2&amp;missions=3#agents-heading"' in page.text
        assert 'href="/dashboard?missions=3#waiting-heading"' in page.text


async def test_bad_page_numbers_are_read_sanely(ui_world: World) -> None:
    await fill(ui_world, "alice", COUNT)
    async with client(ui_world) as alice:
        first = await signed_in(alice)
        for bad in ("0", "-1", "abc", "1.5", "", "٣", "9" * 5000, "<script>"):
            page = await alice.get("/dashboard", params={"waiting": bad, "agents": bad})
            assert page.status_code == 200, bad
            assert items(page) == items(first), bad
            assert "<script>" not in page.text
        # Past the end: the last page.
        last = await alice.get("/dashboard?missions=99")
        assert items(last)["missions"] == [f"alice mission {n:03}" for n in (2, 1, 0)]


async def test_a_mission_shows_its_latest_log_entries_and_how_many_it_has(ui_world: World) -> None:
    await fill(ui_world, "alice", 1)
    async with client(ui_world) as alice:
        page = await signed_in(alice)
    total = RECENT_LOG + 2
    assert f"What happened ({total}): the latest {RECENT_LOG}" in page.text
    shown = re.findall(r"Reported doing (step\d)", page.text)
    assert shown == [f"step{e}" for e in range(2, total)]
