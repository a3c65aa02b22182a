"""TerminalPrompts under a real pseudo-terminal: ``aauth-agents fetch`` (which asks the person
through TerminalPrompts) runs in a pty driven by pexpect, against a real person server and the
demo resource on loopback (:class:`~aauth_agents.servers.stack.LocalStack`). The person acts
through the PS's own interaction path, as its consent page does.

Without a terminal (pipes), the same command writes JSON lines and never reads stdin.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest

from aauth_agents.agent.provider import load_local_agent
from aauth_agents.agent.storage import DirectoryKeyStore
from aauth_agents.prompts import TerminalPrompts
from aauth_agents.servers.stack import LocalStack

# --map: the link shown is the PS's loopback origin, where a browser here reaches it
LINK = re.compile(r"Open:\s+(http://127\.0\.0\.1:\d+/\S+)\?code=([0-9A-Z-]+)")


@dataclass
class Terminal:
    stack: LocalStack
    keys: Path
    home: Path
    opened: Path  # where the $BROWSER stand-in writes the URLs it was asked to open

    def args(self, path: str = "/files", *extra: str) -> list[str]:
        maps = [f"--map={identifier}={url}" for identifier, url in self.stack.mapping.items()]
        return [
            "-m",
            "aauth_agents.cli",
            "fetch",
            f"{self.stack.resource}{path}",
            "--dir",
            str(self.keys),
            "--max-wait",
            "60",
            *maps,
            *extra,
        ]

    def env(self) -> dict[str, str]:
        browser = self.home / "browser.py"
        browser.write_text(
            f"import sys\nopen({str(self.opened)!r}, 'a').write(sys.argv[1] + '\\n')\n"
        )
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "TERM": "xterm-256color",
            "BROWSER": f"{sys.executable} {browser} %s",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }

    def spawn(self, *args: str) -> pexpect.spawn:
        return pexpect.spawn(
            sys.executable,
            self.args(*args),
            env=self.env(),
            cwd=str(self.home),
            encoding="utf-8",
            timeout=30,
            dimensions=(50, 160),
        )

    def events(self, name: str) -> list[Any]:
        return [event for event in self.stack.events if event.name == name]


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    """A self-hosted agent (``keys init``) whose provider the stack serves."""
    keys = tmp_path / "keys"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "aauth_agents.cli",
            "keys",
            "init",
            "--agent-id",
            "aauth:me@laptop.example",
            "--ps",
            "https://ps.example",
            "--dir",
            str(keys),
        ],
        capture_output=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )
    assert made.returncode == 0, made.stderr
    with LocalStack() as stack:
        stack.add(
            "https://laptop.example", load_local_agent(DirectoryKeyStore(keys)).provider.app()
        )
        yield Terminal(stack, keys, tmp_path, tmp_path / "opened.txt")


def shown_link(child: pexpect.spawn) -> tuple[str, str]:
    child.expect(LINK)
    match = child.match
    assert match is not None
    return match.group(1), match.group(2)


def test_the_link_the_qr_code_and_the_browser_then_approval(terminal: Terminal) -> None:
    child = terminal.spawn()
    try:
        child.expect("The agent needs your approval at https://resource.example")
        url, code = shown_link(child)
        child.expect(f"Code:  {code}")
        child.expect("▄")  # the QR code, in half blocks
        child.expect("Press Enter to open it in your browser")
        child.expect("Waiting for you to decide")  # the live status line
        child.expect(r"\d+:\d\d left")
        child.send("\r")
        child.expect("Opening http://127.0.0.1:")
        deadline = time.monotonic() + 10
        while not terminal.opened.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert terminal.opened.read_text().split() == [f"{url}?code={code}"]
        terminal.stack.approve(url, code)  # consent to the agent (its person token)
        child.expect("Approved")
        url, code = shown_link(child)  # then files.read (its auth token)
        terminal.stack.approve(url, code)
        child.expect("Approved")
        child.expect(r'"files":\[\{"name":"welcome.txt"')
        child.expect(pexpect.EOF)
        child.wait()
    finally:
        child.close()
    assert child.exitstatus == 0


def test_a_question_is_answered_at_the_keyboard(terminal: Terminal) -> None:
    child = terminal.spawn()
    try:
        url, code = shown_link(child)
        view = terminal.stack.ask(url, code, "Which files will you **read**?")
        child.expect("The person asks the agent:")
        child.expect(r"Which files will you \*\*read\*\*\?")
        child.expect("Type your answer within")
        child.sendline("Only welcome.txt, to summarise it.")
        child.expect("Your answer was sent")
        deadline = time.monotonic() + 10
        while terminal.stack.answer_of(view.id) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert terminal.stack.answer_of(view.id) == "Only welcome.txt, to summarise it."
        terminal.stack.approve_open(view.id)
        url, code = shown_link(child)
        terminal.stack.approve(url, code)
        child.expect(r'"files":\[')
        child.expect(pexpect.EOF)
        child.wait()
    finally:
        child.close()
    assert child.exitstatus == 0


def test_a_question_with_options_is_answered_by_number(terminal: Terminal) -> None:
    child = terminal.spawn()
    try:
        url, code = shown_link(child)
        view = terminal.stack.open(url, code)
        terminal.stack.call(
            terminal.stack.ps.interactions.ask(
                view.id, "Read or write?", options=["read only", "read and write"]
            )
        )
        child.expect(r"1\) read only")
        child.expect(r"2\) read and write")
        child.expect("Type a number or your own words")
        child.sendline("1")
        child.expect("Your answer was sent")
        deadline = time.monotonic() + 10
        while terminal.stack.answer_of(view.id) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert terminal.stack.answer_of(view.id) == "read only"
    finally:
        child.terminate(force=True)
        child.close()


def test_ctrl_c_while_waiting_withdraws_the_request(terminal: Terminal) -> None:
    child = terminal.spawn()
    try:
        shown_link(child)
        child.expect("Waiting for you to decide")
        child.sendintr()
        child.expect("Cancelling: the request is being withdrawn")
        child.expect("Cancelled")
        child.expect("cancelled")
        child.expect(pexpect.EOF)
        child.wait()
    finally:
        child.close()
    assert child.exitstatus == 3  # an AAuth error: the request was cancelled
    assert len(terminal.events("withdrawn")) == 1


def test_ctrl_c_at_a_question_withdraws_the_request(terminal: Terminal) -> None:
    child = terminal.spawn()
    try:
        url, code = shown_link(child)
        terminal.stack.ask(url, code, "Why?")
        child.expect("Type your answer")
        child.sendintr()
        child.expect("Cancelled")
        child.expect(pexpect.EOF)
        child.wait()
    finally:
        child.close()
    assert child.exitstatus == 3
    assert len(terminal.events("withdrawn")) == 1


def test_a_second_ctrl_c_stops_at_once(terminal: Terminal) -> None:
    child = terminal.spawn()
    try:
        shown_link(child)
        child.sendintr()
        child.expect("Ctrl-C again to stop now")
        child.sendintr()
        child.expect("interrupted")
        child.expect(pexpect.EOF)
        child.wait()
    finally:
        child.close()
    assert child.exitstatus == 130, (child.exitstatus, child.signalstatus, child.before)


def test_without_a_terminal_the_prompts_are_json_lines(terminal: Terminal) -> None:
    """Pipes instead of a terminal: each prompt and each change of its status is a JSON
    line on stderr (stdin stays open and is never read: ``fetch`` declares no
    clarification capability then, so no question can be asked)."""
    process = subprocess.Popen(
        [sys.executable, *terminal.args()],
        env=terminal.env(),
        cwd=terminal.home,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None and process.stdout is not None
    seen: list[dict[str, Any]] = []
    try:
        for _ in range(4):  # two consents, each shown, then approved
            event = json.loads(process.stderr.readline())
            seen.append(event)
            if event["event"] == "aauth.interaction":
                assert event["link"] == f"{event['url']}?code={event['code']}"
                assert event["resource"] == "https://resource.example"
                assert event["expires_in"] > 0 and event["pending_url"]
                terminal.stack.approve(event["url"], event["code"])
        stdout = process.stdout.read()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert [(e["event"], e.get("status")) for e in seen] == [
        ("aauth.interaction", None),
        ("aauth.status", "approved"),
        ("aauth.interaction", None),
        ("aauth.status", "approved"),
    ]
    assert json.loads(stdout)["files"][0]["name"] == "welcome.txt"


class NoStdin:
    """A stdin that fails any use: the JSON-lines form must never touch it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"stdin.{name} was used")


