"""Fuzzing every reader at its boundary (Hypothesis, strategies in tests/fuzz_strategies.py).

The invariant, for every generated input: the reader either accepts it, and then everything the harness writes
from what it accepted can be written (canonical JSON, UTF-8), or it refuses it with a UserError (exit 2) of one
line that names the file (the service client: a ServiceError, which fails that image). Never another exception
(exit 3). Budget: the `ci` profile in the normal suite, `tox -e fuzz` for the long one. Failures found are kept
as `@example`s below.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import fuzz_strategies as fs
import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st
from corpus.test_manifest import _hand_report

from harness.backends.http.client import Client, ServiceError, _Answer
from harness.backends.paddle.engine import to_canonical
from harness.checks.registry import catalogue
from harness.cli import main
from harness.config import load_profile
from harness.corpus.manifest import parse_manifest
from harness.golden.approval import load_approval
from harness.golden.store import dumps_golden, loads_golden
from harness.model.results import canonical_json, canonical_line, result_problem
from harness.report.shard_input import check_results_line
from harness.util.errors import UserError
from harness.util.jsonl import jsonl_lines


def _one_line_naming(e: Exception, where: str) -> None:
    message = str(e)
    assert "\n" not in message and message.startswith(where), message
    message.encode("utf-8")  # printable on stderr, writable to a report


def _writable(obj: Any) -> None:
    canonical_json(obj).encode("utf-8")


@given(fs.goldens, st.booleans())
@example({"schema_version": 1, "image_id": "a", "width": 1, "height": 1,
          "lines": [{"text": "\ud800", "score": 0.5, "poly": [[0, 0], [1, 0], [1, 1]]}]}, True)
@example({"schema_version": 1, "image_id": "a", "width": 1, "height": 1,
          "lines": [{"text": "x", "score": float("nan"), "poly": [[0, 0], [1, 0], [1, 1]]}]}, False)
def test_golden_reader(doc: dict[str, Any], ascii_only: bool) -> None:
    try:
        golden = loads_golden(fs.dumps(doc, ascii_only).decode("utf-8", "surrogatepass"), "g/a.json")
    except UserError as e:
        _one_line_naming(e, "g/a.json: ")
        return
    text = dumps_golden(golden)
    text.encode("utf-8")
    assert loads_golden(text, "again") == golden
    _writable(golden.result.to_dict())


@given(st.lists(fs.manifest_records, min_size=1, max_size=4), st.booleans())
@example([{"id": "x", "file": "img.png", "lines": [{"text": "a\u2028b", "poly": [[0, 0], [1, 0], [1, 1]]}]}], False)
@example([{"id": "x", "file": "账" * 4990}], False)  # found: ENAMETOOLONG from is_file() was exit 3
@example([{"id": "x", "file": "img.png", "fields": {"a\nb": 1.5}}], True)  # found: a key's newline in the message
def test_manifest_reader(tmp_path_factory: Any, records: list[dict[str, Any]], ascii_only: bool) -> None:
    directory = tmp_path_factory.mktemp("corpus")
    manifest = directory / "manifest.jsonl"
    manifest.write_bytes(b"".join(fs.dumps(r, ascii_only) + b"\n" for r in records))
    parsed, errors = parse_manifest(manifest)
    for line in errors:
        assert line.startswith(f"{manifest}") and "\n" not in line, line
        line.encode("utf-8")
    for r in parsed:
        _writable({"id": r.id, "template": r.template, "tags": list(r.tags), "fields": dict(r.fields),
                   "truth": [t.text for t in r.truth]})
    code = main(["corpus", "validate", str(directory)])
    assert code == 2  # img.png never exists: validate must say so, not crash


@given(fs.approvals, st.booleans())
@example({"schema": "ocr-harness/approval/1", "golden_set": "g", "speed": {"p": {
    "approved_at": "t", "stack": {}, "selection": 1, "clock": "cpu", "images": {}, "peak_rss_kib": float("inf"),
    "served_at_peak": 1}}}, False)
@example({"schema": "ocr-harness/approval/1", "golden_set": "g", "speed": {"\n": None}}, False)  # found: the
# profile name's newline split the message (tox -e fuzz)
def test_approval_reader(tmp_path_factory: Any, doc: dict[str, Any], ascii_only: bool) -> None:
    directory = tmp_path_factory.mktemp("golden")
    (directory / "_approval.json").write_bytes(fs.dumps(doc, ascii_only))
    try:
        approval = load_approval(directory)
    except UserError as e:
        _one_line_naming(e, str(directory / "_approval.json"))
        return
    assert approval is not None
    _writable(approval.to_dict())
    for baseline in approval.speed.values():
        assert baseline.served_at_peak >= 0 and (baseline.peak_rss_kib is None or baseline.peak_rss_kib > 0)


@given(fs.results_records, st.booleans())
def test_shard_results_reader(record: dict[str, Any], ascii_only: bool) -> None:
    line = fs.dumps(record, ascii_only).decode("utf-8", "surrogatepass")
    try:
        accepted = check_results_line(line, "r.jsonl:1")
    except UserError as e:
        _one_line_naming(e, "r.jsonl:1: ")
        return
    accepted.encode("utf-8")  # the merge writes the line as it is


@given(fs.config_entries)
def test_config_reader(tmp_path_factory: Any, entries: list[tuple[str, str, Any]]) -> None:
    tables: dict[str, list[str]] = {}
    for table, key, value in entries:
        tables.setdefault(table, []).append(f"{key} = {fs.toml_value(value)}")
    text = "[profiles.t]\n" + "\n".join(dict.fromkeys(tables.pop("", []))) + "\n"
    for table, lines in tables.items():
        text += f"[profiles.t.{table}]\n" + "\n".join(dict.fromkeys(lines)) + "\n"
    path = tmp_path_factory.mktemp("repo") / "harness.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        profile, _ = load_profile(path, "t", catalogue())
    except UserError as e:
        message = str(e)
        assert "\n" not in message, message
        message.encode("utf-8")
        return
    _writable(profile.settings_dict())


CLIENT = Client("http://127.0.0.1:9/ocr", timeout_s=1.0, retries=0, backoff_s=0.0)


@given(fs.answers, st.booleans())
@example({"errorCode": 0, "result": {"ocrResults": [{"prunedResult": {"rec_texts": ["\ud800"], "rec_scores": [0.9],
          "rec_polys": [[[1, 1], [2, 1], [2, 2]]]}}], "dataInfo": {"width": 32, "height": 32}}}, True)
def test_service_answer(answer: dict[str, Any], ascii_only: bool) -> None:
    body = fs.dumps(answer, ascii_only)
    try:
        reply = CLIENT._parse(_Answer(200, "OK", http.client.HTTPMessage(), body), 1, ())
    except ServiceError as e:
        assert "\n" not in str(e) and str(e).startswith("POST http://127.0.0.1:9/ocr: "), str(e)
        str(e).encode("utf-8")
        return
    try:  # as the http backend turns an answer into a result (HttpBackend._one)
        result = to_canonical(reply.pruned, "img", np.zeros((32, 32, 3), np.uint8))
    except (RuntimeError, ValueError, TypeError):
        return  # the backend's ServiceError: that image fails
    if result_problem(result) is None:
        _writable(result.to_dict())


@given(st.lists(fs.results_records, min_size=2, max_size=2))
def test_report_merge(tmp_path_factory: Any, records: list[dict[str, Any]]) -> None:
    tmp = tmp_path_factory.mktemp("merge")
    dirs = []
    for k, (ids, record) in enumerate(zip((["s0", "s1"], ["s2", "s3"]), records, strict=True), start=1):
        d = tmp / f"shard{k}"
        d.mkdir()
        (d / "report.json").write_text(canonical_json(_hand_report(k, ids)), encoding="utf-8")
        lines = [fs.dumps({**record, "id": ids[0]}, False), fs.dumps({"id": ids[1]}, True)]
        (d / "results.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
        dirs.append(str(d))
    out = tmp / "merged"
    code = main(["report", "merge", *dirs, "--out", str(out)])
    assert code in (0, 1, 2)
    if code != 2:
        merged = json.loads((out / "report.json").read_text(encoding="utf-8"))
        assert len(merged["images"]) == 4
        assert len(jsonl_lines((out / "results.jsonl").read_text(encoding="utf-8"))) == 4


@given(st.lists(fs.values, max_size=6))
def test_jsonl_round_trip(items: list[Any]) -> None:
    writable = []
    for item in items:
        try:
            writable.append(canonical_line(item))
            canonical_line(item).encode("utf-8")
        except (ValueError, UnicodeEncodeError):
            continue  # the writers refuse it: so do the readers (tests above)
    text = "".join(line + "\n" for line in writable)
    assert [json.loads(line) for _, line in jsonl_lines(text)] == [json.loads(line) for line in writable]
