"""What an agent does with no configuration beyond its identity, against a real stack
(:class:`~aauth_agents.servers.stack.LocalStack`: agent provider, PS and demo resource on
loopback): a plain ``httpx.Client`` / ``httpx.AsyncClient`` waits for a person longer than
its own read timeout; with no prompt, the person is shown the link and code (plain lines
without a terminal, the terminal's prompt on one); an unattended agent's errors carry the
interaction a person needs.

The person decides through the PS's own interaction path, after a delay the test sets
(a timer), never by asserting how long anything took.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest

from aauth_agents.agent import (
    AAuth,
    DeniedError,
    InteractionRequired,
    PollTimeoutError,
    UserUnreachableError,
)
from aauth_agents.prompts import Prompts
from aauth_agents.servers.stack import AGENT_PROVIDER, LocalStack

#: Longer than httpx's default read timeout (5 s): the person decides after this.
PAST_THE_READ_TIMEOUT = 6.5
LINK = re.compile(r"Open:\s+(https://ps\.example/\S+)\?code=([0-9A-Z-]+)")

#: An agent in its plainest form, as a script: an identity (enrolled with a one-time code)
#: and a plain httpx.Client -- no prompt, no timeout, no max_redirects.
AGENT_SCRIPT = """
import json, sys
import httpx
from aauth_agents.agent import AAuth
from aauth_agents.servers.agent_provider import AgentProviderClient
from aauth_agents.transport import MappedTransport

mapping, code, url = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
transport = MappedTransport(mapping)
with httpx.Client(transport=transport) as enrolling:
    identity = AgentProviderClient(AGENT_PROVIDER, enrolling).enroll(code)
with httpx.Client(auth=AAuth(identity), transport=transport) as client:
    response = client.get(url)
