"""load_corpus / validate_corpus on small crafted corpora, good and bad."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from memory import peak_above_baseline
from PIL import Image

from harness.checks.registry import catalogue
from harness.cli import main
from harness.config import load_profile
from harness.corpus.loader import load_corpus, validate_corpus
from harness.util.errors import UserError


def _png(path: Path, shade: int = 128, size: tuple[int, int] = (32, 24)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), shade, np.uint8)).save(path, "PNG")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(root: Path, records: list[dict | str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path = root / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def good(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    records = []
    for i, (tags, subsets) in enumerate([(["clean"], ["smoke", "full"]), (["blur"], ["full"]),
                                         (["blur", "jpeg"], ["smoke", "full"])]):
        sha = _png(root / "images" / f"s{i}.png", shade=40 * i)
        records.append({"id": f"s{i}", "file": f"images/s{i}.png", "sha256": sha, "template": "t", "tags": tags,
                        "subsets": subsets, "fields": {"amount": "1.00", "n": 5},
                        "lines": [{"text": "人民币", "poly": [[1, 1], [20, 1], [20, 9], [1, 9]]},
                                  {"text": "box", "poly": [2, 3, 10, 12]}]})
    _manifest(root, records)
    return root


def test_loads_everything(good: Path) -> None:
    corpus = load_corpus(good)
    assert corpus.has_manifest and corpus.selection_is_complete and corpus.root == good
    assert [i.id for i in corpus.items] == ["s0", "s1", "s2"]
    item = corpus.items[0]
    assert item.path == good / "images" / "s0.png" and item.problem is None and item.template == "t"
    assert item.truth[0].text == "人民币" and item.truth[0].poly == ((1, 1), (20, 1), (20, 9), (1, 9))
    assert item.truth[1].poly == ((2, 3), (10, 3), (10, 12), (2, 12))
    assert dict(item.fields) == {"amount": "1.00", "n": "5"}
    with pytest.raises(TypeError):
        item.fields["amount"] = "2"  # type: ignore[index]
    assert corpus.subsets == {"smoke": ("s0", "s2"), "full": ("s0", "s1", "s2")}
    assert validate_corpus(good) == []


def test_manifest_file_path_works_too(good: Path) -> None:
    assert len(load_corpus(good / "manifest.jsonl").items) == 3


def test_selection(good: Path) -> None:
    smoke = load_corpus(good, subset="smoke")
    assert [i.id for i in smoke.items] == ["s0", "s2"] and not smoke.selection_is_complete
    assert [i.id for i in load_corpus(good, tags=["blur"]).items] == ["s1", "s2"]
    assert [i.id for i in load_corpus(good, tags=["clean", "jpeg"]).items] == ["s0", "s2"]  # any of the tags
    assert [i.id for i in load_corpus(good, subset="smoke", tags=["blur"]).items] == ["s2"]
    assert [i.id for i in load_corpus(good, ids=["s1"]).items] == ["s1"]
    assert load_corpus(good, subset="full").selection_is_complete


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subset": "nightly"}, "unknown subset 'nightly'.*known: full, smoke"),
        ({"ids": ["s1", "nope"]}, "unknown id 'nope'"),
        ({"tags": ["fax"]}, "unknown tag 'fax'"),
        ({"subset": "smoke", "ids": ["s1"]}, "empty selection"),
    ],
)
def test_selection_errors(good: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_corpus(good, **kwargs)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="corpus not found"):
        load_corpus(tmp_path / "nowhere")
    assert "corpus not found" in validate_corpus(tmp_path / "nowhere")[0]


def test_unparsable_manifest_names_file_and_line(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    _manifest(tmp_path, [{"file": "a.png"}, "", "{not json", '["a list"]', {"id": "x"},
                         {"file": "a.png", "id": "b", "lines": [{"text": "t", "poly": [[1, 2]]}]},
                         {"file": "a.png", "id": "c", "sha256": "abc"}])
    with pytest.raises(UserError, match=r"manifest.jsonl:3: invalid JSON.*and 4 more"):
        load_corpus(tmp_path)
    problems = validate_corpus(tmp_path)
    assert [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in problems] == ["3", "4", "5", "6", "7"]
    assert "must be a JSON object" in problems[1] and "'file'" in problems[2]
    assert "lines[0]" in problems[3] and "64 hex" in problems[4]


def test_empty_manifest_and_empty_dir(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    _manifest(tmp_path / "m", [])
    with pytest.raises(UserError, match="no images"):
        load_corpus(tmp_path / "m")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="no images"):
        load_corpus(tmp_path / "d")
    assert validate_corpus(tmp_path / "d") == [f"no images in corpus {tmp_path / 'd'}"]


def test_item_problems_do_not_stop_the_load(tmp_path: Path) -> None:
    root = tmp_path / "c"
    sha = _png(root / "ok.png")
    _png(tmp_path / "outside.png")
    os.symlink(tmp_path / "outside.png", root / "link.png")
    (root / "zero.png").write_bytes(b"")
    (root / "junk.png").write_text("junk")
    _png(root / "tiny.png", size=(4, 4))
    _manifest(root, [
        {"id": "ok", "file": "ok.png", "sha256": sha},
        {"id": "badsha", "file": "ok.png", "sha256": "f" * 64},
        {"id": "gone", "file": "missing.png"},
        {"id": "up", "file": "../outside.png"},
        {"id": "abs", "file": str(tmp_path / "outside.png")},
        {"id": "link", "file": "link.png"},
        {"id": "dup", "file": "ok.png"},
        {"id": "dup", "file": "ok.png"},
        {"id": "zero", "file": "zero.png"},
        {"id": "junk", "file": "junk.png"},
        {"id": "tiny", "file": "tiny.png"},
        {"id": "../evil", "file": "ok.png"},
    ])
    corpus = load_corpus(root)
    problems = {i.id + str(n): i.problem for n, i in enumerate(corpus.items)}
    assert problems["ok0"] is None and problems["badsha1"] is None  # sha is checked when the image is read
    assert "missing file" in problems["gone2"]
    assert "outside the corpus root" in problems["up3"]
    assert "absolute path" in problems["abs4"]
    assert "symlink points outside" in problems["link5"]
    assert "duplicate id 'dup'" in problems["dup6"] and "duplicate id 'dup'" in problems["dup7"]
    assert "unsafe id" in problems["../evil11"]
    found = validate_corpus(root)
    assert not any(p.startswith("ok:") for p in found)
    expected = {"badsha": "sha256 mismatch", "gone": "missing file", "up": "outside", "abs": "absolute",
                "link": "symlink", "zero": "zero-byte", "junk": "not an image", "tiny": "absurd dimensions",
                "../evil": "unsafe id"}
    for item_id, text in expected.items():
        assert any(p.startswith(f"{item_id}: ") and text in p for p in found), (item_id, found)
    assert sum(p.startswith("dup: duplicate id") for p in found) == 2
    assert len(found) == len(expected) + 2


def test_plain_directory(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    _png(tmp_path / "sub" / "b.jpeg")
    _png(tmp_path / "sub" / "b.png")  # same id as b.jpeg
    _png(tmp_path / ".git" / "hidden.png")
    (tmp_path / "README.md").write_text("not an image")
    outside = tmp_path.parent / f"{tmp_path.name}_outside"
    outside.mkdir()
    os.symlink(outside, tmp_path / "elsewhere")
    corpus = load_corpus(tmp_path)
    assert not corpus.has_manifest and corpus.subsets == {}
    by_id = {}
    for item in corpus.items:
        by_id.setdefault(item.id, []).append(item)
    assert sorted(by_id) == ["a", "elsewhere", "sub/b"]
    assert by_id["a"][0].problem is None and by_id["a"][0].truth == () and by_id["a"][0].sha256 is None
    assert all("duplicate id 'sub/b'" in (i.problem or "") for i in by_id["sub/b"])
    assert "outside the corpus root" in (by_id["elsewhere"][0].problem or "")
    assert [i.id for i in load_corpus(tmp_path, ids=["a"]).items] == ["a"]
    with pytest.raises(UserError, match="unknown subset"):
        load_corpus(tmp_path, subset="smoke")


def test_cli_validate_and_list(good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["corpus", "validate", str(good)]) == 0
    assert capsys.readouterr().out.startswith("OK: 3 images, 3 with ground truth")
    assert main(["corpus", "list", str(good), "--subset", "smoke", "--tag", "blur"]) == 0
    assert capsys.readouterr().out.split("\t")[0] == "s2"
    (good / "images" / "s1.png").write_bytes(b"")
    assert main(["corpus", "validate", str(good)]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"s1: {good / 'images' / 's1.png'}: zero-byte file"]
    assert "1 problem(s)" in captured.err
    assert main(["corpus", "list", str(good), "--id", "zz"]) == 2
    assert "unknown id 'zz'" in capsys.readouterr().err


def test_an_oversized_file_is_refused_unread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 2 GB manifest entry (sparse: no disk used) is one line naming the file and the limit, not 2 GB of memory."""
    root = tmp_path / "corpus"
    sha = _png(root / "images" / "ok.png")
    big = root / "images" / "big.png"
    with big.open("wb") as fh:
        fh.truncate(2 * 2**30)
    _manifest(root, [{"id": "ok", "file": "images/ok.png", "sha256": sha}, {"id": "big", "file": "images/big.png"}])
    code, peak, err = peak_above_baseline(["corpus", "validate", str(root)])
    assert code == 2 and peak < 50e6, (code, peak, err)
    assert main(["corpus", "validate", str(root)]) == 2
    out = capsys.readouterr()
    assert out.out.splitlines() == [f"big: {big}: 2147483648 bytes, over max_image_bytes 268435456"]
    assert out.err == f"ocr-harness: error: 1 problem(s) in corpus {root}\n"
    # The limit is the profile's max_image_bytes; validate takes it as --max-bytes: a tiny one refuses even
    # the good image; the default passes it (the clean case).
    big.unlink()
    _manifest(root, [{"id": "ok", "file": "images/ok.png", "sha256": sha}])
    assert main(["corpus", "validate", str(root), "--max-bytes", "10"]) == 2
    assert "bytes, over max_image_bytes 10" in capsys.readouterr().out
    assert main(["corpus", "validate", str(root)]) == 0


def test_max_image_bytes_is_a_profile_key(tmp_path: Path) -> None:
    config = tmp_path / "harness.toml"
    config.write_text("[profiles.small]\nmax_image_bytes = 1000\n[profiles.bad]\nmax_image_bytes = 0\n", encoding="utf-8")
    assert load_profile(config, "small", catalogue())[0].max_image_bytes == 1000
    with pytest.raises(UserError, match="profiles.bad.max_image_bytes: must be > 0"):
        load_profile(config, "bad", catalogue())
