"""The MCP proxy's bridge in process, against a scripted streamable HTTP server on uvicorn.

The host's end is a pair of real pipes (the proxy reads and writes file descriptors, as it
does on stdio); every line the proxy writes is checked to be one JSON-RPC message. The
server is plain Starlette, so that each way a server can answer -- JSON, an event stream
with the server's own requests, an HTTP error, a stream that ends without the response, a
session that ends -- is scripted exactly. (The end-to-end tests, with AAuth, the person
server and the demo resource, are in ``test_mcp_proxy.py``.)"""

from __future__ import annotations

import asyncio
import io
import json
import os
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from aauth_agents.agent.callbacks import Answer, Cancel, ClarificationRequest, InteractionRequest
from aauth_agents.integrations.mcp_proxy import HostChannel, HostPrompts, McpProxy
from aauth_agents.integrations.mcp_proxy.wire import (
    HTTP_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    PROXY_BUSY,
    SERVER_UNREACHABLE,
    SESSION_ENDED,
    parse_message,
)
from aauth_agents.integrations.mcp_proxy.wire import Response as RpcResponse
from aauth_agents.servers.loopback import LoopbackServer

Json = dict[str, Any]


def sse(*messages: Json) -> bytes:
    return b"".join(b"event: message\ndata: " + json.dumps(m).encode() + b"\n\n" for m in messages)