async def test_without_a_terminal_a_question_is_cancelled_without_reading() -> None:
    """A real flow (the agent tests' PS asks a question): the JSON-lines form writes the
    question and withdraws the request, touching no stdin."""
    import io

    from support.agent import RESOURCE, Agent, World

    from aauth_agents.agent import RequestCancelledError

    world = World()
    world.ps.token_requirement = "clarification"
    out = io.StringIO()
    prompts = TerminalPrompts(stream=out, stdin=NoStdin(), interactive=False)  # type: ignore[arg-type]
    agent = Agent("async", world.auth(prompts=prompts), world.mapping)
    try:
        with pytest.raises(RequestCancelledError):
            await agent.get(f"{RESOURCE}/data")
    finally:
        await agent.aclose()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["event"], e.get("status")) for e in lines] == [
        ("aauth.clarification", None),
        ("aauth.status", "cancelled"),
    ]
    assert lines[0]["question"] == "Why do you need this?" and lines[0]["options"] == ["yes", "no"]
    assert world.ps.hits["pending-DELETE"] == 1


def test_the_qr_code_encodes_the_link() -> None:
    """The QR code printed is the link (decoded back with segno's own matrix)."""
    import io

    import segno

    from aauth_agents.agent import InteractionRequest

    out = io.StringIO()
    prompts = TerminalPrompts(
        stream=out, stdin=io.StringIO(), interactive=True, open_browser=False, refresh=60
    )
    request = InteractionRequest(
        "https://ps.example/interact/x", "ABCD-EFGH", "https://ps.example/pending/1", expires_in=60
    )
    prompt = prompts.interaction(request)
    prompt.finish("approved")
    text = out.getvalue()
    expected = io.StringIO()
    segno.make(request.link, error="m").terminal(out=expected, compact=True)
    assert expected.getvalue() in text
    assert "Ctrl-C cancels the request" in text and "Approved." in text
