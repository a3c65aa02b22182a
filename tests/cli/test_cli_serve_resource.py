"""``aauth-agents serve resource`` as a real subprocess on a free port: the demo resource
publishes its metadata, serves a signed ``/whoami`` through the AAuth client (finding the
agent provider's keys through ``--map``), keeps its signing key in ``--key-file`` across
restarts, and stops when terminated (bounded)."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest
from support.cli import run_cli, serve

from aauth_agents.agent import AAuth, LocalAgentProvider
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol import parse_requirement
from aauth_agents.servers import LoopbackServer
from aauth_agents.transport import MappedTransport

RESOURCE = "https://resource.example"
AP = "https://agents.example"
AGENT_ID = "aauth:cli@agents.example"


def test_serve_resource_metadata_and_a_signed_whoami(tmp_path: Path) -> None:
    provider = LocalAgentProvider(AP, PrivateKey.generate(kid="ap-1"))
    identity = provider.identity(PrivateKey.generate(), AGENT_ID)
    key_file = tmp_path / "keys" / "resource.jwk"
    with LoopbackServer(provider.app()) as ap_server:
        args = [
            "--issuer",
            RESOURCE,
            "--port",
            "0",
            "--map",
            f"{AP}={ap_server.url}",
            "--key-file",
            str(key_file),
        ]
        with serve("resource", args, tmp_path) as (url, printed):
            mapped = MappedTransport({RESOURCE: url}, strict=True)
            with httpx.Client(transport=mapped, timeout=20) as plain:
                metadata = plain.get(RESOURCE + "/.well-known/aauth-resource.json")
                jwks = plain.get(RESOURCE + "/.well-known/jwks.json").json()
                unsigned = plain.get(RESOURCE + "/whoami")
            with httpx.Client(
                auth=AAuth(identity),
                transport=MappedTransport({RESOURCE: url}, strict=True),
                timeout=20,
            ) as agent:
                whoami = agent.get(RESOURCE + "/whoami")
        # a restart signs with the same key
        with serve("resource", args, tmp_path) as (url_again, _):
            with httpx.Client(
                transport=MappedTransport({RESOURCE: url_again}, strict=True), timeout=20
            ) as plain:
                jwks_again = plain.get(RESOURCE + "/.well-known/jwks.json").json()

    assert any(RESOURCE in line for line in printed)
    assert metadata.status_code == 200, metadata.text
    document = metadata.json()
    assert document["issuer"] == RESOURCE and document["access_mode"] == "agent-token"
    assert set(document["scope_descriptions"]) == {"files.read", "files.write"}
    assert [tool["tool"] for tool in document["mcp_tools"]] == [
        "whoami",
        "profile",
        "list_files",
        "read_file",
        "write_file",
        "delete_file",
    ]
    assert document["mcp_tools"][-1]["access_mode"] == "per-call"
    assert unsigned.status_code == 401
    assert parse_requirement(unsigned.headers["aauth-requirement"]).value == "agent-token"
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["agent"] == AGENT_ID and whoami.json()["agent_provider"] == AP
    assert whoami.json()["key_thumbprint"] == identity.key.thumbprint()
    assert jwks_again == jwks and len(jwks["keys"]) == 1
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "args",
    [
        ["serve"],
        ["serve", "resource"],
        ["serve", "resource", "--issuer", "http://resource.example"],
        ["serve", "resource", "--issuer", "https://resource.example/path"],
        ["serve", "resource", "--issuer", RESOURCE, "--port", "70000"],
        ["serve", "resource", "--issuer", RESOURCE, "--map", "https://ps.example"],
    ],
)
def test_serve_resource_usage_errors(args: list[str], tmp_path: Path) -> None:
    result = run_cli(args, tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr


def test_serve_resource_bad_key_file(tmp_path: Path) -> None:
    bad = tmp_path / "keys"
    bad.mkdir(mode=0o700)
    (bad / "resource.jwk").write_text("not json")
    (bad / "resource.jwk").chmod(0o600)
    result = run_cli(
        [
            "serve",
            "resource",
            "--issuer",
            RESOURCE,
            "--port",
            "0",
            "--key-file",
            str(bad / "resource.jwk"),
        ],
        tmp_path,
        timeout=60,
    )
    assert result.returncode == 3
    assert b"is not JSON" in result.stderr


def test_serve_resource_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            ["serve", "resource", "--issuer", RESOURCE, "--port", str(port)], tmp_path, timeout=60
        )
    assert result.returncode == 4
    assert f"could not listen on 127.0.0.1:{port}".encode() in result.stderr
    assert b"Traceback" not in result.stderr
