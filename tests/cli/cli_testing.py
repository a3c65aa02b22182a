"""Run ``aauth-agents`` as a real subprocess with a controlled environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "aauth-agents"


def cli_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: HOME and the XDG directories inside ``home``; nothing from the
    caller's key configuration leaks in."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "LANG": "C.UTF-8",
        # keyring never reaches a real keychain from the tests unless a test says so
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    env.update(extra or {})
    return {k: v for k, v in env.items() if v}


def run_cli(
    args: Sequence[str],
    home: Path,
    *,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "aauth_agents.cli", *args],
        env=cli_env(home, env),
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=home,
        check=False,
    )
