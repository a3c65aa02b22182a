"""notebooks/02_agent_meets_a_protected_api.ipynb in JupyterLab, in headless Chromium, with a
person clicking through consent (issue 14's acceptance).

JupyterLab (:class:`support.notebook.JupyterLab`: its kernels see neither ``CI`` nor
``AAUTH_NOTEBOOK_UNATTENDED``, so the notebook waits for a person) serves a copy of the
notebook; the test opens it and runs all cells from the Run menu. The notebook starts its own
parties on loopback (``LocalStack``) and prints the person's credentials; each
NotebookPrompts link is the PS's loopback address, which the person opens in a second tab,
signs in with those credentials (the first time) and approves: the person token, then
``files.read``; for the step-up to ``files.write`` the person first asks a question on the
consent page, answers it in the clarification widget under the cell, and approves -- what
the notebook's markdown tells its reader to do. The check cell must print *all checks
passed*; no cell may end in an error (the notebook, saved from JupyterLab, is read back).

Screenshots (JupyterLab with the widgets, the consent pages) go to
``$AAUTH_ARTIFACTS/notebook-02`` (a temporary folder when unset).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from support.notebook import TIMEOUT, JupyterLab, approve, open_the_link, screenshot

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks/02_agent_meets_a_protected_api.ipynb"
JUSTIFICATION = "Tidy up your notes"  # what the notebook's agent says
#: ms the notebook may take, after the person's last click, to reach its last cell
FINISH = 120_000


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    return Path(os.environ.get("AAUTH_ARTIFACTS") or tmp_path) / "notebook-02"


def cell(page: Any, source: str) -> Any:
    """The code cell whose source contains ``source``."""
    return page.locator(".jp-CodeCell").filter(has=page.locator(".jp-InputArea", has_text=source))


async def menu(page: Any, menu: str, item: str) -> None:
    """``menu`` > ``item`` in JupyterLab's menu bar, as a person clicks it."""
    await page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{menu}$")).click()
    await page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).click()


async def run_all_cells(page: Any) -> None:
    """Once the kernel is idle, Run > Run All Cells, until JupyterLab queues the cells (a run
    asked while the notebook still connects to its kernel may be dropped: it is asked
    again)."""
    await page.locator("#jp-main-statusbar", has_text="Idle").wait_for(timeout=TIMEOUT)
    queued = page.locator(".jp-CodeCell .jp-InputPrompt", has_text="[*]:").first
    for _attempt in range(3):
        await menu(page, "Run", "Run All Cells")
        try:
            await queued.wait_for(timeout=10_000)
            return
        except Exception:  # Playwright's TimeoutError: ask again
            await page.keyboard.press("Escape")
    raise AssertionError("JupyterLab did not run the notebook's cells")


async def credentials(page: Any) -> tuple[str, str]:
    """The person's account, as the first cell prints it once it ran."""
    first = cell(page, "stack = LocalStack(")
    await first.locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]:")).wait_for(
        timeout=TIMEOUT
    )
    printed = first.locator(".jp-OutputArea-output", has_text="sign in there")
    await printed.wait_for(timeout=TIMEOUT)
    text = str(await printed.text_content())
    found = re.search(r"sign in there as '([^']+)', password '([^']+)'", text)
    assert found, text
    return found.group(1), found.group(2)


async def waiting_widget(page: Any, source: str) -> Any:
    """The interaction widget under the cell with ``source``, waiting for the person."""
    widget = cell(page, source).locator(".aauth-interaction")
    waiting = widget.filter(has=page.locator(".aauth-status[data-status='waiting']"))
    await waiting.wait_for(timeout=TIMEOUT)
    await widget.scroll_into_view_if_needed(timeout=TIMEOUT)  # where the person looks
    return widget


