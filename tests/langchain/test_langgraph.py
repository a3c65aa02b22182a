"""The ``interrupt`` pending mode in a real LangGraph graph: a ``StateGraph`` with a
``ToolNode``, an ``InMemorySaver`` checkpointer and a fake chat model from
``langchain_core.language_models.fake_chat_models`` issuing the tool calls. The tools reach
the demo resource and the project's person server over loopback HTTP.

The interaction becomes an interrupt; the person approves; the graph resumes with
``Command(resume={"done": True})`` and the re-run polls the request it already made (one
pending request at the PS in all). A question from the person is answered through
``Command(resume={"answer": ...})``; ``{"cancel": True}`` withdraws the request; a resume of
the wrong shape is refused and the interrupt can be answered again. Each scenario runs with
``graph.invoke`` (sync tools) and ``graph.ainvoke`` (async tools)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pydantic import ValidationError
from support.langchain import CALL, Graph, Party, interrupted, tool_messages

from aauth_agents.integrations.langchain import aauth_tool
from aauth_agents.protocol.errors import ConfigurationError


def list_files(party: Party) -> Any:
    return aauth_tool(
        "list_files",
        "List the person's files.",
        "GET",
        f"{party.stack.resource}/files",
        auth=party.auth(),
        on_pending="interrupt",
        **party.clients(),
    )


async def consented(party: Party) -> None:
    """The person already consented to the agent (its person token): the graph's tool call
    then needs one interaction, for files.read."""
    import httpx

    with httpx.Client(transport=party.stack.transport()) as client:
        assert (
            client.get(f"{party.stack.resource}/profile", auth=party.approving()).status_code == 200
        )


async def test_an_interaction_is_an_interrupt_and_the_rerun_polls_the_same_request(
    party: Party, mode: str
) -> None:
    await consented(party)
    before = party.pending_created()
    graph = Graph([list_files(party)], [CALL], mode)
    first = await graph.start()
    payload = interrupted(first)
    assert payload["type"] == "aauth.interaction"
    assert payload["url"].startswith("https://ps.example/interact/") and payload["code"]
    assert payload["resource"] == "https://resource.example"
    assert payload["justification"] == "Help with your files" and payload["expires_in"] > 0
    assert party.pending_created() == before + 1
    party.stack.approve(payload["url"], payload["code"])
    done = await graph.resume({"done": True})
    assert "__interrupt__" not in done
    [message] = tool_messages(done)
    assert message.status == "success" and "welcome.txt" in message.content
    assert done["messages"][-1].content == "Done."
    assert party.pending_created() == before + 1  # the re-run made no second request
    assert party.count("ps.example", "/token", "POST") == 1  # the one auth token request


async def test_a_question_is_answered_through_resume(party: Party, mode: str) -> None:
    await consented(party)
    graph = Graph([list_files(party)], [CALL], mode)
    payload = interrupted(await graph.start())
    view = party.stack.ask(payload["url"], payload["code"], "Which files will you read?")
    asked = interrupted(await graph.resume({"done": True}))
    assert asked == {
        "type": "aauth.clarification",
        "question": "Which files will you read?",
        "options": None,
        "timeout": asked["timeout"],
    }
    assert asked["timeout"] > 0

    def approve_after_the_answer() -> None:
        deadline = time.monotonic() + 20
        while party.stack.answer_of(view.id) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        party.stack.approve_open(view.id)

    person = threading.Thread(target=approve_after_the_answer)
    person.start()
    done = await graph.resume({"answer": "Only the welcome file."})
    person.join(timeout=30)
    assert party.stack.answer_of(view.id) == "Only the welcome file."
    [message] = tool_messages(done)
    assert message.status == "success" and "welcome.txt" in message.content
    assert party.count("ps.example", "/token", "POST") == 1


async def test_cancel_withdraws_the_request(party: Party, mode: str) -> None:
    await consented(party)
    graph = Graph([list_files(party)], [CALL], mode)
    interrupted(await graph.start())
    withdrawn = sum(1 for e in party.stack.events if e.name == "withdrawn")
    done = await graph.resume({"cancel": True})
    [message] = tool_messages(done)
    assert message.status == "error"
    assert message.content == "The request for access at resource.example was cancelled."
    assert sum(1 for e in party.stack.events if e.name == "withdrawn") == withdrawn + 1
    assert done["messages"][-1].content == "Done."


async def test_a_resume_of_the_wrong_shape_is_refused_and_can_be_answered_again(
    party: Party, mode: str
) -> None:
    await consented(party)
    graph = Graph([list_files(party)], [CALL], mode)
    payload = interrupted(await graph.start())
    sent = len(party.sent)
    for wrong in ("yes", {"done": "yes"}, {"answer": "x"}, {"done": True, "cancel": True}):
        with pytest.raises(ValidationError):
            await graph.resume(wrong)
    assert len(party.sent) == sent  # nothing sent
    party.stack.approve(payload["url"], payload["code"])
    done = await graph.resume({"done": True})
    [message] = tool_messages(done)
    assert message.status == "success" and "welcome.txt" in message.content
    assert party.count("ps.example", "/token", "POST") == 1


async def test_interrupt_mode_outside_a_graph_is_a_typed_error(party: Party) -> None:
    tool = list_files(party)
    with pytest.raises(ConfigurationError):
        tool.invoke({"type": "tool_call", "id": "x", "name": "list_files", "args": {}})
    assert party.sent == []
