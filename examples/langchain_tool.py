"""A LangChain tool whose requests go through AAuth: ``aauth_tool``.

Two HTTP endpoints of the demo resource become LangChain tools (``list_files``,
``read_file`` with a ``{name}`` path argument); a chat model calls them in a plain tool
loop. The agent provider, the person server and the demo resource run on loopback
(``LocalStack``); the person approves in-process (``on_interaction=stack.approve``). The
model reads each tool's content; a program reads its artifact (status, parsed JSON).

The chat model here is langchain-core's ``GenericFakeChatModel`` replaying scripted tool
calls, so the example runs offline with no API key. With a real model, replace
``chat_model()`` with e.g.
``init_chat_model("openai:gpt-4.1-mini").bind_tools(list(tools.values()))``
(``pip install langchain langchain-openai``, ``OPENAI_API_KEY`` set): the rest is unchanged.

Run: ``python examples/langchain_tool.py`` (needs ``pip install 'aauth-agents[langchain]'``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from aauth_agents.agent import AAuth
from aauth_agents.integrations.langchain import aauth_tool
from aauth_agents.servers.stack import LocalStack


def chat_model() -> Any:
    """A scripted model: list the files, read the first one, answer."""
    return GenericFakeChatModel(
        messages=iter(
            [
                AIMessage("", tool_calls=[{"name": "list_files", "args": {}, "id": "c1"}]),
                AIMessage(
                    "",
                    tool_calls=[{"name": "read_file", "args": {"name": "welcome.txt"}, "id": "c2"}],
                ),
                AIMessage("Your only file, welcome.txt, welcomes you."),
            ]
        )
    )


def main() -> None:
    with LocalStack() as stack:
        auth = AAuth(stack.enroll(), on_interaction=stack.approve, justification="Read files")
        client = auth.client(transport=stack.transport())
        tools = {
            tool.name: tool
            for tool in (
                aauth_tool("list_files", "List the person's files.", "GET",
                           f"{stack.resource}/files", auth=auth, http_client=client),
                aauth_tool("read_file", "Read one of the person's files.", "GET",
                           f"{stack.resource}/files/{{name}}", auth=auth, http_client=client),
            )
        }  # fmt: skip
        model = chat_model()
        messages: list[BaseMessage] = [HumanMessage("What does my welcome file say?")]
        while True:  # the tool loop every agent framework runs
            reply = model.invoke(messages)
            messages.append(reply)
            if not isinstance(reply, AIMessage) or not reply.tool_calls:
                break
            for call in reply.tool_calls:
                result: ToolMessage = tools[call["name"]].invoke({**call, "type": "tool_call"})
                print(f"{call['name']}: {result.status}: {result.content}")
                messages.append(result)
        client.close()
    read = messages[-2]
    assert isinstance(read, ToolMessage) and read.artifact.status == 200, read
    print(f"model:  {messages[-1].content}")
    print(f"ok: the model read {read.artifact.data['name']} through two AAuth tools")


if __name__ == "__main__":
    main()
