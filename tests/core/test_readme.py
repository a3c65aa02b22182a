"""The README's commands and example stay true."""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return [b.strip() for b in re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)]


def test_ci_runs_the_readme_test_command() -> None:
    demo, tests = _blocks("sh")[:2]
    assert "aauth-agents demo" in demo
    assert "pytest" in (ROOT / tests.split()[-1]).read_text()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines, "the README's test command must appear verbatim in .ci/run"


def test_readme_python_examples_compile() -> None:
    """Every example is valid Python (a notebook's top-level ``await`` included); the one
    signing a request by hand (no network needed) also runs, below."""
    blocks = _blocks("python")
    assert len(blocks) >= 3
    for block in blocks:
        compile(block, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_readme_python_example_runs() -> None:
    [example] = [b for b in _blocks("python") if "sign_request(" in b]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, "README.md", "exec"), {})
    assert out.getvalue().strip() == "aauth:assistant@agent.example"
