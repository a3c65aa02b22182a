"""``aauth-agents keys init`` / ``keys show`` as real subprocesses on real files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from support.cli import SCRIPT, run_cli

from aauth_agents.agent.provider import load_local_agent
from aauth_agents.agent.storage import DirectoryKeyStore, KeyringKeyStore
from aauth_agents.protocol.metadata import AgentProviderMetadata
from aauth_agents.tokens import StaticIssuerKeys, verify_agent_token

AGENT = "aauth:dev@agent.example"
PS = "https://ps.example"


def fields(text: bytes) -> dict[str, str]:
    out = {}
    for line in text.decode().splitlines():
        name, _, value = line.partition(": ")
        out[name] = value
    return out


def test_init_then_show(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    made = run_cli(["keys", "init", "--agent-id", AGENT, "--ps", PS, "--dir", str(keys)], tmp_path)
    assert made.returncode == 0, made.stderr
    created = fields(made.stdout)
    assert created["agent_id"] == AGENT and created["ps"] == PS
    assert created["provider"] == "https://agent.example" and created["alg"] == "Ed25519"
    assert created["store"] == str(keys)
    assert b"--provider-metadata" in made.stderr
    if os.name == "posix":
        assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700
        for name in os.listdir(keys):
            assert stat.S_IMODE(os.stat(keys / name).st_mode) == 0o600
    # the thumbprint printed is the stored key's
    agent = load_local_agent(DirectoryKeyStore(keys))
    assert created["thumbprint"] == agent.thumbprint

    shown = run_cli(["keys", "show", "--dir", str(keys)], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert fields(shown.stdout) == created
    assert b'"d"' not in shown.stdout


def test_show_provider_metadata_is_what_a_ps_needs(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert (
        run_cli(
            ["keys", "init", "--agent-id", AGENT, "--ps", PS, "--name", "Dev", "--dir", str(keys)],
            tmp_path,
        ).returncode
        == 0
    )
    shown = run_cli(["keys", "show", "--provider-metadata", "--dir", str(keys)], tmp_path)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["agent_id"] == AGENT and document["issuer"] == "https://agent.example"
    metadata = AgentProviderMetadata.from_json(
        document["metadata"], expected_issuer="https://agent.example"
    )
    assert metadata.name == "Dev"
    assert all("d" not in key for key in document["jwks"]["keys"])
    # a PS holding only this JSON verifies the agent's tokens
    agent = load_local_agent(DirectoryKeyStore(keys))
    identity = agent.identity()
    keys_for_ps = StaticIssuerKeys().add_jwks(
        document["issuer"], "aauth-agent.json", document["jwks"]
    )
    verified = verify_agent_token(
        identity.current_token(), keys=keys_for_ps, signing_key=agent.key.public_key
    )
    assert verified.sub == AGENT and verified.ps == PS
    assert document["thumbprint"] == agent.thumbprint


def test_es256_and_lifetime(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    made = run_cli(
        [
            "keys",
            "init",
            "--agent-id",
            AGENT,
            "--alg",
            "ES256",
            "--lifetime",
            "600",
            "--dir",
            str(keys),
        ],
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    assert fields(made.stdout)["alg"] == "ES256"
    assert "ps" not in fields(made.stdout)
    agent = load_local_agent(DirectoryKeyStore(keys))
    assert agent.provider.lifetime == 600 and agent.key.alg == "ES256"


def test_default_directory_from_the_environment(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen"
    made = run_cli(
        ["keys", "init", "--agent-id", AGENT], tmp_path, env={"AAUTH_AGENTS_DIR": str(chosen)}
    )
    assert made.returncode == 0, made.stderr
    assert fields(made.stdout)["store"] == str(chosen)
    assert (chosen / "agent.json").is_file()
    # without AAUTH_AGENTS_DIR: the per-user config directory
    other = tmp_path / "home2"
    other.mkdir()
    made = run_cli(["keys", "init", "--agent-id", AGENT], other)
    assert made.returncode == 0, made.stderr
    assert fields(made.stdout)["store"] == str(other / ".config" / "aauth-agents")


def test_init_refuses_to_replace_an_agent_without_force(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    base = ["keys", "init", "--dir", str(keys), "--agent-id"]
    first = run_cli([*base, AGENT], tmp_path)
    again = run_cli([*base, "aauth:other@agent.example"], tmp_path)
    assert again.returncode == 3
    assert b"agent_exists" in again.stderr
    assert fields(run_cli(["keys", "show", "--dir", str(keys)], tmp_path).stdout) == fields(
        first.stdout
    )
    forced = run_cli([*base, "aauth:other@agent.example", "--force"], tmp_path)
    assert forced.returncode == 0
    assert fields(forced.stdout)["agent_id"] == "aauth:other@agent.example"
    assert fields(forced.stdout)["thumbprint"] != fields(first.stdout)["thumbprint"]


@pytest.mark.parametrize(
    "args",
    [
        ["--agent-id", "aauth:Dev@agent.example"],
        ["--agent-id", "aauth:dev+sub@agent.example"],
        ["--agent-id", AGENT, "--ps", "http://ps.example"],
        ["--agent-id", AGENT, "--lifetime", "90000"],
    ],
)
def test_init_with_bad_settings_is_a_typed_error_and_writes_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    keys = tmp_path / "keys"
    result = run_cli(["keys", "init", "--dir", str(keys), *args], tmp_path)
    assert result.returncode == 3
    assert result.stderr.startswith(b"aauth-agents: invalid_configuration: ")
    assert not keys.exists()


def test_show_without_an_agent(tmp_path: Path) -> None:
    result = run_cli(["keys", "show", "--dir", str(tmp_path / "none")], tmp_path)
    assert result.returncode == 3
    assert b"agent_not_found" in result.stderr and b"keys init" in result.stderr


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_show_refuses_a_key_others_can_read(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert (
        run_cli(["keys", "init", "--agent-id", AGENT, "--dir", str(keys)], tmp_path).returncode == 0
    )
    os.chmod(keys / "agent-key.jwk", 0o644)
    result = run_cli(["keys", "show", "--dir", str(keys)], tmp_path)
    assert result.returncode == 3
    assert b"insecure_key_store" in result.stderr and b"chmod 600" in result.stderr


def test_keys_in_a_keyring(tmp_path: Path) -> None:
    """A real keyring backend chosen explicitly, as a user would: PYTHON_KEYRING_BACKEND."""
    env = {"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring"}
    made = run_cli(
        ["keys", "init", "--agent-id", AGENT, "--ps", PS, "--keyring", "aa-test"], tmp_path, env=env
    )
    assert made.returncode == 0, made.stderr
    assert "PlaintextKeyring" in fields(made.stdout)["store"]
    assert not (tmp_path / ".config" / "aauth-agents").exists()  # nothing went to a directory
    shown = run_cli(["keys", "show", "--keyring", "aa-test"], tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert fields(shown.stdout)["thumbprint"] == fields(made.stdout)["thumbprint"]
    # the entries are where keyring keeps them
    from keyrings.alt.file import PlaintextKeyring

    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / ".local" / "share" / "python_keyring" / "keyring_pass.cfg")  # type: ignore[misc]
    agent = load_local_agent(KeyringKeyStore("aa-test", backend=backend))
    assert agent.thumbprint == fields(made.stdout)["thumbprint"]


def test_keyring_without_a_backend_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli(["keys", "init", "--agent-id", AGENT, "--keyring", "aa-test"], tmp_path)
    assert result.returncode == 3
    assert b"key_store_unavailable" in result.stderr and b"no OS keychain" in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli(["keys"], tmp_path).returncode == 2
    assert run_cli(["keys", "init"], tmp_path).returncode == 2  # --agent-id is required
    both = run_cli(["keys", "show", "--dir", "x", "--keyring", "y"], tmp_path)
    assert both.returncode == 2 and b"not allowed with" in both.stderr


def test_the_console_script_is_installed(tmp_path: Path) -> None:
    assert SCRIPT.is_file(), "pip install -e . installs the aauth-agents console script"
    result = subprocess.run(
        [str(SCRIPT), "keys", "show", "--help"], capture_output=True, check=False
    )
    assert result.returncode == 0 and b"--provider-metadata" in result.stdout
