"""Griffe extension for the documentation site: Sphinx roles in docstrings become links.

The package's docstrings cross-reference with Sphinx roles (``:class:`~aauth_agents.x.Y```).
This rewrites each role, once the package is loaded, into an *optional* autorefs link: a
link where the target has a reference entry, the name in code where it has none (a private
helper, a relative name), and never a warning under ``mkdocs build --strict``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?P<role>class|func|meth|attr|mod|exc|data|obj|const)"
    r":`(?P<tilde>~?)(?P<text>[^`<]*?)\s*(?:<(?P<target>[^>`]+)>)?`"
)


def _link(match: re.Match[str]) -> str:
    text, target = match["text"].strip(), match["target"]
    if target is None:
        target = text
        text = text.rsplit(".", 1)[-1] if match["tilde"] else text
    if match["role"] in {"func", "meth"} and not text.endswith(")"):
        text += "()"
    return f'<autoref identifier="{target}" optional><code>{text}</code></autoref>'


def rewrite(docstring: str) -> str:
    """The docstring with each Sphinx role replaced by an optional autorefs link."""
    return _ROLE.sub(_link, docstring)


class SphinxRoles(griffe.Extension):
    """Rewrites the roles of every docstring in the loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = rewrite(obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
