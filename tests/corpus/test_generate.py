"""The slip generator: byte-identical output per seed, and ground truth that agrees with what was drawn.

Needs a CJK font, or these tests fail: `apt-get install fonts-noto-cjk` (the faces the committed corpus was made
with).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.corpus import fonts as fonts_module
from harness.corpus.amounts import amount_in_words
from harness.corpus.effects import EFFECTS
from harness.corpus.fonts import FontSet, find_fonts
from harness.corpus.generate import RECIPES, generate, make_slip, manifest_record
from harness.corpus.loader import load_corpus, read_image, validate_corpus
from harness.corpus.templates import TEMPLATES
from harness.util.errors import UserError


@pytest.fixture(scope="module")
def cjk_fonts() -> FontSet:
    try:
        return find_fonts()
    except UserError as e:
        pytest.fail(f"no CJK font for the generator; the suite needs one (Debian: apt-get install fonts-noto-cjk): "
                    f"{e}")


@pytest.fixture(scope="module")
def two_runs(cjk_fonts: FontSet, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    # 16 slips: every template and every recipe, so every effect's code path is in the determinism check.
    a, b = tmp_path_factory.mktemp("a") / "c", tmp_path_factory.mktemp("b") / "c"
    generate(7, 16, a)
    generate(7, 16, b)
    return a, b


def test_same_seed_same_bytes_fast(cjk_fonts: FontSet) -> None:
    for index in (0, 9, 11):  # clean PNG, fax 1-bit PNG, perspective+shadow+jpeg
        first = make_slip(11, index, TEMPLATES, cjk_fonts, smoke=True)
        again = make_slip(11, index, TEMPLATES, cjk_fonts, smoke=True)
        assert first.data == again.data and manifest_record(first) == manifest_record(again)
    other_seed = make_slip(12, 11, TEMPLATES, cjk_fonts, smoke=True)
    assert other_seed.data != first.data


@pytest.mark.slow
def test_same_seed_gives_identical_files(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 16 + 2
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


@pytest.mark.slow
def test_generated_corpus_is_consistent(two_runs: tuple[Path, Path]) -> None:
    root = two_runs[0]
    assert validate_corpus(root) == []
    corpus = load_corpus(root)
    assert {i.template for i in corpus.items} == set(TEMPLATES)
    assert {t for i in corpus.items for t in i.tags} >= set(EFFECTS)
    assert corpus.subsets["smoke"] == tuple(f"slip_{i:04d}" for i in range(12))
    for item in corpus.items:
        height, width = read_image(item.path).shape[:2]
        assert all(0 <= x < width and 0 <= y < height for line in item.truth for x, y in line.poly), item.id
        assert item.fields["amount_words"] == amount_in_words(item.fields["amount"])


def test_templates_option_and_cli(cjk_fonts: FontSet, tmp_path: Path) -> None:
    out = tmp_path / "c"
    assert main(["corpus", "generate", "--seed", "3", "--count", "2", "--out", str(out),
                 "--templates", "deposit_slip,withdrawal_slip"]) == 0
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["template"] for r in records] == ["deposit_slip", "withdrawal_slip"]
    assert list(records[0]) == sorted(records[0])  # sorted keys
    assert "payer_account" not in records[0]["fields"] and "payee_account" not in records[1]["fields"]
    info = json.loads((out / "generator.json").read_text(encoding="utf-8"))
    assert info["seed"] == 3 and "--templates deposit_slip withdrawal_slip" in info["command"]
    assert str(tmp_path) not in json.dumps(info)  # no machine paths in what gets committed
    # Refuses to write over a non-empty directory unless asked, then replaces only what it made.
    assert main(["corpus", "generate", "--seed", "3", "--count", "1", "--out", str(out)]) == 2
    (out / "keep.txt").write_text("mine")
    assert main(["corpus", "generate", "--seed", "3", "--count", "1", "--out", str(out), "--force"]) == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["slip_0000.png"]
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("argv", [["--count", "0"], ["--templates", "cheque"]])
def test_generate_usage_errors(tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    base = ["corpus", "generate", "--seed", "1", "--count", "1", "--out", str(tmp_path / "o")]
    assert main(base + argv) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_no_font_is_a_user_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OCR_HARNESS_CJK_FONT", raising=False)
    monkeypatch.setenv("OCR_HARNESS_FONT_DIRS", str(tmp_path))
    monkeypatch.setattr(fonts_module, "SYSTEM_FONT_DIRS", ())
    with pytest.raises(UserError, match="apt-get install fonts-noto-cjk"):
        find_fonts()
    monkeypatch.setenv("OCR_HARNESS_CJK_FONT", str(tmp_path / "none.ttf"))
    with pytest.raises(UserError, match="OCR_HARNESS_CJK_FONT"):
        find_fonts()


def test_recipes_cover_every_effect_in_the_first_twelve() -> None:
    assert {e for recipe in RECIPES[:12] for e in recipe} == set(EFFECTS)
    assert np.lcm(len(TEMPLATES), len(RECIPES)) == len(TEMPLATES) * len(RECIPES)  # every pairing occurs
