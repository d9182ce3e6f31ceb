"""The committed bank-slip corpus: intact, complete, small, and (where the toolchain matches) reproducible."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import PIL
import pytest

from harness.corpus.amounts import amount_in_words, to_fen
from harness.corpus.effects import EFFECTS
from harness.corpus.identifiers import is_luhn_valid
from harness.corpus.loader import Corpus, load_corpus, read_image, validate_corpus
from harness.corpus.templates import TEMPLATES
from harness.errors import UserError

ROOT = Path(__file__).resolve().parents[1] / "datasets" / "bank_slips"


def _records() -> list[dict]:
    text = (ROOT / "manifest.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_manifest_sha256_matches_files() -> None:
    records = _records()
    assert len(records) >= 60
    for r in records:
        assert hashlib.sha256((ROOT / r["file"]).read_bytes()).hexdigest() == r["sha256"], r["id"]
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "images").iterdir()}
    assert on_disk == {r["file"] for r in records}  # no stray or unlisted images


def test_validates_clean() -> None:
    assert validate_corpus(ROOT) == []


def test_coverage_and_subsets() -> None:
    corpus = load_corpus(ROOT)
    assert corpus.selection_is_complete and len(corpus.items) >= 60
    assert {i.template for i in corpus.items} == set(TEMPLATES)
    assert {t for i in corpus.items for t in i.tags} >= set(EFFECTS) | {"seal", "bilingual"}
    smoke = load_corpus(ROOT, subset="smoke")
    assert 10 <= len(smoke.items) <= 14
    assert {i.template for i in smoke.items} == set(TEMPLATES)
    assert set(corpus.subsets["full"]) == {i.id for i in corpus.items}
    assert all(i.truth and i.fields for i in corpus.items)


def check_ground_truth(corpus: Corpus) -> None:
    """Polygons inside the image, key fields agreeing with each other and with the printed lines."""
    for item in corpus.items:
        image = read_image(item.path)
        height, width = image.shape[:2]
        assert 700 <= max(height, width) <= 2400, item.id
        assert len(item.truth) >= 20
        for line in item.truth:
            assert line.text.strip() and len(line.poly) == 4
            assert all(0 <= x < width and 0 <= y < height for x, y in line.poly), (item.id, line)
        f = item.fields
        assert f["amount_words"] == amount_in_words(f["amount"]) and to_fen(f["amount"]) >= 0
        assert f["date"][4] == "-" and len(f["date"]) == 10
        texts = "".join(line.text for line in item.truth).replace(" ", "")
        assert f["amount_words"] in texts and f["reference"][-8:] in texts
        for key in ("payer_account", "payee_account"):
            if key in f:
                assert f[key].isdigit() and 16 <= len(f[key]) <= 19 and f[key] in texts
    cards = [v for i in corpus.items for k, v in i.fields.items() if k.endswith("_account") and is_luhn_valid(v)]
    assert cards, "some accounts are Luhn-valid cards"


def test_ground_truth_is_consistent() -> None:
    check_ground_truth(load_corpus(ROOT))


def test_size_budget() -> None:
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total <= 15 * 1024 * 1024


def test_manifest_is_canonical() -> None:
    for line in (ROOT / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        assert line == json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def test_regenerates_byte_identical_when_toolchain_matches(tmp_path: Path) -> None:
    from harness.corpus.fonts import find_fonts
    from harness.corpus.generate import SMOKE_COUNT, make_slip

    info = json.loads((ROOT / "generator.json").read_text(encoding="utf-8"))
    try:
        fonts = find_fonts()
    except UserError:
        pytest.skip("no CJK font (CI: apt-get install -y fonts-noto-cjk)")
    here = {"fonts": [f.describe() for f in (fonts.sans, fonts.bold, fonts.serif, fonts.mono)],
            "versions": {"numpy": np.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__}}
    if here["fonts"] != info["fonts"] or here["versions"] != info["versions"]:
        pytest.skip(f"toolchain differs from the one that made the corpus: {here} vs {info}")
    records = _records()
    for index in (0, 9, 11):  # clean, fax, perspective+shadow+jpeg
        slip = make_slip(info["seed"], index, info["templates"], fonts, smoke=index < SMOKE_COUNT)
        assert hashlib.sha256(slip.data).hexdigest() == records[index]["sha256"], slip.id
