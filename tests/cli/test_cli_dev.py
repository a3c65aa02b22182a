"""``aauth-agents dev`` and ``aauth-agents serve ap --dir`` as real processes: the stack in
one pseudo-terminal, the agent (``fetch``, the README's snippet) in another with the
environment ``dev`` printed, and the person approving in headless Chromium at the link
exactly as the agent printed it."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from support.cli import cli_env, run_cli, serve

from aauth_agents.agent import AAuth
from aauth_agents.agent.provider import load_identity
from aauth_agents.agent.storage import DirectoryKeyStore
from aauth_agents.network import LocalNetwork
from aauth_agents.resource import AccessRule, requires
from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.demo_resource import demo_resource
from aauth_agents.servers.dev import protect

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"Open:\s+(\S+)\?code=([0-9A-Z-]+)")
EXPORT = re.compile(r"export (AAUTH_AGENTS_\w+)=(\S+)")
SIGN_IN = re.compile(r"signs in at (\S+)\s+account: (\S+)\s+password: (\S+)")


def _env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a child, importing this checkout's package."""
    return cli_env(home, {"TERM": "xterm-256color", **(extra or {})})


@dataclass
class Dev:
    """A running ``aauth-agents dev`` and what it printed."""

    child: pexpect.spawn
    env: dict[str, str]  # the exports of its snippet
    dashboard: str
    account: str
    password: str


NOTES = """
from fastapi import FastAPI
from aauth_agents.resource import AccessRule, requires

app = FastAPI()

@app.get("/notes")
@requires(AccessRule.auth("notes.read"))
async def notes() -> dict:
    return {"notes": ["buy milk"]}
"""


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    (tmp_path / "notes.py").write_text(NOTES)  # the user's own app, in the current directory
    child = pexpect.spawn(
        sys.executable,
        ["-m", "aauth_agents.cli", "dev", "--port", "0", "--app", "notes:app"],
        env=_env(tmp_path),
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 200),
    )
    try:
        child.expect(r"Try:\s+aauth-agents fetch https://resource\.example/files")
        printed = child.before
        exports = dict(EXPORT.findall(printed))
        found = SIGN_IN.search(printed)
        assert found, printed
        yield Dev(child, exports, found.group(1), found.group(2), found.group(3))
        child.sendintr()  # Ctrl-C: a clean stop
        child.expect("aauth-agents dev: stopped")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        if child.isalive():
            child.terminate(force=True)


def _approve(page: Any, link: str, dev: Dev) -> str:
    """The person opens ``link``, signs in when asked, and approves."""
    page.goto(link)
    if page.locator("#signin").count():
        page.fill("input[name=username]", dev.account)
        page.fill("input[name=password]", dev.password)
        page.click("button[name=signin]")
    page.click("#approve")
    message = page.locator("#message")
    message.wait_for()
    return str(message.inner_text())


def _run_agent(child: pexpect.spawn, dev: Dev, first_delay: float = 0.0) -> list[str]:
    """Approve, in Chromium, every link ``child`` prints, until it exits; the links."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    links: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(20_000)
            while child.expect([LINK, pexpect.EOF], timeout=120) == 0:
                match = child.match
                link = f"{match.group(1)}?code={match.group(2)}"  # exactly as printed
                links.append(link)
                if first_delay and len(links) == 1:
                    time.sleep(first_delay)  # a person taking their time
                _approve(page, link, dev)  # the outcome is the agent's: below
        finally:
            browser.close()
    child.close()
    return links


def _fetch(url: str, dev: Dev, home: Path) -> tuple[list[str], str]:
    """``aauth-agents fetch URL`` in a terminal of its own with ``dev``'s environment, the
    person approving what it asks; the links it printed and its output."""
    fetch = pexpect.spawn(
        sys.executable,
        ["-m", "aauth_agents.cli", "fetch", url],
        env=_env(home, dev.env),
        cwd=str(home),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 200),
    )
    links = _run_agent(fetch, dev)
    assert fetch.exitstatus == 0, fetch.before
    return links, fetch.before or ""


def test_dev_then_fetch_in_another_terminal_with_the_printed_environment(
    dev: Dev, tmp_path: Path
) -> None:
    assert dev.dashboard.startswith("http://127.0.0.1:") and dev.dashboard.endswith("/dashboard")
    assert Path(dev.env["AAUTH_AGENTS_NETWORK"]).is_file()
    links, output = _fetch("https://resource.example/files", dev, tmp_path)
    assert links and all(link.startswith("http://127.0.0.1:") for link in links)
    assert "welcome.txt" in output
    links, output = _fetch("https://notes.example/notes", dev, tmp_path)  # --app notes:app
    assert links and '{"notes":["buy milk"]}' in output


def test_a_resource_added_from_another_shell_is_reached(dev: Dev, tmp_path: Path) -> None:
    """``dev --add``: the running PS reaches a resource started later, without a restart."""
    file = dev.env["AAUTH_AGENTS_NETWORK"]
    app = protect(_calendar(), "https://calendar.example", LocalNetwork.load(file).discovery())
    with LoopbackServer(app) as server:
        added = run_cli(
            ["dev", "--add", f"https://calendar.example={server.url}"], tmp_path, env=dev.env
        )
        assert added.returncode == 0, added.stderr
        links, output = _fetch("https://calendar.example/events", dev, tmp_path)
    assert links and '{"events":["standup"]}' in output


def _calendar() -> Starlette:
    @requires(AccessRule.auth("calendar.read"))
    async def events(request: Request) -> JSONResponse:
        return JSONResponse({"events": ["standup"]})

    return Starlette(routes=[Route("/events", events)])


README_BLOCK = re.compile(r"## An agent in a few lines\n\n```python\n(.*?)```", re.S)


def test_the_readme_agent_snippet_against_dev_with_a_slow_person(dev: Dev, tmp_path: Path) -> None:
    snippet = README_BLOCK.search((ROOT / "README.md").read_text())
    assert snippet is not None
    script = tmp_path / "agent.py"
    script.write_text(snippet.group(1))
    agent = pexpect.spawn(
        sys.executable,
        [str(script)],
        env=_env(tmp_path, dev.env),
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 200),
    )
    links = _run_agent(agent, dev, first_delay=40.0)
    assert links
    assert "welcome.txt" in (agent.before or "")
    assert agent.exitstatus == 0, agent.before


def test_serve_ap_dir_serves_the_keys_init_provider(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    made = run_cli(
        ["keys", "init", "--agent-id", "aauth:me@laptop.example", "--dir", str(keys)],
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    with serve("ap", ["--dir", str(keys), "--port", "0"], tmp_path) as (url, lines):
        assert any("https://laptop.example/.well-known/aauth-agent.json" in x for x in lines)
        network = LocalNetwork({"https://laptop.example": url})
        resource = demo_resource("https://resource.example", issuer_keys=network.discovery())
        with LoopbackServer(resource) as server:
            network.add("https://resource.example", server.url)
            # The agent mints its own token; the resource fetches the provider's JWKS.
            auth = AAuth(load_identity(DirectoryKeyStore(keys)), network=network)
            with auth.client() as client:
                response = client.get("https://resource.example/whoami")
    assert response.status_code == 200, response.text
    assert "aauth:me@laptop.example" in response.text
    refused = run_cli(["serve", "ap"], tmp_path)
    assert refused.returncode == 2 and b"--issuer" in refused.stderr
