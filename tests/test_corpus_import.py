"""`ocr-harness corpus import`: PPOCRLabel, PaddleOCR det/rec and ICDAR 2015 labels into a manifest, with key
fields from regexes; every bad line named with file:line; nothing written on error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import CORPUS
from labels import manifest_records, write_ppocrlabel
from PIL import Image

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


def test_refuses_to_overwrite_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = write_ppocrlabel(tmp_path / "slips", IDS[:1])
    out = tmp_path / "imported"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (out / "keep.txt").read_text(encoding="utf-8") == "mine"
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out), "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["images", "manifest.jsonl"]


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
