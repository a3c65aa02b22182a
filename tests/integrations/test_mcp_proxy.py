"""Acceptance: ``aauth-agents mcp-proxy`` launched by the MCP SDK's own stdio client, against the
demo resource's ``/mcp`` and the project's person server, all real servers on loopback
(:class:`~aauth_agents.servers.stack.LocalStack`). The agent is a ``keys init`` agent whose
self-hosted provider the stack serves; the person acts through the PS's own interaction path
(what its consent page calls), triggered by what the host received: the URL-mode elicitation,
or the log message of a host without elicitation.

The failures -- a denied consent, a link the person declines at the host, a server that goes
away, no agent key, garbage on stdin -- each reach the host as a JSON-RPC error, and the proxy
goes on. A raw subprocess run proves that stdout carries JSON-RPC only, even with a browser
that prints to stdout, and that the proxy ends cleanly when stdin does.

The per-call test runs its rounds for each per-call tool the demo resource publishes: none
yet (R3 per-call proposals in the demo resource are being built).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from support.mcp import wire

from aauth_agents.agent.provider import load_local_agent
from aauth_agents.agent.storage import DirectoryKeyStore
from aauth_agents.cli import build_parser
from aauth_agents.integrations.mcp_proxy.wire import (
    AAUTH_ERROR,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    SERVER_UNREACHABLE,
    parse_message,
)
from aauth_agents.integrations.mcp_sdk import McpError
from aauth_agents.resource.mcp import ACCESS_MODE_META
from aauth_agents.servers.demo_resource import TOOL_RULES, demo_resource
from aauth_agents.servers.loopback import LoopbackServer
from aauth_agents.servers.stack import LocalStack

AGENT = "aauth:me@laptop.example"
LINK = re.compile(r"(https://ps\.example/interact/[^\s?]+)\?code=([0-9A-Z-]+)")


@pytest.fixture(scope="module")
def agent_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("agent")
    keys = home / "keys"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "aauth_agents.cli",
            "keys",
            "init",
            "--agent-id",
            AGENT,
            "--ps",
            "https://ps.example",
            "--dir",
            str(keys),
        ],
        capture_output=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home)},
    )
    assert made.returncode == 0, made.stderr
    return keys


@dataclass
class Person:
    """The person, at the PS: opens a link (its view: what the consent page shows) and
    decides."""

    stack: LocalStack
    views: list[Any] = field(default_factory=list)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def _open(self, link: str) -> Any:
        match = LINK.fullmatch(link)
        assert match, link
        view = self.stack.open(match.group(1), match.group(2))
        self.views.append(view)
        return view

    def approve(self, link: str) -> Any:
        view = self._open(link)
        self.stack.approve_open(view.id)
        return view

    def deny(self, link: str) -> Any:
        view = self._open(link)
        self.stack.call(self.stack.ps.interactions.deny(view.id, "not now"))
        return view

    def later(self, action: str, link: str) -> None:
        """Decide in the background (the host's elicitation callback returns at once)."""
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(getattr(self, action), link)
        )
        self.tasks.add(task)

    def state(self, view: Any) -> Any:
        return self.stack.call(self.stack.ps.interactions.get(view.id))


@dataclass
class Setup:
    stack: LocalStack
    keys: Path
    home: Path
    opened: Path  # what the $BROWSER stand-in was asked to open

    def env(self) -> dict[str, str]:
        browser = self.home / "browser.py"
        browser.write_text(  # it also prints on its stdout: that must not reach the host
            f"import sys\nopen({str(self.opened)!r}, 'a').write(sys.argv[1] + '\\n')\n"
            "print('BROWSER NOISE')\n"
        )
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "BROWSER": f"{sys.executable} {browser} %s",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }

    def args(self, url: str | None = None, *extra: str, keys: Path | None = None) -> list[str]:
        maps = [f"--map={identifier}={origin}" for identifier, origin in self.stack.mapping.items()]
        return [
            "-m",
            "aauth_agents.cli",
            "mcp-proxy",
            url or f"{self.stack.resource}/mcp",
            "--dir",
            str(keys or self.keys),
            "--max-wait",
            "60",
            *maps,
            *extra,
        ]

    @asynccontextmanager
    async def session(
        self, *extra: str, url: str | None = None, keys: Path | None = None, **options: Any
    ) -> AsyncIterator[ClientSession]:
        """The MCP SDK's stdio client running the proxy, and a ClientSession (the host)."""
        params = StdioServerParameters(
            command=sys.executable,
            args=self.args(url, *extra, keys=keys),
            env=self.env(),
            cwd=str(self.home),
        )
        with (self.home / "stderr.txt").open("a") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write, **options) as session,
            ):
                yield session

    def stderr(self) -> str:
        return (self.home / "stderr.txt").read_text()


