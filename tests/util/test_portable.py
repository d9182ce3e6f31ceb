"""No machine paths in reports (harness.util.portable): each known root becomes a portable name, so reports are safe
to share and shards run on different machines (other checkouts, caches, corpus copies) merge."""

from __future__ import annotations

import html
import json
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, CliRun, run_cli

from harness.util.portable import MachinePaths, for_run

PATHS = MachinePaths.of([("/work/co", ""), ("/data/slips", "<corpus>"), ("/home/u/.cache/ocr-harness", "$OCR_HARNESS_CACHE"),
                         ("/home/u", "~"), ("/tmp", "$TMPDIR")])


@pytest.mark.parametrize(("text", "portable"), [
    ("/work/co/datasets/bank_slips/images/a.png", "datasets/bank_slips/images/a.png"),
    ("/work/co", "."),
    ("/data/slips/images/a.png: not an image", "<corpus>/images/a.png: not an image"),
    ("/home/u/.cache/ocr-harness/pp-ocrv4-1/det", "$OCR_HARNESS_CACHE/pp-ocrv4-1/det"),  # the most specific root
    ("/home/u/notes.txt", "~/notes.txt"),
    ('File "/tmp/harness-child-x/request.json", line 1', 'File "$TMPDIR/harness-child-x/request.json", line 1'),
    ("/work/cold/x and /work/co-op and /data/slips2", "/work/cold/x and /work/co-op and /data/slips2"),  # not a root
    ("read /work/co/a.png.", "read a.png."),
    ("no path at all", "no path at all"),
])
def test_roots_become_portable(text: str, portable: str) -> None:
    assert PATHS.text(text) == portable


@pytest.mark.parametrize("text", [
    "NO.2023/tmp/0001",  # OCR text: /tmp is not at a path boundary on its left
    "A-/tmp/x", "x_/home/u/y", "~/tmp/a",
])
def test_a_root_inside_a_word_is_not_a_path(text: str) -> None:
    assert PATHS.text(text) == text


def test_kept_texts_are_never_rewritten_alone_or_quoted() -> None:
    kept = PATHS.keeping(["/tmp/0001", "no path", "NO./home/u/x"])
    assert kept.text("/tmp/0001") == "/tmp/0001"
    assert kept.text("line 2: text '/tmp/0001' -> '/tmp/0002' in /tmp/a") == \
        "line 2: text '/tmp/0001' -> '$TMPDIR/0002' in $TMPDIR/a"
    assert kept.scrub({"text": "/tmp/0001", "error": "/tmp/b"}) == {"text": "/tmp/0001", "error": "$TMPDIR/b"}
    assert kept.keep == frozenset({"/tmp/0001"})  # only texts a root could touch are remembered


def test_scrub_reaches_every_string_and_key() -> None:
    report = {"corpus": {"root": "/data/slips"}, "checks": {"audit": {"details": {"det": {"model_dir":
              "/home/u/.cache/ocr-harness/p/det"}}}}, "/work/co/k": ["/tmp/a", 1, None, 2.5]}
    assert PATHS.scrub(report) == {"corpus": {"root": "<corpus>"}, "checks": {"audit": {"details": {"det": {
        "model_dir": "$OCR_HARNESS_CACHE/p/det"}}}}, "k": ["$TMPDIR/a", 1, None, 2.5]}


def test_roots_inside_the_checkout_stay_relative(tmp_path: Path) -> None:
    paths = for_run(checkout=tmp_path / "co", corpus_root=tmp_path / "co" / "corpus",
                    golden_root=tmp_path / "golden", cache_root=tmp_path / "cache")
    assert paths.text(str(tmp_path / "co" / "corpus" / "a.png")) == "corpus/a.png"
    assert paths.text(str(tmp_path / "golden" / "default")) == "<golden>/default"
    assert paths.text(str(tmp_path / "cache" / "p")) == "$OCR_HARNESS_CACHE/p"