print("status", response.status_code, flush=True)
""".replace("AGENT_PROVIDER", repr(AGENT_PROVIDER))


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


_AGENTS = itertools.count(1)


def _agent(stack: LocalStack) -> Any:
    """A new agent (a new one per test: the PS remembers an agent's consent)."""
    return stack.enroll(f"aauth:agent{next(_AGENTS)}@agent.example")


def _person_decides_later(stack: LocalStack, delay: float, decide: str = "approve") -> Any:
    """An ``on_interaction`` callback: the person opens the link and decides ``delay``
    seconds after the agent showed it."""

    def on_interaction(url: str, code: str) -> None:
        threading.Timer(delay, getattr(stack, decide), args=(url, code)).start()

    return on_interaction


# -- long polls and the client's read timeout --------------------------------------------------


def test_a_plain_client_waits_past_its_read_timeout(stack: LocalStack) -> None:
    """httpx's default timeout is 5 s; the person decides later, while a long poll
    (``Prefer: wait=30``) is held: its read timeout is above the wait."""
    reads: list[tuple[str | None, float | None]] = []

    def record(request: httpx.Request) -> None:
        reads.append((request.headers.get("prefer"), request.extensions["timeout"]["read"]))

    auth = AAuth(_agent(stack), on_interaction=_person_decides_later(stack, PAST_THE_READ_TIMEOUT))
    with httpx.Client(
        auth=auth, transport=stack.transport(), event_hooks={"request": [record]}
    ) as client:
        assert client.timeout.read == 5.0
        response = client.get(f"{stack.resource}/profile")
    assert response.status_code == 200
    assert {read for prefer, read in reads if prefer == "wait=30"} == {40.0}
    assert {read for prefer, read in reads if prefer is None} == {5.0}


async def test_a_plain_async_client_waits_past_its_read_timeout(stack: LocalStack) -> None:
    auth = AAuth(_agent(stack), on_interaction=_person_decides_later(stack, PAST_THE_READ_TIMEOUT))
    async with httpx.AsyncClient(auth=auth, transport=stack.async_transport()) as client:
        assert client.timeout.read == 5.0
        response = await client.get(f"{stack.resource}/profile")
    assert response.status_code == 200


def test_a_client_without_timeouts_keeps_none(stack: LocalStack) -> None:
    """``timeout=None`` (and a ``None`` read piece) stays unlimited: nothing is imposed."""
    reads: list[Any] = []
    auth = AAuth(_agent(stack), on_interaction=_person_decides_later(stack, 0.2))
    hooks = {"request": [lambda request: reads.append(request.extensions.get("timeout"))]}
    for timeout in (None, httpx.Timeout(3.0, read=None)):
        with httpx.Client(
            auth=auth, transport=stack.transport(), timeout=timeout, event_hooks=hooks
        ) as client:
            assert client.get(f"{stack.resource}/profile").status_code == 200
        auth.clear_cache()
    assert reads and all(read["read"] is None for read in reads)


# -- errors carry the interaction ----------------------------------------------------------------


def test_an_unattended_agent_names_the_interaction_in_its_error(stack: LocalStack) -> None:
    auth = AAuth(_agent(stack), unattended=True)
    with httpx.Client(auth=auth, transport=stack.transport()) as client:
        with pytest.raises(UserUnreachableError) as caught:
            client.get(f"{stack.resource}/profile")
    error = caught.value
    assert error.code == "user_unreachable"
    assert error.interaction_url is not None and error.interaction_code is not None
    assert error.interaction_url.startswith(f"{stack.person_server}/interact")
    assert f"{error.interaction_url}?code={error.interaction_code}" in str(error)
    # what a log or a model sees of it has neither
    for shown in (repr(error), error.detail, json.dumps(error.problem())):
        assert error.interaction_code not in shown and error.interaction_url not in shown
    # the link works: the person can still decide, and the agent's next call succeeds
    stack.approve(error.interaction_url, error.interaction_code)


def test_a_denial_and_a_timeout_name_the_interaction(stack: LocalStack) -> None:
    shown: list[tuple[str, str]] = []

    def on_event(event: Any) -> None:
        if isinstance(event, InteractionRequired):
            shown.append((event.url, event.code))

    denying = AAuth(
        _agent(stack),
        on_interaction=_person_decides_later(stack, 0.1, "deny"),
        on_event=on_event,
    )
    with httpx.Client(auth=denying, transport=stack.transport()) as client:
        with pytest.raises(DeniedError) as denied:
            client.get(f"{stack.resource}/profile")
    assert (denied.value.interaction_url, denied.value.interaction_code) == shown[-1]

    waiting = AAuth(
        _agent(stack),
        on_interaction=lambda url, code: None,  # nobody comes
        on_event=on_event,
        prefer_wait=1,
        max_poll_seconds=2,
    )
    with httpx.Client(auth=waiting, transport=stack.transport()) as client:
        with pytest.raises(PollTimeoutError) as timed_out:
            client.get(f"{stack.resource}/profile")
    assert (timed_out.value.interaction_url, timed_out.value.interaction_code) == shown[-1]
    assert shown[-1][1] in str(timed_out.value)


def test_the_default_prompt_and_the_callbacks() -> None:
    """The default prompt takes the interaction when only ``on_clarification`` is given;
    none is made for an unattended agent or a sub-agent's (its parent asks)."""
    from support.agent import World

    from aauth_agents.prompts import TerminalPrompts

    world = World()
    answers = AAuth(world.identity, on_clarification=lambda question, options, timeout: "yes")
    interaction = answers.config.on_interaction
    assert isinstance(getattr(interaction, "__self__", None), TerminalPrompts)
    assert not isinstance(getattr(answers.config.on_clarification, "__self__", None), Prompts)
    assert AAuth(world.identity, unattended=True).config.on_interaction is None
    child = AAuth(world.sub_identity(), parent=AAuth(world.identity))
    assert child.config.on_interaction is None


def test_the_default_prompt_hears_only_a_pending_requests_events() -> None:
    """The default prompt's live status needs a pending request's own events; every other
    step's event is emitted only for an ``on_event`` hook or given ``prompts`` (the warm path
    then emits nothing), also in a derived view."""
    from support.agent import World

    from aauth_agents.prompts import TerminalPrompts

    world = World()
    default = AAuth(world.identity)
    assert (default.config.events, default.config.pending_events) == (False, True)
    assert default.derive().config.events is False
    assert default.derive(on_event=print).config.events is True
    hooked = AAuth(world.identity, on_event=print)
    assert (hooked.config.events, hooked.config.pending_events) == (True, True)
    prompted = AAuth(world.identity, prompts=TerminalPrompts())
    assert prompted.config.events is True
    unattended = AAuth(world.identity, unattended=True)
    assert (unattended.config.events, unattended.config.pending_events) == (False, False)


def test_unattended_excludes_prompts() -> None:
    from support.agent import World

    from aauth_agents.protocol.errors import ConfigurationError

    identity = World().identity
    with pytest.raises(ConfigurationError):
        AAuth(identity, unattended=True, on_interaction=lambda url, code: None)


# -- the default prompt ------------------------------------------------------------------------


def _script(tmp_path: Path, stack: LocalStack) -> list[str]:
    script = tmp_path / "agent.py"
    script.write_text(AGENT_SCRIPT)
    code = stack.ap.create_enrollment(f"aauth:newcomer{next(_AGENTS)}@agent.example")
    return [str(script), json.dumps(stack.mapping), code, f"{stack.resource}/profile"]


def _env(tmp_path: Path) -> dict[str, str]:
    browser = tmp_path / "browser.py"
    browser.write_text(
        f"import sys\nopen({str(tmp_path / 'opened.txt')!r}, 'a').write(sys.argv[1] + '\\n')\n"
    )
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "BROWSER": f"{sys.executable} {browser} %s",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }


