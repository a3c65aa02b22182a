"""The examples and notebooks run, and show what they say they show."""

from __future__ import annotations

import contextlib
import io
import runpy
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def test_token_chain_example() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(ROOT / "examples" / "token_chain.py"), run_name="__main__")
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "agent token",
        "person token",
        "resource token",
        "auth token",
    ]
    assert "scope ('files.read',)" in lines[-1]


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 2, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each notebook in a fresh kernel (this interpreter), offline, with no person attached:
    any error or failed check cell fails the test, and every notebook ends with checks."""
    monkeypatch.setenv("AAUTH_NOTEBOOK_UNATTENDED", "1")  # the PS API decides, not a person
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):  # offline: notebook 04's real model off
        monkeypatch.delenv(key, raising=False)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=120,  # seconds per cell
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [output for cell in code for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert not [o for o in outputs if "Traceback" in o.get("text", "")]
    checks = [cell for cell in code if "assert " in cell.source]
    assert checks, f"{path.name} has no check cell"
    last = "".join(o.get("text", "") for o in checks[-1].outputs)
    assert "all checks passed" in last
