"""The LangChain integration's parties and helpers: :class:`Party` (one test's agent at a
:class:`~aauth_agents.servers.stack.LocalStack`), :class:`BrowserPerson` (the person in
Debian's headless Chromium on the PS's consent pages), :func:`in_background`, and a
one-tool LangGraph agent graph (:class:`Graph`, :func:`interrupted`, :func:`tool_messages`,
``CALL``). The fixtures are in tests/langchain/conftest.py.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import httpx
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command

from aauth_agents.agent import AAuth, AgentIdentity, client_options
from aauth_agents.servers.stack import LocalStack
from support.browser import CHROMIUM, CHROMIUM_ARGS


@dataclass
class Party:
    """One test's agent at the stack: its identity, clients reaching the parties, and the
    requests it sent (``sent``: ``(host, method, path)``)."""

    stack: LocalStack
    identity: AgentIdentity
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    _clients: list[Any] = field(default_factory=list)

    def record(self, request: httpx.Request) -> None:
        path = request.url.raw_path.decode("ascii").split("?", 1)[0]  # as sent: still encoded
        self.sent.append((request.url.host, request.method, path))

    async def arecord(self, request: httpx.Request) -> None:
        self.record(request)

    def client(self) -> httpx.Client:
        made = httpx.Client(
            **client_options(
                transport=self.stack.transport(), event_hooks={"request": [self.record]}
            )
        )
        self._clients.append(made)
        return made

    def async_client(self) -> httpx.AsyncClient:
        made = httpx.AsyncClient(
            **client_options(
                transport=self.stack.async_transport(), event_hooks={"request": [self.arecord]}
            )
        )
        self._clients.append(made)
        return made

    def mcp_client(self) -> Any:
        """The async client an MCP toolset sends through: ``async_client()`` on the MCP SDK
        1.x line, its httpx2 twin (the same mapping, bridged) on 2.x."""
        from aauth_agents.integrations.mcp_sdk import MCP2, http, http_transport

        if not MCP2:
            return self.async_client()
        made = http.AsyncClient(
            **client_options(
                transport=http_transport(self.stack.async_transport()),
                event_hooks={"request": [self.arecord]},
            )
        )
        self._clients.append(made)
        return made

    def clients(self) -> dict[str, Any]:
        """Both clients, as the tool factories take them."""
        return {"http_client": self.client(), "async_http_client": self.async_client()}

    def auth(self, **options: Any) -> AAuth:
        options.setdefault("justification", "Help with your files")
        return AAuth(self.identity, **options)

    def approving(self, **options: Any) -> AAuth:
        """An AAuth whose person approves every interaction through the PS's own path."""
        return self.auth(on_interaction=self.stack.approve, **options)

    def count(self, host: str, path_prefix: str, method: str | None = None) -> int:
        return sum(
            1
            for h, m, p in self.sent
            if h == host and p.startswith(path_prefix) and method in (None, m)
        )

    def pending_created(self) -> int:
        """Pending requests the PS created for this agent (its audit events)."""
        return sum(
            1
            for e in self.stack.events
            if e.name == "pending" and e.agent == self.identity.agent_id
        )

    async def aclose(self) -> None:
        for made in self._clients:
            if hasattr(made, "aclose"):  # httpx.AsyncClient, httpx2.AsyncClient
                await made.aclose()
            else:
                made.close()


class BrowserPerson:
    """The person in headless Chromium, on the PS's consent pages: opens the interaction
    link, signs in (once: the session cookie stays), approves or denies. Runs in its own
    thread (Playwright's sync API), so an agent can block in a tool meanwhile; each action
    returns a future of the page's final message."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self._jobs: queue.Queue[tuple[str, str, Future[str]] | None] = queue.Queue()
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, name="chromium-person", daemon=True)
        self._thread.start()
        self._ready.result(timeout=60)

    def approve(self, url: str, code: str) -> Future[str]:
        return self._submit("approve", f"{url}?code={code}")

    def deny(self, url: str, code: str) -> Future[str]:
        return self._submit("deny", f"{url}?code={code}")

    def _submit(self, action: str, link: str) -> Future[str]:
        done: Future[str] = Future()
        self._jobs.put((action, link, done))
        return done

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                page = browser.new_context().new_page()
                page.set_default_timeout(20_000)
                self._ready.set_result(None)
                while (job := self._jobs.get()) is not None:
                    action, link, done = job
                    try:
                        done.set_result(self._decide(page, action, link))
                    except BaseException as exc:
                        done.set_exception(exc)
                browser.close()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)

    def _decide(self, page: Any, action: str, link: str) -> str:
        page.goto(self.stack.browser_url(link))
        if page.locator("#signin").count():
            page.fill("input[name=username]", self.stack.person)
            page.fill("input[name=password]", self.stack.password)
            page.click("button[name=signin]")
        page.click(f"#{action}")
        message = page.locator("#message")
        message.wait_for()
        return str(message.inner_text())


def in_background(action: Callable[[str, str], Any]) -> Callable[[str, str], None]:
    """An ``on_interaction`` callback that lets ``action`` happen while the agent polls."""

    def callback(url: str, code: str) -> None:
        threading.Thread(target=action, args=(url, code), daemon=True).start()

    return callback


# -- a LangGraph agent graph ----------------------------------------------------------------------


class Graph:
    """A one-tool agent graph run sync or async, with its thread's config."""

    def __init__(self, tools: list[Any], calls: list[dict[str, Any]], mode: str) -> None:
        replies = [AIMessage("", tool_calls=[call]) for call in calls]
        model = GenericFakeChatModel(messages=iter([*replies, AIMessage("Done.")]))

        def agent(state: MessagesState) -> dict[str, Any]:
            return {"messages": [model.invoke(state["messages"])]}

        async def aagent(state: MessagesState) -> dict[str, Any]:
            return {"messages": [await model.ainvoke(state["messages"])]}

        builder = StateGraph(MessagesState)
        builder.add_node("agent", agent if mode == "sync" else aagent)
        builder.add_node("tools", ToolNode(tools))
        builder.add_edge(START, "agent")
        builder.add_conditional_edges("agent", tools_condition)
        builder.add_edge("tools", "agent")
        self.graph = builder.compile(checkpointer=InMemorySaver())
        self.mode = mode
        self.config: Any = {"configurable": {"thread_id": f"thread-{id(self)}"}}

    async def run(self, value: Any) -> dict[str, Any]:
        if self.mode == "sync":
            import anyio.to_thread

            result: dict[str, Any] = await anyio.to_thread.run_sync(
                lambda: self.graph.invoke(value, self.config)
            )
            return result
        return await self.graph.ainvoke(value, self.config)

    async def start(self, text: str = "Show me my files") -> dict[str, Any]:
        return await self.run({"messages": [HumanMessage(text)]})

    async def resume(self, value: Any) -> dict[str, Any]:
        return await self.run(Command(resume=value))


def interrupted(result: dict[str, Any]) -> dict[str, Any]:
    [interrupt] = result["__interrupt__"]
    value: dict[str, Any] = interrupt.value
    return value


def tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


#: The model's call of the ``list_files`` tool (tests/langchain/test_langgraph.py builds it).
CALL = {"name": "list_files", "args": {}, "id": "call-1"}
