"""MkDocs hook: the notebooks in ``notebooks/`` become pages under ``notebooks/``.

The notebooks live at the repository's root (their tests execute them there); this adds
them to the site's files, before mkdocs-jupyter wraps them, so that no copy or symlink is
needed and adding one is one line in ``mkdocs.yml``'s nav.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files


@event_priority(100)  # before mkdocs-jupyter's on_files, which wraps .ipynb pages
def on_files(files: Files, config: Any) -> Files:
    root = Path(config["config_file_path"]).parent / "notebooks"
    for notebook in sorted(root.glob("*.ipynb")):
        files.append(
            File(
                f"notebooks/{notebook.name}",
                src_dir=str(root.parent),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files
