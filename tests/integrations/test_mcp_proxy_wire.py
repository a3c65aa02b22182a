"""The MCP proxy's sans-I/O parsers: JSON-RPC messages, stdin lines, server-sent events.

Each returns a value or raises its one typed error, whatever the input (hypothesis); what it
accepts it reads as the specifications say (JSON-RPC 2.0 as MCP uses it; the WHATWG
event-stream rules), however the input is cut into chunks."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aauth_agents.integrations.mcp_proxy.wire import (
    INVALID_REQUEST,
    OVERSIZE,
    PARSE_ERROR,
    LineFramer,
    Notification,
    Request,
    Response,
    ServerSentEvent,
    SSEDecoder,
    SSEError,
    WireError,
    error_response,
    id_key,
    parse_message,
    serialize,
)

# -- JSON-RPC messages ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
objects = st.dictionaries(st.text(), json_values, max_size=4)
ids = st.integers() | st.text()


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["request", "notification", "result", "error"]))
    message: dict[str, Any] = {"jsonrpc": "2.0"}
    if kind in ("request", "notification"):
        message["method"] = draw(st.text(min_size=1))
        if draw(st.booleans()):
            message["params"] = draw(objects)
        if kind == "request":
            message["id"] = draw(ids)
    elif kind == "result":
        message["id"] = draw(ids)
        message["result"] = draw(objects)
    else:
        message["id"] = draw(ids | st.none())
        message["error"] = {"code": draw(st.integers()), "message": draw(st.text())}
        if draw(st.booleans()):
            message["error"]["data"] = draw(json_values)
    return message


@given(messages())
def test_every_valid_message_is_read_as_what_it_is(message: dict[str, Any]) -> None:
    line = serialize(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # one line, whatever the strings
    parsed = parse_message(line[:-1])
    assert parsed.raw == message  # kept as it arrived: forwarded unchanged
    if "method" in message:
        if "id" in message:
            assert isinstance(parsed, Request)
            assert (parsed.id, parsed.method) == (message["id"], message["method"])
        else:
            assert isinstance(parsed, Notification) and parsed.method == message["method"]
        assert parsed.params == message.get("params", {})
    else:
        assert isinstance(parsed, Response)
        assert parsed.id == message["id"] and parsed.is_error == ("error" in message)


@given(st.binary(max_size=300))
def test_any_bytes_give_a_message_or_a_wire_error(data: bytes) -> None:
    try:
        parsed = parse_message(data)
    except WireError as exc:
        assert exc.code in (PARSE_ERROR, INVALID_REQUEST)
        response = exc.response()
        assert response["error"]["code"] == exc.code and response["id"] == exc.id
        json.dumps(response)
    else:
        assert isinstance(parsed, (Request, Notification, Response))


@given(json_values)
def test_any_json_gives_a_message_or_an_invalid_request(value: Any) -> None:
    try:
        parse_message(json.dumps(value))
    except WireError as exc:
        assert exc.code == INVALID_REQUEST


@given(objects, ids)
def test_a_broken_request_is_answered_with_its_id(params: dict[str, Any], id: Any) -> None:
    # params of the wrong type: the error names the request, so its sender can match it
    with pytest.raises(WireError) as raised:
        parse_message(json.dumps({"jsonrpc": "2.0", "id": id, "method": "m", "params": [1]}))
    assert (raised.value.id, raised.value.reply, raised.value.code) == (id, True, INVALID_REQUEST)


@pytest.mark.parametrize(
    ("text", "code", "id", "reply"),
    [
        ("not json", PARSE_ERROR, None, True),
        ('{"jsonrpc": "2.0", "id": 1, "method": "x"', PARSE_ERROR, None, True),
        ('{"jsonrpc": "2.0", "id": NaN, "method": "x"}', PARSE_ERROR, None, True),
        ("[" * 100_000, PARSE_ERROR, None, True),
        ('[{"jsonrpc": "2.0", "id": 1, "method": "x"}]', INVALID_REQUEST, None, True),
        ("42", INVALID_REQUEST, None, True),
        ("{}", INVALID_REQUEST, None, True),
        ('{"jsonrpc": "2.0", "id": 7}', INVALID_REQUEST, 7, True),
        ('{"jsonrpc": "1.0", "id": 7, "method": "x"}', INVALID_REQUEST, 7, True),
        ('{"id": "a", "method": "x"}', INVALID_REQUEST, "a", True),
        ('{"jsonrpc": "2.0", "id": true, "method": "x"}', INVALID_REQUEST, None, True),
        ('{"jsonrpc": "2.0", "id": 1.5, "method": "x"}', INVALID_REQUEST, None, True),
        ('{"jsonrpc": "2.0", "id": null, "method": "x"}', INVALID_REQUEST, None, True),
        ('{"jsonrpc": "2.0", "id": 3, "method": ""}', INVALID_REQUEST, 3, True),
        ('{"jsonrpc": "2.0", "id": 3, "method": "x", "result": {}}', INVALID_REQUEST, 3, True),
        # a broken notification or response: nobody to answer
        ('{"jsonrpc": "2.0", "method": "x", "params": 1}', INVALID_REQUEST, None, False),
        ('{"jsonrpc": "2.0", "id": 4, "result": 1}', INVALID_REQUEST, 4, False),
        ('{"jsonrpc": "2.0", "id": 4, "result": {}, "error": {}}', INVALID_REQUEST, 4, False),
        ('{"jsonrpc": "2.0", "result": {}}', INVALID_REQUEST, None, False),
        (
            '{"jsonrpc": "2.0", "id": 4, "error": {"code": "x", "message": ""}}',
            INVALID_REQUEST,
            4,
            False,
        ),
        ('{"jsonrpc": "2.0", "id": 4, "error": {"code": 1}}', INVALID_REQUEST, 4, False),
    ],
)
def test_what_is_refused_and_who_is_told(text: str, code: int, id: Any, reply: bool) -> None:
    with pytest.raises(WireError) as raised:
        parse_message(text)
    assert (raised.value.code, raised.value.id, raised.value.reply) == (code, id, reply)


def test_not_utf8_and_too_large_are_parse_errors() -> None:
    with pytest.raises(WireError, match="not UTF-8") as raised:
        parse_message(b'{"jsonrpc": "2.0", "method": "\xff"}')
    assert raised.value.code == PARSE_ERROR
    with pytest.raises(WireError, match="larger than 10 bytes"):
        parse_message(b'{"jsonrpc": "2.0"}', max_bytes=10)


def test_an_error_response_may_have_a_null_id() -> None:
    parsed = parse_message(json.dumps(error_response(None, PARSE_ERROR, "bad")))
    assert isinstance(parsed, Response) and parsed.id is None and parsed.is_error


def test_ids_one_and_string_one_are_different_requests() -> None:
    assert id_key(1) != id_key("1")
    assert id_key(1) == id_key(1)


def test_serialized_strings_keep_their_line_breaks_escaped() -> None:
    line = serialize({"jsonrpc": "2.0", "method": "m", "params": {"t": "a\nb\r\u2028c"}})
    assert line.count(b"\n") == 1
    assert json.loads(line)["params"]["t"] == "a\nb\r\u2028c"


# -- stdin lines ---------------------------------------------------------------------------------


def _frame(chunks: list[bytes], max_bytes: int) -> list[Any]:
    framer = LineFramer(max_bytes)
    out: list[Any] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out + framer.finish()


def _expected(data: bytes, max_bytes: int) -> list[Any]:
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out: list[Any] = []
    for line in lines:
        line = line[:-1] if line.endswith(b"\r") else line
        out.append(OVERSIZE if len(line) > max_bytes else line)
    return out


@st.composite
def chunked(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = draw(
        st.binary(max_size=200)
        | st.lists(
            st.sampled_from([b"\n", b"\r", b"\r\n", b"x", b"{}", b"abc" * 5]), max_size=30
        ).map(b"".join)
    )
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    bounds = [0, *cuts, len(data)]
    return data, [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(chunked(), st.integers(1, 20))
def test_lines_are_the_same_however_the_stream_is_cut(
    case: tuple[bytes, list[bytes]], max_bytes: int
) -> None:
    data, chunks = case
    assert _frame(chunks, max_bytes) == _frame([data], max_bytes) == _expected(data, max_bytes)


@given(chunked(), st.integers(1, 20))
def test_a_line_never_exceeds_the_limit(case: tuple[bytes, list[bytes]], max_bytes: int) -> None:
    _, chunks = case
    framer = LineFramer(max_bytes)
    for chunk in chunks:
        for line in framer.feed(chunk):
            assert line is OVERSIZE or len(line) <= max_bytes  # type: ignore[arg-type]
        assert len(framer._buffer) <= max_bytes + 1  # memory: bounded


def test_an_oversized_line_is_reported_once_and_skipped() -> None:
    framer = LineFramer(4)
    assert framer.feed(b"ab\n123") == [b"ab"]
    assert framer.feed(b"45") == []  # five bytes: the fifth may still be a "\r"
    assert framer.feed(b"6") == [OVERSIZE]
    assert framer.feed(b"6789" * 100) == []  # skipped, not kept
    assert framer.feed(b"0\nok\r\n") == [b"ok"]
    assert framer.finish() == []
    with pytest.raises(ValueError):
        LineFramer(0)


# -- server-sent events ---------------------------------------------------------------------------


field_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00"),
    max_size=20,
)


@st.composite
def event_lists(draw: st.DrawFn) -> list[ServerSentEvent]:
    events = []
    last_id = None
    retry = None
    for _ in range(draw(st.integers(0, 5))):
        data = draw(st.lists(field_text, min_size=1, max_size=3).map("\n".join))
        if draw(st.booleans()):
            last_id = draw(field_text)
        if draw(st.booleans()):
            retry = draw(st.integers(0, 10**6))
        event = draw(st.sampled_from(["message", "ping", "endpoint"]))
        events.append(ServerSentEvent(event, data, last_id, retry))
    return events


def _encode(events: list[ServerSentEvent], newline: bytes, comments: bool) -> bytes:
    out = []
    previous_id: str | None = None
    previous_retry: int | None = None
    for event in events:
        if comments:
            out.append(b": keep-alive")
        if event.event != "message":
            out.append(b"event: " + event.event.encode())
        if event.id != previous_id and event.id is not None:
            out.append(b"id: " + event.id.encode())
            previous_id = event.id
        if event.retry != previous_retry and event.retry is not None:
            out.append(b"retry: " + str(event.retry).encode())
            previous_retry = event.retry
        for line in event.data.split("\n"):
            out.append(b"data: " + line.encode())
        out.append(b"")
    return b"".join(line + newline for line in out)


def _decode(chunks: list[bytes], max_bytes: int = 10_000) -> list[ServerSentEvent]:
    decoder = SSEDecoder(max_bytes)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.finish()


@settings(max_examples=200)
@given(event_lists(), st.sampled_from([b"\n", b"\r\n", b"\r"]), st.booleans(), st.data())
def test_events_come_back_as_sent_however_the_stream_is_cut(
    events: list[ServerSentEvent], newline: bytes, comments: bool, data: st.DataObject
) -> None:
    stream = _encode(events, newline, comments)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    assert _decode(chunks) == events
    assert _decode([stream]) == events
    assert _decode([bytes([byte]) for byte in stream]) == events


@given(st.binary(max_size=400), st.integers(1, 64))
def test_any_bytes_give_events_or_an_sse_error(data: bytes, max_bytes: int) -> None:
    try:
        events = _decode([data], max_bytes)
    except SSEError:
        return
    for event in events:
        assert isinstance(event, ServerSentEvent)
        assert len(event.data.encode("utf-8")) <= max_bytes * 3  # replacement characters


def test_the_whatwg_details() -> None:
    stream = (
        b"\xef\xbb\xbfdata: first\n\n"  # a BOM, dropped
        b"data\n\n"  # a field without a colon: empty data, still an event
        b"event: only-a-type\n\n"  # no data: not dispatched
        b"data:no-space\ndata:  two spaces\n\n"
        b"id: 7\x00\ndata: x\n\n"  # an id with NUL is ignored
        b"retry: soon\nretry: 250\nunknown: field\ndata: y\n\n"
        b"data: unfinished"  # discarded at the end of the stream
    )
    assert _decode([stream]) == [
        ServerSentEvent("message", "first"),
        ServerSentEvent("message", ""),
        ServerSentEvent("message", "no-space\n two spaces"),
        ServerSentEvent("message", "x"),
        ServerSentEvent("message", "y", None, 250),
    ]


def test_lines_and_events_are_bounded() -> None:
    with pytest.raises(SSEError, match="line is longer"):
        _decode([b"data: " + b"x" * 20], max_bytes=16)
    with pytest.raises(SSEError, match="data is longer"):
        _decode([b"data: 12345678\n" * 3], max_bytes=16)
    decoder = SSEDecoder(16)
    with pytest.raises(SSEError):  # never buffers more than the limit, even in pieces
        for _ in range(10):
            decoder.feed(b"x" * 5)
    with pytest.raises(ValueError):
        SSEDecoder(0)
