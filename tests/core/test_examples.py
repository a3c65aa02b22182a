"""The examples and notebooks run, and show what they say they show."""

from __future__ import annotations

import contextlib
import io
import runpy
from pathlib import Path

import nbformat
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


def test_signed_requests_notebook_executes() -> None:
    notebook = nbformat.read(ROOT / "notebooks" / "01_signed_requests.ipynb", as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = [
        "".join(o.get("text", "") for o in cell.get("outputs", []))
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]
    assert "created=" in outputs[1] and "sha-256=:" in outputs[1]
    assert outputs[2].startswith("aauth:notebook@agent.example True")
    assert "body  -> 401 Signature-Error: error=invalid_signature" in outputs[3]
    assert "path  -> 401 Signature-Error: error=invalid_signature" in outputs[3]
