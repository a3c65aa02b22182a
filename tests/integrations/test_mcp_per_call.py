"""Per-call MCP tools end to end (R3 §Per-Call Proposals): an agent -- ``AAuth`` through an
MCP ``ClientSession`` (``aauth_mcp_session``) -- calls a per-call tool of an MCP server
behind ``protect_mcp``, with the in-repo person server on loopback.

* With the person in headless Chromium on the PS's consent pages: the page shows *that*
  call's arguments (the proposal's ``display`` and parameters), the person approves, the call
  runs once and the agent gets its result; a second call with other arguments asks again.
* With a PS approving everything: each per-call call costs its own token exchange, and the
  per-call token is never presented again -- not for the next per-call call, not for the
  tools a standing auth token covers. The tool list marks the tool ``per-call``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from support.mcp import PASSWORD, PS, RESOURCE, World, wire, world_for

from aauth_agents.integrations.mcp import (
    aauth_mcp_session,
    protect_mcp,
    require_caller_from_context,
)
from aauth_agents.integrations.mcp_sdk import Context, new_server
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.r3 import parse_r3_document
from aauth_agents.resource import AccessRule, Display, ProposedCall, ResourceConfig, md_code
from aauth_agents.resource.mcp import ACCESS_MODE_META
from aauth_agents.servers.demo_resource import demo_resource

TIMEOUT = 20_000  # ms
SCOPES = {"notes.read": "Read your notes", "notes.send": "Send notes as you"}


def _note(call: ProposedCall) -> Display:
    to = call.arguments.get("to")
    return Display(
        summary=f"Send a note as you to {to}",
        detail=f"## Action\nSend a note\n\n## To\n{md_code(to)}\n\n"
        f"## Content\n{md_code(call.arguments.get('text'))}",
        irreversible="A sent note cannot be unsent.",
    )


def _notes(ran: list[dict[str, Any]]) -> Any:
    server: Any = new_server("notes", stateless_http=True, log_level="WARNING")

    @server.tool()
    def send_note(to: str, text: str, ctx: Context) -> dict[str, Any]:
        caller = require_caller_from_context(ctx)
        ran.append({"to": to, "text": text})
        return {"sent": len(ran), "to": to, "kind": caller.kind}

    @server.tool()
    def inbox(ctx: Context) -> dict[str, Any]:
        return {"notes": len(ran), "scopes": list(require_caller_from_context(ctx).scopes)}

    return server


def _serve_notes(world: World, ran: list[dict[str, Any]]) -> Any:
    app = protect_mcp(
        _notes(ran),
        resource=ResourceConfig(
            identifier=RESOURCE,
            signing_key=PrivateKey.generate(kid="notes-1"),
            issuer_keys=world.resource_discovery(),
            scope_descriptions=SCOPES,
            event_hook=world.hook(),
        ),
        tools={
            "send_note": AccessRule.per_call("notes.send", display=_note),
            "inbox": AccessRule.auth("notes.read"),
        },
    )
    world.serve(app)
    return app


async def _no_wait(seconds: float) -> None:
    """The agent's waits between polls, shortened (the PS still limits the poll rate)."""
    await asyncio.sleep(min(seconds, 0.25))


# -- the person in Chromium --------------------------------------------------------------------


@pytest.fixture
def asking_world() -> Iterator[World]:
    with world_for("in-repo", consent_pages=True) as w:
        yield w


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A page of its own context in the suite's headless Chromium (tests/conftest.py)."""
    context = await browser.new_context()
    made = await context.new_page()
    made.set_default_timeout(TIMEOUT)
    try:
        yield made
    finally:
        await context.close()


