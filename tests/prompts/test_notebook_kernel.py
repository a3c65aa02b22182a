"""NotebookPrompts in a real ipykernel: cells in which an agent waits for its person, against
the test PS and resource of ``tests/agent`` served over HTTP on 127.0.0.1 (uvicorn, in this
process). The test plays the person and the frontend: it approves at the PS, or sends the
widget events JupyterLab sends (``comm_msg`` on a kernel subshell), or those of a frontend
without subshells (nbclient, the classic Notebook: on the main shell).

These are the claims of :mod:`aauth_agents.prompts.notebook`'s docstring, tested: an async
cell hears the widgets on either channel; a sync cell hears them on a subshell (because
NotebookPrompts routes its widgets' messages where the frontend sent them -- a plain widget
is not heard); without subshells a sync cell hears nothing until it ends (the question
expires), and ``await asyncio.to_thread(...)`` is the remedy. The sync cell in a real
JupyterLab, clicked in Chromium: ``test_notebook_jupyterlab.py``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from support.agent import PS, RESOURCE, World
from support.notebook import Kernel, agent_cell

from aauth_agents.clock import FrozenClock
from aauth_agents.servers import LoopbackServer


class WallClock(FrozenClock):
    """Real time: the agent in the kernel signs with the system clock."""

    def __call__(self) -> float:
        return time.time()


@dataclass
class Served:
    world: World
    mapping: dict[str, str]

    def cell(self, client: str) -> str:
        return agent_cell(
            key=self.world.agent_key.to_jwk(),
            token=self.world.identity.agent_token,
            mapping=self.mapping,
            url=f"{RESOURCE}/data",
            client=client,
        )


@pytest.fixture
def served() -> Iterator[Served]:
    """The test PS and resource on loopback, on real time."""
    world = World(clock=WallClock())
    with LoopbackServer(world.ps.app) as ps, LoopbackServer(world.resource.app) as resource:
        yield Served(world, {PS: ps.url, RESOURCE: resource.url})


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    with Kernel() as k:
        yield k


def shown_code(kernel: Kernel) -> str | None:
    for state in kernel.widgets.values():
        found = re.search(r'class="aauth-code"[^>]*>([A-Z0-9-]+)<', str(state.get("value")))
        if found:
            return found.group(1)
    return None


def test_an_async_cell_waits_for_the_person_to_approve(served: Served, kernel: Kernel) -> None:
    served.world.ps.token_requirement = "interaction"
    served.world.ps.retry_after = "1"
    cell = kernel.execute(served.cell("async"))
    kernel.wait(lambda: kernel.shown("interaction") == 1, "the interaction widget")
    code = str(shown_code(kernel))
    assert kernel.status() in ("waiting", "interacting")
    assert kernel.widget("Button", description="Cancel request") is not None
    assert served.world.ps.consent(code)  # the person approves at the PS
    output = kernel.finished(cell)
    assert output.startswith("RESULT 200 ") and '"scope":"data.read"' in output
    kernel.wait(lambda: kernel.status() == "approved", "the widget to show Approved")
    cancel = kernel.widgets[str(kernel.widget("Button", description="Cancel request"))]
    assert cancel["disabled"] is True


def answer_in_the_text_box(kernel: Kernel, subshell: str | None) -> None:
    """What the person does in the widget: type, then Send."""
    kernel.wait(lambda: kernel.shown("clarification") == 1, "the clarification widget")
    kernel.wait(lambda: kernel.status() == "asked", "the question's status")
    textarea = kernel.widget("Textarea")
    assert textarea is not None
    kernel.type(textarea, "To plan the *week*.", subshell)
    kernel.click(str(kernel.widget("Button", description="Send")), subshell)


@pytest.mark.parametrize(
    ("client", "channel"),
    [("async", "subshell"), ("sync", "subshell"), ("async", "main shell")],
)
def test_a_clarification_answered_in_the_widget(
    served: Served, kernel: Kernel, client: str, channel: str
) -> None:
    served.world.ps.token_requirement = "clarification"
    served.world.ps.clarification_options = None
    subshell = None
    if channel == "subshell":
        assert kernel.has_subshells, f"this ipykernel has no subshells: {kernel.features}"
        subshell = kernel.create_subshell()
    cell = kernel.execute(served.cell(client))
    answer_in_the_text_box(kernel, subshell)
    output = kernel.finished(cell, timeout=30)
    assert output.startswith("RESULT 200 ")
    assert served.world.ps.bodies["pending-POST"] == [
        {"action": "clarification_response", "clarification_response": "To plan the *week*."}
    ]
    kernel.wait(lambda: kernel.status() == "answered", "the widget to show Answered")


def test_without_subshells_a_sync_cell_hears_the_widget_only_when_it_ends(
    served: Served, kernel: Kernel
) -> None:
    served.world.ps.token_requirement = "clarification"
    served.world.ps.clarification_options = None
    served.world.ps.clarification_timeout = 3
    cell = kernel.execute(served.cell("sync"))
    answer_in_the_text_box(kernel, None)  # on the main shell, busy with the cell
    assert kernel.finished(cell, timeout=30).startswith("CANCELLED")
    assert served.world.ps.hits["pending-DELETE"] == 1 and "pending-POST" not in (
        served.world.ps.bodies
    )
    kernel.wait(lambda: kernel.status() == "expired", "the widget to show Expired")


def test_the_remedy_a_sync_client_awaited_in_a_worker_thread(
    served: Served, kernel: Kernel
) -> None:
    served.world.ps.token_requirement = "clarification"
    served.world.ps.clarification_options = None
    cell = kernel.execute(served.cell("thread"))
    answer_in_the_text_box(kernel, None)  # on the main shell: the cell only awaits
    assert kernel.finished(cell, timeout=30).startswith("RESULT 200 ")
    widgets = [m for m in kernel.outputs[cell] if m["msg_type"] == "display_data"]
    assert len(widgets) == 1  # shown in the cell that runs the agent, from the worker thread
    assert "application/vnd.jupyter.widget-view+json" in widgets[0]["content"]["data"]


PLAIN_WIDGET = """
import threading, ipywidgets
from IPython.display import display
clicked = threading.Event()
button = ipywidgets.Button(description="Plain")
button.on_click(lambda _: clicked.set())
display(button)
print("IN TIME" if clicked.wait(2) else "TOO LATE")
"""


def test_ipykernel_routes_a_plain_widgets_click_to_the_blocked_main_shell(
    kernel: Kernel,
) -> None:
    """Why NotebookPrompts reroutes its widgets: JupyterLab sends the click on a subshell,
    yet ipykernel hands it to the shell the widget last sent from (the busy main shell)."""
    assert kernel.has_subshells
    subshell = kernel.create_subshell()
    cell = kernel.execute(PLAIN_WIDGET)
    kernel.wait(lambda: kernel.widget("Button", description="Plain") is not None, "the button")
    kernel.click(str(kernel.widget("Button", description="Plain")), subshell)
    kernel.wait(
        lambda: "TOO" in kernel.text(cell) or "IN TIME" in kernel.text(cell), "the cell's verdict"
    )
    assert kernel.text(cell).strip() == "TOO LATE"
