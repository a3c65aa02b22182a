"""The stdio MCP proxy's wire formats, sans-I/O: no sockets, no threads, no clock.

* JSON-RPC 2.0 messages as MCP carries them (:func:`parse_message`): a request, a
  notification or a response, kept as the JSON object that arrived so that it is forwarded
  unchanged, or a :class:`WireError` with the JSON-RPC error code and, when the message was
  a request whose ``id`` could be read, that ``id`` (so the sender gets its error).
* Newline-delimited framing, as the MCP stdio transport uses (:class:`LineFramer`): lines of
  at most ``max_bytes``; a longer line is reported once (:data:`OVERSIZE`) and skipped.
* Server-sent events (:class:`SSEDecoder`), as a streamable HTTP MCP server answers: the
  WHATWG ``text/event-stream`` rules, with every line and event bounded.

Every parser returns a value or raises its one typed error (:class:`WireError`,
:class:`SSEError`); the property tests in ``tests/integrations/test_mcp_proxy_wire.py``
hold them to that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

#: The largest JSON-RPC message the proxy reads or forwards, either way (a tool result may
#: carry an image or a file; more than this is refused, never buffered).
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024

# -- JSON-RPC error codes ------------------------------------------------------------------------

#: JSON-RPC 2.0: the input is not JSON (or not UTF-8, or too large to read).
PARSE_ERROR: Final = -32700
#: JSON-RPC 2.0: JSON, but not a valid JSON-RPC message (or a batch, which MCP dropped).
INVALID_REQUEST: Final = -32600
#: JSON-RPC 2.0: the proxy itself failed (logged on stderr).
INTERNAL_ERROR: Final = -32603
#: The MCP server could not be reached, did not answer in time, or went away before it
#: answered (the code the MCP SDK uses for a closed connection).
SERVER_UNREACHABLE: Final = -32000
#: AAuth ended the request: the person declined, the request expired or was withdrawn, the
#: agent's key or tokens were refused... ``data.aauth_error`` is the AAuth error code.
AAUTH_ERROR: Final = -32030
#: The MCP server answered with an HTTP error status; ``data.status`` is the status.
HTTP_ERROR: Final = -32031
#: Too many of the host's requests are in flight at once; try again when some are answered.
PROXY_BUSY: Final = -32032
#: The MCP server ended the session (HTTP 404 for its ``Mcp-Session-Id``): the host must
#: connect again (``initialize``).
SESSION_ENDED: Final = -32033

RequestId: TypeAlias = "str | int"
Json: TypeAlias = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """A JSON-RPC request: ``id``, ``method`` and the whole object as it arrived (``raw``)."""

    id: str | int
    method: str
    raw: Json = field(repr=False, compare=False)

    @property
    def params(self) -> Json:
        params = self.raw.get("params")
        return params if isinstance(params, dict) else {}


@dataclass(frozen=True)
class Notification:
    """A JSON-RPC notification (no ``id``)."""

    method: str
    raw: Json = field(repr=False, compare=False)

    @property
    def params(self) -> Json:
        params = self.raw.get("params")
        return params if isinstance(params, dict) else {}


@dataclass(frozen=True)
class Response:
    """A JSON-RPC response: a ``result``, or an ``error`` (``is_error``). ``id`` is ``None``
    only for an error about a message whose id could not be read."""

    id: str | int | None
    is_error: bool
    raw: Json = field(repr=False, compare=False)

    @property
    def result(self) -> Json:
        result = self.raw.get("result")
        return result if isinstance(result, dict) else {}


Message: TypeAlias = Request | Notification | Response


class WireError(Exception):
    """A message that is not valid JSON-RPC: its error ``code`` (:data:`PARSE_ERROR` or
    :data:`INVALID_REQUEST`), a ``message`` saying why, the request ``id`` when one could be
    read, and ``reply``: whether JSON-RPC asks for an error response (not for a broken
    notification or response, which have no one to answer)."""

    def __init__(
        self, code: int, message: str, *, id: str | int | None = None, reply: bool = True
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.id = id
        self.reply = reply

    def response(self) -> Json:
        """The JSON-RPC error response for the sender."""
        return error_response(self.id, self.code, self.message)


def error_response(id: str | int | None, code: int, message: str, data: Any = None) -> Json:
    """``{"jsonrpc": "2.0", "id": id, "error": {"code", "message"[, "data"]}}``."""
    error: Json = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": id, "error": error}


def id_key(id: str | int) -> tuple[str, str | int]:
    """A dictionary key for a request id: ``1`` and ``"1"`` are different requests."""
    return (type(id).__name__, id)


def _is_id(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_message(data: bytes | str, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """One JSON-RPC 2.0 message (one line of MCP's stdio transport, one server-sent event's
    data, one JSON response body), checked as MCP uses JSON-RPC: ``id`` a string or an
    integer, ``params`` an object, a response with exactly one of ``result`` (an object) and
    ``error`` (``code`` an integer, ``message`` a string). Batches (arrays) are refused: MCP
    no longer has them. Raises :class:`WireError`."""
    if len(data) > max_bytes:
        raise WireError(PARSE_ERROR, f"the message is larger than {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise WireError(PARSE_ERROR, "the message is not UTF-8") from None
    else:
        text = data
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise WireError(PARSE_ERROR, "the message is not JSON") from None
    if isinstance(value, list):
        raise WireError(INVALID_REQUEST, "JSON-RPC batches are not supported by MCP")
    if not isinstance(value, dict):
        raise WireError(INVALID_REQUEST, "a JSON-RPC message is a JSON object")
    return _classify(value)


def _classify(value: Json) -> Message:
    has_id = "id" in value
    raw_id = value.get("id")
    valid_id = raw_id if _is_id(raw_id) else None
    if "method" in value:
        # A request, or a notification when there is no id (which nobody answers).
        def invalid(why: str) -> WireError:
            return WireError(INVALID_REQUEST, why, id=valid_id, reply=has_id)

        if value.get("jsonrpc") != "2.0":
            raise invalid('"jsonrpc" must be "2.0"')
        method = value["method"]
        if not isinstance(method, str) or not method:
            raise invalid('"method" must be a non-empty string')
        if has_id and valid_id is None:
            raise invalid('"id" must be a string or an integer')
        if "params" in value and not isinstance(value["params"], dict):
            raise invalid('"params" must be an object')
        if "result" in value or "error" in value:
            raise invalid("a request has no result or error")
        if has_id:
            assert valid_id is not None
            return Request(valid_id, method, value)
        return Notification(method, value)
    if "result" in value or "error" in value:
        # A response: nobody answers a broken one (the sender is told on its own side).
        def broken(why: str) -> WireError:
            return WireError(INVALID_REQUEST, why, id=valid_id, reply=False)

        if value.get("jsonrpc") != "2.0":
            raise broken('"jsonrpc" must be "2.0"')
        if "result" in value and "error" in value:
            raise broken("a response has a result or an error, not both")
        if "result" in value:
            if valid_id is None:
                raise broken('a result needs an "id" that is a string or an integer')
            if not isinstance(value["result"], dict):
                raise broken('"result" must be an object')
            return Response(valid_id, False, value)
        if raw_id is not None and valid_id is None:
            raise broken('"id" must be a string, an integer or null')
        error = value["error"]
        if not isinstance(error, dict):
            raise broken('"error" must be an object')
        code = error.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            raise broken('"error.code" must be an integer')
        if not isinstance(error.get("message"), str):
            raise broken('"error.message" must be a string')
        return Response(valid_id, True, value)
    raise WireError(
        INVALID_REQUEST, "not a JSON-RPC request, notification or response", id=valid_id
    )


def serialize(message: Json) -> bytes:
    """One message as a line of MCP's stdio transport (compact UTF-8 JSON and ``\\n``; JSON
    escapes every line break inside strings)."""
    return (
        json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
            "utf-8"
        )
        + b"\n"
    )


# -- lines ---------------------------------------------------------------------------------------


class _Oversize:
    def __repr__(self) -> str:
        return "OVERSIZE"


#: What :class:`LineFramer` returns in place of a line longer than its limit.
OVERSIZE: Final = _Oversize()


class LineFramer:
    """Split a byte stream into ``\\n``-terminated lines (a trailing ``\\r`` is dropped), each
    at most ``max_bytes`` long. A longer line is not kept: it is reported once, as
    :data:`OVERSIZE`, and its bytes are skipped up to the next ``\\n``. Memory is bounded by
    ``max_bytes`` plus one chunk."""

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes | _Oversize]:
        """The lines completed by ``data``."""
        out: list[bytes | _Oversize] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if not self._take(data[start:] if end < 0 else data[start:end]):
                out.append(OVERSIZE)
            if end < 0:
                return out
            if self._skipping:
                self._skipping = False
            else:
                out.append(self._line())
            start = end + 1

    def _take(self, piece: bytes) -> bool:
        """Keep ``piece`` of the current line; False when the line just became too long."""
        if self._skipping:
            return True
        if len(self._buffer) + len(piece) > self.max_bytes + 1:  # + a "\r" to be dropped
            self._buffer.clear()
            self._skipping = True
            return False
        self._buffer += piece
        return True

    def _line(self) -> bytes | _Oversize:
        line = bytes(self._buffer)
        self._buffer.clear()
        if line.endswith(b"\r"):
            line = line[:-1]
        return OVERSIZE if len(line) > self.max_bytes else line

    def finish(self) -> list[bytes | _Oversize]:
        """At the end of the stream: the last line if it had no ``\\n``."""
        skipping, self._skipping = self._skipping, False
        if skipping or not self._buffer:
            self._buffer.clear()
            return []
        return [self._line()]


# -- server-sent events ----------------------------------------------------------------------------


class SSEError(Exception):
    """A ``text/event-stream`` the decoder refuses: a line or an event over its limit."""


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its type (``message`` unless the stream named another), its
    data, the stream's last event id and the last ``retry`` (milliseconds) it set."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """The WHATWG event-stream interpretation, incrementally: :meth:`feed` bytes as they
    arrive, receive the events they complete. Lines end with CRLF, LF or CR; a leading BOM
    is dropped; comments (``:``) and unknown fields are ignored; an event without data is
    not dispatched; an unfinished event at the end of the stream is discarded
    (:meth:`finish`). Every line and every event's data is at most ``max_bytes`` bytes
    (:class:`SSEError` past it). Invalid UTF-8 is replaced, as the standard says."""

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._line = bytearray()
        self._after_cr = False  # the last byte seen was a CR (an LF next is its partner)
        self._started = False  # the BOM check is done
        self._event = ""
        self._data: list[str] = []
        self._data_size = 0
        self.last_event_id: str | None = None
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        index = 0
        size = len(chunk)
        while index < size:
            if self._after_cr:
                self._after_cr = False
                if chunk[index] == 0x0A:  # CRLF: the line already ended at the CR
                    index += 1
                    continue
            cr = chunk.find(b"\r", index)
            lf = chunk.find(b"\n", index)
            ends = [position for position in (cr, lf) if position >= 0]
            end = min(ends) if ends else -1
            if end < 0:
                self._grow(chunk[index:])
                break
            self._grow(chunk[index:end])
            if chunk[end] == 0x0D:
                self._after_cr = True
            index = end + 1
            line = bytes(self._line)
            self._line.clear()
            event = self._process(line)
            if event is not None:
                events.append(event)
        return events

    def finish(self) -> list[ServerSentEvent]:
        """The end of the stream: an event not ended by a blank line is discarded."""
        self._line.clear()
        self._event, self._data, self._data_size = "", [], 0
        return []

    def _grow(self, piece: bytes) -> None:
        if len(self._line) + len(piece) > self.max_bytes:
            raise SSEError(f"an event-stream line is longer than {self.max_bytes} bytes")
        self._line += piece

    def _process(self, raw: bytes) -> ServerSentEvent | None:
        if not self._started:
            self._started = True
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        line = raw.decode("utf-8", errors="replace")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data_size += len(value.encode("utf-8")) + 1
            if self._data_size > self.max_bytes + 1:
                raise SSEError(f"an event's data is longer than {self.max_bytes} bytes")
            self._data.append(value)
        elif name == "id":
            if "\x00" not in value:
                self.last_event_id = value
        elif name == "retry":
            if value and value.isascii() and value.isdigit():
                self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._event, self._data, self._data_size = "", [], 0
        if not data:
            return None
        return ServerSentEvent(event or "message", "\n".join(data), self.last_event_id, self.retry)


__all__ = [
    "AAUTH_ERROR",
    "HTTP_ERROR",
    "INTERNAL_ERROR",
    "INVALID_REQUEST",
    "MAX_MESSAGE_BYTES",
    "OVERSIZE",
    "PARSE_ERROR",
    "PROXY_BUSY",
    "SERVER_UNREACHABLE",
    "SESSION_ENDED",
    "LineFramer",
    "Message",
    "Notification",
    "Request",
    "RequestId",
    "Response",
    "SSEDecoder",
    "SSEError",
    "ServerSentEvent",
    "WireError",
    "error_response",
    "id_key",
    "parse_message",
    "serialize",
]
