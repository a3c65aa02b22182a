"""A governed tool: any LangChain tool, run only with the person's permission, audited.

``send_note`` is a local tool (it only appends to a list). ``governed`` wraps it: before
each call the agent asks its person server (§Permission Endpoint) with the tool's name and
arguments; the person decides; an allowed call runs and its outcome is recorded in the
mission log (§Audit Endpoint), a denied one does not run and the model reads why. The agent
first proposes a mission the person approves (``propose_mission``), which the log belongs
to. The person server runs on loopback (``LocalStack``); the person decides in-process
(``on_interaction``), reading what the consent page would show: they allow a note to Bob
and decline one to Mallory. ``governed_tools([...], description=...)`` proposes the
mission itself on the first call.

Run: ``python examples/governed_tool.py`` (needs ``pip install 'aauth-agents[langchain]'``).
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.tools import tool

from aauth_agents.agent import AAuth
from aauth_agents.integrations.langchain import governed
from aauth_agents.servers.stack import LocalStack

sent: list[tuple[str, str]] = []


@tool
def send_note(to: str, text: str) -> str:
    """Send a short note to someone."""
    sent.append((to, text))
    return f"note sent to {to}"


def main() -> None:
    with LocalStack() as stack:

        def person(url: str, code: str) -> Any:
            """The person reads the request on their PS's page and decides."""
            shown = json.dumps(stack.open(url, code).details, default=str)
            return stack.deny(url, code) if "mallory" in shown else stack.approve(url, code)

        auth = AAuth(stack.enroll(), on_interaction=person)
        client = auth.client(transport=stack.transport())
        mission = auth.governance(client).propose_mission("Keep in touch with my friends")
        governed_send = governed(send_note, person_server=auth, http_client=client)
        for to in ("bob", "mallory"):
            call = {"type": "tool_call", "id": to, "name": "send_note"}
            result = governed_send.invoke({**call, "args": {"to": to, "text": "lunch at noon?"}})
            print(f"{to + ':':<9} {result.status}: {result.content}")
        log = stack.call(stack.ps.mission_log(mission.s256))
        client.close()
    for entry in log:  # what the person's dashboard shows of the mission
        data = entry.data
        print(f"log:      {entry.kind} {data.get('action', '')} {data.get('permission', '')}")
    assert sent == [("bob", "lunch at noon?")], sent
    print(f"ok: 1 of 2 notes sent, {sum(e.kind == 'audit' for e in log)} audit record")


if __name__ == "__main__":
    main()
