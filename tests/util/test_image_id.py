"""One rule for image ids (harness.util.image_id): the corpus loader and the golden store accept the same ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from harness.corpus.loader import load_corpus
from harness.golden.store import GoldenStore, check_image_id
from harness.util.errors import UserError
from harness.util.image_id import image_id_problem

IDS = [  # (id, valid)
    ("slip_0001", True),
    ("branch_a/2024/slip 1.jpg", True),
    ("中文/回单-01", True),
    ("_meta/x", True),
    ("a..b", True),
    ("", False),
    ("../x", False),
    ("a/../../x", False),
    ("/etc/passwd", False),
    ("a//b", False),
    ("a/", False),
    ("./a", False),
    ("a/./b", False),
    ("a\\b", False),
    (".hidden", False),
    ("a/.b", False),
    ("_meta", False),
    ("x\x00y", False),
    ("x\x01y", False),
    ("x\ny", False),
    ("x\x7fy", False),
    ("C:evil", False),
]


def corpus_accepts(tmp_path: Path, image_id: str) -> bool:
    root = tmp_path / "corpus"
    root.mkdir()
    Image.new("RGB", (8, 8)).save(root / "a.png")
    (root / "manifest.jsonl").write_text(json.dumps({"id": image_id, "file": "a.png"}) + "\n", encoding="utf-8")
    try:
        (item,) = load_corpus(root).items
    except UserError:  # refused by the manifest itself (an empty id)
        return False
    return item.problem is None


def store_accepts(tmp_path: Path, image_id: str) -> bool:
    try:
        check_image_id(image_id)
        GoldenStore(tmp_path / "golden", "default").path_for(image_id)
    except UserError:
        return False
    return True


@pytest.mark.parametrize(("image_id", "valid"), IDS, ids=[repr(i) for i, _ in IDS])
def test_loader_and_store_accept_the_same_ids(tmp_path: Path, image_id: str, valid: bool) -> None:
    assert corpus_accepts(tmp_path, image_id) is valid
    assert store_accepts(tmp_path, image_id) is valid
    assert (image_id_problem(image_id) is None) is valid


def test_refusals_name_the_id_and_the_reason(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"image id 'a//b': empty, '\.' or '\.\.' path component"):
        check_image_id("a//b")
    root = tmp_path / "c"
    root.mkdir()
    Image.new("RGB", (8, 8)).save(root / "a.png")
    (root / "manifest.jsonl").write_text(json.dumps({"id": "_meta", "file": "a.png"}) + "\n", encoding="utf-8")
    assert load_corpus(root).items[0].problem == "unsafe id '_meta' ('_meta' is reserved)"
