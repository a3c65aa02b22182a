"""NotebookPrompts in JupyterLab, in headless Chromium (Debian's ``/usr/bin/chromium``).

JupyterLab (with the ipywidgets extension) serves a notebook on 127.0.0.1; its cell runs an
agent that fetches the demo resource's ``/files`` and asks its person through
NotebookPrompts. The person server is the in-repo one with its consent pages
(``tests/support/mcp.py``, ``consent_pages``). The agent is new there, so two
interaction widgets appear in turn (its person token, then ``files.read``): for each, the
test clicks the widget's link, signs in (the first time) and approves on the page that
opens in a new tab, and the widget says *Approved*; the cell prints the resource's answer.

Once with an async cell; once with a sync cell, blocked in the request: there the person
first asks a question on the consent page, the clarification widget appears in the
notebook, and the answer typed into it reaches the blocked cell (JupyterLab sends widget
messages on a kernel subshell) and then the consent page.

The browser reaches ``https://ps.example`` as a TLS-terminating proxy would: each request is
forwarded to the PS on loopback with ``X-Forwarded-Proto: https`` (identifiers stay real,
only connections are mapped). Screenshots of the widget go to ``$AAUTH_ARTIFACTS`` when set.
"""

from __future__ import annotations

import html
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
import support.ui as UI
from support.mcp import PASSWORD, PS, RESOURCE, World, world_for
from support.notebook import TIMEOUT, JupyterLab, agent_cell, approve, open_the_link, screenshot

from aauth_agents.servers.demo_resource import demo_resource
from aauth_agents.transport import AsyncMappedTransport

HOP_BY_HOP = {
    "host",
    "connection",
    "content-length",
    "accept-encoding",
    "transfer-encoding",
    "content-encoding",
    "keep-alive",
}


@pytest.fixture
def world() -> Iterator[World]:
    """The in-repo PS with its consent pages, and the demo resource, on loopback."""
    assert UI.PASSWORD == PASSWORD  # alice's, as sign_in types it
    with world_for("in-repo", consent_pages=True) as w:
        w.serve(demo_resource(RESOURCE, issuer_keys=w.resource_discovery()))
        yield w


def write_notebook(world: World, root: Path, client: str) -> None:
    """``root/agent.ipynb``: one cell, in which the agent fetches the demo's ``/files``
    (``client``: ``"async"`` awaits it, ``"sync"`` blocks the cell)."""
    identity = world.identity()
    cell = agent_cell(
        key=identity.key.to_jwk(),
        token=identity.agent_token,
        mapping={PS: world.ps_url, RESOURCE: world.resource_url},
        url=f"{RESOURCE}/files",
        client=client,
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, root / "agent.ipynb")


def via_proxy(client: httpx.AsyncClient) -> Callable[[Any], Awaitable[None]]:
    """A Playwright route handler: ``https://ps.example`` requests forwarded through
    ``client`` (to the PS on loopback) as a TLS-terminating proxy forwards them. Chromium
    does not route
    the request that follows a fulfilled redirect (it would look ``ps.example`` up in the
    DNS), so a redirect reaches the page as a refresh to its ``Location``: a new navigation,
    routed again (its cookies are set as the redirect's would be)."""

    async def forward(route: Any) -> None:
        request = route.request
        headers = {
            k: v
            for k, v in (await request.all_headers()).items()
            if k not in HOP_BY_HOP and not k.startswith(":")
        }
        response = await client.request(
            request.method,
            request.url,
            content=request.post_data_buffer,
            headers={**headers, "x-forwarded-proto": "https"},
        )
        answer = {
            k: v
            for k, v in response.headers.items()
            if k not in HOP_BY_HOP and k not in ("set-cookie", "location")
        }
        cookies = response.headers.get_list("set-cookie")
        if cookies:
            answer["set-cookie"] = "\n".join(cookies)  # Playwright's form for several
        body = response.content
        if response.is_redirect:
            target = html.escape(response.headers["location"], quote=True)
            answer["content-type"] = "text/html; charset=utf-8"
            body = f'<meta http-equiv="refresh" content="0; url={target}">'.encode()
        await route.fulfill(
            status=200 if response.is_redirect else response.status_code, headers=answer, body=body
        )

    return forward


