"""The committed bank-slip corpus: intact, complete, small, and reproducible from its seed (within a tolerance)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.corpus.amounts import amount_in_words, to_fen
from harness.corpus.effects import EFFECTS
from harness.corpus.fonts import FontSet, find_fonts
from harness.corpus.generate import SMOKE_COUNT, make_slip, manifest_record
from harness.corpus.identifiers import is_luhn_valid
from harness.corpus.loader import load_corpus, read_image, validate_corpus
from harness.corpus.templates import TEMPLATES
from harness.model.corpus import Corpus
from harness.util.errors import UserError

ROOT = Path(__file__).resolve().parents[2] / "datasets" / "bank_slips"


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


# Regenerating the committed corpus. Its ground truth must come back exactly (polygons within 1 px); its pixels
# depend on the toolchain (numpy's float rules, Pillow's FreeType and libjpeg, OpenCV's resamplers), so they are
# compared within a tolerance, in grey levels 0-255. Measured over all 64 slips (seed 20240601, Debian's
# fonts-noto-cjk 1:20220127, opencv 4.10.0 as pinned):
#   numpy 2.2.6 / 2.3.5 / 2.4.6 with Pillow 12.0.0 / 13.0.0 / 11.3.0: byte-identical;
#   numpy 1.26.4 + Pillow 10.4.0: 8 slips differ (labels move by 1 px: numpy 1.x float promotion), ground truth
#   identical; worst mean |difference| 1.69 (slip_0046), worst 32x32-block mean difference 2.7 (slip_0051).
# Planted, same seed: the template list rotated (a deposit slip drawn as a withdrawal slip keeps its size):
#   block difference 11.4-38.3 (slips 2, 7, 12); Noto Serif drawn in place of Noto Sans: 4.4-40.8; another seed:
#   another image size. The ground truth changes in all of them.
MAX_MEAN_DIFF = 3.0
MAX_BLOCK_DIFF = 6.0
BLOCK = 32


def _grey(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return image


def regeneration_problems(record: dict, committed: bytes, regenerated: dict, data: bytes) -> list[str]:
    """Why a regenerated slip (its manifest record and bytes) is not the committed one; empty when it is."""
    problems = []
    for key in sorted(set(record) | set(regenerated)):
        if key in ("sha256", "lines"):
            continue
        if record.get(key) != regenerated.get(key):
            problems.append(f"{key}: {record.get(key)!r} -> {regenerated.get(key)!r}")
    old_lines, new_lines = record["lines"], regenerated["lines"]
    if [line["text"] for line in old_lines] != [line["text"] for line in new_lines]:
        problems.append("line texts differ")
    else:
        shift = max((abs(a - b) for old, new in zip(old_lines, new_lines)
                     for p, q in zip(old["poly"], new["poly"], strict=True) for a, b in zip(p, q, strict=True)),
                    default=0)
        if shift > 1:
            problems.append(f"line polygons move by {shift} px")
    a, b = _grey(committed), _grey(data)
    if a.shape != b.shape:
        return [*problems, f"image size {a.shape[::-1]} -> {b.shape[::-1]}"]
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    if diff.mean() > MAX_MEAN_DIFF:
        problems.append(f"mean pixel difference {diff.mean():.2f} > {MAX_MEAN_DIFF}")
    h, w = a.shape[0] // BLOCK * BLOCK, a.shape[1] // BLOCK * BLOCK
    blocks = [x[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean(axis=(1, 3)) for x in (a, b)]
    worst = float(np.abs(blocks[0] - blocks[1]).max())
    if worst > MAX_BLOCK_DIFF:
        problems.append(f"a {BLOCK}x{BLOCK} block differs by {worst:.1f} grey levels on average > {MAX_BLOCK_DIFF}")
    return problems


@pytest.fixture(scope="module")
def generator() -> tuple[dict, FontSet]:
    """generator.json, and the fonts it names: the corpus was drawn with Debian's fonts-noto-cjk."""
    info = json.loads((ROOT / "generator.json").read_text(encoding="utf-8"))
    try:
        fonts = find_fonts()
    except UserError as e:
        pytest.fail(f"the suite needs the corpus fonts (Debian: apt-get install fonts-noto-cjk): {e}")
    found = [f.describe() for f in (fonts.sans, fonts.bold, fonts.serif, fonts.mono)]
    assert found == info["fonts"], f"the corpus was drawn with {info['fonts']}, this machine has {found}"
    return info, fonts


def _regenerate(info: dict, fonts: FontSet, index: int, *, seed: int | None = None,
                templates: list[str] | None = None) -> tuple[dict, bytes]:
    slip = make_slip(info["seed"] if seed is None else seed, index, templates or info["templates"], fonts,
                     smoke=index < SMOKE_COUNT)
    return json.loads(manifest_record(slip)), slip.data


@pytest.mark.slow
def test_regenerates_the_committed_corpus_within_tolerance(generator: tuple[dict, FontSet]) -> None:
    info, fonts = generator
    records = _records()
    assert len(records) == info["count"]
    failures = {}
    for index, record in enumerate(records):
        regenerated, data = _regenerate(info, fonts, index)
        problems = regeneration_problems(record, (ROOT / record["file"]).read_bytes(), regenerated, data)
        if problems:
            failures[record["id"]] = problems
    assert not failures, f"regenerating the corpus does not give the committed one: {failures}"


@pytest.mark.parametrize("index", [2, 7, 12])  # the slips whose size survives the planted template change
def test_regeneration_check_catches_another_template_or_seed(generator: tuple[dict, FontSet], index: int) -> None:
    info, fonts = generator
    record = _records()[index]
    committed = (ROOT / record["file"]).read_bytes()
    assert regeneration_problems(record, committed, *_regenerate(info, fonts, index)) == []

    rotated = info["templates"][1:] + info["templates"][:1]
    problems = regeneration_problems(record, committed, *_regenerate(info, fonts, index, templates=rotated))
    assert any(p.startswith("template:") for p in problems), problems
    assert any("block differs" in p for p in problems), problems  # the pixels alone fail it too
    problems = regeneration_problems(record, committed, *_regenerate(info, fonts, index, seed=info["seed"] + 1))
    assert any(p.startswith("fields:") for p in problems) and any("image size" in p for p in problems), problems
