"""The documentation site (issue 14): it builds with warnings as errors, its API reference
covers every public name of the public modules, each with a docstring, and every notebook
is a page.

The reference pages are ``docs/reference/*.md``, each a ``::: module`` directive rendered by
mkdocstrings from ``__all__``; the built site's ``objects.inv`` lists what was rendered."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import pkgutil
import re
import subprocess
import sys
import zlib
from pathlib import Path

import griffe
import pytest

import aauth_agents.integrations

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"

#: The public modules: each must have a reference entry for every name in its ``__all__``.
PUBLIC = [
    "aauth_agents",
    "aauth_agents.agent",
    "aauth_agents.resource",
    "aauth_agents.protocol",
    "aauth_agents.keys",
    "aauth_agents.httpsig",
    "aauth_agents.tokens",
    "aauth_agents.discovery",
    "aauth_agents.stores",
    "aauth_agents.stores.redis",
    "aauth_agents.network",
    "aauth_agents.transport",
    "aauth_agents.transport_httpx2",
    "aauth_agents.sansio",
    "aauth_agents.servers",
    "aauth_agents.servers.stack",
    "aauth_agents.servers.dev",
    "aauth_agents.servers.person_server",
    "aauth_agents.prompts",
    "aauth_agents.cli",
    # ... and every integration module (found below, so that a new one cannot be missed).
]
INTEGRATIONS = [
    f"aauth_agents.integrations.{info.name}"
    for info in pkgutil.iter_modules(aauth_agents.integrations.__path__)
    if not info.name.startswith("_")
]
MODULES = PUBLIC + INTEGRATIONS


def _directives() -> set[str]:
    found: set[str] = set()
    for page in REFERENCE.glob("*.md"):
        found.update(re.findall(r"^::: (\S+)$", page.read_text(), flags=re.M))
    return found


def _public_names(module: str) -> list[str]:
    names: list[str] = importlib.import_module(module).__all__
    return names


def test_integration_modules_are_found() -> None:
    assert {"mcp", "mcp_proxy", "langchain"} <= {m.rsplit(".", 1)[1] for m in INTEGRATIONS}


@pytest.mark.parametrize("module", MODULES)
def test_every_public_module_has_a_reference_page_in_the_nav(module: str) -> None:
    assert module in _directives(), f"no `::: {module}` in docs/reference/*.md"
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in REFERENCE.glob("*.md"):
        assert f"reference/{page.name}" in nav, f"docs/reference/{page.name} is not in the nav"


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    """The package as mkdocstrings sees it (``#:`` comments are docstrings there)."""
    loaded = griffe.load(
        "aauth_agents",
        search_paths=[str(ROOT)],
        extensions=griffe.load_extensions("griffe_sphinx"),
        resolve_aliases=True,
        resolve_external=False,
    )
    assert isinstance(loaded, griffe.Module)
    return loaded


def _external(obj: griffe.Object | griffe.Alias) -> bool:
    """Whether ``obj`` re-exports another package's object (the MCP SDK's ``McpServer``)."""
    return obj.is_alias and not obj.target_path.startswith("aauth_agents.")


def _member(package: griffe.Module, module: str, name: str) -> griffe.Object | griffe.Alias:
    """``module.name`` as griffe has it. A function named like the submodule it comes from
    (``langchain.governed``) is shadowed there by the submodule: take it from the submodule."""
    mod = package if module == "aauth_agents" else package[module.removeprefix("aauth_agents.")]
    obj = mod.members.get(name)
    assert obj is not None, f"{module}.{name} is in __all__ but not in the module"
    runtime = getattr(importlib.import_module(module), name)
    if not _external(obj) and obj.is_module and not inspect.ismodule(runtime):
        path = f"{runtime.__module__}.{runtime.__qualname__}"
        obj = package[path.removeprefix("aauth_agents.")]
    return obj


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_has_a_docstring(package: griffe.Module, module: str) -> None:
    mod = package if module == "aauth_agents" else package[module.removeprefix("aauth_agents.")]
    missing = []
    for name in _public_names(module):
        obj = _member(package, module, name)
        if _external(obj):
            # Documented by its own package; the module's docstring says what it stands for.
            assert mod.docstring is not None and name in mod.docstring.value, (module, name)
            continue
        target = obj.final_target if obj.is_alias else obj
        if target.docstring is None or not target.docstring.value.strip():
            missing.append(f"{name} ({target.path})")
    assert not missing, f"{module}: no docstring for {', '.join(missing)}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as CI builds it: ``mkdocs build --strict`` (a warning fails it)."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    warnings = [line for line in log.splitlines() if re.match(r"\s*(WARNING|ERROR)\b", line)]
    assert not warnings, "\n".join(warnings)
    return out


def _inventory(site: Path) -> set[str]:
    """The names in the site's Sphinx inventory (``objects.inv``, version 2)."""
    data = (site / "objects.inv").read_bytes()
    header, _, compressed = data.partition(b"zlib.\n")
    assert header.startswith(b"# Sphinx inventory version 2")
    body = zlib.decompress(compressed).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines() if line}


def test_site_builds_strictly(site: Path) -> None:
    for page in ("index.html", "quickstart/index.html", "concepts/index.html"):
        assert (site / page).is_file(), page
    concepts = (site / "concepts" / "index.html").read_text()
    assert '<pre class="mermaid">' in concepts  # the sequence diagram is rendered
    architecture = (site / "architecture" / "index.html").read_text()
    assert "Module tree" in architecture  # ARCHITECTURE.md, included


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_is_in_the_reference(
    site: Path, package: griffe.Module, module: str
) -> None:
    inventory = _inventory(site)
    absent = []
    for name in _public_names(module):
        obj = _member(package, module, name)
        if _external(obj):
            continue
        # Rendered where __all__ puts it, or (a shadowed name) at its own path.
        if f"{module}.{name}" not in inventory and obj.path not in inventory:
            absent.append(name)
    assert not absent, f"{module}: not in the reference: {', '.join(absent)}"


def test_every_notebook_is_a_page(site: Path) -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for notebook in notebooks:
        assert f"notebooks/{notebook.name}" in nav, f"{notebook.name} is not in the nav"
        assert (site / "notebooks" / notebook.stem / "index.html").is_file(), notebook.name


def test_sphinx_roles_become_optional_links() -> None:
    spec = importlib.util.spec_from_file_location(
        "griffe_roles", ROOT / "scripts" / "griffe_roles.py"
    )
    assert spec is not None and spec.loader is not None
    roles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(roles)
    text = "Use :class:`~aauth_agents.agent.AAuth` or :func:`load_identity`, not ``x``."
    assert roles.rewrite(text) == (
        'Use <autoref identifier="aauth_agents.agent.AAuth" optional><code>AAuth</code>'
        '</autoref> or <autoref identifier="load_identity" optional><code>load_identity()'
        "</code></autoref>, not ``x``."
    )