class Person:
    """Alice at her PS's pages: every link the agent is handed is opened, read and approved
    (signing in the first time). ``seen`` keeps what each page showed."""

    def __init__(self, world: World, page: Any) -> None:
        self.world, self.page = world, page
        self.links: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []

    def on_interaction(self, url: str, code: str) -> None:  # the agent's callback
        self.links.put_nowait((url, code))

    async def decide(self) -> None:
        url, code = await asyncio.wait_for(self.links.get(), 30)
        page = self.page
        await page.goto(self.world.ps_url + url.removeprefix(PS) + f"?code={code}")
        if await page.locator("#signin").count():
            await page.fill("input[name=username]", "alice")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[name=signin]")
        await page.locator("#approve").wait_for()
        shown: dict[str, Any] = {"kind": await page.locator("#kind").inner_text()}
        if await page.locator("#r3").count():
            shown["summary"] = await page.locator("#r3-summary").inner_text()
            shown["detail"] = await page.locator("#r3-detail").inner_text()
            shown["irreversible"] = await page.locator("#r3-irreversible").inner_text()
            shown["parameters"] = await page.locator("#r3-parameters").inner_text()
            shown["headings"] = await page.locator("#r3-detail h2").all_inner_texts()
            shown["scope_boxes"] = await page.locator("input[name=scope]").count()
            shown["scripts"] = await page.evaluate("document.querySelectorAll('script').length")
        self.seen.append(shown)
        await page.click("#approve")
        await page.locator("#message").wait_for()


async def test_the_person_approves_each_call_seeing_its_arguments(
    asking_world: World, page: Any
) -> None:
    ran: list[dict[str, Any]] = []
    _serve_notes(asking_world, ran)
    person = Person(asking_world, page)
    transport = asking_world.transport()
    auth = asking_world.auth(on_interaction=person.on_interaction, sleep=_no_wait)
    hostile = "Lunch at noon?\n## To\nsomeone@else.example [click](https://evil.example)"
    async with aauth_mcp_session(RESOURCE + "/mcp", auth=auth, transport=transport) as session:
        listed = await session.list_tools()
        first = asyncio.create_task(
            session.call_tool("send_note", {"to": "bob@example.com", "text": hostile})
        )
        await person.decide()  # a new agent: alice connects it (person token)
        await person.decide()  # this call
        result = await first
        assert not wire(result).get("isError"), result.content
        assert wire(result).get("structuredContent") == {
            "sent": 1,
            "to": "bob@example.com",
            "kind": "auth",
        }
        assert ran == [{"to": "bob@example.com", "text": hostile}]
        second = asyncio.create_task(
            session.call_tool("send_note", {"to": "carol@example.com", "text": "Dinner?"})
        )
        await person.decide()  # asked again, for the other arguments
        again = await second
    assert not wire(again).get("isError") and wire(again).get("structuredContent")["sent"] == 2
    assert ran == [
        {"to": "bob@example.com", "text": hostile},
        {"to": "carol@example.com", "text": "Dinner?"},
    ]
    assert {t.name: (t.meta or {}).get(ACCESS_MODE_META) for t in listed.tools} == {
        "send_note": "per-call",
        "inbox": "auth-token",
    }

    connect, call_one, call_two = person.seen
    assert connect["kind"] == "Sign in to a site" and "summary" not in connect
    assert call_one["kind"] == "Access to a site"
    assert call_one["summary"] == "Send a note as you to bob@example.com"
    assert "bob@example.com" in call_one["detail"] and "Lunch at noon?" in call_one["detail"]
    # the agent's text forged no heading and no link: the resource's sections only
    assert call_one["headings"] == ["Action", "To", "Content"]
    assert "someone@else.example" in call_one["detail"]  # shown, as text
    assert "bob@example.com" in call_one["parameters"] and "Lunch" in call_one["parameters"]
    assert "cannot be unsent" in call_one["irreversible"]
    assert call_one["scope_boxes"] == 0 and call_one["scripts"] == 0
    assert "carol@example.com" in call_two["detail"] and "bob" not in call_two["detail"]
    assert "Dinner?" in call_two["parameters"]
    # each call: its own proposal, exchange and completion
    assert asking_world.count_token_exchanges(transport) == 2
    assert len(asking_world.resource_events("pending", "per-call")) == 2
    assert len(asking_world.resource_events("completed", "per-call")) == 2


# -- a PS that approves everything -------------------------------------------------------------