@pytest.mark.slow
def test_ocr_text_that_looks_like_a_machine_path_is_reported_as_read(tmp_path: Path) -> None:
    """Golden texts that hold the temp dir (a root the reports rewrite) stay verbatim in every report, while
    the machine's own paths (the golden dir under the temp dir) are still rewritten."""
    tmp = tempfile.gettempdir()
    goldens = tmp_path / "golden"
    shutil.copytree(ROOT / "golden", goldens)
    path = goldens / "default" / "slip_0000.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    planted = [f"NO.2023{tmp}/0001", f"{tmp}/0002"]
    for line, text in zip(data["lines"][:2], planted, strict=True):
        line["text"] = text
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    run = run_cli(["run", "--profile", "release", "--id", "slip_0000", "--repeats", "2", "--golden-dir",
                   str(goldens), "--html", "--out", str(out)], out=out)
    assert run.returncode == 1, run.stderr[-2000:]
    for name in ("report.json", "junit.xml", "summary.md", "report.html"):
        text = (out / name).read_text(encoding="utf-8")
        if name == "report.json":
            text = json.dumps(json.loads(text), ensure_ascii=False)
        if name in ("summary.md", "report.html"):  # they mark changed characters and show the first lines
            text = html.unescape(re.sub("<[^>]+>", "", text))
        for planted_text in planted if name in ("report.json", "junit.xml") else planted[:1]:
            shown = html.escape(planted_text) if name == "junit.xml" else planted_text
            assert shown in text, (name, planted_text)
        assert "$TMPDIR/0002" not in text and "NO.2023$TMPDIR" not in text, name
        assert str(goldens) not in text, name  # the golden dir is still a machine path


# --- end to end: two "machines" ------------------------------------------------------------------------------

SECRETS = {"MY_API_TOKEN": "s3cret-api-value", "OCR_HARNESS_UPLOAD_TOKEN": "s3cret-upload-value"}
REPORT_FILES = ("report.json", "summary.md", "junit.xml", "report.html", "results.jsonl")


def machine(tmp_path: Path, name: str) -> tuple[Path, dict[str, str], Path]:
    """A corpus copy, a golden copy and a model cache of one's own, outside the checkout; secrets in the env."""
    home = tmp_path / name
    shutil.copytree(CORPUS, home / "corpus")
    shutil.copytree(ROOT / "golden", home / "golden")
    return home, {"OCR_HARNESS_CACHE": str(home / "cache"), **SECRETS}, home / "out"


def assert_portable(out: Path, machine_paths: list[str]) -> None:
    for name in REPORT_FILES:
        text = (out / name).read_text(encoding="utf-8")
        for path in machine_paths:
            assert path not in text, (name, path)
        for value in SECRETS.values():
            assert value not in text, (name, value)


@pytest.mark.slow
def test_shards_from_two_machines_hold_no_machine_path_and_merge(tmp_path: Path) -> None:
    def shard(k: int) -> CliRun:
        home, env, out = machine(tmp_path, f"machine-{k}")
        return run_cli(["run", "--profile", "release", "--corpus", str(home / "corpus"), "--golden-dir",
                        str(home / "golden"), "--id", "slip_0003", "--id", "slip_0006", "--repeats", "1",
                        "--shard", f"{k}/2", "--html", "--out", str(out)], env=env, out=out)

    with ThreadPoolExecutor(2) as pool:
        one, two = pool.map(shard, [1, 2])
    assert (one.returncode, two.returncode) == (0, 0), one.stderr[-2000:] + two.stderr[-2000:]
    machine_paths = [str(tmp_path), str(tmp_path.resolve()), str(ROOT), f"{Path.home()}/"]
    for res in (one, two):
        assert_portable(res.out, machine_paths)
        report = res.report
        assert report["corpus"]["root"] == "<corpus>"
        settings = report["profile"]["settings"]
        assert (settings["corpus"], settings["golden_dir"]) == ("<corpus>", "<golden>")
        if res is one:  # the model-level audit runs on shard 1 only; shard 2 leaves it to shard 1
            assert report["checks"]["audit"]["details"]["det"]["model_dir"].startswith("$OCR_HARNESS_CACHE/pp-ocrv4-")
        else:
            audit = report["checks"]["audit"]
            assert audit["skipped"] and "judged on shard 1/2 only" in audit["summary"]
        assert set(SECRETS) <= set(report["environment"]["env_redacted"])
        assert "MY_API_TOKEN" in (res.out / "report.html").read_text(encoding="utf-8")

    out = tmp_path / "merged"
    merged = run_cli(["report", "merge", str(one.out), str(two.out), "--out", str(out), "--html"], out=out)
    assert merged.returncode == 0, merged.stderr[-2000:]
    assert [i["id"] for i in merged.report["images"]] == ["slip_0003", "slip_0006"]
    assert "not in this checkout" in merged.stderr  # the corpus was outside both checkouts: no pictures, said so
    assert_portable(out, machine_paths)
