"""``aauth-agents demo`` walks the whole ladder over real HTTP on loopback (an agent
provider, the person server and the demo resource on uvicorn), every step as expected."""

from __future__ import annotations

import io

import pytest

from aauth_agents.cli import main
from aauth_agents.demo import run

LADDER = (
    "agent enrols its key at the agent provider",
    "sub-agent token from the agent provider",
    "agent identity: GET /whoami",
    "person identity: GET /profile (consent)",
    "three-party: GET /files (files.read)",
    "sub-agent via its parent: GET /files",
    "step-up: POST /files (files.write)",
    "clarification: person asks, agent answers",
    "per-call: MCP delete_file, this call approved",
    "mission proposed and approved",
    "permission under the mission",
    "audit record in the mission log",
    "a request under the mission: GET /files",
    "revocation: the resource refuses the agent",
    "revocation: the provider issues no new token",
)


def _table(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("ok  ", "FAIL"))]


def test_demo_every_step_of_the_ladder_passes() -> None:
    out = io.StringIO()
    assert run(out) == 0
    text = out.getvalue()
    rows = _table(text)
    assert len(rows) == len(LADDER)
    for row, name in zip(rows, LADDER, strict=True):
        assert row.startswith("ok  ") and name in row, row
    assert f"{len(LADDER)} of {len(LADDER)} steps as expected" in text
    assert "FAIL" not in text
    # What a reader is shown: each party, the headers that matter, decoded tokens.
    assert "Signature-Key: hwk" in text  # the enrolment proves possession of the key
    for requirement in ("person-token", "auth-token", "interaction", "clarification"):
        assert f"AAuth-Requirement: requirement={requirement}" in text, requirement
    for typ in ("aa-agent+jwt", "aa-person+jwt", "aa-auth+jwt"):
        assert typ in text, typ
    assert '"scope": "files.read files.write"' in text  # the step-up token
    assert '"parent_agent": "aauth:assistant@agent.example"' in text  # the sub-agent's token
    # its person and auth tokens, requested by its parent (§Parent-Mediated Authorization)
    assert text.count("body: subagent_token for aauth:assistant+search1@agent.example") == 2
    assert "person at the PS: reads the person token request (a new agent)" in text
    assert "scope files.write: Create and change your files" in text
    assert "person: asks the agent" in text and "agent: answers" in text
    # R3 per-call: the person reads that one call, and it runs
    assert (
        "this call (R3 per-call proposal): Delete one of your files at the demo resource:"
        " welcome.txt" in text
    )
    assert "`welcome.txt` holds 43 bytes now" in text
    assert "tool result: {'name': 'welcome.txt', 'deleted': True}" in text
    assert "mission log at the PS:" in text and "audit" in text
    assert "agent provider -> person server   POST https://ps.example/revoke" in text
    assert "resource -> agent   403" in text


def test_demo_interactive_person_decides_at_the_terminal() -> None:
    # Each time: decide here (Enter); then profile: yes; files.read: yes; files.write: ask
    # first; the per-call delete: yes; mission: yes; permission: no.
    stdin = io.StringIO("\ny\n\ny\n\n?\nwhat for?\n\ny\n\ny\n\nn\n")
    out = io.StringIO()
    status = run(out, interactive=True, stdin=stdin)
    text = out.getvalue()
    assert ">>> the person's link: https://ps.example/interact/" in text
    assert "in a browser: http://127.0.0.1:" in text
    assert "person: asks the agent 'what for?'" in text
    rows = {row[9:57].strip(): row for row in _table(text)}
    assert rows["clarification: person asks, agent answers"].startswith("ok")
    assert rows["mission proposed and approved"].startswith("ok")
    # The person denied the permission: the walkthrough reports that step as not expected.
    assert rows["permission under the mission"].startswith("FAIL")
    assert "denied" in rows["permission under the mission"]
    assert status == 1


def test_cli_dispatches_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    assert "steps as expected" in capsys.readouterr().out


def test_cli_requires_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
