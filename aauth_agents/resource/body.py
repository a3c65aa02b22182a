"""Reading a request body with a size limit: the one reader of the resource middleware, the
person server and the agent provider (the layer below the servers, so all of them can use
it).

:func:`read_body` takes the body as chunks -- Starlette's ``request.stream()`` -- and
:func:`read_asgi_body` a raw ASGI ``receive`` channel; both raise :class:`BodyTooLarge` as
soon as more than ``limit`` bytes have arrived, before buffering any more of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, MutableMapping
from typing import Any

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class BodyTooLarge(Exception):
    """The body is longer than the limit (answered ``413``)."""


async def read_body(chunks: AsyncIterable[bytes], limit: int) -> bytes:
    """The whole body from ``chunks``; :class:`BodyTooLarge` once it exceeds ``limit``."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)


async def read_asgi_body(receive: Receive, limit: int) -> bytes:
    """:func:`read_body` of a raw ASGI ``receive`` channel, without an async generator: a
    body that arrives in one ``http.request`` message (most do) is returned as it came.
    ``ConnectionAbortedError`` when the client disconnects first."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            return b"".join((*parts, chunk)) if parts else chunk
        parts.append(chunk)


__all__ = ["BodyTooLarge", "read_asgi_body", "read_body"]