@pytest.fixture
def setup(agent_keys: Path, tmp_path: Path) -> Iterator[Setup]:
    with LocalStack() as stack:
        stack.add(
            "https://laptop.example", load_local_agent(DirectoryKeyStore(agent_keys)).provider.app()
        )
        yield Setup(stack, agent_keys, tmp_path, tmp_path / "opened.txt")


def _data(result: types.CallToolResult) -> Any:
    data = wire(result)
    assert not data.get("isError"), data["content"]
    return data.get("structuredContent")


async def _wait(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_host_with_url_elicitation_reads_writes_and_steps_up(setup: Setup) -> None:
    person = Person(setup.stack)
    asked: list[types.ElicitRequestURLParams] = []
    completed: list[str] = []

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        asked.append(params)
        person.later("approve", params.url)
        return types.ElicitResult(action="accept")

    async def on_message(message: Any) -> None:
        notification = getattr(message, "root", message)  # (1.x wraps it in a root model)
        if isinstance(notification, types.ElicitCompleteNotification):
            completed.append(wire(notification)["params"]["elicitationId"])

    async with setup.session(elicitation_callback=elicit, message_handler=on_message) as session:
        initialized = await session.initialize()
        listed = await session.list_tools()
        whoami = _data(await session.call_tool("whoami", {}))
        assert asked == []  # an agent token needs nobody
        files = _data(await session.call_tool("list_files", {}))
        first = len(asked)
        again = _data(await session.call_tool("list_files", {}))
        assert len(asked) == first  # consent once: the auth token is cached
        written = _data(
            await session.call_tool(
                "write_file", {"name": "notes.txt", "content": "through the proxy"}
            )
        )
        read = _data(await session.call_tool("read_file", {"name": "notes.txt"}))
        await _wait(lambda: len(completed) == len(asked))

    assert wire(initialized)["serverInfo"]["name"] == "aauth-agents demo resource"
    assert {tool.name for tool in listed.tools} == set(TOOL_RULES)
    assert whoami["kind"] == "agent" and whoami["agent"] == AGENT
    assert files == again == {"files": [{"name": "welcome.txt", "size": 43}]}
    assert written == {"name": "notes.txt", "size": 17, "created": True}
    assert read == {"name": "notes.txt", "content": "through the proxy"}
    # what the person was asked, in order: who the agent is (a new agent's binding),
    # files.read for the read tool, then files.write for the write tool (the step-up)
    assert [
        (view.kind, [s.scope for s in view.scopes if not s.identity]) for view in person.views
    ] == [
        ("person_token", []),
        ("auth_token", ["files.read"]),
        ("auth_token", ["files.read", "files.write"]),
    ]
    assert first == 2 and len(asked) == 3
    for params, view in zip(asked, person.views, strict=True):
        assert params.mode == "url" and LINK.fullmatch(params.url)
        code = LINK.fullmatch(params.url).group(2)  # type: ignore[union-attr]
        assert params.message == (
            "The agent needs your approval at https://resource.example. "
            f"Check that your person server's page shows the code {code}."
        )
        assert view.agent_id == AGENT
        assert view.can_clarify  # the host can ask the person: the agent declared it
    assert completed == [wire(params)["elicitationId"] for params in asked]
    assert not setup.opened.exists()  # the host showed the link: no browser
    assert "Approved." in setup.stderr()


async def test_each_call_of_a_per_call_tool_asks_the_person_with_its_arguments(
    setup: Setup,
) -> None:
    """R3 per-call through the proxy: the demo's ``delete_file`` -- the person sees *that*
    call (which file, what it holds now) on the consent page, approves, it runs once; the
    next call asks again."""
    person = Person(setup.stack)
    asked: list[types.ElicitRequestURLParams] = []

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        asked.append(params)
        person.later("approve", params.url)
        return types.ElicitResult(action="accept")

    async with setup.session(elicitation_callback=elicit) as session:
        await session.initialize()
        listed = await session.list_tools()
        per_call = {
            tool.name
            for tool in listed.tools
            if (tool.meta or {}).get(ACCESS_MODE_META) == "per-call"
        }
        assert (
            per_call
            == {"delete_file"}
            == {name for name, rule in TOOL_RULES.items() if rule.access_mode == "per-call"}
        )
        deleted = []
        for name, content in (("draft-1.txt", "first draft"), ("draft-2.txt", "second draft")):
            _data(await session.call_tool("write_file", {"name": name, "content": content}))
            before, seen = len(asked), len(person.views)
            deleted.append(_data(await session.call_tool("delete_file", {"name": name})))
            assert len(asked) == before + 1  # this call, and only it, went to the person
            [view] = person.views[seen:]
            shown = json.dumps(
                view, default=lambda o: vars(o) if hasattr(o, "__dict__") else str(o)
            )
            assert name in shown and content in shown  # which file, and what it holds now
        listed_files = _data(await session.call_tool("list_files", {}))

    assert deleted == [
        {"name": "draft-1.txt", "deleted": True},
        {"name": "draft-2.txt", "deleted": True},
    ]
    assert listed_files == {"files": [{"name": "welcome.txt", "size": 43}]}


async def test_a_host_without_elicitation_gets_a_log_message_and_the_browser(
    setup: Setup,
) -> None:
    person = Person(setup.stack)
    logged: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(params)
        match = LINK.search(str(params.data))
        if match:
            person.later("approve", match.group(0))

    async with setup.session(logging_callback=on_log) as session:
        await session.initialize()
        files = _data(await session.call_tool("list_files", {}))

    assert files == {"files": [{"name": "welcome.txt", "size": 43}]}
    links = [LINK.search(str(params.data)).group(0) for params in logged]  # type: ignore[union-attr]
    assert [(params.level, params.logger) for params in logged] == [("warning", "aauth")] * 2
    for params, link in zip(logged, links, strict=True):
        code = link.rsplit("=", 1)[1]
        assert params.data == (
            f"The agent needs your approval at https://resource.example. "
            f"Open {link} and check that the page shows the code {code}."
        )
    await _wait(lambda: setup.opened.exists() and len(setup.opened.read_text().split()) == 2)
    assert setup.opened.read_text().split() == links  # the browser opened each link
    stderr = setup.stderr()
    assert all(link in stderr for link in links) and "BROWSER NOISE" in stderr
    # a host that cannot ask the person: the agent did not offer the PS a clarification
    assert [view.can_clarify for view in person.views] == [False, False]


async def test_the_person_asks_a_question_and_the_host_answers_it(setup: Setup) -> None:
    stack = setup.stack
    person = Person(stack)
    forms: list[types.ElicitRequestFormParams] = []
    asked_on: list[Any] = []

    def ask(link: str) -> None:
        match = LINK.fullmatch(link)
        assert match
        view = stack.ask(match.group(1), match.group(2), "Which **folder** do you need?")
        asked_on.append(view)

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        if isinstance(params, types.ElicitRequestURLParams):
            if not asked_on and not person.tasks:
                task = asyncio.get_running_loop().create_task(asyncio.to_thread(ask, params.url))
                person.tasks.add(task)
            else:
                person.later("approve", params.url)
            return types.ElicitResult(action="accept")
        forms.append(params)
        return types.ElicitResult(action="accept", content={"answer": "the docs folder"})

    async with setup.session(elicitation_callback=elicit) as session:
        await session.initialize()
        call = asyncio.ensure_future(session.call_tool("list_files", {}))
        await _wait(lambda: bool(asked_on) and stack.answer_of(asked_on[0].id) is not None)
        stack.approve_open(asked_on[0].id)
        files = _data(await asyncio.wait_for(call, 30))

    assert files == {"files": [{"name": "welcome.txt", "size": 43}]}
    [form] = forms
    assert form.message == "The person asks the agent: Which **folder** do you need?"
    assert wire(form)["requestedSchema"] == {
        "type": "object",
        "properties": {"answer": {"type": "string", "title": "Your answer"}},
        "required": ["answer"],
    }
    assert stack.answer_of(asked_on[0].id) == "the docs folder"


async def test_a_denied_consent_is_a_json_rpc_error_and_the_proxy_goes_on(
    setup: Setup,
) -> None:
    person = Person(setup.stack)

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        person.later("deny", params.url)
        return types.ElicitResult(action="accept")

    async with setup.session(elicitation_callback=elicit) as session:
        await session.initialize()
        with pytest.raises(McpError) as denied:
            await session.call_tool("list_files", {})
        whoami = _data(await session.call_tool("whoami", {}))  # still there

    assert denied.value.error.code == AAUTH_ERROR
    assert denied.value.error.message == (
        "AAuth: The person declined access at resource.example (denied)."
    )
    assert denied.value.error.data == {"aauth_error": "denied"}
    assert whoami["agent"] == AGENT
    assert "https://ps.example" not in denied.value.error.message  # no link, no code


async def test_a_link_declined_at_the_host_withdraws_the_request(setup: Setup) -> None:
    asked: list[types.ElicitRequestURLParams] = []

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        asked.append(params)
        return types.ElicitResult(action="decline")

    async with setup.session(elicitation_callback=elicit) as session:
        await session.initialize()
        with pytest.raises(McpError) as cancelled:
            await session.call_tool("list_files", {})

    assert cancelled.value.error.code == AAUTH_ERROR
    assert cancelled.value.error.data == {"aauth_error": "cancelled"}
    assert cancelled.value.error.message == (
        "AAuth: The request for access at resource.example was withdrawn: the person cancelled "
        "the request (cancelled)."
    )
    [params] = asked
    match = LINK.fullmatch(params.url)
    assert match
    ps = setup.stack.ps
    record = setup.stack.call(
        ps.run(ps.pending.get_by_interaction, match.group(1).rsplit("/", 1)[1])
    )
    view = setup.stack.call(ps.interactions.get(record.id))
    assert view is not None and view.withdrawn  # the PS no longer asks the person


async def test_a_server_that_goes_away(setup: Setup) -> None:
    demo = demo_resource("https://files.example", issuer_keys=setup.stack.discovery())
    server = LoopbackServer(demo).start()
    try:
        async with setup.session(
            f"--map=https://files.example={server.url}", url="https://files.example/mcp"
        ) as session:
            await session.initialize()
            assert _data(await session.call_tool("whoami", {}))["agent"] == AGENT
            server.stop()
            with pytest.raises(McpError) as gone:
                await session.call_tool("whoami", {})
            with pytest.raises(McpError) as still:
                await session.list_tools()
    finally:
        server.stop()
    for error in (gone.value.error, still.value.error):
        assert error.code == SERVER_UNREACHABLE
        assert "files.example" in error.message, error.message


async def test_no_agent_key_is_said_to_the_host(setup: Setup) -> None:
    async with setup.session(keys=setup.home / "nothing-here") as session:
        with pytest.raises(McpError) as failed:
            await session.initialize()
    assert failed.value.error.code == INTERNAL_ERROR
    assert "has no agent key" in failed.value.error.message
    assert "aauth-agents keys init" in failed.value.error.message


# -- stdout is the host's, and only MCP's ----------------------------------------------------------


class RawHost:
    """The proxy as a plain subprocess: what it writes on stdout, line by line."""

    def __init__(self, setup: Setup, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *setup.args(None, *extra)],
            env=setup.env(),
            cwd=setup.home,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.stdout: list[bytes] = []
        self.stderr = b""
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stdout.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _drain(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def recv(self, timeout: float = 30) -> dict[str, Any]:
        line = self.lines.get(timeout=timeout)
        assert line is not None, self.stderr
        return dict(json.loads(line))

    def close(self, timeout: float = 15) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(timeout)


def test_garbage_on_stdin_gets_errors_and_stdout_carries_only_json_rpc(setup: Setup) -> None:
    host = RawHost(setup)
    try:
        host.send(b"hello proxy\n")
        assert host.recv()["error"]["code"] == PARSE_ERROR
        host.send(b"\xff\xfe\n")
        assert host.recv()["error"] == {"code": PARSE_ERROR, "message": "the message is not UTF-8"}
        host.send(b'{"jsonrpc": "2.0", "id": 1, "method": 7}\n')
        assert host.recv() == {
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": INVALID_REQUEST, "message": '"method" must be a non-empty string'},
        }
        host.send(b'[{"jsonrpc": "2.0", "id": 2, "method": "ping"}]\n')
        assert host.recv()["error"]["message"] == "JSON-RPC batches are not supported by MCP"
        host.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {},
                        "clientInfo": {"name": "raw", "version": "1"},
                    },
                }
            ).encode()
            + b"\n"
        )
        initialized = host.recv()
        assert initialized["id"] == 3
        assert initialized["result"]["serverInfo"]["name"] == "aauth-agents demo resource"
        host.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        host.send(
            b'{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": '
            b'{"name": "list_files", "arguments": {}}}\n'
        )
        logged = host.recv()  # no elicitation declared: a log message, and the browser
        assert logged["method"] == "notifications/message"
        assert LINK.search(logged["params"]["data"])
        # the host goes away while the person has not decided: the proxy ends, cleanly
        started = time.monotonic()
        assert host.close() == 0
        assert time.monotonic() - started < 10
    finally:
        if host.process.poll() is None:
            host.process.kill()
            host.process.wait()
    assert host.lines.get(timeout=5) is None
    for line in host.stdout:  # every line is one JSON-RPC message
        assert line.endswith(b"\n")
        parse_message(line[:-1])
    assert b"BROWSER NOISE" not in b"".join(host.stdout)
    stderr = host.stderr.decode()
    assert "the host sent an invalid message" in stderr
    assert "the host closed stdin: stopping" in stderr
    assert "BROWSER NOISE" in stderr  # the browser's output went to stderr


