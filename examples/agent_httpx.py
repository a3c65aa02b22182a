"""An agent with httpx: every request signed, every challenge answered.

Starts an agent provider, a person server and the demo resource on loopback
(``LocalStack``), enrols an agent, and climbs the ladder with one ``httpx.Client``:
``/whoami`` needs only the agent's own token, ``/profile`` a person token (the person says
who they are), ``/files`` an auth token for ``files.read``, and ``POST /files`` steps up to
``files.write``. The person approves in-process (``on_interaction=stack.approve``); give
``AAuth`` ``prompts=TerminalPrompts()`` instead to be asked with a link on the terminal.

Run: ``python examples/agent_httpx.py``. Against ``aauth-agents dev`` instead, drop the
stack: ``AAuth(load_identity(DirectoryKeyStore(...)))`` picks the network up from
``$AAUTH_AGENTS_NETWORK`` (README, "An agent in a few lines").
"""

from __future__ import annotations

from aauth_agents.agent import AAuth
from aauth_agents.servers.stack import LocalStack


def main() -> None:
    with LocalStack() as stack:
        auth = AAuth(
            stack.enroll("aauth:assistant@agent.example"),
            on_interaction=stack.approve,  # the person opens the link and approves
            network=stack.network,  # connections to loopback; names stay real
            justification="Tidy up your notes",
        )
        with auth.client() as client:
            agent = client.get(f"{stack.resource}/whoami").raise_for_status().json()
            print(f"agent:   {agent['agent']}")
            person = client.get(f"{stack.resource}/profile").raise_for_status().json()
            print(f"person:  {person['person']['sub']} at {person['person']['issuer']}")
            files = client.get(f"{stack.resource}/files").raise_for_status().json()
            print(f"files:   {[f['name'] for f in files['files']]}")
            written = client.post(
                f"{stack.resource}/files", json={"name": "notes.txt", "content": "buy milk"}
            ).raise_for_status()
            print(f"written: {written.json()}")
        print(f"ok: the agent read and wrote files as {agent['agent']}")


if __name__ == "__main__":
    main()
