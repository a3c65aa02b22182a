"""Reading a request body with a size limit: the one reader of the resource middleware, the
person server and the agent provider (the layer below the servers, so all of them can use
it).

:func:`read_body` takes the body as chunks -- :func:`asgi_chunks` of a raw ASGI ``receive``
channel, or Starlette's ``request.stream()`` -- and raises :class:`BodyTooLarge` as soon as
more than ``limit`` bytes have arrived, before buffering any more of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, MutableMapping
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


async def asgi_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body chunks of ASGI ``http.request`` messages up to the last one;
    ``ConnectionAbortedError`` when the client disconnects first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


__all__ = ["BodyTooLarge", "asgi_chunks", "read_body"]
