"""``/mcp`` of ``aauth-agents serve resource`` (a real process on 127.0.0.1) reads the JSON-RPC
body only after the request's signature verified, and at most 1 MiB of it (issue 15): a large
body is refused with 413 problem+json without being parsed, however many clients send one; an
unsigned or badly signed body is answered from its headers, whatever the body says.

Whether a body was parsed is seen from outside: an unsigned ``tools/call`` of an auth-token
tool is challenged for the tool's credential only if the body was read, and the server's peak
memory grows by what parsing builds (a few dozen bytes per ``{}``)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from support.cli import serve

from aauth_agents.agent import LocalAgentProvider
from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol import parse_requirement
from aauth_agents.servers import LoopbackServer
from aauth_agents.transport import MappedTransport

RESOURCE = "https://resource.example"
AP = "https://agents.example"
AGENT_ID = "aauth:edge@agents.example"
MCP = RESOURCE + "/mcp"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def _call(tool: str, size: int) -> bytes:
    """A ``tools/call`` of ``tool`` whose arguments are ``size`` bytes of empty objects."""
    filler = ",".join(["{}"] * (size // 3))
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    params = {"name": tool, "arguments": {"name": "x", "content": ["FILLER"]}}
    return json.dumps({**call, "params": params}).replace('"FILLER"', filler).encode()


@pytest.fixture
def resource(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], LocalAgentProvider]]:
    provider = LocalAgentProvider(AP, PrivateKey.generate(kid="ap-1"))
    with LoopbackServer(provider.app()) as ap_server:
        args = ["--issuer", RESOURCE, "--port", "0", "--map", f"{AP}={ap_server.url}"]
        started: list[subprocess.Popen[str]] = []
        with serve("resource", args, tmp_path, started=started) as (url, _):
            yield url, started[0], provider


def _client(url: str) -> httpx.Client:
    return httpx.Client(transport=MappedTransport({RESOURCE: url}, strict=True), timeout=60)


def _peak_memory(process: subprocess.Popen[str]) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_large_mcp_body_is_refused_before_it_is_parsed(
    resource: tuple[str, subprocess.Popen[str], LocalAgentProvider],
) -> None:
    url, process, _ = resource
    body = _call("write_file", 5 * 1024 * 1024)
    with _client(url) as client:
        client.post(MCP, headers=HEADERS, content=_call("write_file", 1024))  # warm up
        before = _peak_memory(process)
        with ThreadPoolExecutor(8) as pool:
            responses = list(
                pool.map(lambda _: client.post(MCP, headers=HEADERS, content=body), range(8))
            )
        grown = _peak_memory(process) - before
    for response in responses:
        assert response.status_code == 413, response.text[:200]
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] == "invalid_request"
    # parsing one such body builds some 100 MB of objects; reading at most 1 MiB of each does not
    assert grown < 48 * 1024 * 1024, f"peak memory grew by {grown / 2**20:.0f} MiB"


def _signed(provider: LocalAgentProvider, body: bytes, key: PrivateKey | None = None) -> dict:
    identity = provider.identity(PrivateKey.generate(), AGENT_ID)
    request = HttpRequest("POST", MCP, list(HEADERS.items()), body)
    signed = sign_request(
        request,
        key=key or identity.key,
        signature_key=SignatureKey.from_jwt(identity.agent_token),
        extra_components=("content-type", "content-digest"),
    )
    return {**HEADERS, **signed}


def test_unsigned_and_badly_signed_mcp_bodies_are_not_parsed(
    resource: tuple[str, subprocess.Popen[str], LocalAgentProvider],
) -> None:
    url, _, provider = resource
    write = _call("write_file", 256 * 1024)  # an auth-token tool (files.write)
    not_json = b'{"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "write_file"'
    with _client(url) as client:
        unsigned = client.post(MCP, headers=HEADERS, content=write)
        unsigned_junk = client.post(MCP, headers=HEADERS, content=not_json)
        wrong_key = _signed(provider, not_json, key=PrivateKey.generate())
        badly_signed = client.post(MCP, headers=wrong_key, content=not_json)
        signed = client.post(MCP, headers=_signed(provider, write), content=write)
    # not read: the challenge every MCP message starts with, not the tool's
    for response in (unsigned, unsigned_junk):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert parse_requirement(response.headers["aauth-requirement"]).value == "agent-token"
    # a signature error, not a JSON one
    assert badly_signed.status_code == 401 and "signature-error" in badly_signed.headers
    assert json.loads(badly_signed.text)["error"] != "invalid_request"
    # once the signature verified, the body says which tool, and the tool's rule applies
    assert signed.status_code == 401, signed.text[:200]
    assert parse_requirement(signed.headers["aauth-requirement"]).value == "person-token"
