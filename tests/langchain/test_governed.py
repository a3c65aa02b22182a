"""``governed`` and ``governed_tools`` against the project's person server over loopback: a
local tool (it only appends to a list: its side effect) runs only after the person allowed
it at the PS (§Permission Endpoint), and its outcome lands in the mission log (§Audit
Endpoint); a denied call does not run and the model reads why; a mission proposed once
covers its approved tools. Each scenario runs sync and async."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, tool
from support.langchain import CALL, Graph, Party, interrupted, tool_messages

from aauth_agents.agent import AAuth
from aauth_agents.integrations.langchain import (
    PermissionDeniedError,
    governed,
    governed_tools,
    summarize,
)
from aauth_agents.protocol.errors import ConfigurationError


def local_tools() -> tuple[list[tuple[str, str]], BaseTool, BaseTool]:
    sent: list[tuple[str, str]] = []

    @tool
    def send_note(to: str, text: str) -> str:
        """Send a short note to someone."""
        sent.append((to, text))
        return f"note sent to {to}"

    @tool
    def archive(name: str) -> str:
        """Archive a file."""
        sent.append(("archive", name))
        return f"{name} archived"

    return sent, send_note, archive


async def call(
    tool_: BaseTool, mode: str, args: dict[str, Any], call_id: str = "call-1"
) -> ToolMessage:
    value = {"type": "tool_call", "id": call_id, "name": tool_.name, "args": args}
    if mode == "sync":
        import anyio.to_thread

        result: ToolMessage = await anyio.to_thread.run_sync(lambda: tool_.invoke(value))
        return result
    return await tool_.ainvoke(value)


def mission_log(party: Party, s256: str) -> list[Any]:
    return party.stack.call(party.stack.ps.mission_log(s256))


def propose(party: Party, auth: AAuth, description: str = "Keep my notes") -> str:
    with auth.client(transport=party.stack.transport()) as client:
        return auth.governance(client).propose_mission(description).s256


async def test_an_allowed_call_runs_and_is_audited(party: Party, mode: str) -> None:
    sent, send_note, _ = local_tools()
    auth = party.approving()
    s256 = propose(party, auth)
    governed_note = governed(send_note, person_server=auth, **party.clients())
    assert (governed_note.name, governed_note.args) == (send_note.name, send_note.args)
    result = await call(governed_note, mode, {"to": "bob", "text": "lunch at noon?"})
    assert result.status == "success" and result.content == "note sent to bob"
    assert sent == [("bob", "lunch at noon?")]
    log = mission_log(party, s256)
    assert [entry.kind for entry in log][-3:] == [
        "permission_request",
        "permission_response",
        "audit",
    ]
    request, response, audit = (entry.data for entry in log[-3:])
    assert request["action"] == "send_note"
    assert request["parameters"] == {"to": "bob", "text": "lunch at noon?"}
    assert "- **text**: lunch at noon?" in request["description"]
    assert response["permission"] == "granted"
    assert audit["action"] == "send_note" and audit["parameters"] == request["parameters"]
    assert audit["result"] == {"status": "completed", "summary": "note sent to bob"}


async def test_a_denied_call_does_not_run(party: Party, mode: str) -> None:
    sent, send_note, _ = local_tools()
    auth = party.auth(on_interaction=party.stack.deny)
    governed_note = governed(send_note, person_server=auth, **party.clients())
    result = await call(governed_note, mode, {"to": "bob", "text": "hi"})
    assert sent == []
    assert result.status == "error"
    assert result.content == "The person did not allow `send_note` to run: the person said no"
    with pytest.raises(PermissionDeniedError) as denied:  # raised when not handled
        arguments = {"to": "bob", "text": "hi"}
        if mode == "sync":
            governed_note.func(config={}, callbacks=None, **arguments)  # type: ignore[misc]
        else:
            await governed_note.coroutine(
                config={},
                callbacks=None,  # type: ignore[misc]
                **arguments,
            )
    assert denied.value.reason == "the person said no" and sent == []


async def test_a_mission_covers_its_approved_tools(party: Party, mode: str) -> None:
    sent, send_note, archive = local_tools()
    auth = party.approving()
    tools = governed_tools(
        [send_note, archive],
        person_server=auth,
        description="Tidy my notes this afternoon",
        **party.clients(),
    )
    assert [t.name for t in tools] == ["send_note", "archive"]
    first = await call(tools[0], mode, {"to": "bob", "text": "done"})
    second = await call(tools[1], mode, {"name": "old.txt"}, call_id="call-2")
    assert first.status == second.status == "success"
    assert sent == [("bob", "done"), ("archive", "old.txt")]
    s256 = auth.mission_s256
    assert s256 is not None  # the approved mission was adopted by the agent
    missions = [
        e
        for e in party.stack.events
        if e.name == "mission_approved" and e.agent == party.identity.agent_id
    ]
    assert len(missions) == 1  # proposed once, for both tools
    kinds = [entry.kind for entry in mission_log(party, s256)]
    assert "permission_request" not in kinds  # approved tools ask no permission
    assert kinds.count("audit") == 2


async def test_permission_as_an_interrupt(party: Party, mode: str) -> None:
    sent, send_note, _ = local_tools()
    governed_note = governed(
        send_note, person_server=party.auth(), on_pending="interrupt", **party.clients()
    )
    call_ = {**CALL, "name": "send_note", "args": {"to": "carol", "text": "see you"}}
    graph = Graph([governed_note], [call_], mode)
    payload = interrupted(await graph.start())
    assert payload["type"] == "aauth.interaction" and payload["resource"] is None
    assert sent == []
    party.stack.approve(payload["url"], payload["code"])
    done = await graph.resume({"done": True})
    [message] = tool_messages(done)
    assert message.status == "success" and sent == [("carol", "see you")]
    permissions = [
        e for e in party.stack.events if e.name == "pending" and e.agent == party.identity.agent_id
    ]
    assert len(permissions) == 1  # the re-run polled the same permission request


def test_summaries_are_readable_and_bounded() -> None:
    text = summarize("send_email", {"to": "bob@example.com", "body": "x" * 500, "n": 3})
    assert text.startswith("Run `send_email` with:")
    assert "- **to**: bob@example.com" in text and "- **n**: 3" in text
    assert len(text) < 400 and "…" in text
    assert summarize("ping", {}) == "Run `ping` (no arguments)."


def test_bad_arguments_are_typed_errors(party: Party) -> None:
    _, send_note, archive = local_tools()
    with pytest.raises(ConfigurationError):
        governed("not a tool", person_server=party.auth())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        governed_tools([send_note, send_note], person_server=party.auth(), description="x")
    with pytest.raises(ConfigurationError):
        governed_tools([archive], person_server=party.auth(), description=" ")
    with pytest.raises(ConfigurationError):
        governed(send_note, person_server=party.auth(), mission=42)  # type: ignore[arg-type]
