"""``aauth_tool`` end to end: the demo resource and the project's person server over loopback
HTTP, the person consenting in Chromium on the real consent pages; step-up; the result as
content and artifact; AAuth failures as a ToolException a model can read; bad arguments
refused before anything is sent; the agent chosen per run; the flow's events as LangChain
custom events. Each scenario runs with the tool's ``func`` and its ``coroutine``."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, Field, ValidationError
from support.langchain import BrowserPerson, Party, in_background

from aauth_agents.agent import DeniedError, UserUnreachableError
from aauth_agents.integrations.langchain import (
    AAuthToolArtifact,
    AAuthToolError,
    HTTPToolError,
    aauth_tool,
)
from aauth_agents.protocol.errors import ConfigurationError


class NewFile(BaseModel):
    name: str = Field(description="the file's name")
    content: str = Field(description="its text")


class FileName(BaseModel):
    name: str


async def invoke(
    tool: Any,
    mode: str,
    args: dict[str, Any],
    *,
    call_id: str | None = "call-1",
    config: RunnableConfig | None = None,
) -> Any:
    value: Any = (
        args
        if call_id is None
        else {"type": "tool_call", "id": call_id, "name": tool.name, "args": args}
    )
    if mode == "sync":
        import anyio.to_thread

        return await anyio.to_thread.run_sync(lambda: tool.invoke(value, config))
    return await tool.ainvoke(value, config)


async def direct(tool: Any, mode: str, **args: Any) -> Any:
    """The tool's own function, outside LangChain's run: errors are raised, not handled."""
    if mode == "sync":
        return tool.func(config={}, callbacks=None, **args)
    return await tool.coroutine(config={}, callbacks=None, **args)


async def test_files_after_consent_in_the_browser_then_step_up(
    party: Party, browser_person: BrowserPerson, mode: str
) -> None:
    """The person consents on the PS's pages in Chromium (twice: to the agent, then to
    files.read); writing then steps up to files.write (a third consent)."""
    decided: list[Any] = []

    def person(url: str, code: str) -> None:
        decided.append(browser_person.approve(url, code))

    auth = party.auth(on_interaction=person)
    clients = party.clients()
    read = aauth_tool(
        "list_files",
        "List the person's files.",
        "GET",
        f"{party.stack.resource}/files",
        auth=auth,
        **clients,
    )
    write = aauth_tool(
        "write_file",
        "Create or replace a file.",
        "POST",
        f"{party.stack.resource}/files",
        auth=auth,
        args_schema=NewFile,
        **clients,
    )
    listed = await invoke(read, mode, {})
    assert isinstance(listed, ToolMessage) and listed.status == "success"
    # (alice's folder at the demo resource, shared by this module's tests)
    assert {"name": "welcome.txt", "size": 43} in json.loads(listed.content)["files"]
    artifact = listed.artifact
    assert isinstance(artifact, AAuthToolArtifact)
    assert (artifact.status, artifact.resource) == (200, "https://resource.example")
    assert artifact.data == json.loads(listed.content)
    assert "aauth-access" not in artifact.headers
    name = f"notes-{uuid4().hex[:8]}.txt"
    written = await invoke(write, mode, {"name": name, "content": "milk, eggs"}, call_id="call-2")
    assert written.status == "success" and written.artifact.status == 201
    assert json.loads(written.content) == {"name": name, "size": 10, "created": True}
    pages = [future.result(timeout=60) for future in decided]
    # ("You approved this request." or, once the agent has collected it, "This request is
    # complete.")
    assert len(pages) == 3 and all(page.endswith("You can close this window.") for page in pages)
    approvals = [
        e for e in party.stack.events if e.name == "approved" and e.agent == party.identity.agent_id
    ]
    assert len(approvals) == 3
    assert party.count("ps.example", "/token") >= 2  # person token, files.read, files.write


async def test_a_refusal_is_a_readable_tool_error(party: Party, mode: str) -> None:
    auth = party.auth(on_interaction=in_background(party.stack.deny))
    read = aauth_tool(
        "list_files",
        "List the person's files.",
        "GET",
        f"{party.stack.resource}/files",
        auth=auth,
        **party.clients(),
    )
    message = await invoke(read, mode, {})
    assert isinstance(message, ToolMessage) and message.status == "error"
    assert message.content == "The person declined access at resource.example."
    for secret in ("ps.example", "code", "eyJ", "http"):
        assert secret not in message.content
    artifact = message.artifact
    assert isinstance(artifact.error, DeniedError) and artifact.error.code == "denied"
    # the program (not the model) has the page the person was sent to
    assert artifact.error.interaction_code and artifact.error.interaction_code in str(
        artifact.error
    )
    assert artifact.error.interaction_code not in message.content
    with pytest.raises(AAuthToolError) as raised:  # the function itself raises, typed
        await direct(read, mode)
    assert isinstance(raised.value.error, DeniedError)


async def test_an_unattended_agent_tells_the_model_no_link(party: Party, mode: str) -> None:
    """An unattended agent's error names the person's page and code for the program; the
    model reads neither."""
    read = aauth_tool(
        "list_files",
        "List the person's files.",
        "GET",
        f"{party.stack.resource}/files",
        auth=party.auth(unattended=True),
        **party.clients(),
    )
    message = await invoke(read, mode, {})
    assert message.status == "error"
    assert (
        message.content == "The person could not be reached to approve access at resource.example."
    )
    error = message.artifact.error
    assert isinstance(error, UserUnreachableError)
    assert error.interaction_url and error.interaction_code
    assert error.interaction_url in str(error)
    for secret in (error.interaction_code, "ps.example", "interact", "eyJ", "http"):
        assert secret not in message.content


async def test_arguments_fill_path_and_query_and_bad_ones_send_nothing(
    party: Party, mode: str
) -> None:
    auth = party.approving()
    read = aauth_tool(
        "read_file",
        "Read one file.",
        "GET",
        f"{party.stack.resource}/files/{{name}}",
        auth=auth,
        args_schema=FileName,
        **party.clients(),
    )
    with pytest.raises(ValidationError):
        await invoke(read, mode, {"name": ["not", "a", "string"]})
    assert party.sent == []  # refused before any request
    answer = await invoke(read, mode, {"name": "welcome.txt"})
    assert answer.status == "success" and "Hello from the aauth-agents" in answer.content
    traversal = await invoke(read, mode, {"name": "../whoami"}, call_id="call-2")
    assert ("resource.example", "GET", "/files/..%2Fwhoami") in party.sent
    assert traversal.status == "error" and traversal.artifact.status in (400, 404)


async def test_a_json_schema_dict_is_checked_before_sending(party: Party, mode: str) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1}, "content": {"type": "string"}},
        "required": ["name", "content"],
        "additionalProperties": False,
    }
    write = aauth_tool(
        "write_file",
        "Write a file.",
        "POST",
        f"{party.stack.resource}/files",
        auth=party.approving(),
        args_schema=schema,
        **party.clients(),
    )
    refused = await invoke(write, mode, {"name": "", "content": "x"})
    assert refused.status == "error" and refused.content.startswith("Invalid arguments: name")
    assert party.sent == []
    done = await invoke(
        write, mode, {"name": f"{uuid4().hex}.txt", "content": "x"}, call_id="call-2"
    )
    assert done.status == "success" and done.artifact.status == 201


async def test_the_agent_of_the_run_comes_from_the_config(party: Party, mode: str) -> None:
    """One agent per person (§Agent-Person Binding): the tool asks a function of the
    RunnableConfig which AAuth acts for this run."""
    agents = {"alice": party.approving()}
    chosen: list[str] = []

    def agent_for(config: RunnableConfig) -> Any:
        user = config["configurable"]["user_id"]
        chosen.append(user)
        return agents[user]

    whoami = aauth_tool(
        "whoami",
        "Who is the agent?",
        "GET",
        f"{party.stack.resource}/whoami",
        auth=agent_for,
        **party.clients(),
    )
    answer = await invoke(whoami, mode, {}, config={"configurable": {"user_id": "alice"}})
    assert chosen == ["alice"] and party.identity.agent_id in answer.content
    with pytest.raises(KeyError):
        await invoke(whoami, mode, {}, config={"configurable": {"user_id": "mallory"}})


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data))


async def test_the_flow_is_seen_as_custom_callback_events(party: Party, mode: str) -> None:
    recorder = Recorder()
    read = aauth_tool(
        "list_files",
        "List the person's files.",
        "GET",
        f"{party.stack.resource}/files",
        auth=party.approving(),
        **party.clients(),
    )
    answer = await invoke(read, mode, {}, config={"callbacks": [recorder]})
    assert answer.status == "success"
    names = [name for name, _ in recorder.events]
    for expected in ("aauth.challenge", "aauth.interaction", "aauth.approved", "aauth.token"):
        assert expected in names, names
    interaction = next(data for name, data in recorder.events if name == "aauth.interaction")
    assert interaction["url"].startswith("https://ps.example/") and interaction["code"]
    assert "eyJ" not in json.dumps([data for _, data in recorder.events], default=str)


def test_construction_errors_are_typed(party: Party) -> None:
    auth = party.approving()
    url = f"{party.stack.resource}/files"
    for bad in (
        {"name": "has space"},
        {"method": "FETCH"},
        {"url": "ftp://resource.example/files"},
        {"url": f"{url}/{{file}}", "args_schema": FileName},  # no field for the path
        {"args_schema": FileName, "url": f"{url}/{{name}}", "on_pending": "sometimes"},
        {"auth": "not an agent"},
        {"max_chars": 0},
        {"args_schema": {"type": "object", "properties": {"x": {"type": 12}}}},
    ):
        options: dict[str, Any] = {"name": "t", "method": "GET", "url": url, "auth": auth, **bad}
        with pytest.raises(ConfigurationError):
            aauth_tool(
                options.pop("name"), "d", options.pop("method"), options.pop("url"), **options
            )


async def test_an_error_status_that_is_not_aauth_is_an_http_tool_error(
    party: Party, mode: str
) -> None:
    read = aauth_tool(
        "read_file",
        "Read one file.",
        "GET",
        f"{party.stack.resource}/files/{{name}}",
        auth=party.approving(),
        args_schema=FileName,
        **party.clients(),
    )
    missing = await invoke(read, mode, {"name": "missing.txt"})
    assert missing.status == "error" and missing.content.startswith("HTTP 404")
    assert missing.artifact.status == 404 and missing.artifact.error is None
    with pytest.raises(HTTPToolError):
        await direct(read, mode, name="missing.txt")


async def test_an_unreachable_person_server_is_a_readable_error(party: Party, mode: str) -> None:
    """The agent's PS (its token's ``ps``) does not answer: the model reads which party."""
    import httpx

    from aauth_agents.agent import AAuth
    from aauth_agents.servers.agent_provider import AgentProviderClient

    agent_id = f"aauth:lost-{uuid4().hex[:8]}@agent.example"
    code = party.stack.ap.create_enrollment(agent_id, ps="https://down.example")
    with httpx.Client(transport=party.stack.transport()) as client:
        identity = AgentProviderClient(party.stack.agent_provider, client).enroll(code)
    read = aauth_tool(
        "list_files",
        "List the person's files.",
        "GET",
        f"{party.stack.resource}/files",
        auth=AAuth(identity),
        **party.clients(),
    )
    message = await invoke(read, mode, {})
    assert message.status == "error"
    assert message.content == (
        "The agent could not reach down.example (ConnectError, a network error). Try again later."
    )
    assert isinstance(message.artifact.error, httpx.ConnectError)
