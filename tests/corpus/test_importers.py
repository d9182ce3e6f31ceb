"""`ocr-harness corpus import`: PPOCRLabel, PaddleOCR det/rec and ICDAR 2015 labels into a manifest, with key
fields from regexes; every bad line named with file:line; nothing written on error."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS
from labels import manifest_records, write_ppocrlabel
from memory import peak_above_baseline
from PIL import Image

import harness.corpus.importers.build as importers
from harness.cli import main
from harness.corpus.loader import load_corpus
from harness.corpus.schema import manifest_schema, schema_problems

IDS = ["slip_0000", "slip_0001", "slip_0002"]
AMOUNT = r"amount=[¥￥]\s*([\d,]+\.\d{2})"
DATE = r"date=(\d{4}-\d{2}-\d{2}) \d{2}:"  # a transaction time; the transfer voucher prints none


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def test_ppocrlabel_import_keeps_lines_polygons_and_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS)  # paths relative to Label.txt's folder
    out = tmp_path / "datasets" / "imported"
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out),
                 "--field", AMOUNT, "--field", DATE]) == 0
    captured = capsys.readouterr()
    records = _manifest(out)
    assert [r["id"] for r in records] == IDS
    for got, want in zip(records, manifest_records(IDS), strict=True):
        assert got["lines"] == [{"text": ln["text"], "poly": ln["poly"]} for ln in want["lines"]]
        assert got["sha256"] == want["sha256"]
        assert got["fields"]["amount"].replace(",", "") == want["fields"]["amount"]
    assert [r["fields"].get("date") for r in records] == ["2023-04-10", None, "2024-01-11"]
    # The date regex does not match slip_0001: reported for that image, not silently left out.
    assert captured.err.splitlines() == [f"warning: slip_0001: field 'date' not found ({label}:2)"]
    assert "key fields: 5 of 6 found" in captured.out
    corpus = load_corpus(out)
    assert len(corpus.items) == 3 and all(item.truth and not item.problem for item in corpus.items)
    assert main(["corpus", "validate", str(out)]) == 0


def test_ppocrlabel_own_layout_folder_prefix(tmp_path: Path) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS[:1], prefix="slips/")  # as PPOCRLabel writes it
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 0
    # Ids as if the paths were relative to Label.txt's folder: the same corpus whichever way it was written.
    assert _manifest(out)[0]["file"] == "images/slip_0000.png" and _manifest(out)[0]["id"] == "slip_0000"


def test_difficult_and_dont_care_regions_are_kept_apart(tmp_path: Path) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS[:1])
    path, _, boxes = label.read_text(encoding="utf-8").strip().partition("\t")
    data = json.loads(boxes)
    data[0]["difficult"] = True
    data[1]["transcription"] = "###"
    label.write_text(f"{path}\t{json.dumps(data, ensure_ascii=False)}\n", encoding="utf-8")
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 0
    record = _manifest(out)[0]
    assert len(record["lines"]) == len(data) - 2 and len(record["ignore"]) == 2
    assert main(["corpus", "validate", str(out)]) == 0


def test_det_labels_with_image_root(tmp_path: Path) -> None:
    label = write_ppocrlabel(tmp_path / "train" / "imgs", IDS[:2], prefix="imgs/")
    det = tmp_path / "det_gt.txt"
    shutil.move(label, det)
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "det", str(det), "--images", str(tmp_path / "train"),
                 "--out", str(out)]) == 0
    assert [r["id"] for r in _manifest(out)] == ["imgs/slip_0000", "imgs/slip_0001"]


def test_rec_labels_crop_per_line(tmp_path: Path) -> None:
    record = manifest_records(IDS[:1])[0]
    crops = tmp_path / "crops"
    crops.mkdir()
    lines = []
    with Image.open(CORPUS / record["file"]) as img:
        for n, ln in enumerate(record["lines"][:3]):
            xs, ys = [p[0] for p in ln["poly"]], [p[1] for p in ln["poly"]]
            img.crop((min(xs), min(ys), max(xs), max(ys))).save(crops / f"line_{n}.png")
            lines.append(f"crops/line_{n}.png\t{ln['text']}")
    rec = tmp_path / "rec_gt.txt"
    rec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "rec", str(rec), "--out", str(out)]) == 0
    got = _manifest(out)
    assert [r["lines"][0]["text"] for r in got] == [ln["text"] for ln in record["lines"][:3]]
    with Image.open(crops / "line_0.png") as img:
        w, h = img.size
    assert got[0]["lines"][0]["poly"] == [[0, 0], [w, 0], [w, h], [0, h]]


def test_icdar2015_with_dont_care(tmp_path: Path) -> None:
    gt_dir, img_dir = tmp_path / "gt", tmp_path / "images"
    gt_dir.mkdir()
    img_dir.mkdir()
    for r in manifest_records(IDS[:2]):
        shutil.copyfile(CORPUS / r["file"], img_dir / Path(r["file"]).name)
        rows = [",".join(str(v) for p in ln["poly"] for v in p) + f",{ln['text']}" for ln in r["lines"]]
        rows.append("1,1,9,1,9,9,1,9,###")
        # ICDAR files come with a BOM and CRLF more often than not.
        (gt_dir / f"gt_{r['id']}.txt").write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "icdar2015", str(gt_dir), "--images", str(img_dir),
                 "--out", str(out), "--field", AMOUNT]) == 0
    records = _manifest(out)
    want = manifest_records(IDS[:2])
    assert [r["lines"] for r in records] == [[{"text": ln["text"], "poly": ln["poly"]} for ln in w["lines"]]
                                             for w in want]
    assert all(r["ignore"] == [{"text": "###", "poly": [[1, 1], [9, 1], [9, 9], [1, 9]]}] for r in records)
    assert [r["fields"]["amount"].replace(",", "") for r in records] == [w["fields"]["amount"] for w in want]


def test_bad_lines_each_named_with_file_and_line_and_nothing_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS)
    rows = label.read_text(encoding="utf-8").splitlines()
    rows[1] = rows[1][:-5]  # truncated JSON
    rows[2] = "missing.png\t[]"
    rows.append("no tab here")
    rows.append('slip_0000.png\t[{"transcription": "x", "points": [[1, 2], [3]]}]')
    label.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert any(e.startswith(f"{label}:2: invalid JSON") for e in err)
    assert any(e.startswith(f"{label}:3: image 'missing.png' not found") for e in err)
    assert any(e.startswith(f"{label}:4: expected 'image path<TAB>label'") for e in err)
    assert any(e.startswith(f"{label}:5: image 'slip_0000.png' listed twice") for e in err)
    assert err[-1] == "ocr-harness: error: 4 problem(s) in the labels; nothing written"
    assert not out.exists() and not list(tmp_path.glob(".imported*"))


def test_clean_import_prints_no_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS[:1])
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().err == ""


def test_field_value_its_kind_cannot_read_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS[:1])
    out = tmp_path / "imported"
    # A regex that captures the label, not the value: 'amount' would be no amount.
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out),
                 "--field", "amount=(金额（小写）)"]) == 2
    assert f"{label}:1: key field 'amount': '金额（小写）' is not one amount" in capsys.readouterr().err
    assert not out.exists()
    # Two different values for one field: ambiguous, also an error.
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out),
                 "--field", r"payer_account=^(\d{4} \d{4} \d{4} \d{4}.*)$"]) == 2
    assert "field 'payer_account' matches 2 different values" in capsys.readouterr().err


def test_field_mapping_file_and_bad_regex(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS[:1])
    mapping = tmp_path / "fields.toml"
    mapping.write_text('[fields]\namount = \'[¥￥]\\s*([\\d,]+\\.\\d{2})\'\nreference = \'回单编号：(\\d+)\'\n',
                       encoding="utf-8")
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out),
                 "--fields", str(mapping)]) == 0
    assert _manifest(out)[0]["fields"] == {"amount": "43921488.92", "reference": "202304102503894720"}
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(tmp_path / "o2"),
                 "--field", "amount=([0-9"]) == 2
    assert "--field amount: invalid regex" in capsys.readouterr().err


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes: what "nothing was touched" compares."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_refuses_to_overwrite_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS[:1])
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".ocr-harness-import", "images", "manifest.jsonl"]
    capsys.readouterr()
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 2
    assert "exists and is not empty (pass --force" in _one_error(capsys)
    # What an import wrote, --force replaces: a second import with other images.
    label = write_ppocrlabel(tmp_path / "more", IDS[1:3])
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out), "--force"]) == 0
    assert [r["id"] for r in _manifest(out)] == IDS[1:3]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["slip_0001.png", "slip_0002.png"]
    # An import by an older version (no marker, only manifest.jsonl and images/) is replaceable too.
    (out / ".ocr-harness-import").unlink()
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out), "--force"]) == 0
    assert not list(tmp_path.glob(".imported*"))


def test_force_never_deletes_a_directory_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS[:1])
    unrelated = tmp_path / "work"
    (unrelated / "sub").mkdir(parents=True)
    (unrelated / "notes.txt").write_text("my notes", encoding="utf-8")
    (unrelated / "sub" / "code.py").write_text("print('mine')\n", encoding="utf-8")
    before, around = _tree(unrelated), sorted(p.name for p in tmp_path.iterdir())
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(unrelated), "--force"]) == 2
    assert _one_error(capsys) == (
        f"ocr-harness: error: {unrelated}: --force replaces only a corpus an import wrote (manifest.jsonl, images/, "
        ".ocr-harness-import); it also holds notes.txt, sub/: remove it yourself or choose a new --out")
    assert _tree(unrelated) == before and sorted(p.name for p in tmp_path.iterdir()) == around
    # A manifest, images/ and even the marker next to anything else is not (only) an import either: a file
    # someone put into an imported corpus is not the import's to delete.
    (unrelated / "manifest.jsonl").write_text("", encoding="utf-8")
    (unrelated / "images").mkdir()
    (unrelated / ".ocr-harness-import").write_text("", encoding="utf-8")
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(unrelated), "--force"]) == 2
    assert "it also holds notes.txt, sub/: remove it yourself" in _one_error(capsys)
    assert (unrelated / "notes.txt").is_file() and (unrelated / "sub" / "code.py").is_file()


def test_label_folder_as_out_is_refused_and_left_intact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slips = tmp_path / "slips"
    label = write_ppocrlabel(slips, IDS[:2])
    (slips / "Cache.cach").write_text("PPOCRLabel's cache", encoding="utf-8")
    shutil.copyfile(CORPUS / "images" / "slip_0005.png", slips / "unlabelled.png")
    before = _tree(slips)
    for out in (slips, tmp_path):  # the label folder itself, and a folder holding it
        assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out), "--force"]) == 2
        assert _one_error(capsys) == (f"ocr-harness: error: {out}: holds {label}, which this import reads; "
                                      "write the corpus to a new directory")
        assert _tree(slips) == before
    # det labels whose --images folder is --out: the images are protected though the label file is elsewhere.
    det = tmp_path / "det_gt.txt"
    det.write_text(label.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["corpus", "import", "--from", "det", str(det), "--images", str(slips), "--out", str(slips),
                 "--force"]) == 2
    assert f"{slips}: holds {slips}, which this import reads" in _one_error(capsys)
    assert _tree(slips) == before and not list(tmp_path.glob(".slips*"))


def _label_line(name: str, text: str = "中国工商银行") -> str:
    return f"{name}\t" + json.dumps([{"transcription": text, "points": [[1, 1], [30, 1], [30, 9], [1, 9]]}],
                                    ensure_ascii=False)


def test_import_applies_validates_rules_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "slips"
    folder.mkdir()
    Image.new("RGB", (64, 32), "white").save(folder / "x.png")
    Image.new("RGB", (64, 32), "white").save(folder / "x.jpg")
    Image.new("1", (12000, 12000)).save(folder / "huge.png")  # 144 megapixels, a 20 kB file
    Image.new("1", (20000, 20000)).save(folder / "bomb.png")  # past Pillow's own decompression-bomb limit
    (folder / "big.bmp").write_bytes(b"BM" + bytes(300_000))
    outside = tmp_path / "outside.png"
    Image.new("RGB", (64, 32), "red").save(outside)
    (folder / "link.png").symlink_to(outside)
    Image.new("RGB", (64, 32), "white").save(folder / ".hidden.png")
    Image.new("RGB", (64, 32), "white").save(folder / "good.png")
    names = ["x.png", "x.jpg", "huge.png", "bomb.png", "big.bmp", "link.png", ".hidden.png"]
    label = folder / "Label.txt"
    label.write_text("\n".join(_label_line(n) for n in [*names, "good.png"]) + "\n", encoding="utf-8")
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out),
                 "--max-bytes", "250000"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "ocr-harness: error: 6 problem(s) in the labels; nothing written"
    assert sorted(err[:-1]) == sorted([
        f"{label}:2: duplicate id 'x': 'x.png' ({label}:1) and 'x.jpg' ({label}:2) differ only in extension",
        f"{label}:3: image {folder / 'huge.png'}: absurd dimensions 12000x12000 (over max_pixels 40000000)",
        f"{label}:4: image {folder / 'bomb.png'}: absurd dimensions (Image size (400000000 pixels) exceeds limit "
        "of 178956970 pixels, could be decompression bomb DOS attack.)",
        f"{label}:5: image {folder / 'big.bmp'}: 300002 bytes, over max_image_bytes 250000",
        f"{label}:6: image 'link.png' is a symlink that leads outside the image folder {folder}",
        f"{label}:7: unsafe id '.hidden' (a path component starts with '.')",
    ]), err
    assert not out.exists() and not list(tmp_path.glob(".imported*"))
    # The same images, minus the bad ones: imported, and `corpus validate` agrees.
    label.write_text(_label_line("x.png") + "\n" + _label_line("good.png") + "\n", encoding="utf-8")
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 0
    assert main(["corpus", "validate", str(out)]) == 0


def test_deep_json_in_labels_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS[:1])
    label.write_text("slip_0000.png\t" + "[" * 200_000 + "]" * 200_000 + "\n", encoding="utf-8")
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{label}:1: invalid JSON after the tab (nested too deeply)",
        "ocr-harness: error: 1 problem(s) in the labels; nothing written"]
    assert not out.exists()
    mapping = tmp_path / "fields.json"
    mapping.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out),
                 "--fields", str(mapping)]) == 2
    assert _one_error(capsys) == f"ocr-harness: error: {mapping}: nested too deeply"


def test_an_import_bug_leaves_its_traceback_outside_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS[:1])
    out = tmp_path / "imported"

    def planted_bug(path: Path) -> str:
        raise RuntimeError("planted bug")

    monkeypatch.setattr(importers, "_file_sha256", planted_bug)  # a bug inside the importer, not an input
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 3
    line = _one_error(capsys)
    prefix = f"ocr-harness: internal error (a bug): RuntimeError: planted bug; nothing written to {out}; traceback in "
    assert line.startswith(prefix)
    traceback_file = Path(line[len(prefix):])
    try:
        assert "planted bug" in traceback_file.read_text(encoding="utf-8")
        assert not traceback_file.is_relative_to(tmp_path) and not out.exists()
    finally:
        traceback_file.unlink()
    monkeypatch.undo()
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 0  # not blocked


def test_schema_is_shipped_and_the_committed_manifest_conforms() -> None:
    assert manifest_schema()["$schema"].endswith("2020-12/schema")
    assert schema_problems(CORPUS / "manifest.jsonl") == []


def test_corpus_validate_reports_schema_violations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS[:2])
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 0
    assert main(["corpus", "validate", str(out)]) == 0
    capsys.readouterr()
    rows = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(rows[1])
    record["ignore"] = "not a list"  # the run's parser ignores unknown keys; the schema does not
    rows[1] = json.dumps(record, ensure_ascii=False)
    (out / "manifest.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["corpus", "validate", str(out)]) == 2
    assert f"{out / 'manifest.jsonl'}:2: schema: $.ignore: 'not a list' is not of type 'array'" in capsys.readouterr().out


def test_a_failed_final_rename_puts_the_old_corpus_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS[:1])
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 0
    before = _tree(out)
    real_replace = os.replace

    def replace_fails_into_out(src: Path, dst: Path) -> None:  # a full disk or a lost mount, at the last step
        if Path(dst) == out.absolute() and str(src).endswith(".tmp"):  # the new corpus into place
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(importers.os, "replace", replace_fails_into_out)
    label = write_ppocrlabel(tmp_path / "more", IDS[1:2])
    # An environment error, not a bug: exit 2 naming the path and the errno, no traceback file.
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out), "--force"]) == 2
    line = _one_error(capsys)
    assert f"{out.absolute()}: No space left on device (errno ENOSPC); nothing written to {out}" in line, line
    assert _tree(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["imported", "more", "slips"]


@pytest.mark.slow
def test_import_streams_images(tmp_path: Path) -> None:
    """100 images of 5 MB (500 MB): the import's peak stays under 200 MB above its baseline, so it holds one
    image at a time, not the corpus (holding them all, as it once did, is 500 MB)."""
    folder = tmp_path / "big"
    folder.mkdir()
    rng = np.random.default_rng(7)
    rows = []
    for n in range(100):
        noise = rng.integers(0, 256, size=(1300, 1300, 3), dtype=np.uint8)  # incompressible: 5.07 MB stored
        Image.fromarray(noise).save(folder / f"img_{n:03d}.png", compress_level=0)
        rows.append(_label_line(f"img_{n:03d}.png"))
    (folder / "Label.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert (folder / "img_000.png").stat().st_size > 5_000_000
    out = tmp_path / "imported"
    code, peak, err = peak_above_baseline(["corpus", "import", "--from", "ppocrlabel", str(folder / "Label.txt"),
                                           "--out", str(out)])
    assert code == 0, err
    assert len(_manifest(out)) == 100
    print(f"import of 100 x 5 MB: peak {peak / 1e6:.0f} MB above baseline")
    assert peak < 200e6
