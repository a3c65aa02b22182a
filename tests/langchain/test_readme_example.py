"""The README's LangChain example runs as written (it starts its own parties on loopback)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_langchain_example_runs() -> None:
    [example] = [
        block
        for block in re.findall(r"```python\n(.*?)```", README, flags=re.S)
        if "LocalStack()" in block
    ]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, "README.md", "exec"), {})
    assert '"name":"welcome.txt"' in out.getvalue()
