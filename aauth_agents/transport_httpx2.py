"""Any ``httpx`` async transport for an ``httpx2.AsyncClient`` (the MCP SDK 2.x line's HTTP
library, same API as httpx but its own types).

The development mapping of ``https://HOST`` to loopback or to in-process ASGI apps
(:class:`~aauth_agents.transport.AsyncMappedTransport`), and every other httpx transport, serve
an ``httpx2`` client through :class:`Httpx2Transport`: one implementation of the mapping for
both libraries. The request is handed on as it is (URL, headers, body, extensions) and the
response comes back as a stream, read only as the caller reads it (server-sent events flow).

::

    transport = Httpx2Transport(AsyncMappedTransport({"https://resource.example": app}))
    async with httpx2.AsyncClient(transport=transport, auth=auth.httpx2()) as client:
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self.stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            yield chunk

    async def aclose(self) -> None:
        close = getattr(self.stream, "aclose", None)
        if close is not None:
            await close()


class _ResponseBody(httpx2.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self.stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


class Httpx2Transport(httpx2.AsyncBaseTransport):
    """``inner`` (an ``httpx.AsyncBaseTransport``) as an ``httpx2.AsyncBaseTransport``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        forwarded = httpx.Request(
            request.method,
            str(request.url),
            headers=request.headers.raw,
            stream=_Body(request.stream),
            extensions=request.extensions,
        )
        response = await self.inner.handle_async_request(forwarded)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=response.headers.raw,
            stream=_ResponseBody(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def as_httpx2_transport(transport: Any) -> Any:
    """``transport`` for an ``httpx2`` client: an httpx transport bridged, an httpx2 one (or
    ``None``) as it is."""
    if isinstance(transport, httpx.AsyncBaseTransport):
        return Httpx2Transport(transport)
    return transport


__all__ = ["Httpx2Transport", "as_httpx2_transport"]