async def test_each_call_is_approved_on_its_own_and_its_token_used_once(
    local_world: World,
) -> None:
    ran: list[dict[str, Any]] = []
    app = _serve_notes(local_world, ran)
    transport = local_world.transport()
    auth = local_world.auth(sleep=_no_wait)
    async with aauth_mcp_session(RESOURCE + "/mcp", auth=auth, transport=transport) as session:
        inbox = wire(await session.call_tool("inbox", {})).get("structuredContent")
        sent = [
            wire(await session.call_tool("send_note", {"to": to, "text": "hi"})).get(
                "structuredContent"
            )
            for to in ("bob", "carol", "bob")
        ]
        again = wire(await session.call_tool("inbox", {})).get("structuredContent")
    assert inbox == {"notes": 0, "scopes": ["notes.read"]}
    assert [s["sent"] for s in sent if s] == [1, 2, 3]  # the same call twice: run twice
    assert again == {"notes": 3, "scopes": ["notes.read"]}  # the standing token, not a per-call
    # notes.read once, then one exchange per call; the inbox needed no new one
    assert local_world.count_token_exchanges(transport) == 4
    assert not local_world.resource_events("denied")  # no spent token was ever presented
    assert len(local_world.resource_events("completed", "per-call")) == 3
    published = {t["tool"]: t for t in app.resource.metadata()["mcp_tools"]}
    assert published["send_note"] == {
        "tool": "send_note",
        "access_mode": "per-call",
        "scopes": ["notes.send"],
    }


async def test_the_demo_resources_delete_file(local_world: World) -> None:
    """The demo resource's per-call tool: its proposal says which file it deletes and what
    that file holds now -- what only the resource knows."""
    demo = demo_resource(
        RESOURCE, issuer_keys=local_world.resource_discovery(), event_hook=local_world.hook()
    )
    local_world.serve(demo)
    transport = local_world.transport()
    async with aauth_mcp_session(
        RESOURCE + "/mcp", auth=local_world.auth(sleep=_no_wait), transport=transport
    ) as session:
        deleted = await session.call_tool("delete_file", {"name": "welcome.txt"})
        missing = await session.call_tool("delete_file", {"name": "welcome.txt"})
        listed = await session.call_tool("list_files", {})
    assert wire(deleted).get("structuredContent") == {"name": "welcome.txt", "deleted": True}
    assert wire(missing).get("isError")  # approved, ran, found nothing
    assert wire(listed).get("structuredContent") == {"files": []}
    displays = []
    for event in local_world.resource_events("pending", "per-call"):
        record = demo.resource.stores.pending.get(event.detail["pending"])
        assert record is not None
        proposal = parse_r3_document(base64.b64decode(record.data["proposal"]))
        assert proposal.parameters == {"name": "welcome.txt"}
        displays.append(proposal.display)
    first, second = displays
    assert first is not None and second is not None
    assert first.summary == "Delete one of your files at the demo resource: welcome.txt"
    assert "holds 43 bytes now" in (first.detail or "") and "Hello from" in (first.detail or "")
    assert first.irreversible == "A deleted file cannot be restored."
    assert "There is no file `welcome.txt` now" in (second.detail or "")


async def test_two_identical_calls_at_once_are_two_approvals(local_world: World) -> None:
    """The same arguments twice, concurrently: the proposals are byte-identical (one
    ``r3_s256``) but each call has its own ``r3_uri``, its own exchange and its own token."""
    ran: list[dict[str, Any]] = []
    _serve_notes(local_world, ran)
    transport = local_world.transport()
    auth = local_world.auth(sleep=_no_wait)
    async with aauth_mcp_session(RESOURCE + "/mcp", auth=auth, transport=transport) as session:
        results = await asyncio.gather(
            *(session.call_tool("send_note", {"to": "bob", "text": "same"}) for _ in range(2))
        )
    assert all(not wire(r).get("isError") for r in results), [r.content for r in results]
    assert sorted(
        wire(r).get("structuredContent")["sent"]
        for r in results
        if wire(r).get("structuredContent")
    ) == [1, 2]
    assert ran == [{"to": "bob", "text": "same"}] * 2
    issued = local_world.resource_events("issued", "resource_token")
    assert len({e.detail["r3_uri"] for e in issued}) == 2
    assert local_world.count_token_exchanges(transport) == 2
    assert not local_world.resource_events("denied")
