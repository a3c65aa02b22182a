"""The structure ARCHITECTURE.md promises, checked (issue 12): small modules and functions,
no dispatch on a kind's name, pending-record states only through the state machine, and a
module tree that lists exactly the package's modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "aauth_agents"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)
STATES = {"pending", "interacting", "approved", "denied", "executing", "completed", "failed"}


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= 700, f"{_name(path)} has grown past 700 lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            assert length <= 60, f"{_name(path)}:{node.lineno} {node.name} is {length} lines"


def _is_kind(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "kind") or (
        isinstance(node, ast.Name) and node.id == "kind"
    )


def _dispatches(node: ast.Compare) -> bool:
    """``kind == X``, ``kind is X``, ``kind in ("a", "b")``: a test of a kind's identity.
    ``kind is None`` (a failed lookup) and ``kind in NAMED_SET`` (a lookup in a table) are
    not."""
    operands = [node.left, *node.comparators]
    if not any(_is_kind(o) for o in operands):
        return False
    others = [o for o in operands if not _is_kind(o)]
    for op, other in zip(node.ops, others, strict=False):
        if isinstance(other, ast.Constant) and other.value is None:
            continue
        if isinstance(op, (ast.In, ast.NotIn)) and not isinstance(
            other, (ast.Tuple, ast.List, ast.Set)
        ):
            continue
        return True
    return False


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_dispatch_on_a_kind(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            assert not _dispatches(node), (
                f"{_name(path)}:{node.lineno} tests a kind; look the kind up instead"
            )


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_pending_states_are_the_state_machines(path: Path) -> None:
    """No record's ``state`` is compared with, or set to, a string outside stores/states.py."""
    if _name(path) == "stores/states.py":
        return
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute):
            if node.left.attr == "state":
                literals = [c for c in node.comparators if isinstance(c, ast.Constant)]
                assert not any(c.value in STATES for c in literals), (
                    f"{_name(path)}:{node.lineno} tests a state string"
                )
        if isinstance(node, ast.keyword) and node.arg == "state":
            assert not (isinstance(node.value, ast.Constant) and node.value.value in STATES), (
                f"{_name(path)}:{node.value.lineno} writes a state string"
            )


def test_the_module_tree_lists_every_module() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    tree = text[text.index("## Module tree") :]
    listed = set(re.findall(r"^\| `([^`]+\.py)` \|", tree, flags=re.M))
    assert listed == {_name(p) for p in MODULES}
