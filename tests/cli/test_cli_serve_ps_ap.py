"""``aauth-agents serve ps`` and ``aauth-agents serve ap`` as real subprocesses on a free port
on 127.0.0.1: each publishes its metadata under its identifier, keeps its keys under
``--data`` across restarts, and stops when terminated (bounded). The agent provider enrols an
agent with the code ``--enroll`` printed; the person server trusts it through ``--map``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support.cli import cli_env, serve

from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.servers.agent_provider import AgentProviderClient
from aauth_agents.tokens import peek
from aauth_agents.transport import MappedTransport

PS = "https://ps.example"
AP = "https://agent.example"
AGENT = "aauth:cli@agent.example"


def _get(identifier: str, url: str, path: str) -> httpx.Response:
    with httpx.Client(
        transport=MappedTransport({identifier: url}, strict=True), timeout=10
    ) as client:
        return client.get(identifier + path)


def test_serve_ps_publishes_metadata_and_keeps_its_key(tmp_path: Path) -> None:
    data = tmp_path / "ps-data"
    args = ["--issuer", PS, "--data", str(data), "--auto-approve"]
    with serve("ps", ["--port", "0", *args], tmp_path) as (url, lines):
        assert f"aauth-agents: ps {PS} listening on {url}" in lines[0]
        metadata = _get(PS, url, "/.well-known/aauth-person.json")
        assert metadata.status_code == 200
        document = metadata.json()
        assert document["issuer"] == PS
        assert document["revocation_endpoint"] == f"{PS}/revoke"
        kids = [k["kid"] for k in _get(PS, url, "/.well-known/jwks.json").json()["keys"]]
        # The person's pages are served too (signing in as the --auto-approve person).
        signin = _get(PS, url, "/signin")
        assert signin.status_code == 200 and "password" in signin.text
    assert (data / "ps.sqlite3").exists()
    with serve("ps", ["--port", "0", *args], tmp_path) as (url, _):
        again = [k["kid"] for k in _get(PS, url, "/.well-known/jwks.json").json()["keys"]]
    assert again == kids


def test_serve_ps_refuses_a_bad_issuer(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aauth_agents.cli", "serve", "ps", "--issuer", "http://ps.example"],
        env=cli_env(tmp_path),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert b"--issuer" in result.stderr


def test_serve_ap_enrols_an_agent_the_ps_then_trusts(tmp_path: Path) -> None:
    """``serve ap --enroll`` prints a one-time code; the agent enrols with it; the PS (another
    subprocess, ``--map`` to the provider) verifies the agent token on a mission proposal."""
    data = tmp_path / "ap-data"
    ap_args = ["--issuer", AP, "--ps", PS, "--data", str(data), "--enroll", AGENT]
    with serve("ap", ["--port", "0", *ap_args], tmp_path) as (ap_url, lines):
        assert f"aauth-agents: ap {AP} listening on {ap_url}" in lines[0]
        kids = [k["kid"] for k in _get(AP, ap_url, "/.well-known/jwks.json").json()["keys"]]
        metadata = _get(AP, ap_url, "/.well-known/aauth-agent.json").json()
        assert metadata["issuer"] == AP
        assert metadata["jwks_uri"] == f"{AP}/.well-known/jwks.json"
        codes = [line.split(": ", 1)[1].strip() for line in lines if f"code      {AGENT}" in line]
        assert len(codes) == 1
        with httpx.Client(transport=MappedTransport({AP: ap_url}, strict=True), timeout=10) as http:
            identity = AgentProviderClient(AP, http).enroll(codes[0])
            claims = peek(identity.agent_token)[1]
            assert claims["sub"] == AGENT and claims["ps"] == PS and claims["iss"] == AP
            with pytest.raises(Exception, match="code"):  # one time only
                AgentProviderClient(AP, http).enroll(codes[0])
        ps_args = ["--issuer", PS, "--auto-approve", "--map", f"{AP}={ap_url}"]
        with serve("ps", ["--port", "0", *ps_args], tmp_path) as (ps_url, _):
            body = json.dumps({"description": "Say hello"}).encode()
            headers = {"content-type": "application/json"}
            signed = sign_request(
                HttpRequest("POST", f"{PS}/mission", headers, body),
                key=identity.key,
                signature_key=SignatureKey.from_jwt(identity.agent_token),
            )
            with httpx.Client(
                transport=MappedTransport({PS: ps_url}, strict=True), timeout=10
            ) as client:
                response = client.post(f"{PS}/mission", content=body, headers={**headers, **signed})
            assert response.status_code == 200, response.text
            assert response.json()["mission"]
    # The provider key and the enrolled agent are kept under --data.
    with serve("ap", ["--port", "0", "--issuer", AP, "--data", str(data)], tmp_path) as (ap_url, _):
        again = [k["kid"] for k in _get(AP, ap_url, "/.well-known/jwks.json").json()["keys"]]
        with httpx.Client(transport=MappedTransport({AP: ap_url}, strict=True), timeout=10) as http:
            fresh = AgentProviderClient(AP, http).refresh(identity.key, identity.agent_token)
    assert again == kids
    assert peek(fresh)[1]["sub"] == AGENT
