"""LangGraph with interrupts: the person's consent pauses the graph, not a thread.

A LangGraph agent (``StateGraph`` with a ``ToolNode`` and an ``InMemorySaver``
checkpointer) calls ``list_files``, an ``aauth_tool`` with ``on_pending="interrupt"``.
When the person must approve, the graph stops with an interrupt carrying the person
server's link and code (``{"type": "aauth.interaction", "url", "code", ...}``): a real app
shows it to the person (a chat message, a button) and resumes the graph later, maybe in
another process, with ``Command(resume={"done": True})``; the re-run polls the request it
already made. Here the person approves at once through the PS's own interaction path
(``stack.approve``), standing in for the click: twice, since a new agent first learns who
the person is (a person token), then gets ``files.read`` (an auth token). A question from
the person arrives the same way (``"aauth.clarification"``, answered with
``{"answer": "..."}``).

The chat model is langchain-core's ``GenericFakeChatModel`` replaying one tool call, so the
example runs offline with no API key; with a real one, use e.g.
``init_chat_model("openai:gpt-4.1-mini").bind_tools(tools)`` in ``agent_node``.

Run: ``python examples/langgraph_interrupts.py``
(needs ``pip install 'aauth-agents[langgraph]'``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command

from aauth_agents.agent import AAuth
from aauth_agents.integrations.langchain import aauth_tool
from aauth_agents.servers.stack import LocalStack


def build_graph(tools: list[Any]) -> Any:
    model = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage("", tool_calls=[{"name": "list_files", "args": {}, "id": "c1"}]),
                AIMessage("You have one file: welcome.txt."),
            ]
        )
    )

    def agent_node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent_node)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=InMemorySaver())


def main() -> None:
    with LocalStack() as stack:
        # No on_interaction: with on_pending="interrupt" the graph hands the link over.
        auth = AAuth(stack.enroll(), justification="Help with your files")
        list_files = aauth_tool(
            "list_files", "List the person's files.", "GET", f"{stack.resource}/files",
            auth=auth, on_pending="interrupt", http_client=auth.client(transport=stack.transport()),
        )  # fmt: skip
        graph = build_graph([list_files])
        config: Any = {"configurable": {"thread_id": "files-1"}}
        result = graph.invoke({"messages": [HumanMessage("What are my files?")]}, config)
        interrupts = 0
        while "__interrupt__" in result:
            prompt = result["__interrupt__"][0].value
            interrupts += 1
            print(f"interrupt: {prompt['type']} at {prompt['resource']}: {prompt['url']}")
            stack.approve(prompt["url"], prompt["code"])  # the person clicks and approves
            result = graph.invoke(Command(resume={"done": True}), config)
        tool_reply, answer = result["messages"][-2:]
        print(f"tool:      {tool_reply.content}")
        print(f"model:     {answer.content}")
    assert interrupts == 2 and "welcome.txt" in tool_reply.content
    print(f"ok: the graph resumed after {interrupts} consent interrupts")


if __name__ == "__main__":
    main()