def test_without_a_prompt_the_link_is_printed_in_plain_words(
    stack: LocalStack, tmp_path: Path
) -> None:
    """No terminal (stderr is a pipe, as in a notebook or a log): plain sentences with the
    link and the code, then the outcome; no token anywhere."""
    agent = subprocess.Popen(
        [sys.executable, *_script(tmp_path, stack)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(tmp_path),
        text=True,
    )
    try:
        assert agent.stderr is not None and agent.stdout is not None
        printed: list[str] = []
        for line in agent.stderr:
            printed.append(line)
            match = LINK.search(line)
            if match:
                break
        assert match is not None, printed
        assert any(
            "The agent needs your approval at https://resource.example." in line for line in printed
        )
        stack.approve(match.group(1), match.group(2))
        rest = agent.stderr.read()  # (to the end: the agent exits)
        out = agent.stdout.read()
        agent.wait(timeout=60)
    finally:
        agent.kill()
    assert "status 200" in out
    text = "".join(printed) + rest
    assert f"Code:  {match.group(2)}" in text and "Approved." in text
    assert "{" not in text and "eyJ" not in text  # no JSON lines, no token


def test_on_a_terminal_the_default_prompt_offers_the_browser(
    stack: LocalStack, tmp_path: Path
) -> None:
    child = pexpect.spawn(
        sys.executable,
        _script(tmp_path, stack),
        env=_env(tmp_path),
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 160),
    )
    try:
        child.expect(LINK)
        assert child.match is not None
        url, code = child.match.group(1), child.match.group(2)
        child.expect("Press Enter to open it in your browser")
        child.send("\r")
        child.expect("in your browser...")
        opened = tmp_path / "opened.txt"
        for _ in range(100):
            if opened.exists() and opened.read_text().strip():
                break
            threading.Event().wait(0.05)
        assert opened.read_text().split() == [f"{url}?code={code}"]
        stack.approve(url, code)
        child.expect("Approved")
        child.expect("status 200")
    finally:
        child.close(force=True)
