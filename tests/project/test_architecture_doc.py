"""docs/architecture.md's layout drawing matches the tree: every folder and module of harness/ (and of run/, whose
folders are its roles) is drawn, and everything drawn exists. A module added, moved or removed without the drawing
following fails here, so the newcomer's map stays the territory."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

DOC = ROOT / "docs" / "architecture.md"
NOT_CODE = {"__init__.py", "__pycache__"}


def drawn(text: str, indent: int) -> set[str]:
    """The entries at `indent` spaces in the first fenced block (the layout drawing)."""
    block = text.split("```", 2)[1]
    return set(re.findall(rf"^ {{{indent}}}([a-z_]+/|[a-z_]+\.py)\s", block, re.M))


def on_disk(folder: Path) -> set[str]:
    return {p.name + ("/" if p.is_dir() else "") for p in folder.iterdir()
            if p.name not in NOT_CODE and (p.is_dir() or p.suffix == ".py")}


def test_the_drawing_names_every_package_folder_and_top_level_module() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert drawn(text, 2) == on_disk(ROOT / "harness") - {"schemas/"}  # schemas/: drawn with templates/
    assert drawn(text, 4) == on_disk(ROOT / "harness" / "run")


def test_a_module_missing_from_the_drawing_is_named(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8").replace("  keyfields.py ", "  keyfield.py ", 1)
    assert "keyfields.py" in on_disk(ROOT / "harness") - drawn(text, 2)
