"""The proxy's HTTP side: MCP's streamable HTTP transport (client role), message by message.

Each message from the host is one ``POST`` to the MCP endpoint through an
``httpx.AsyncClient`` whose ``auth`` is :class:`~aauth_agents.agent.AAuth`: the request is
signed and every challenge answered (tokens, consent, step-up) before the response is seen
here. The response is a single JSON message or an event stream of messages (the server's
requests, notifications and progress, then the response); each is handed on as it arrives.
``Mcp-Session-Id`` and ``Mcp-Protocol-Version`` are kept from ``initialize``; a stateful
server's standing ``GET`` stream is followed (:meth:`Upstream.listen`); the session is
ended with ``DELETE`` (:meth:`Upstream.close`).

Unlike the MCP SDK's client transport, a failure ends only the message it concerns:
:meth:`Upstream.post` raises (an :class:`UpstreamError`, an AAuth error, an httpx error) and
the proxy turns that into the host's JSON-RPC error, keeping the session for the next one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping

import httpx

from .wire import (
    HTTP_ERROR,
    MAX_MESSAGE_BYTES,
    SESSION_ENDED,
    Json,
    Message,
    Request,
    Response,
    SSEDecoder,
    SSEError,
    WireError,
    parse_message,
    serialize,
)

log = logging.getLogger("aauth_agents.integrations.mcp_proxy")

MCP_SESSION_ID = "mcp-session-id"
MCP_PROTOCOL_VERSION = "mcp-protocol-version"
JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"
#: How much of an HTTP error's body is read to say what went wrong.
ERROR_BODY_BYTES = 16 * 1024
#: The standing GET stream: attempts in a row that fail before the proxy stops reopening it.
LISTEN_ATTEMPTS = 3

Deliver = Callable[[Message], Awaitable[None]]


class UpstreamError(Exception):
    """The MCP server's answer to one message was not a JSON-RPC answer: an HTTP error
    status, an unexpected content type, an invalid message. ``code`` is the JSON-RPC error
    code for the host, ``data`` its ``error.data``."""

    def __init__(self, code: int, message: str, data: Json | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class Upstream:
    """One MCP endpoint (``url``) reached through ``client`` (its ``auth`` an ``AAuth``).

    ``deliver`` receives every message the server sends, in order per stream;
    ``max_message_bytes`` bounds each; ``read_timeout`` is how long a response stream may
    stay silent (the standing GET stream may stay silent for ever)."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        deliver: Deliver,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        read_timeout: float = 300.0,
    ) -> None:
        self.url = url
        self.client = client
        self.deliver = deliver
        self.max_message_bytes = max_message_bytes
        self.read_timeout = read_timeout
        self.session_id: str | None = None
        self.protocol_version: str | None = None

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"accept": accept}
        if self.session_id is not None:
            headers[MCP_SESSION_ID] = self.session_id
        if self.protocol_version is not None:
            headers[MCP_PROTOCOL_VERSION] = self.protocol_version
        return headers

    def _timeout(self, read: float | None) -> httpx.Timeout:
        base = self.client.timeout
        return httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)

    # -- one message ----------------------------------------------------------------------

    async def post(self, message: Message) -> None:
        """POST ``message`` and deliver what the server answers. For a request, returns once
        its response was delivered or the server stopped sending; raises when the server
        could not be reached, refused the request, or AAuth ended it."""
        initialize = isinstance(message, Request) and message.method == "initialize"
        if initialize:  # a new session (the host connected again)
            self.session_id = self.protocol_version = None
        headers = self._headers(f"{JSON_TYPE}, {SSE_TYPE}")
        headers["content-type"] = JSON_TYPE
        request = self.client.build_request(
            "POST",
            self.url,
            content=serialize(message.raw)[:-1],
            headers=headers,
            timeout=self._timeout(self.read_timeout),
        )
        response = await self.client.send(request, stream=True)
        try:
            await self._answer(message, response, initialize)
        finally:
            await response.aclose()

    async def _answer(self, message: Message, response: httpx.Response, initialize: bool) -> None:
        status = response.status_code
        if status == 404 and self.session_id is not None:
            self.session_id = self.protocol_version = None
            raise UpstreamError(
                SESSION_ENDED,
                "the MCP server ended the session (HTTP 404); connect to the server again",
                {"status": 404},
            )
        if not 200 <= status < 300:
            raise UpstreamError(HTTP_ERROR, await _http_error(response), {"status": status})
        if initialize:
            self.session_id = response.headers.get(MCP_SESSION_ID) or None
        if not isinstance(message, Request) or status == 202:
            return  # a notification or a response: accepted, nothing comes back
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        read = _READERS.get(content_type)
        if read is None:
            raise UpstreamError(
                HTTP_ERROR,
                "the MCP server answered with content type "
                f"{content_type or 'none'!r}, not JSON or an event stream",
                {"status": status},
            )
        await read(self, response, message)

    async def _single(self, response: httpx.Response, message: Message | None) -> None:
        """Deliver the one JSON-RPC message of a JSON body."""
        body = await _read_bounded(response, self.max_message_bytes)
        try:
            answer = parse_message(body, max_bytes=self.max_message_bytes)
        except WireError as exc:
            raise UpstreamError(
                HTTP_ERROR,
                f"the MCP server answered with an invalid JSON-RPC message: {exc.message}",
                {"status": response.status_code},
            ) from None
        await self._deliver(answer, message)

    async def _deliver(self, answer: Message, message: Message | None) -> bool:
        """Hand on ``answer``; True when it is the response to ``message``."""
        if (
            isinstance(message, Request)
            and message.method == "initialize"
            and isinstance(answer, Response)
            and answer.id == message.id
        ):
            version = answer.result.get("protocolVersion")
            self.protocol_version = version if isinstance(version, str) and version else None
        await self.deliver(answer)
        return (
            isinstance(message, Request)
            and isinstance(answer, Response)
            and answer.id == message.id
            and type(answer.id) is type(message.id)
        )

    async def _stream(self, response: httpx.Response, message: Message | None) -> int:
        """Deliver the messages of an event stream until it ends (or, for a request, until
        its response arrived); returns how many were delivered."""
        decoder = SSEDecoder(self.max_message_bytes)
        delivered = 0
        async for chunk in response.aiter_bytes():
            for event in decoder.feed(chunk):
                if event.event != "message" or not event.data:
                    continue  # other event types; a priming event (an id, no data)
                try:
                    answer = parse_message(event.data, max_bytes=self.max_message_bytes)
                except WireError as exc:
                    log.warning("the MCP server sent an invalid message (ignored): %s", exc.message)
                    continue
                delivered += 1
                if await self._deliver(answer, message):
                    return delivered
        decoder.finish()
        return delivered

    # -- the standing GET stream --------------------------------------------------------

    async def listen(self) -> None:
        """Follow the session's standing ``GET`` stream (the server's requests and
        notifications outside any request) until the session ends, the server says it has
        none (405), or :data:`LISTEN_ATTEMPTS` attempts in a row failed."""
        failures = 0
        while self.session_id is not None and failures < LISTEN_ATTEMPTS:
            delivered = False
            try:
                request = self.client.build_request(
                    "GET", self.url, headers=self._headers(SSE_TYPE), timeout=self._timeout(None)
                )
                response = await self.client.send(request, stream=True)
                try:
                    if response.status_code == 405:
                        log.info("the MCP server has no standing GET stream")
                        return
                    if response.status_code != 200 or not response.headers.get(
                        "content-type", ""
                    ).lower().startswith(SSE_TYPE):
                        raise UpstreamError(HTTP_ERROR, await _http_error(response))
                    delivered = await self._stream(response, None) > 0
                finally:
                    await response.aclose()
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, UpstreamError, SSEError) as exc:
                log.info("the standing GET stream failed: %s", _describe(exc))
                failures += 1
            except Exception as exc:  # an AAuth error: the agent may not listen
                log.warning("the standing GET stream failed: %s", _describe(exc))
                failures += 1
            else:
                failures = 0 if delivered else failures + 1
            if self.session_id is not None and failures < LISTEN_ATTEMPTS:
                await asyncio.sleep(float(failures or 1))

    async def close(self, timeout: float = 2.0) -> None:
        """End the session (``DELETE``), if the server gave one; failures are logged."""
        if self.session_id is None:
            return
        try:
            request = self.client.build_request(
                "DELETE", self.url, headers=self._headers(JSON_TYPE), timeout=httpx.Timeout(timeout)
            )
            response = await asyncio.wait_for(self.client.send(request), timeout)
            if response.status_code not in (200, 202, 204, 405):
                log.info("ending the MCP session: HTTP %s", response.status_code)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("ending the MCP session failed: %s", _describe(exc))
        finally:
            self.session_id = self.protocol_version = None


