"""Fixtures for the LangChain integration: the three parties on loopback
(:class:`~aauth_agents.servers.stack.LocalStack`: agent provider, person server with its
pages, the demo resource), a fresh agent per test (:class:`support.langchain.Party`), and the
person -- scripted through the PS's interaction path, or in Debian's headless Chromium on the
real consent pages (:class:`support.langchain.BrowserPerson`).

Chromium is required (never skipped): CI installs Debian's ``chromium``; Playwright drives
it through ``executable_path`` and never downloads a browser.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from support.browser import require_chromium
from support.langchain import BrowserPerson, Party

from aauth_agents.servers.stack import LocalStack

_agents = itertools.count(1)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as local:
        yield local


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def party(stack: LocalStack) -> Any:
    made = Party(stack, stack.enroll(f"aauth:agent{next(_agents)}@agent.example"))
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture(scope="module")
def browser_person(stack: LocalStack) -> Iterator[BrowserPerson]:
    require_chromium()
    person = BrowserPerson(stack)
    try:
        yield person
    finally:
        person.close()
