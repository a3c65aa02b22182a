"""NotebookPrompts in process: the widgets it builds (real ipywidgets, clicked with
``Button.click()``) and their state through a real agent flow against the test PS and resource
of ``tests/agent`` (httpx.Client in a worker thread, and httpx.AsyncClient). The kernel and
the browser: ``test_notebook_kernel.py``, ``test_notebook_jupyterlab.py``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from support.agent import PS, RESOURCE, Agent, World

from aauth_agents.agent import (
    Answer,
    Cancel,
    ClarificationRequest,
    InteractionRequest,
    PendingEnded,
    Polling,
    RequestCancelledError,
)
from aauth_agents.prompts import NotebookPrompts
from aauth_agents.prompts.notebook import ClarificationView, InteractionView

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


class Clock:
    """Monotonic time the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def eventually(check: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the widget did not change in time"
        time.sleep(0.01)


def html_of(view: InteractionView | ClarificationView) -> str:
    """Every HTML the widget shows (what the frontend puts into the page as markup)."""
    parts: list[str] = []

    def walk(widget: Any) -> None:
        if hasattr(widget, "children"):
            for child in widget.children:
                walk(child)
        elif type(widget).__name__ == "HTML":
            parts.append(widget.value)

    walk(view.widget)
    return "\n".join(parts)


async def wait_view(prompts: NotebookPrompts, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while not prompts.views:
        assert time.monotonic() < deadline, "no prompt was shown"
        await asyncio.sleep(0.01)
    return prompts.views[-1]


def interaction(prompts: NotebookPrompts, **fields: Any) -> InteractionView:
    values: dict[str, Any] = {
        "url": f"{PS}/consent",
        "code": "ABCD-EFGH",
        "pending_url": f"{PS}/pending/1",
        "resource": RESOURCE,
        "justification": "Sum up my notes",
        "expires_in": 120,
        **fields,
    }
    prompts.interaction(InteractionRequest(**values))
    view = prompts.views[-1]
    assert isinstance(view, InteractionView)
    return view


def clarification(prompts: NotebookPrompts, **fields: Any) -> ClarificationView:
    values: dict[str, Any] = {
        "question": "Which **notes**?",
        "pending_url": f"{PS}/pending/1",
        "options": ("today", "this week"),
        "timeout": 60,
        **fields,
    }
    prompts.clarification(ClarificationRequest(**values))
    view = prompts.views[-1]
    assert isinstance(view, ClarificationView)
    return view


# -- the interaction widget ----------------------------------------------------------------------


def test_the_interaction_widget_shows_the_link_code_qr_and_follows_the_status() -> None:
    prompts = NotebookPrompts(clock=Clock())
    view = interaction(prompts)
    link = f"{PS}/consent?code=ABCD-EFGH"
    assert view.prompt.link == link
    assert (
        f'<a class="aauth-link" href="{link}" target="_blank" rel="noopener noreferrer"'
        in view.link.value
    )
    assert ">ABCD-EFGH</div>" in view.code.value
    assert "<svg" in view.qr.value and 'class="segno"' in view.qr.value
    assert RESOURCE in view.title.value and "Sum up my notes" in view.justification.value
    assert 'data-status="waiting"' in view.status.value and "2:00 left" in view.status.value
    assert not view.cancel.disabled and view.widget._dom_classes == (
        "aauth-prompt",
        "aauth-interaction",
    )
    prompts.event(Polling(f"{PS}/pending/1", 1, 1.0, "interacting"))
    assert 'data-status="interacting"' in view.status.value
    assert "You opened the page" in view.status.value
    prompts.event(PendingEnded(f"{PS}/pending/1", "approved", 200))
    assert 'data-status="approved"' in view.status.value and "✔ Approved" in view.status.value
    assert "left" not in view.status.value
    assert view.cancel.disabled and "href" not in view.link.value  # nothing left to press


@pytest.mark.parametrize(
    ("outcome", "shown"),
    [("denied", "Declined"), ("expired", "Expired"), ("cancelled", "Cancelled")],
)
def test_each_outcome_is_shown_and_ends_the_widget(outcome: str, shown: str) -> None:
    prompts = NotebookPrompts(clock=Clock())
    view = interaction(prompts)
    prompts.event(PendingEnded(f"{PS}/pending/1", outcome, 403))
    assert f"✘ {shown}" in view.status.value and view.cancel.disabled


def test_cancel_asks_the_agent_to_withdraw() -> None:
    prompts = NotebookPrompts(clock=Clock())
    view = interaction(prompts)
    view.cancel.click()
    assert view.prompt.cancel_requested and view.cancel.disabled
    assert "cancelling" in view.status.value and not view.prompt.finished
    prompts.event(PendingEnded(f"{PS}/pending/1", "cancelled", 204))
    assert "✘ Cancelled" in view.status.value and "cancelling" not in view.status.value


def test_the_countdown_ticks_until_the_prompt_is_finished() -> None:
    clock = Clock()
    prompts = NotebookPrompts(clock=clock, refresh=0.01)
    view = interaction(prompts)
    assert "2:00 left" in view.status.value
    clock.now += 61
    eventually(lambda: "0:59 left" in view.status.value)
    ticker = view.ticker
    assert ticker is not None and ticker.is_alive()
    view.prompt.finish("expired")
    ticker.join(5)
    assert not ticker.is_alive() and "✘ Expired" in view.status.value


def test_text_is_escaped_and_the_link_must_be_http() -> None:
    prompts = NotebookPrompts(clock=Clock(), qr=False)
    view = interaction(prompts, justification=XSS, resource="https://resource.example")
    shown = html_of(view)
    assert "<script" not in shown and "<img" not in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;" in shown
    assert view.qr.value == ""
    inert = interaction(prompts, url="javascript:alert(1)//")
    assert "href" not in inert.link.value and "javascript:alert(1)//" in inert.link.value


# -- the clarification widget --------------------------------------------------------------------


def test_an_option_button_answers() -> None:
    prompts = NotebookPrompts(clock=Clock())
    view = clarification(prompts)
    assert [b.description for b in view.options] == ["today", "this week"]
    assert view.text is None and view.send is None
    assert "<p>Which <strong>notes</strong>?</p>" in view.question.value
    assert 'data-status="asked"' in view.status.value and "1:00 left" in view.status.value
    view.options[1].click()
    assert view.prompt.reply.wait(0) == Answer("this week")
    assert "✔ Answered" in view.status.value
    assert all(control.disabled for control in [*view.options, view.cancel])


def test_the_text_box_sends_its_answer_and_refuses_an_empty_one() -> None:
    prompts = NotebookPrompts(clock=Clock())
    view = clarification(prompts, options=None)
    assert view.options == [] and view.text is not None and view.send is not None
    view.text.value = "   "
    view.send.click()
    assert not view.prompt.finished and "type an answer first" in view.status.value
    view.text.value = "Only *today's* notes."
    view.send.click()
    assert view.prompt.reply.wait(0) == Answer("Only *today's* notes.")
    assert view.text.disabled and view.send.disabled and view.cancel.disabled


def test_cancel_and_timeout_withdraw_the_request() -> None:
    prompts = NotebookPrompts(clock=Clock())
    view = clarification(prompts)
    view.cancel.click()
    assert view.prompt.reply.wait(0) == Cancel("the person cancelled in the notebook")
    assert "✘ Cancelled" in view.status.value and view.options[0].disabled
    late = clarification(prompts, timeout=0)  # due at once: the prompt's timer expires it
    assert isinstance(late.prompt.reply.wait(5), Cancel)
    eventually(lambda: "✘ Expired" in late.status.value)
    assert late.cancel.disabled


def test_the_question_is_sanitized_markdown_and_options_stay_text() -> None:
    prompts = NotebookPrompts(clock=Clock())
    view = clarification(
        prompts, question=f"Why? {XSS} [x](javascript:alert(3))", options=("<b>yes</b>",)
    )
    shown = html_of(view)
    assert "<script" not in shown and "<img" not in shown and "<a " not in shown
    assert "&lt;script&gt;" in view.question.value and "[x](javascript:alert(3))" in shown
    # A Button's description is put into the page as a text node, never as markup.
    assert view.options[0].description == "<b>yes</b>"


# -- through a real agent flow -------------------------------------------------------------------


async def test_an_interaction_through_the_agent(
    make_agent: Callable[..., Agent], pause: Any
) -> None:
    world = World()
    world.ps.token_requirement = "interaction"
    prompts = NotebookPrompts()
    agent = make_agent(
        world.auth(prompts=prompts, sleep=pause, justification="Sum it up"), world.mapping
    )
    request = asyncio.create_task(agent.get(f"{RESOURCE}/data"))
    view = await wait_view(prompts)
    assert isinstance(view, InteractionView) and view.prompt.resource == RESOURCE
    assert "Sum it up" in view.justification.value and view.ticker is not None
    assert world.ps.consent(view.prompt.code)  # the person approves at the PS
    assert (await asyncio.wait_for(request, 10)).status_code == 200
    assert "✔ Approved" in view.status.value and view.cancel.disabled
    view.ticker.join(5)
    assert not view.ticker.is_alive()


async def test_cancel_in_the_widget_withdraws_the_agents_request(
    make_agent: Callable[..., Agent], pause: Any
) -> None:
    world = World()
    world.ps.token_requirement = "interaction"
    prompts = NotebookPrompts()
    agent = make_agent(world.auth(prompts=prompts, sleep=pause), world.mapping)
    request = asyncio.create_task(agent.get(f"{RESOURCE}/data"))
    view = await wait_view(prompts)
    view.cancel.click()
    with pytest.raises(RequestCancelledError):
        await asyncio.wait_for(request, 10)
    assert world.ps.hits["pending-DELETE"] == 1 and "✘ Cancelled" in view.status.value


async def test_a_clarification_answered_in_the_text_box_reaches_the_ps(
    make_agent: Callable[..., Agent],
) -> None:
    world = World()
    world.ps.token_requirement = "clarification"
    world.ps.clarification_options = None
    prompts = NotebookPrompts()
    agent = make_agent(world.auth(prompts=prompts), world.mapping)
    request = asyncio.create_task(agent.get(f"{RESOURCE}/data"))
    view = await wait_view(prompts)
    assert isinstance(view, ClarificationView) and view.text is not None
    view.text.value = "To plan the week."
    view.send.click()
    assert (await asyncio.wait_for(request, 10)).status_code == 200
    assert world.ps.bodies["pending-POST"] == [
        {"action": "clarification_response", "clarification_response": "To plan the week."}
    ]


async def test_the_callback_forms_show_the_same_widgets(make_agent: Callable[..., Agent]) -> None:
    world = World()
    world.ps.token_requirement = "clarification"
    prompts = NotebookPrompts()
    auth = world.auth(
        on_interaction=prompts.on_interaction, on_clarification=prompts.on_clarification
    )
    agent = make_agent(auth, world.mapping)
    request = asyncio.create_task(agent.get(f"{RESOURCE}/data"))
    view = await wait_view(prompts)
    assert isinstance(view, ClarificationView)
    [yes, _no] = view.options
    yes.click()
    assert (await asyncio.wait_for(request, 10)).status_code == 200
    assert world.ps.bodies["pending-POST"][0]["clarification_response"] == "yes"


def test_importing_the_prompts_never_needs_ipywidgets() -> None:
    code = (
        "import sys; sys.modules['ipywidgets'] = None\n"  # as if it were not installed
        "import aauth_agents.prompts as p\n"
        "from aauth_agents.protocol.errors import ConfigurationError\n"
        "try:\n"
        "    p.NotebookPrompts()\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'aauth-agents[notebook]'" in done.stdout
