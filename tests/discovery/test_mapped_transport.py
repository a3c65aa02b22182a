"""MappedTransport: the connection moves, the request does not (ARCHITECTURE.md, Wire details)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aauth_agents.transport import (
    AsyncMappedTransport,
    MappedTransport,
    origin_of,
    parse_mapping_option,
    retarget,
)

URL = "https://ps.example/.well-known/aauth-person.json?x=1&y=%2F"


def echo_app() -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "host": request.headers.get("host"),
                "path": request.url.path,
                "raw_path": request.scope.get("raw_path", b"").decode(),
                "query": request.url.query,
                "method": request.method,
                "body": (await request.body()).decode(),
            }
        )

    return Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])


def assert_unchanged(seen: dict[str, Any]) -> None:
    assert seen["host"] == "ps.example"
    assert seen["path"] == "/.well-known/aauth-person.json"
    assert seen["query"] == "x=1&y=%2F"


def test_sync_asgi_mapping_keeps_url_and_host() -> None:
    with httpx.Client(
        transport=MappedTransport({"https://ps.example": echo_app()}, strict=True)
    ) as client:
        response = client.get(URL)
        posted = client.post("https://ps.example/token", content=b"hello")
    assert response.status_code == 200
    assert_unchanged(response.json())
    assert str(response.request.url) == URL
    assert posted.json()["body"] == "hello"


async def test_async_asgi_mapping_keeps_url_and_host() -> None:
    transport = AsyncMappedTransport({"https://ps.example": echo_app()}, strict=True)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(URL)
    assert_unchanged(response.json())


def test_sync_mapping_to_uvicorn_on_loopback(uvicorn_server: Any) -> None:
    with uvicorn_server(echo_app()) as server:
        destination = server.url
        transport = MappedTransport({"https://ps.example": destination}, strict=True)
        with httpx.Client(transport=transport) as client:
            response = client.get(URL)
    assert_unchanged(response.json())
    assert str(response.request.url) == URL


async def test_async_mapping_to_uvicorn_on_loopback(uvicorn_server: Any) -> None:
    with uvicorn_server(echo_app()) as server:
        destination = server.url
        transport = AsyncMappedTransport({"https://ps.example": destination}, strict=True)
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(URL)
    assert_unchanged(response.json())


def test_strict_refuses_unmapped_origins() -> None:
    transport = MappedTransport({"https://ps.example": echo_app()}, strict=True)
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
        client.get("https://other.example/")
    # the port is part of the origin
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
        client.get("https://ps.example:8443/")


async def test_async_strict_refuses_unmapped_origins() -> None:
    transport = AsyncMappedTransport({"https://ps.example": echo_app()}, strict=True)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://ps.example/")  # another scheme is another origin


def test_unmapped_origins_use_the_fallback() -> None:
    fallback = MappedTransport({"https://other.example": echo_app()}, strict=True)
    transport = MappedTransport({"https://ps.example": echo_app()}, fallback=fallback)
    with httpx.Client(transport=transport) as client:
        assert client.get("https://other.example/a").json()["host"] == "other.example"


def test_app_exceptions_become_500() -> None:
    async def broken(request: Request) -> JSONResponse:
        raise RuntimeError("boom")

    app = Starlette(routes=[Route("/", broken)])
    with httpx.Client(
        transport=MappedTransport({"https://ps.example": app}, strict=True)
    ) as client:
        assert client.get("https://ps.example/").status_code == 500


def test_retarget_changes_only_the_connection() -> None:
    request = httpx.Request("GET", URL, headers={"Signature": "sig=:AAAA:"})
    moved = retarget(request, "https", "::1", None)
    assert moved.url.host == "::1"
    assert moved.url.raw_path == request.url.raw_path
    assert moved.headers["host"] == "ps.example"
    assert moved.headers["signature"] == "sig=:AAAA:"
    assert moved.extensions["sni_hostname"] == "ps.example"  # TLS still checks ps.example
    plain = retarget(request, "http", "127.0.0.1", 8123)
    assert str(plain.url) == "http://127.0.0.1:8123/.well-known/aauth-person.json?x=1&y=%2F"
    assert "sni_hostname" not in plain.extensions


@pytest.mark.parametrize(
    "bad",
    [
        "https://ps.example/path",
        "https://ps.example?q=1",
        "ftp://ps.example",
        "https://user@ps.example",
        "ps.example",
        "http://127.0.0.1:99999",
    ],
)
def test_origins_are_checked(bad: str) -> None:
    with pytest.raises(ValueError):
        origin_of(bad)
    with pytest.raises(ValueError):
        MappedTransport({bad: "http://127.0.0.1:1"})


def test_destinations_are_checked() -> None:
    with pytest.raises(ValueError):
        MappedTransport({"https://ps.example": "http://127.0.0.1:1/prefix"})
    with pytest.raises(TypeError):
        MappedTransport({"https://ps.example": 42})  # type: ignore[dict-item]


def test_parse_mapping_option() -> None:
    assert parse_mapping_option("https://ps.example=http://127.0.0.1:8123") == (
        "https://ps.example",
        "http://127.0.0.1:8123",
    )
    with pytest.raises(ValueError):
        parse_mapping_option("https://ps.example")
    with pytest.raises(ValueError):
        parse_mapping_option("https://ps.example=127.0.0.1:8123/x")