async def run_the_first_cell(page: Any) -> None:
    """Once the kernel is idle, Shift+Enter in the first cell, until the cell runs (a run
    asked while the notebook still connects to its kernel may be dropped, the cell left
    as it was: then it is asked again)."""
    await page.locator("#jp-main-statusbar", has_text="Idle").wait_for(timeout=TIMEOUT)
    prompt = page.locator(".jp-Cell .jp-InputPrompt").first
    for _attempt in range(3):
        await page.locator(".jp-Cell .cm-content").first.click()
        await page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if (await prompt.inner_text()).strip() not in ("[ ]:", ""):
                return  # [*]: running (or [1]: done)
            await page.wait_for_timeout(100)
    raise AssertionError(
        f"JupyterLab did not run the cell: its prompt is still {await prompt.inner_text()!r}"
    )


async def open_notebook(
    browser: Any, world: World, lab: JupyterLab, proxy: httpx.AsyncClient, client: str
) -> Any:
    """A page (in a browser context reaching ``https://ps.example`` through ``proxy``)
    with the agent's notebook open and its cell running."""
    write_notebook(world, lab.root, client)
    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
    await context.route(f"{PS}/**", via_proxy(proxy))
    page = await context.new_page()
    await page.goto(f"{lab.url}/lab/tree/agent.ipynb?token={lab.token}")
    await run_the_first_cell(page)
    return page


async def finish(page: Any) -> None:
    """The cell prints the resource's answer."""
    output = page.locator(".jp-OutputArea-output", has_text="RESULT")
    await output.wait_for(timeout=TIMEOUT)
    text = await output.inner_text()
    assert text.startswith("RESULT 200 ") and "welcome.txt" in text, text
    assert await page.locator(".aauth-interaction").count() == 2


@pytest.fixture
async def proxy(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """The client the browser's ``https://ps.example`` requests go through."""
    async with httpx.AsyncClient(
        transport=AsyncMappedTransport({PS: world.ps_url}, strict=True), timeout=30
    ) as client:
        yield client


async def test_the_person_approves_from_the_widgets_of_an_async_cell(
    world: World, lab: JupyterLab, browser: Any, proxy: httpx.AsyncClient
) -> None:
    page = await open_notebook(browser, world, lab, proxy, "async")
    context = page.context
    try:
        widgets = page.locator(".aauth-interaction")
        # A new agent: a person token first, then the auth token for files.read.
        consent = await open_the_link(context, widgets.nth(0), "person-token")
        await approve(consent, widgets.nth(0), "person-token")
        consent = await open_the_link(context, widgets.nth(1), "files-read")
        await approve(consent, widgets.nth(1), "files-read")
        await finish(page)
    except Exception:
        await screenshot(page, "notebook-async-failure.png")
        raise
    finally:
        await context.close()


async def test_a_blocked_sync_cell_hears_the_answer_typed_in_its_widget(
    world: World, lab: JupyterLab, browser: Any, proxy: httpx.AsyncClient
) -> None:
    """JupyterLab sends widget messages on a kernel subshell: the cell, blocked in the
    agent's request, still receives the answer the person types into the clarification
    widget (the question was asked on the consent page)."""
    page = await open_notebook(browser, world, lab, proxy, "sync")
    context = page.context
    try:
        widgets = page.locator(".aauth-interaction")
        consent = await open_the_link(context, widgets.nth(0), "sync-person-token")
        await consent.fill("#ask textarea[name=question]", "Which files?")
        await consent.click("#ask button[value=ask]")
        question = page.locator(".aauth-clarification")
        await question.wait_for(timeout=TIMEOUT)
        assert "Which files?" in await question.locator(".aauth-question").inner_text()
        await question.locator("textarea").fill("Only *welcome.txt*.")
        await question.locator("button", has_text="Send").click()
        await question.locator(".aauth-status[data-status='answered']").wait_for(timeout=TIMEOUT)
        await screenshot(question, "notebook-clarification-answered.png")
        answer = consent.locator("#answer-0")
        await answer.wait_for(timeout=TIMEOUT)  # the consent page refreshes while waiting
        assert await answer.inner_text() == "Only welcome.txt."
        await approve(consent, widgets.nth(0), "sync-person-token")
        consent = await open_the_link(context, widgets.nth(1), "sync-files-read")
        await approve(consent, widgets.nth(1), "sync-files-read")
        await finish(page)
    except Exception:
        await screenshot(page, "notebook-sync-failure.png")
        raise
    finally:
        await context.close()
