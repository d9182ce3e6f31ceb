"""Readers read what writers write: every JSONL the harness writes, holding hostile text, read back by its reader.

Planted on 22c6256: texts with U+2028, U+2029, U+0085, \\x0b, \\x0c, \\x1c-\\x1e (which `ensure_ascii=False`
writers leave raw and `str.splitlines()` broke records at), RTL marks and a 5,000-character line. There
`report merge` refused a results.jsonl the harness wrote ("invalid JSON"), `corpus validate` refused the manifest
`corpus import` wrote, and manifest errors named the wrong line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import ocr_result, quad
from conftest import CORPUS
from labels import manifest_records, write_ppocrlabel

from harness.cli import main
from harness.corpus.loader import load_corpus
from harness.corpus.manifest import parse_manifest
from harness.corpus.schema import schema_problems
from harness.model.results import Line, OcrResult, canonical_json, canonical_line
from harness.report.history import read_history
from harness.util.jsonl import jsonl_lines

# Each breaks a line for str.splitlines(), none for JSON Lines.
SEPARATORS = ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]
HOSTILE = [f"金额{sep}¥12" for sep in SEPARATORS] + [
    "\u200f\u202eאבג 123\u202c",  # RTL mark and override
    "`` <img src=x> ``",
    "账" * 5000,
]


def test_jsonl_lines_splits_at_newline_only() -> None:
    text = "".join(canonical_line({"t": t}) + "\n" for t in HOSTILE) + "\n  \r\n" + '{"t": "last"}\r\n'
    lines = jsonl_lines(text)
    assert [json.loads(line)["t"] for _, line in lines] == [*HOSTILE, "last"]
    assert [n for n, _ in lines] == [*range(1, len(HOSTILE) + 1), len(HOSTILE) + 3]


def _hand_report(k: int, ids: list[str]) -> dict:
    check = {"passed": True, "skipped": False, "summary": "ok", "failed_images": [], "details": {}}
    return {
        "schema": "ocr-harness/report/1", "passed": True, "exit_code": 0, "started_at": "2025-01-01T00:00:00+00:00",
        "duration_s": 1.0, "profile": {"name": "nightly", "settings": {"subset": "full", "golden_dir": "golden"}},
        "environment": {}, "stack": {"paddle": "3.2.2"},
        "corpus": {"root": "/c", "subset": "full", "selected": len(ids), "complete": False, "has_manifest": True,
                   "shard": [k, 2], "selection": {"images": 4, "complete": True, "sha256": "ab"}},
        "checks": {"audit": dict(check)},
        "images": [{"id": i, "index": int(i[-1]), "checks": {}, "timings": {}, "accuracy": None} for i in ids],
        "accuracy": None, "timing": {"model_load_s": None, "wall_s": 1.0},
    }


def test_report_merge_reads_the_results_the_harness_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = {1: ["s0", "s1"], 2: ["s2", "s3"]}
    want = {}
    for k, shard_ids in ids.items():
        d = tmp_path / f"shard{k}"
        d.mkdir()
        (d / "report.json").write_text(canonical_json(_hand_report(k, shard_ids)), encoding="utf-8")
        lines = []
        for i in shard_ids:
            result = ocr_result(*(Line(t, 0.9, quad(10, 40 * n, 290, 30)) for n, t in enumerate(HOSTILE)), image_id=i)
            want[i] = result
            lines.append(canonical_line({"id": i, "error": None, "result": result.to_dict()}))
        (d / "results.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    out = tmp_path / "merged"
    code = main(["report", "merge", str(tmp_path / "shard1"), str(tmp_path / "shard2"), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    merged = jsonl_lines((out / "results.jsonl").read_text(encoding="utf-8"))
    got = {(r := json.loads(line))["id"]: OcrResult.from_dict(r["result"]) for _, line in merged}
    assert got == want


def test_corpus_import_writes_a_manifest_validate_and_the_loader_read(tmp_path: Path) -> None:
    ids = ["slip_0000", "slip_0001"]
    label = write_ppocrlabel(tmp_path / "slips", ids)
    rows = label.read_text(encoding="utf-8").split("\n")[:-1]
    hostile_rows = []
    for row in rows:
        name, boxes = row.split("\t")
        parsed = json.loads(boxes)
        for box, text in zip(parsed, HOSTILE, strict=False):
            box["transcription"] = text
        hostile_rows.append(f"{name}\t{json.dumps(parsed, ensure_ascii=False)}")
    label.write_text("\n".join(hostile_rows) + "\n", encoding="utf-8")
    out = tmp_path / "imported"
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(out)]) == 0
    assert main(["corpus", "validate", str(out)]) == 0
    manifest = out / "manifest.jsonl"
    assert schema_problems(manifest) == []
    records, errors = parse_manifest(manifest)
    assert errors == [] and len(records) == 2
    corpus = load_corpus(out)
    for item, record in zip(corpus.items, manifest_records(ids), strict=True):
        assert len(item.truth) == len(record["lines"]) > len(HOSTILE)
        assert [t.text for t in item.truth[:len(HOSTILE)]] == HOSTILE


def test_manifest_errors_name_the_line_the_file_has(tmp_path: Path) -> None:
    good = json.loads((CORPUS / "manifest.jsonl").read_text(encoding="utf-8").split("\n")[0])
    good["file"] = str((CORPUS / good["file"]).resolve())
    good["lines"][0]["text"] = "a\u2028b\u0085c"
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(canonical_line(good) + "\n" + "{not json\n", encoding="utf-8")
    records, errors = parse_manifest(manifest)
    assert len(records) == 1 and records[0].truth[0].text == "a\u2028b\u0085c"
    assert [e.split(": ")[0] for e in errors] == [f"{manifest}:2"]


def test_history_reads_entries_with_separators(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    entries = [{"profile": t, "n": n} for n, t in enumerate(HOSTILE)]
    path.write_text("".join(canonical_line(e) + "\n" for e in entries), encoding="utf-8")
    assert read_history(path) == entries