async def step_up_with_a_question(page: Any, password: str, folder: Path) -> None:
    """``POST /files``: the person asks on the consent page, answers in the clarification
    widget under the cell, reads the answer on the page and approves."""
    source = 'write_with_a_question("shopping.txt"'
    widget = await waiting_widget(page, source)
    consent = await open_the_link(
        page.context,
        widget,
        "files-write",
        justification=JUSTIFICATION,
        password=password,
        folder=folder,
    )
    # not the notebook's own words when no one is attached: this exchange is the person's
    await consent.fill("#ask textarea[name=question]", "Which file, and what goes in it?")
    await consent.click("#ask button[value=ask]")
    question = cell(page, source).locator(".aauth-clarification")
    await question.wait_for(timeout=TIMEOUT)
    said = await question.locator(".aauth-question").inner_text()
    assert "Which file, and what goes in it?" in said, said
    await question.locator("textarea").fill("Only `shopping.txt`: *milk* and bread.")
    await question.locator("button", has_text="Send").click()
    await question.locator(".aauth-status[data-status='answered']").wait_for(timeout=TIMEOUT)
    await screenshot(page, "jupyterlab-clarification-answered.png", folder)
    answer = consent.locator("#answer-0")
    await answer.wait_for(timeout=TIMEOUT)  # the consent page refreshes while waiting
    assert await answer.inner_text() == "Only shopping.txt: milk and bread."
    await screenshot(consent.locator("body"), "consent-files-write-answered.png", folder)
    await approve(consent, widget, "files-write", folder)


async def all_checks_passed(page: Any) -> None:
    """The check cell prints *all checks passed*, every cell ran, and none shows a
    traceback."""
    passed = cell(page, 'print("all checks passed")').locator(
        ".jp-OutputArea-output", has_text="all checks passed"
    )
    traceback = page.locator(".jp-OutputArea-output", has_text="Traceback")
    await passed.or_(traceback).first.wait_for(timeout=FINISH)
    assert not await traceback.count(), await traceback.first.inner_text()
    running = page.locator(".jp-CodeCell .jp-InputPrompt", has_text="[*]:")
    deadline = time.monotonic() + 30
    while await running.count() and time.monotonic() < deadline:
        await page.wait_for_timeout(200)
    assert not await running.count(), "a cell is still running"


async def saved_without_errors(page: Any, lab: JupyterLab) -> None:
    """File > Save; the saved notebook has no error output and ends with its checks."""
    saved = lab.root / NOTEBOOK.name
    before = saved.stat().st_mtime_ns
    await menu(page, "File", "Save Notebook")
    deadline = time.monotonic() + 30
    while saved.stat().st_mtime_ns == before and time.monotonic() < deadline:
        await page.wait_for_timeout(200)
    notebook = nbformat.read(saved, as_version=4)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors
    assert any("all checks passed" in o.get("text", "") for o in outputs)


async def test_a_person_clicks_through_the_widget_notebook_in_jupyterlab(
    lab: JupyterLab, browser: Any, artifacts: Path
) -> None:
    shutil.copy(NOTEBOOK, lab.root / NOTEBOOK.name)
    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
    page = await context.new_page()
    try:
        await page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
        await run_all_cells(page)
        person, password = await credentials(page)
        assert person == "alice"
        for source, name in (
            ('request("GET", "/profile")', "person-token"),
            ('request("GET", "/files")', "files-read"),
        ):
            widget = await waiting_widget(page, source)
            await screenshot(page, f"jupyterlab-{name}-waiting.png", artifacts)
            consent = await open_the_link(
                context,
                widget,
                name,
                justification=JUSTIFICATION,
                password=password,
                folder=artifacts,
            )
            await screenshot(consent.locator("body"), f"consent-{name}.png", artifacts)
            await approve(consent, widget, name, artifacts)
        await step_up_with_a_question(page, password, artifacts)
        await all_checks_passed(page)
        await screenshot(page, "jupyterlab-all-checks-passed.png", artifacts)
        await saved_without_errors(page, lab)
    except Exception:
        await screenshot(page, "jupyterlab-failure.png", artifacts)
        raise
    finally:
        await context.close()
