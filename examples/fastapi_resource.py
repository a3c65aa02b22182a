"""Protect your own FastAPI app: ``AAuthMiddleware`` and a scope per route.

``app`` below is a plain FastAPI app whose routes say what they need with ``@requires``.
``main()`` puts it behind ``AAuthMiddleware`` as ``https://notes.example``, serves it next
to an agent provider and a person server on loopback (``LocalStack``), and has an agent
read (``notes.read``) and then write (``notes.write``: a step-up) with the person approving
in-process. The handlers read who calls from ``request.state.aauth``; the middleware's
events (challenges, grants) arrive at ``event_hook``.

Run: ``python examples/fastapi_resource.py`` (needs ``pip install fastapi``). Or serve the
same app to your own agent, from this directory:
``aauth-agents dev --app https://notes.example=fastapi_resource:app`` (it adds the
middleware, with the scopes the ``@requires`` rules name).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from aauth_agents.agent import AAuth
from aauth_agents.keys import PrivateKey
from aauth_agents.resource import AAuthMiddleware, AccessRule, ResourceConfig, requires
from aauth_agents.resource.events import ResourceEvent
from aauth_agents.servers.stack import LocalStack

NOTES = "https://notes.example"
app = FastAPI()
notes: list[str] = ["buy milk"]


@app.get("/notes")
@requires(AccessRule.auth("notes.read"))
async def list_notes(request: Request) -> dict[str, Any]:
    caller = request.state.aauth  # the verified caller: its key, person and scopes
    return {"notes": notes, "person": caller.person[1], "scopes": list(caller.scopes)}


@app.post("/notes")
@requires(AccessRule.auth("notes.write"))
async def add_note(request: Request) -> dict[str, Any]:
    notes.append((await request.json())["text"])
    return {"count": len(notes)}


def main() -> None:
    events: list[ResourceEvent] = []
    with LocalStack() as stack:
        app.add_middleware(
            AAuthMiddleware,
            resource=ResourceConfig(
                identifier=NOTES,
                signing_key=PrivateKey.generate(),
                issuer_keys=stack.discovery(),  # agent provider and PS keys, on loopback
                scope_descriptions={"notes.read": "Read your notes", "notes.write": "Add notes"},
                event_hook=events.append,
            ),
        )
        stack.add(NOTES, app)
        auth = AAuth(stack.enroll(), on_interaction=stack.approve, network=stack.network)
        with auth.client() as client:
            anonymous = client.get(f"{NOTES}/notes", auth=None)
            print(f"unsigned:  {anonymous.status_code}")
            read = client.get(f"{NOTES}/notes").raise_for_status().json()
            print(f"read:      {read}")
            added = client.post(f"{NOTES}/notes", json={"text": "call mum"}).raise_for_status()
            print(f"added:     {added.json()}")
        print(f"events:    {sorted({f'{e.kind}/{e.reason}' for e in events})}")
        assert notes == ["buy milk", "call mum"] and anonymous.status_code == 401
        print(f"ok: {NOTES} served {len(notes)} notes to the agent of person {read['person']}")


if __name__ == "__main__":
    main()
