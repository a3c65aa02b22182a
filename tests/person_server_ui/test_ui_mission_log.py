"""A mission's own page: its whole log in the dashboard's words, a page at a time, linked from
the mission on the dashboard; its owner's only (the same 404 for anyone else's mission and for
none); what the agent wrote is escaped or sanitized. httpx against the ASGI app, a signed-in
session."""

from __future__ import annotations

import html
import json
import re

import httpx
from support.ps import World
from support.ui import client, signed_in

from aauth_agents.protocol.mission import mission_s256
from aauth_agents.servers.person_server.dashboard_queries import LOG_PAGE_SIZE
from aauth_agents.servers.person_server.state import ACTIVE, Mission

AP = "https://agents.example"
ENTRIES = 2 * LOG_PAGE_SIZE + 3


async def mission_with_log(
    world: World, account: str, entries: int, description: str = "Tidy the docs"
) -> str:
    """A mission of ``account`` whose log has ``entries`` audit entries, ``step000`` first."""
    ps = world.ps
    assert ps is not None
    now = float(ps.clock())
    blob = json.dumps({"description": description}).encode()
    s256 = mission_s256(blob)
    agent_id = f"aauth:{account}@agents.example"
    await ps.run(ps.state.bind, AP, agent_id, account, "configured", now)
    await ps.run(
        ps.state.create_mission,
        Mission(s256, AP, agent_id, account, blob, ACTIVE, None, None, (), None, now),
    )
    for n in range(entries):
        entry = f'{{"type":"audit","action":"step{n:03}"}}'.encode()
        await ps.run(ps.state.append_log, s256, "audit", entry, now + n)
    return s256


def steps(page: httpx.Response) -> list[str]:
    return re.findall(r"Reported doing (step\d{3})\.", page.text)


def link(page: httpx.Response, css_class: str) -> str | None:
    found = re.search(rf'class="{css_class}" href="([^"]+)"', page.text)
    return html.unescape(found.group(1)) if found else None


async def test_the_pages_cover_every_entry_once_in_order(ui_world: World) -> None:
    s256 = await mission_with_log(ui_world, "alice", ENTRIES)
    async with client(ui_world) as alice:
        dashboard = await signed_in(alice)
        # The dashboard shows the latest entries and links to all of them.
        all_link = link(dashboard, "mission-log")
        assert all_link == f"/dashboard/missions/{s256}"
        assert f"All {ENTRIES} entries" in dashboard.text
        page = await alice.get(all_link)
        assert page.status_code == 200
        assert "<h1>What happened in this mission</h1>" in page.text
        assert f'What happened <span class="count">({ENTRIES})</span>' in page.text
        assert '<ol class="log" id="log" start="1">' in page.text
        assert link(page, "pager-previous") is None
        seen: list[str] = []
        pages = [page]
        while True:
            got = steps(page)
            assert 0 < len(got) <= LOG_PAGE_SIZE
            seen += got
            more = link(page, "pager-next")
            if more is None:
                break
            page = await alice.get(more)
            assert page.status_code == 200
            pages.append(page)
        assert seen == [f"step{n:03}" for n in range(ENTRIES)]
        assert len(pages) == 3
        assert f'start="{2 * LOG_PAGE_SIZE + 1}"' in pages[-1].text
        # Previous walks back to the first page.
        back = link(pages[-1], "pager-previous")
        assert back is not None
        assert steps(await alice.get(back)) == steps(pages[1])
        # A page number past the end is the last page; nonsense is the first.
        assert steps(await alice.get(all_link, params={"log": "99"})) == steps(pages[-1])
        for bad in ("0", "-1", "x", "9" * 5000):
            assert steps(await alice.get(all_link, params={"log": bad})) == steps(pages[0])


async def test_a_mission_without_entries_says_so(ui_world: World) -> None:
    s256 = await mission_with_log(ui_world, "alice", 0)
    async with client(ui_world) as alice:
        dashboard = await signed_in(alice)
        assert link(dashboard, "mission-log") is None
        page = await alice.get(f"/dashboard/missions/{s256}")
    assert page.status_code == 200 and 'id="no-entries"' in page.text
    assert 'class="pager"' not in page.text


async def test_the_page_is_for_the_owner_only(ui_world: World) -> None:
    s256 = await mission_with_log(ui_world, "alice", 3)
    path = f"/dashboard/missions/{s256}"
    async with client(ui_world) as anonymous:
        signin = await anonymous.get(path)
        assert signin.status_code == 303
        assert signin.headers["location"] == "/signin?next=/dashboard"
    async with client(ui_world) as bob:
        await signed_in(bob, username="bob")
        for other in (
            path,
            "/dashboard/missions/no-such-mission",
            "/dashboard/missions/" + "A" * 500,
        ):
            refused = await bob.get(other)
            assert refused.status_code == 404 and 'id="error-code">not_found<' in refused.text
            assert "step000" not in refused.text and "Tidy the docs" not in refused.text
    async with client(ui_world) as alice:
        await signed_in(alice)
        assert steps(await alice.get(path)) == ["step000", "step001", "step002"]


async def test_what_the_agent_wrote_is_escaped_or_sanitized(ui_world: World) -> None:
    ps = ui_world.ps
    assert ps is not None
    s256 = await mission_with_log(
        ui_world,
        "alice",
        0,
        description='Plan <script>alert(1)</script> a *trip* <img src=x onerror="alert(2)">',
    )
    entry = (
        b'{"type":"audit","action":"<b>bold</b> & <script>alert(3)</script>",'
        b'"description":"Done <script>alert(4)</script> **well** [x](javascript:alert(5))"}'
    )
    await ps.run(ps.state.append_log, s256, "audit", entry, float(ps.clock()))
    async with client(ui_world) as alice:
        await signed_in(alice)
        page = await alice.get(f"/dashboard/missions/{s256}")
    assert page.status_code == 200
    text = page.text
    # Raw HTML shows as text, never as elements; no script link survives.
    assert "<script" not in text and "<img" not in text and 'href="javascript' not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<em>trip</em>" in text and "<strong>well</strong>" in text
    assert (
        "Reported doing &lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;alert(3)&lt;/script&gt;."
        in text
    )
