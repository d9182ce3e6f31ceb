"""Every relative link in README.md and docs/*.md points at a file of the checkout (and, with `#anchor`, at a
heading of that file), and every linked test name is defined in its file: the README was cut into docs/, and a
moved section or a renamed test must not leave a dead link behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(0).strip("`"), heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = FENCE.sub("", doc.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def dead_links(doc: Path) -> list[str]:
    """Each relative link of `doc` whose file (or heading) does not exist, as `target: why`."""
    text = CODE_SPAN.sub("", FENCE.sub("", doc.read_text(encoding="utf-8")))
    dead = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: - not this checkout's
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            dead.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            dead.append(f"{target}: no heading #{anchor} in {dest.name}")
    return dead


@pytest.mark.parametrize("doc", documents(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_at_an_existing_file(doc: Path) -> None:
    assert dead_links(doc) == []


TEST_LINK = re.compile(r"\[`(test_\w+)`\]\(([^)#\s]+\.py)\)")


def dead_test_names(doc: Path) -> list[str]:
    """Each link [`test_x`](tests/file.py) whose file defines no `test_x` (the check table names its planted-fault
    tests this way: a renamed test must not leave the table pointing at nothing)."""
    text = doc.read_text(encoding="utf-8")
    dead = []
    for name, path in TEST_LINK.findall(text):
        target = (doc.parent / path).resolve()
        if not target.is_file() or not re.search(rf"^\s*(async )?def {name}\(", target.read_text(encoding="utf-8"), re.M):
            dead.append(f"{name} in {path}")
    return dead


@pytest.mark.parametrize("doc", documents(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_linked_test_name_is_defined_in_the_linked_file(doc: Path) -> None:
    assert dead_test_names(doc) == []


def test_the_readme_check_table_links_its_planted_fault_tests() -> None:
    table = [line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    rows = {line.split("`")[1]: line for line in table}
    for check in ("inference", "repeat", "cross_process", "mutation", "golden", "batch_paths", "variations", "audit",
                  "probe", "bn_drift", "speed", "accuracy"):
        assert check in rows and "](tests/" in rows[check], check


def test_a_renamed_test_is_found(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_kept() -> None:\n    pass\n", encoding="utf-8")
    doc = tmp_path / "doc.md"
    doc.write_text("[`test_kept`](test_x.py), [`test_renamed`](test_x.py), [`test_kept`](gone.py)\n", encoding="utf-8")
    assert dead_test_names(doc) == ["test_renamed in test_x.py", "test_kept in gone.py"]


def test_the_docs_index_lists_every_document() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for doc in documents()[1:]:
        if doc.name != "README.md":
            assert f"]({doc.name})" in index, doc.name


def test_a_dead_link_and_a_dead_anchor_are_found(tmp_path: Path) -> None:
    """The planted faults: a link to a moved file, an anchor of a heading that is gone; links in code, to the web
    and to a heading that exists are not findings."""
    (tmp_path / "there.md").write_text("# There\n\n## The Ray way: one command\n", encoding="utf-8")
    doc = tmp_path / "doc.md"
    doc.write_text("[a](there.md) [b](gone.md) [c](there.md#the-ray-way-one-command) [d](there.md#scale-out)\n"
                   "[e](https://example.org/x) `[f](inline.md)`\n```\n[g](fenced.md)\n```\n", encoding="utf-8")
    assert dead_links(doc) == ["gone.md: no such file", "there.md#scale-out: no heading #scale-out in there.md"]