#: How a response's content type is read: its messages delivered as they arrive.
_READERS: Mapping[str, Callable[[Upstream, httpx.Response, Message | None], Awaitable[object]]] = {
    JSON_TYPE: Upstream._single,
    SSE_TYPE: Upstream._stream,
}


async def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise UpstreamError(
                HTTP_ERROR,
                f"the MCP server's message is larger than {limit} bytes",
                {"status": response.status_code},
            )
    return bytes(body)


async def _http_error(response: httpx.Response) -> str:
    """What an HTTP error response says: a JSON-RPC error's message, a problem's detail,
    else the start of the text (read at most :data:`ERROR_BODY_BYTES`)."""
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= ERROR_BODY_BYTES:
                break
    except httpx.HTTPError:
        pass
    what = f"the MCP server answered HTTP {response.status_code}"
    reason = response.reason_phrase
    if reason:
        what += f" {reason}"
    text = bytes(body[:ERROR_BODY_BYTES]).decode("utf-8", errors="replace").strip()
    detail = None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        error = value.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            detail = error["message"]
        elif isinstance(value.get("detail"), str):
            detail = value["detail"]
        elif isinstance(error, str):
            detail = error
    elif text and "<" not in text[:1]:
        detail = text.splitlines()[0][:200]
    return f"{what}: {detail}" if detail else what


def _describe(exc: BaseException) -> str:
    """For a log line: an AAuth error's ``detail`` (its ``str()`` may name the person's
    page and code), any other's message."""
    text = str(getattr(exc, "detail", None) or exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["Deliver", "Upstream", "UpstreamError"]