class Script:
    """The scripted MCP server: what it received, and how it answers each tool."""

    def __init__(self, *, stateful: bool = False) -> None:
        self.stateful = stateful
        self.received: list[tuple[str, Json | None, dict[str, str]]] = []
        self.answers: dict[Any, Json] = {}  # the host's answers to the server's requests
        self.answered: asyncio.Event | None = None
        self.release: asyncio.Event | None = None
        self.session_over = False
        self.app = Starlette(routes=[Route("/mcp", self.mcp, methods=["GET", "POST", "DELETE"])])

    def methods(self) -> list[str]:
        return [m.get("method", "response") if m else verb for verb, m, _ in self.received]

    async def mcp(self, request: Request) -> Response:
        if self.answered is None:
            self.answered, self.release = asyncio.Event(), asyncio.Event()
        headers = dict(request.headers)
        if request.method == "DELETE":
            self.received.append(("DELETE", None, headers))
            return Response(status_code=200)
        if request.method == "GET":
            self.received.append(("GET", None, headers))
            if not self.stateful:
                return Response(status_code=405)
            return StreamingResponse(self._standing(), media_type="text/event-stream")
        message = json.loads(await request.body())
        self.received.append(("POST", message, headers))
        if self.session_over:
            return Response(status_code=404)
        if "method" not in message:  # the host's answer to one of our requests
            self.answers[message["id"]] = message
            self.answered.set()
            return Response(status_code=202)
        if "id" not in message:
            return Response(status_code=202)
        if message["method"] == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "serverInfo": {"name": "scripted", "version": "1"},
            }
            return JSONResponse(
                {"jsonrpc": "2.0", "id": message["id"], "result": result},
                headers={"mcp-session-id": "s-1"} if self.stateful else None,
            )
        if message["method"] != "tools/call":
            return JSONResponse({"jsonrpc": "2.0", "id": message["id"], "result": {}})
        return await getattr(self, "tool_" + message["params"]["name"])(message)

    async def _standing(self) -> AsyncIterator[bytes]:
        yield sse({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        assert self.release is not None
        await self.release.wait()

    @staticmethod
    def _result(message: Json, text: str) -> Json:
        return {
            "jsonrpc": "2.0",
            "id": message["id"],
            "result": {"content": [{"type": "text", "text": text}]},
        }

    async def tool_echo(self, message: Json) -> Response:
        progress = {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": 5, "progress": 1},
        }
        return Response(
            sse(progress, self._result(message, "echo")), media_type="text/event-stream"
        )

    async def tool_json(self, message: Json) -> Response:
        return JSONResponse(self._result(message, "as JSON"))

    async def tool_fail(self, message: Json) -> Response:
        return JSONResponse(
            {
                "jsonrpc": "2.0",
                "id": "server-error",
                "error": {"code": -32600, "message": "Bad Request: no such thing"},
            },
            status_code=400,
        )

    async def tool_html(self, message: Json) -> Response:
        return Response("<html>hello</html>", media_type="text/html")

    async def tool_silent(self, message: Json) -> Response:
        note = {
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": "info", "data": "working"},
        }
        return Response(sse(note), media_type="text/event-stream")

    async def tool_garbled(self, message: Json) -> Response:
        return Response(
            b"event: message\ndata: {not json\n\n" + sse(self._result(message, "ok")),
            media_type="text/event-stream",
        )

    async def tool_huge(self, message: Json) -> Response:
        return JSONResponse(self._result(message, "x" * 5000))

    async def tool_ask(self, message: Json) -> Response:
        """A server request in the middle of the call (sampling), answered by the host."""
        assert self.answered is not None

        async def stream() -> AsyncIterator[bytes]:
            yield sse(
                {
                    "jsonrpc": "2.0",
                    "id": 0,
                    "method": "sampling/createMessage",
                    "params": {"messages": [], "maxTokens": 5},
                }
            )
            await asyncio.wait_for(self.answered.wait(), 10)
            text = self.answers[0]["result"]["content"]["text"]
            yield sse(self._result(message, f"the model said {text}"))

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def tool_slow(self, message: Json) -> Response:
        assert self.release is not None
        release = self.release

        async def stream() -> AsyncIterator[bytes]:
            yield b": waiting\n\n"
            await release.wait()
            yield sse(self._result(message, "slow"))

        return StreamingResponse(stream(), media_type="text/event-stream")


class Host:
    """The host's end of the proxy's stdin and stdout (real pipes)."""

    def __init__(self, *, reading: bool = True) -> None:
        proxy_in, self._to_proxy = os.pipe()
        self._from_proxy, proxy_out = os.pipe()
        self.proxy_stdin = os.fdopen(proxy_in, "rb")
        self.proxy_stdout = os.fdopen(proxy_out, "wb", buffering=0)
        self.writer = os.fdopen(self._to_proxy, "wb", buffering=0)
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.all: list[Json] = []
        if reading:
            threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        with os.fdopen(self._from_proxy, "rb") as out:
            for line in out:
                self.lines.put(line)
        self.lines.put(None)

    def send(self, message: Json | bytes) -> None:
        data = message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n"
        self.writer.write(data)

    def request(self, id: Any, method: str, params: Json | None = None) -> None:
        message: Json = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def notify(self, method: str, params: Json | None = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})})

    async def recv(self, timeout: float = 10.0) -> Json:
        line = await asyncio.to_thread(self.lines.get, True, timeout)
        assert line is not None, "the proxy closed its stdout"
        assert line.endswith(b"\n")
        message = json.loads(line)
        parse_message(line[:-1])  # one valid JSON-RPC message per line, nothing else
        self.all.append(message)
        return message

    async def until(self, id: Any, timeout: float = 10.0) -> Json:
        """The response with ``id`` (what comes before it is kept in :attr:`all`)."""
        while True:
            message = await self.recv(timeout)
            if message.get("id") == id and "method" not in message:
                return message

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
def server() -> Iterator[tuple[Script, str]]:
    script = Script()
    with LoopbackServer(script.app) as running:
        yield script, running.url + "/mcp"


async def _start(
    url: str, *, reading: bool = True, **options: Any
) -> tuple[Host, McpProxy, asyncio.Task[None]]:
    host = Host(reading=reading)
    proxy = McpProxy(url, httpx.AsyncClient(timeout=10), HostChannel(), **options)
    task = asyncio.create_task(proxy.serve(host.proxy_stdin, host.proxy_stdout))
    return host, proxy, task


async def _stop(host: Host, task: asyncio.Task[None]) -> None:
    host.close()
    await asyncio.wait_for(task, 10)  # the proxy ends with its stdin
    host.proxy_stdout.close()  # (the caller's file: the CLI closes it too)
    while (line := await asyncio.to_thread(host.lines.get, True, 5)) is not None:
        parse_message(line[:-1])  # whatever was left: JSON-RPC too


