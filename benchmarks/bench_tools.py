"""tool-overhead: an ``aauth_tool`` call with every token cached, against the same
``StructuredTool`` calling plain httpx, on the same in-process app.

Both tools are invoked as an agent framework invokes them (a ``ToolCall``, so each returns a
``ToolMessage`` with content and artifact), each call with another file name (another URL:
the path, the signature base and the signature all differ, as in real traffic). Baseline
and subject alternate in many short rounds; the reported ratio is the median of the rounds'
ratios (these machines are noisy: a median of interleaved rounds is what stays put from run
to run).

A row without a goal shows the HTTP requests alone (AAuth's signing and flow against plain
httpx, no LangChain). The tool ratio is lower than the requests' because the tool call costs
more than its request, and because ``AAuthTool`` calls its function directly where a stock
``StructuredTool`` inspects its function's signature and type hints on every call.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
from langchain_core.tools import StructuredTool
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aauth_agents.integrations.langchain import aauth_tool
from aauth_agents.transport import MappedTransport

GOAL = 1.15
RESOURCE = "https://resource.example"


class FileName(BaseModel):
    name: str


def _app() -> Starlette:
    metadata = {"issuer": RESOURCE, "name": "benchmark resource"}

    async def well_known(request: Request) -> Response:
        return JSONResponse(metadata)

    async def read(request: Request) -> Response:
        return JSONResponse({"name": request.path_params["name"], "content": "hello"})

    return Starlette(
        routes=[
            Route("/.well-known/aauth-resource.json", well_known),
            Route("/files/{name}", read),
        ]
    )


def _plain_tool(client: httpx.Client) -> StructuredTool:
    """The baseline: the same tool shape, calling plain httpx."""

    def read(name: str) -> tuple[str, dict[str, Any]]:
        response = client.get(f"{RESOURCE}/files/{name}")
        response.raise_for_status()
        return response.text, {"status": response.status_code, "data": response.json()}

    return StructuredTool.from_function(
        read,
        name="read_file",
        description="Read a file.",
        args_schema=FileName,
        response_format="content_and_artifact",
    )


def _timer(tool: StructuredTool, names: itertools.count[int]) -> Callable[[int], float]:
    def run(n: int) -> float:
        calls = [
            {
                "type": "tool_call",
                "id": f"c{i}",
                "name": "read_file",
                "args": {"name": f"file-{i}.txt"},
            }
            for i in itertools.islice(names, n)
        ]
        start = time.perf_counter()
        for call in calls:
            message = tool.invoke(call)
            assert message.status == "success", message.content
        return time.perf_counter() - start

    return run


def _requests(
    client: httpx.Client, names: itertools.count[int], auth: Any = None
) -> Callable[[int], float]:
    def run(n: int) -> float:
        urls = [f"{RESOURCE}/files/file-{i}.txt" for i in itertools.islice(names, n)]
        start = time.perf_counter()
        for url in urls:
            client.get(url, auth=auth).raise_for_status()
        return time.perf_counter() - start

    return run


def _median_ratio(
    subject: Callable[[int], float], baseline: Callable[[int], float], batch: int, rounds: int
) -> float:
    subject(batch), baseline(batch)  # warm up: metadata cached, code paths hot
    ratios = []
    for _ in range(rounds):
        base = baseline(batch)
        ratios.append(subject(batch) / base)
    return statistics.median(ratios)


def benchmark(batch: int = 20, rounds: int = 60) -> int:
    from run import _warm_auth, report

    app = _app()
    auth = _warm_auth()
    plain = httpx.Client(transport=MappedTransport({RESOURCE: app}, strict=True))
    signed = httpx.Client(
        transport=MappedTransport({RESOURCE: app}, strict=True), max_redirects=1000
    )
    names = itertools.count()
    try:
        subject = aauth_tool(
            "read_file",
            "Read a file.",
            "GET",
            f"{RESOURCE}/files/{{name}}",
            args_schema=FileName,
            auth=auth,
            http_client=signed,
        )
        ratio = _median_ratio(
            _timer(subject, names), _timer(_plain_tool(plain), names), batch, rounds
        )
        requests = _median_ratio(
            _requests(signed, names, auth), _requests(plain, names), batch, rounds // 2
        )
    finally:
        plain.close()
        signed.close()
    missed = report("tool-overhead", ratio, "the same tool on plain httpx", GOAL)
    print(f"{'  the requests alone (AAuth / httpx)':38} x{requests:5.2f}")
    return missed
