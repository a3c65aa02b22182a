"""The edge of ``aauth-agents serve`` (issue 15), against real ``serve ps`` processes on
127.0.0.1: idle, half-sent requests from one client neither exhaust the server nor keep their
connections; a slow body, an oversized head and an oversized body are refused with problem+json
(408, 431, 413) that the client reads, not a reset or a plain-text 400.

The flood comes from 127.0.0.2 (all of 127/8 is loopback), the well-behaved client from
127.0.0.1: the per-address connection cap tells them apart as it would two machines."""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.cli import serve

from aauth_agents.transport import MappedTransport

PS = "https://ps.example"
FLOOD = 1200
PARTIAL = b"GET /.well-known/aauth-person.json HTTP/1.1\r\nHost: ps.exa"


def _get(url: str, path: str, **kw: object) -> httpx.Response:
    with httpx.Client(transport=MappedTransport({PS: url}, strict=True), timeout=15) as client:
        return client.get(PS + path, **kw)  # type: ignore[arg-type]


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _half_sent(url: str, count: int, source: str = "127.0.0.2") -> list[socket.socket]:
    """``count`` connections from ``source``, each with part of a request line sent."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.settimeout(10)
        sock.connect(_address(url))
        try:
            sock.sendall(PARTIAL)
        except OSError:  # closed at once (over a cap): that is a closed connection too
            pass
        sockets.append(sock)
    return sockets


def _read_until_closed(sockets: list[socket.socket], bound: float) -> dict[socket.socket, bytes]:
    """What each socket received up to its end of stream (or reset), waiting at most
    ``bound`` seconds in all; the sockets still open then are missing from the result."""
    selector = selectors.DefaultSelector()
    received: dict[socket.socket, bytes] = {}
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        received[sock] = b""
    closed: dict[socket.socket, bytes] = {}
    deadline = time.monotonic() + bound
    while len(closed) < len(sockets) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:  # reset: closed
                data = b""
            if data:
                received[sock] += data
            else:
                selector.unregister(sock)
                closed[sock] = received[sock]
    selector.close()
    return closed


def _problem(raw: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body)


@pytest.fixture
def close_all() -> Iterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def test_idle_half_sent_requests_neither_block_nor_stay(
    tmp_path: Path, close_all: list[socket.socket]
) -> None:
    """Twelve hundred half-sent requests from one address (the process has the usual 1024 open
    files): a request from another address is still answered, and every idle connection is
    closed -- those over the per-address cap at once, the others at the head deadline, with a
    408 problem+json."""
    args = ["--issuer", PS, "--port", "0", "--header-timeout", "2"]
    with serve("ps", args, tmp_path, open_files=1024) as (url, _):
        flood = _half_sent(url, FLOOD)
        close_all.extend(flood)
        metadata = _get(url, "/.well-known/aauth-person.json")
        assert metadata.status_code == 200
        assert metadata.json()["issuer"] == PS
        closed = _read_until_closed(flood, bound=60)
        assert len(closed) == FLOOD, f"{FLOOD - len(closed)} idle connections still open"
        timed_out = [_problem(raw) for raw in closed.values() if raw]
        assert timed_out, "no connection was held until the head deadline"
        for status, headers, body in timed_out:
            assert status == 408 and headers["content-type"] == "application/problem+json"
            assert body["error"] == "invalid_request"
        assert _get(url, "/.well-known/aauth-person.json").status_code == 200


def test_a_body_that_does_not_arrive_gets_408(
    tmp_path: Path, close_all: list[socket.socket]
) -> None:
    with serve("ps", ["--issuer", PS, "--port", "0", "--body-timeout", "1"], tmp_path) as (url, _):
        sock = socket.create_connection(_address(url), timeout=30)
        close_all.append(sock)
        sock.sendall(
            b"POST /token HTTP/1.1\r\nHost: ps.example\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"agent'
        )
        closed = _read_until_closed([sock], bound=60)
        assert sock in closed, "the connection stayed open"
        status, headers, body = _problem(closed[sock])
        assert status == 408 and headers["content-type"] == "application/problem+json"
        assert body["error"] == "invalid_request"


def test_an_oversized_head_gets_431_problem_json(
    tmp_path: Path, close_all: list[socket.socket]
) -> None:
    """64 KiB of header fields, sent at once (read in one piece) and a little at a time (read
    in many): 431 problem+json both ways, read by the client rather than reset."""
    with serve("ps", ["--issuer", PS, "--port", "0"], tmp_path) as (url, _):
        padding = "a" * 64 * 1024
        response = _get(url, "/.well-known/aauth-person.json", headers={"X-Padding": padding})
        assert response.status_code == 431
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] == "invalid_request"

        sock = socket.create_connection(_address(url), timeout=30)
        close_all.append(sock)
        head = b"GET / HTTP/1.1\r\nHost: ps.example\r\nX-Padding: " + padding.encode()
        for start in range(0, len(head), 4096):
            try:
                sock.sendall(head[start : start + 4096])
            except OSError:
                break  # refused part-way: the answer is waiting to be read
            time.sleep(0.002)
        closed = _read_until_closed([sock], bound=60)
        assert sock in closed
        status, headers, body = _problem(closed[sock])
        assert status == 431 and headers["content-type"] == "application/problem+json"
        assert body["error"] == "invalid_request"


def test_an_oversized_body_gets_413_problem_json(tmp_path: Path) -> None:
    """Read by the client in full: the rest of the body is drained, not reset."""
    with serve("ps", ["--issuer", PS, "--port", "0"], tmp_path) as (url, _):
        with httpx.Client(transport=MappedTransport({PS: url}, strict=True), timeout=30) as client:
            big = b"x" * (4 * 1024 * 1024)
            responses = [
                client.post(
                    PS + "/token", content=big, headers={"Content-Type": "application/json"}
                )
                for _ in range(2)
            ]
    for response in responses:
        assert response.status_code == 413, response.text[:200]
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] == "invalid_request"
