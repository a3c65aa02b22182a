"""Headless Chromium for the tests that click through the person's pages: Debian's
``/usr/bin/chromium`` driven by Playwright (never ``playwright install``). A missing browser
or Playwright FAILS the test that needs it (:func:`require_chromium`), never skips it."""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def require_chromium() -> None:
    """Fail the calling test unless Debian's Chromium and the playwright package are here."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: these tests need Debian's Chromium "
            "(apt-get install -y chromium)",
            pytrace=False,
        )
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail(
            "the playwright package is missing (pip install playwright; the browser "
            "is Debian's chromium, never `playwright install`)",
            pytrace=False,
        )
