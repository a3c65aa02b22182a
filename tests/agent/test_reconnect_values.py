"""A connection error on a poll comes back into the flow as a value, the same through every
client: :class:`ReconnectingTransport` (httpx sync and async, httpx2 natively and bridged)
and the governance runners. Real connections to a loopback port nobody listens on."""

from __future__ import annotations

import httpx
import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.services import free_port

from aauth_agents.agent import ReconnectingTransport, client_options
from aauth_agents.agent.effects import Runtime, Send, run_async, run_sync
from aauth_agents.agent.reconnect import (
    BACKOFF_CAP,
    FAILURE_STATUS,
    backoff,
    failure_of,
    retryable,
    transient,
)
from aauth_agents.transport_httpx2 import Httpx2Transport


@pytest.fixture
def closed() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    return f"http://127.0.0.1:{free_port()}/pending/1"


def _check(response: object) -> None:
    assert getattr(response, "status_code", None) == FAILURE_STATUS
    error = failure_of(response)
    assert error is not None and transient(error) and "Connect" in type(error).__name__


def test_sync_httpx(closed: str) -> None:
    with httpx.Client(transport=ReconnectingTransport(httpx.HTTPTransport())) as client:
        _check(client.send(retryable(client.build_request("GET", closed))))
        with pytest.raises(httpx.ConnectError):  # not marked: raised as ever
            client.send(client.build_request("POST", closed, content=b"{}"))


async def test_async_httpx_with_the_default_transport(closed: str) -> None:
    async with httpx.AsyncClient(**client_options()) as client:
        _check(await client.send(retryable(client.build_request("GET", closed))))
        with pytest.raises(httpx.ConnectError):
            await client.send(client.build_request("GET", closed))


async def test_httpx2_native_and_bridged(closed: str) -> None:
    for transport in (None, Httpx2Transport(httpx.AsyncHTTPTransport())):
        options = client_options(transport=transport)
        async with httpx2.AsyncClient(**options) as client:
            _check(await client.send(retryable(client.build_request("GET", closed))))
            with pytest.raises((httpx.ConnectError, httpx2.ConnectError)):
                await client.send(client.build_request("GET", closed))


def _poll(url: str):  # type: ignore[no-untyped-def]
    """A flow that polls ``url`` once and returns what came back."""
    response = yield Send(retryable(httpx.Request("GET", url)))
    return response


async def test_the_governance_runners(closed: str) -> None:
    with httpx.Client() as client:  # (a client of the caller's, not built by client_options)
        _check(run_sync(_poll(closed), client, Runtime()))
    async with httpx.AsyncClient() as client:
        _check(await run_async(_poll(closed), client, Runtime()))


def test_a_malformed_url_is_not_transient() -> None:
    assert not transient(httpx.UnsupportedProtocol("ftp"))
    assert not transient(ValueError("x"))
    assert transient(httpx.ReadTimeout("slow")) and transient(httpx2.RemoteProtocolError("cut"))


@given(st.integers(1, 10_000), st.floats(0, 1, exclude_max=True))
def test_backoff_is_exponential_with_jitter_and_capped(failures: int, draw: float) -> None:
    wait = backoff(failures, random=lambda: draw)
    ceiling = min(BACKOFF_CAP, 2.0 ** min(failures - 1, 32))
    assert ceiling / 2 <= wait <= ceiling
