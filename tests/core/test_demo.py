"""``aauth-agents demo`` runs every step as expected, over real HTTP on loopback."""

from __future__ import annotations

import io

import pytest

from aauth_agents.cli import main
from aauth_agents.demo import run


def test_demo_every_step_passes() -> None:
    out = io.StringIO()
    assert run(out) == 0
    text = out.getvalue()
    assert "5 of 5 steps as expected" in text
    assert "FAIL" not in text
    # what a reader is shown: the headers that matter and the decoded token
    assert 'Signature-Input: sig=("@method" "@authority" "@path" "signature-key");created=' in text
    assert "Signature-Error: error=invalid_signature" in text
    assert "AAuth-Requirement: requirement=agent-token" in text
    assert '"typ": "aa-agent+jwt"' in text


def test_cli_dispatches_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    assert "steps as expected" in capsys.readouterr().out


def test_cli_requires_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