async def _initialize(host: Host) -> Json:
    host.request(
        0,
        "initialize",
        {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    )
    response = await host.until(0)
    host.notify("notifications/initialized")
    return response


def _error(response: Json) -> tuple[int, str]:
    assert "error" in response, response
    return response["error"]["code"], response["error"]["message"]


async def test_messages_pass_both_ways_unchanged(server: tuple[Script, str]) -> None:
    script, url = server
    host, _, task = await _start(url)
    initialized = await _initialize(host)
    assert initialized["result"]["serverInfo"]["name"] == "scripted"
    host.request(
        "a",
        "tools/call",
        {"name": "echo", "arguments": {"x": [1, None, "ü"]}, "_meta": {"progressToken": 5}},
    )
    progress = await host.recv()
    assert progress == {
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": 5, "progress": 1},
    }
    assert (await host.recv())["result"]["content"][0]["text"] == "echo"
    host.request(7, "tools/call", {"name": "json"})
    assert (await host.until(7))["result"]["content"][0]["text"] == "as JSON"
    await _stop(host, task)
    # the server received exactly what the host sent, in order, with MCP's headers
    posted = [message for verb, message, _ in script.received if verb == "POST"]
    assert posted[2] == {
        "jsonrpc": "2.0",
        "id": "a",
        "method": "tools/call",
        "params": {
            "name": "echo",
            "arguments": {"x": [1, None, "ü"]},
            "_meta": {"progressToken": 5},
        },
    }
    assert script.methods() == [
        "initialize",
        "notifications/initialized",
        "tools/call",
        "tools/call",
    ]
    headers = script.received[2][2]
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json, text/event-stream"
    assert headers["mcp-protocol-version"] == "2025-11-25"
    assert "mcp-session-id" not in headers  # a stateless server gave none


async def test_a_server_request_in_a_call_is_answered_by_the_host(
    server: tuple[Script, str],
) -> None:
    script, url = server
    host, _, task = await _start(url)
    await _initialize(host)
    host.request(1, "tools/call", {"name": "ask"})
    asked = await host.recv()
    assert asked["method"] == "sampling/createMessage" and asked["id"] == 0  # the server's id
    host.send(
        {
            "jsonrpc": "2.0",
            "id": 0,
            "result": {
                "role": "assistant",
                "model": "m",
                "content": {"type": "text", "text": "hi"},
            },
        }
    )
    assert (await host.until(1))["result"]["content"][0]["text"] == "the model said hi"
    await _stop(host, task)
    assert script.answers[0]["result"]["content"]["text"] == "hi"


async def test_every_way_a_server_fails_a_request_is_a_json_rpc_error(
    server: tuple[Script, str],
) -> None:
    _, url = server
    host, _, task = await _start(url, max_message_bytes=4096)
    await _initialize(host)
    for id, tool in enumerate(["fail", "html", "silent", "huge", "garbled"], 1):
        host.request(id, "tools/call", {"name": tool})
    answers = {}
    while len(answers) < 5:
        message = await host.recv()
        if "id" in message:
            answers[message["id"]] = message
    assert _error(answers[1]) == (
        HTTP_ERROR,
        "the MCP server answered HTTP 400 Bad Request: Bad Request: no such thing",
    )
    assert answers[1]["error"]["data"] == {"status": 400}
    assert _error(answers[2]) == (
        HTTP_ERROR,
        "the MCP server answered with content type 'text/html', not JSON or an event stream",
    )
    assert _error(answers[3]) == (
        SERVER_UNREACHABLE,
        "the MCP server closed the response without answering the request",
    )
    assert _error(answers[4]) == (HTTP_ERROR, "the MCP server's message is larger than 4096 bytes")
    # an invalid event is skipped; the response after it arrives
    assert answers[5]["result"]["content"][0]["text"] == "ok"
    # the notification sent before the stream ended reached the host
    assert {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "info", "data": "working"},
    } in host.all
    # the proxy is still there
    host.request(9, "ping")
    assert (await host.until(9))["result"] == {}
    await _stop(host, task)


