"""The request half of the edge (issue 15) on a real uvicorn server on 127.0.0.1: requests
over the concurrency limit are refused with 503 problem+json and ``Retry-After`` while the
ones in flight finish; limits are checked when they are made."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aauth_agents.protocol.errors import ConfigurationError
from aauth_agents.servers import LoopbackServer, ServerLimits


def test_requests_over_the_concurrency_limit_get_503() -> None:
    entered = threading.Semaphore(0)
    release = threading.Event()

    async def slow(request: Request) -> JSONResponse:
        entered.release()
        while not release.is_set():
            await asyncio.sleep(0.01)
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/slow", slow)])
    with (
        LoopbackServer(app, limits=ServerLimits(max_concurrency=2)) as server,
        ThreadPoolExecutor(2) as pool,
    ):
        running = [pool.submit(httpx.get, server.url + "/slow", timeout=30) for _ in range(2)]
        for _ in running:
            assert entered.acquire(timeout=30)
        busy = httpx.get(server.url + "/slow", timeout=30)
        release.set()
        finished = [future.result() for future in running]
        after = httpx.get(server.url + "/slow", timeout=30)
    assert busy.status_code == 503
    assert busy.headers["content-type"] == "application/problem+json"
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["error"] == "temporarily_unavailable"
    assert [r.status_code for r in finished] == [200, 200]
    assert after.status_code == 200


@pytest.mark.parametrize(
    "bad",
    [
        {"header_timeout": 0},
        {"body_timeout": -1},
        {"max_concurrency": 0},
        {"max_connections_per_address": 0},
        {"max_header_bytes": 0},
    ],
)
def test_limits_must_be_positive(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        ServerLimits(**bad)  # type: ignore[arg-type]


def test_connections_are_fitted_to_the_open_file_limit() -> None:
    """A whole accept burst (``backlog``) and the server's own files fit beside them."""
    import resource

    from aauth_agents.servers.edge import RESERVED_FILES, fitted

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limits = fitted(ServerLimits(max_connections=10**9, backlog=128))
    assert limits.max_connections + limits.backlog + RESERVED_FILES <= max(soft, 10**9)
    if soft != resource.RLIM_INFINITY:
        assert limits.max_connections == max(1, soft - 128 - RESERVED_FILES)
    assert fitted(ServerLimits(max_connections=5)).max_connections == 5
