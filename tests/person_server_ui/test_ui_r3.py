"""The consent page and the dashboard show an R3 per-call proposal (R3 §Per-Call Proposals):
the resource's ``display`` (summary as text; detail, implications and what cannot be undone
as sanitized Markdown) and the call's parameters (escaped), approved as a whole -- no scope
checkboxes. httpx against the ASGI app; the agent signs real requests."""

from __future__ import annotations

import re

from support.ps import RES, World
from support.ui import ORIGIN, client, csrf, signed_in, waiting_ids

from aauth_agents.protocol.r3 import MCP_VOCABULARY, s256_of
from aauth_agents.tokens import peek

LONG = "Hi Bob, " + "lorem ipsum " * 100
PROPOSAL = {
    "vocabulary": MCP_VOCABULARY,
    "operations": [{"tool": "send_note"}],
    "parameters": {
        "to": "<b>bob</b>@example.com",
        "text": {"s256": s256_of(LONG), "excerpt": "Hi Bob, lorem…", "media_type": "text/plain"},
    },
    "display": {
        "summary": "Send a note to <b>bob</b>",
        "detail": "## To\n`bob@example.com`\n\n<script>window.x=1</script>"
        "[more](javascript:alert(1))",
        "implications": "Bob reads it *today*",
        "irreversible": "A sent note cannot be unsent",
    },
}


async def test_a_proposal_on_the_dashboard_and_the_consent_page(ui_world: World) -> None:
    assert ui_world.ps is not None
    agent = ui_world.agent()
    ui_world.ps.bind_agent(agent.agent_id, "alice")
    await ui_world.ps.run(
        ui_world.ps.state.remember_consent,
        "alice",
        "https://agents.example",
        agent.agent_id,
        RES,
        "person_token",
        None,
        (),
        ui_world.clock(),
    )
    person = await agent.person_token()
    uri, s256 = ui_world.resource.publish(PROPOSAL)
    rt = await ui_world.resource.resource_token(
        person, agent.public, "data.write", r3_uri=uri, r3_s256=s256
    )
    pending = await agent.post("/token", {"resource_token": rt})
    assert pending.status_code == 202, pending.text
    pending_id = pending.headers["location"].rsplit("/", 1)[1]
    async with client(ui_world) as alice:
        dashboard = await signed_in(alice)
        assert waiting_ids(dashboard) == [pending_id]
        assert (
            '<p class="untrusted r3-summary">Send a note to &lt;b&gt;bob&lt;/b&gt;</p>'
            in dashboard.text
        )
        page = await alice.get(f"/consent/{pending_id}")
        assert page.status_code == 200
        html = page.text
        box = html[html.index('id="r3"') : html.index('id="scopes"')]
        assert "<h2>This call</h2>" in html
        assert '<p id="r3-summary"><b>Send a note to &lt;b&gt;bob&lt;/b&gt;</b></p>' in box
        assert "<h2>To</h2>" in box and "<code>bob@example.com</code>" in box
        assert "&lt;script&gt;" in box and "<script" not in html.lower()
        assert not re.search(r'href="javascript', html, re.IGNORECASE)
        assert "<em>today</em>" in box and 'id="r3-irreversible"' in box
        assert "<code>&lt;b&gt;bob&lt;/b&gt;@example.com</code>" in box  # escaped text
        assert "<code>Hi Bob, lorem…</code>" in box and s256_of(LONG) in box
        assert 'id="r3-once"' in box and s256 in box
        assert 'name="scope"' not in html and 'name="scopes_offered"' not in html
        approved = await alice.post(
            f"/consent/{pending_id}",
            data={"csrf": csrf(page), "action": "approve"},
            headers={"origin": ORIGIN},
        )
        assert approved.status_code == 303
    granted = await agent.poll(pending)
    assert granted.status_code == 200, granted.text
    claims = peek(granted.json()["auth_token"])[1]
    assert claims["scope"] == "data.write" and claims["r3_s256"] == s256
    assert claims["r3_granted"] == {
        "vocabulary": MCP_VOCABULARY,
        "operations": [{"tool": "send_note"}],
    }
