"""Settings and fixtures shared by the whole suite. Helpers shared by test directories are
the modules of the ``support`` package (tests/support; ``pythonpath`` in pyproject.toml)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from support.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium

# Property tests assert behaviour, never time: a loaded CI machine must not turn a slow
# example into a failure (hypothesis' default deadline is 200 ms per example).
settings.register_profile("aauth", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("aauth")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A fresh headless Debian Chromium (its own temporary profile): the person's pages
    (tests/person_server_ui) and JupyterLab (tests/prompts)."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        # launch() gives every browser a fresh temporary profile (user data dir).
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()