def test_a_request_the_host_cancels_while_the_person_decides(setup: Setup) -> None:
    host = RawHost(setup, "--no-browser")
    try:
        host.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {},
                        "clientInfo": {"name": "raw", "version": "1"},
                    },
                }
            ).encode()
            + b"\n"
        )
        assert "result" in host.recv()
        host.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        host.send(
            b'{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": '
            b'{"name": "list_files", "arguments": {}}}\n'
        )
        assert host.recv()["method"] == "notifications/message"  # the person is asked
        host.send(
            b'{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": '
            b'{"requestId": 2, "reason": "the user changed their mind"}}\n'
        )
        host.send(b'{"jsonrpc": "2.0", "id": 3, "method": "ping"}\n')
        # answered at once: a ping does not wait for the cancelled call's consent
        assert host.recv() == {"jsonrpc": "2.0", "id": 3, "result": {}}
        assert host.close() == 0
    finally:
        if host.process.poll() is None:
            host.process.kill()
            host.process.wait()
    assert host.lines.get(timeout=5) is None
    assert not [line for line in host.stdout if json.loads(line).get("id") == 2]
    assert "The agent stopped waiting." in host.stderr.decode()  # the prompt ended with it
    assert not setup.opened.exists()  # --no-browser


def test_help_names_the_command() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "aauth_agents.cli", "mcp-proxy", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0
    for option in ("--dir", "--keyring", "--map", "--justification", "--no-browser"):
        assert option in shown.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "aauth_agents.cli", "mcp-proxy", "ftp://x/mcp"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "not an http(s) URL" in bad.stderr and bad.stdout == ""


def test_the_readme_host_configuration_is_a_command_line_the_proxy_takes() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", readme, flags=re.S)]
    [server] = [b["mcpServers"]["files"] for b in blocks if "mcpServers" in b]
    assert server["command"] == "aauth-agents"
    args = build_parser().parse_args(server["args"])
    assert args.command == "mcp-proxy" and args.url == "https://resource.example/mcp"
    assert args.dir and args.justification