async def test_garbage_from_the_host_gets_errors_and_changes_nothing(
    server: tuple[Script, str],
) -> None:
    script, url = server
    host, _, task = await _start(url, max_message_bytes=1000)
    host.send(b"this is not json\n")
    assert _error(await host.recv()) == (PARSE_ERROR, "the message is not JSON")
    host.send(b'{"jsonrpc": "2.0", "id": 3}\n')
    response = await host.recv()
    assert response["id"] == 3 and response["error"]["code"] == INVALID_REQUEST
    host.send(b"\n  \r\n")  # blank lines: nothing
    host.send(b"[" + b"1," * 1000 + b"1]\n")
    assert _error(await host.recv()) == (PARSE_ERROR, "the message is larger than 1000 bytes")
    host.send(b'{"jsonrpc": "2.0", "method": "notifications/x", "params": 5}\n')  # no answer
    host.send(b'{"jsonrpc": "2.0", "id": 4, "method": "ping"}\n')
    assert await host.recv() == {"jsonrpc": "2.0", "id": 4, "result": {}}
    await _stop(host, task)
    assert script.methods() == ["ping"]  # nothing broken was forwarded
    assert all(message.get("id") in (None, 3, 4) for message in host.all)


async def test_cancelled_duplicate_and_too_many_requests(server: tuple[Script, str]) -> None:
    script, url = server
    host, _, task = await _start(url, max_in_flight=2)
    await _initialize(host)
    host.request(1, "tools/call", {"name": "slow"})
    host.request(1, "tools/call", {"name": "slow"})
    assert _error(await host.recv()) == (
        INVALID_REQUEST,
        "a request with this id is still in flight",
    )
    host.request("1", "tools/call", {"name": "slow"})  # a different id than 1
    host.request(2, "tools/call", {"name": "slow"})
    code, message = _error(await host.until(2))
    assert code == PROXY_BUSY and "2 requests are in flight" in message
    host.notify("notifications/cancelled", {"requestId": 1, "reason": "the user stopped"})
    for _ in range(100):  # the cancellation reaches the server; no answer for 1
        if "notifications/cancelled" in script.methods():
            break
        await asyncio.sleep(0.05)
    host.request(3, "ping")  # there is room again
    assert (await host.until(3))["result"] == {}
    assert script.release is not None
    script.release.set()
    assert (await host.until("1"))["result"]["content"][0]["text"] == "slow"
    host.request(4, "ping")
    await host.until(4)
    await _stop(host, task)
    # cancelled: never answered (the one error with id 1 was the duplicate's)
    assert [m["error"]["code"] for m in host.all if m.get("id") == 1] == [INVALID_REQUEST]


async def test_a_stateful_session_its_standing_stream_and_its_end() -> None:
    script = Script(stateful=True)
    with LoopbackServer(script.app) as running:
        host, proxy, task = await _start(running.url + "/mcp")
        await _initialize(host)
        changed = await host.recv()  # on the standing GET stream
        assert changed == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
        host.request(1, "tools/list")
        await host.until(1)
        script.session_over = True
        code, message = _error(await _ask(host, 2))
        assert code == SESSION_ENDED and "connect to the server again" in message
        assert proxy.upstream.session_id is None
        script.session_over = False
        await _initialize(host)  # the host connects again: a new session
        assert proxy.upstream.session_id == "s-1"
        assert "result" in await _ask(host, 3)
        assert script.release is not None
        script.release.set()
        await _stop(host, task)
    verbs = [(verb, headers.get("mcp-session-id")) for verb, _, headers in script.received]
    assert verbs[:2] == [("POST", None), ("POST", "s-1")]
    assert ("GET", "s-1") in verbs
    posted = [m.get("method") for verb, m, _ in script.received if verb == "POST" and m]
    assert posted[:3] == ["initialize", "notifications/initialized", "tools/list"]


async def _ask(host: Host, id: int) -> Json:
    host.request(id, "tools/list")
    return await host.until(id)


async def test_delete_ends_a_session_when_stdin_ends() -> None:
    script = Script(stateful=True)
    with LoopbackServer(script.app) as running:
        host, _, task = await _start(running.url + "/mcp", listen=False)
        await _initialize(host)
        host.request(1, "ping")
        await host.until(1)
        await _stop(host, task)
    assert [verb for verb, _, _ in script.received][-1] == "DELETE"
    assert "GET" not in [verb for verb, _, _ in script.received]


async def test_a_server_that_is_not_there() -> None:
    with LoopbackServer(Starlette()) as running:
        url = running.url + "/mcp"
    host, _, task = await _start(url)  # the port is closed now
    host.request(
        0,
        "initialize",
        {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    )
    code, message = _error(await host.until(0))
    assert code == SERVER_UNREACHABLE
    assert message == "could not connect to 127.0.0.1 (ConnectError): it is down or unreachable"
    host.request(1, "ping")
    assert _error(await host.until(1))[0] == SERVER_UNREACHABLE  # still answering
    await _stop(host, task)


async def test_without_an_agent_every_request_gets_the_reason() -> None:
    host = Host()
    proxy = McpProxy(
        "https://resource.example/mcp",
        httpx.AsyncClient(),
        HostChannel(),
        fatal="no agent key: run aauth-agents keys init",
    )
    task = asyncio.create_task(proxy.serve(host.proxy_stdin, host.proxy_stdout))
    host.notify("notifications/initialized")  # not answered, not forwarded
    host.request(5, "initialize", {})
    assert await host.recv() == {
        "jsonrpc": "2.0",
        "id": 5,
        "error": {"code": -32603, "message": "no agent key: run aauth-agents keys init"},
    }
    await _stop(host, task)


async def test_the_host_that_stops_reading_ends_the_proxy(server: tuple[Script, str]) -> None:
    _, url = server
    host, _, task = await _start(url, reading=False)
    os.close(host._from_proxy)  # the host's end of stdout: the proxy's writes fail (EPIPE)
    host.request(1, "ping")
    await asyncio.wait_for(task, 10)
    host.close()


# -- the person's prompts through the host --------------------------------------------------------


async def _channel(capabilities: Json) -> tuple[Host, HostChannel]:
    """A channel writing to a host that declared ``capabilities`` and is initialized; its
    answers are handed to the channel directly (there is no proxy reading stdin here)."""
    host = Host()
    channel = HostChannel()
    channel.start(host.proxy_stdout, asyncio.get_running_loop())
    channel.client_capabilities = capabilities
    channel.initialized = True
    return host, channel


async def _close(host: Host, channel: HostChannel) -> None:
    await channel.aclose()
    host.proxy_stdout.close()
    host.close()


def _answer(
    channel: HostChannel, request: Json, result: Json | None = None, error: Json | None = None
) -> None:
    raw: Json = {"jsonrpc": "2.0", "id": request["id"]}
    raw.update({"error": error} if error is not None else {"result": result})
    parsed = parse_message(json.dumps(raw))
    assert isinstance(parsed, RpcResponse) and channel.resolve(parsed)


INTERACTION = InteractionRequest(
    "https://ps.example/interact/abc",
    "AB12-CD34",
    "https://ps.example/pending/1",
    resource="https://resource.example",
)


async def test_a_url_elicitation_ends_with_the_interaction() -> None:
    host, channel = await _channel({"elicitation": {"form": {}, "url": {}}})
    prompts = HostPrompts(channel, stream=io.StringIO(), open_browser=False)
    prompt = prompts.interaction(INTERACTION)
    asked = await host.recv()
    assert asked["method"] == "elicitation/create"
    assert asked["params"]["mode"] == "url"
    assert asked["params"]["url"] == "https://ps.example/interact/abc?code=AB12-CD34"
    assert asked["id"].startswith("aauth-proxy-")  # an id no server request has
    _answer(channel, asked, {"action": "accept"})
    prompt.finish("approved")
    assert await host.recv() == {
        "jsonrpc": "2.0",
        "method": "notifications/elicitation/complete",
        "params": {"elicitationId": asked["params"]["elicitationId"]},
    }
    assert not prompt.cancel_requested
    await _close(host, channel)


async def test_an_interaction_that_ends_first_withdraws_the_elicitation() -> None:
    host, channel = await _channel({"elicitation": {"url": {}}})
    prompts = HostPrompts(channel, stream=io.StringIO(), open_browser=False)
    prompt = prompts.interaction(INTERACTION)
    asked = await host.recv()
    prompt.finish("approved")  # e.g. the person used the link on stderr
    assert await host.recv() == {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": asked["id"], "reason": "no longer needed"},
    }
    await _close(host, channel)


async def test_a_host_that_refuses_the_elicitation_is_told_and_the_browser_opens() -> None:
    host, channel = await _channel({"elicitation": {"url": {}}})
    opened: list[str] = []
    stderr = io.StringIO()
    prompts = HostPrompts(channel, stream=stderr, browser=lambda link: opened.append(link) or True)
    prompts.interaction(INTERACTION)
    asked = await host.recv()
    _answer(channel, asked, error={"code": -32601, "message": "no elicitation here"})
    logged = await host.recv()
    link = "https://ps.example/interact/abc?code=AB12-CD34"
    assert logged["method"] == "notifications/message"
    assert link in logged["params"]["data"]
    for _ in range(100):
        if opened:
            break
        await asyncio.sleep(0.02)
    assert opened == [link]
    assert link in stderr.getvalue()
    await _close(host, channel)


async def test_a_question_with_options_is_a_form_with_a_choice() -> None:
    host, channel = await _channel({"elicitation": {}})  # empty: form mode (2025-06-18 hosts)
    prompts = HostPrompts(channel, stream=io.StringIO())
    reply = prompts.clarification(
        ClarificationRequest("Which folder?", "https://ps.example/pending/1", ("docs", "notes"), 60)
    )
    asked = await host.recv()
    assert "mode" not in asked["params"]  # form is the default; older hosts know no mode
    assert asked["params"]["requestedSchema"]["properties"]["answer"]["enum"] == ["docs", "notes"]
    _answer(channel, asked, {"action": "accept", "content": {"answer": "notes"}})
    assert await asyncio.wait_for(reply, 5) == Answer("notes")
    await _close(host, channel)


@pytest.mark.parametrize(
    "answer",
    [
        {"action": "decline"},
        {"action": "cancel"},
        {"action": "accept", "content": {"answer": " "}},
        {"action": "accept"},
    ],
)
async def test_a_question_not_answered_at_the_host_withdraws_the_request(answer: Json) -> None:
    host, channel = await _channel({"elicitation": {"form": {}}})
    prompts = HostPrompts(channel, stream=io.StringIO())
    reply = prompts.clarification(ClarificationRequest("Why?", "https://ps.example/pending/1"))
    _answer(channel, await host.recv(), answer)
    assert isinstance(await asyncio.wait_for(reply, 5), Cancel)
    await _close(host, channel)


async def test_a_question_for_a_host_without_forms_withdraws_the_request() -> None:
    host, channel = await _channel({"elicitation": {"url": {}}})  # URL mode only
    stderr = io.StringIO()
    prompts = HostPrompts(channel, stream=stderr)
    reply = prompts.clarification(ClarificationRequest("Why?", "https://ps.example/pending/1"))
    assert isinstance(await asyncio.wait_for(reply, 5), Cancel)
    logged = await host.recv()
    assert logged["method"] == "notifications/message"
    assert "cannot show it" in logged["params"]["data"]
    assert "The person asks the agent: Why?" in stderr.getvalue()
    await _close(host, channel)


async def test_no_request_to_a_host_before_it_is_initialized() -> None:
    host, channel = await _channel({"elicitation": {"url": {}}})
    channel.initialized = False
    prompts = HostPrompts(channel, stream=io.StringIO(), browser=lambda link: True)
    prompts.interaction(INTERACTION)
    assert (await host.recv())["method"] == "notifications/message"  # logging is allowed
    await _close(host, channel)
