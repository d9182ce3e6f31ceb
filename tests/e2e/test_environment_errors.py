"""Environment errors are not bugs, and commands that stop leave nothing that blocks a retry.

Planted on 22c6256:
- a full disk (ENOSPC), no permission (EACCES) or a read-only file system (EROFS) while a run writes
  report.json: exit 3 "a bug" with an empty traceback.txt. Now exit 2, one line naming the path and the errno.
  The disk is filled at the OS boundary: a sitecustomize in the child makes opening that file for writing fail
  with the errno (as the suite's network guard makes connections fail), so the real run writes everything else.
- harness.toml with invalid UTF-8: exit 3. Now exit 2 naming the file and the byte.
- `bn reestimate` of a model whose .pdiparams is cut in half: exit 3, a multi-line message, and --out left holding
  only traceback.txt (the retry was refused: "exists and is not empty"). Now one line, exit 2, no --out.
- `bn evaluate` with a malformed reestimate.json (checks outside the try): exit 3. Now one line naming the field.
- SIGTERM during `bn reestimate`: the hidden work dir `.out.*` stayed beside --out. Now removed, exit 143.
- a golden check on a run where no image ran said "N of N images differ ... likely cause: ...". Now "judged
  nothing".
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, run_cli
from backends.test_registry import PLUGIN_ENV, config as inkbands_config
from run.shards.test_merge import IDS as SYNTHETIC_IDS, Synthetic

from harness.backends.paddle.pack import resolve_model_dirs
from harness.checks.golden_check import golden_check
from harness.cli import main
from harness.golden.status import golden_status
from harness.model.inference import ImageOutcome
from harness.model.settings import EngineSettings

FULL_DISK = '''
import builtins, errno, io, os
_name, _errno = os.environ["FAULT_OPEN_NAME"], getattr(errno, os.environ["FAULT_OPEN_ERRNO"])
_os_open, _io_open = os.open, io.open
def _refuse(path, writing):
    if writing and _name in os.path.basename(os.fsdecode(path)):
        raise OSError(_errno, os.strerror(_errno), os.fsdecode(path))
def os_open(path, flags, *args, **kwargs):
    _refuse(path, flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    return _os_open(path, flags, *args, **kwargs)
def io_open(file, mode="r", *args, **kwargs):
    if isinstance(file, (str, bytes, os.PathLike)):
        _refuse(file, any(c in mode for c in "wax+"))
    return _io_open(file, mode, *args, **kwargs)
os.open, io.open, builtins.open = os_open, io_open, io_open
'''


@pytest.mark.parametrize("code", ["ENOSPC", "EACCES", "EROFS"])
def test_a_disk_that_refuses_the_report_is_exit_2_naming_path_and_errno(tmp_path: Path, code: str) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FULL_DISK, encoding="utf-8")
    cfg = inkbands_config(tmp_path, "inkbands")
    out = tmp_path / "out"
    env = {**PLUGIN_ENV, "PYTHONPATH": os.pathsep.join([str(site), PLUGIN_ENV["PYTHONPATH"]]),
           "FAULT_OPEN_NAME": "report.json", "FAULT_OPEN_ERRNO": code}
    res = run_cli(["run", "--config", str(cfg), "--profile", "t", "--id", "slip_0003", "--out", str(out)], env=env,
                  out=out)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, (res.returncode, res.stderr[-3000:])
    assert len(lines) == 1 and "Traceback" not in res.stderr and "a bug" not in res.stderr, res.stderr
    assert lines[0].startswith(f"ocr-harness: error: {out}/") and "report.json" in lines[0], lines[0]
    assert lines[0].endswith(f"{os.strerror(getattr(__import__('errno'), code))} (errno {code})"), lines[0]
    assert not (out / "traceback.txt").exists()
    assert (out / "results.jsonl").is_file()  # what could be written was


def test_a_config_that_is_not_utf8_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "harness.toml"
    path.write_bytes(b'[profiles.t]\ncorpus = "caf\xe9"\n')
    res = run_cli(["run", "--config", str(path), "--profile", "t", "--out", str(tmp_path / "out")])
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"ocr-harness: error: {path}: not UTF-8 text (invalid continuation "
                                               "byte at byte 26)"]


# --- bn reestimate / evaluate ----------------------------------------------------------------------------------

def _det_copy(tmp_path: Path) -> Path:
    det = tmp_path / "det"
    shutil.copytree(resolve_model_dirs(EngineSettings(), ROOT).det, det)
    return det


def _reestimate_args(det: Path, out: Path) -> list[str]:
    return ["bn", "reestimate", str(det), "--reference", str(CORPUS), "--target", str(CORPUS), "--out", str(out),
            "--images", "4", "--eval-images", "2"]


def test_a_truncated_pdiparams_is_one_line_and_leaves_no_out(tmp_path: Path) -> None:
    det = _det_copy(tmp_path)
    params = det / "inference.pdiparams"
    os.truncate(params, params.stat().st_size // 2)
    out = tmp_path / "new"
    res = run_cli(_reestimate_args(det, out))
    lines = res.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("ocr-harness:")]
    assert res.returncode == 2, res.stderr[-3000:]
    assert errors == [lines[-1]] and "Traceback" not in res.stderr, res.stderr
    assert errors[0].startswith(f"ocr-harness: error: {det}: ") and "model load failed" in errors[0], errors[0]
    assert not out.exists() and not list(tmp_path.glob(".new.*"))


def test_sigterm_during_reestimate_leaves_no_work_dir(tmp_path: Path) -> None:
    det = _det_copy(tmp_path)
    out = tmp_path / "new"
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-m", "harness", *_reestimate_args(det, out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not list(tmp_path.glob(".new.*")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.glob(".new.*")), "the work dir never appeared"
        time.sleep(1.0)  # inside the capture
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err[-3000:]
    assert not list(tmp_path.glob(".new.*")) and not out.exists(), sorted(p.name for p in tmp_path.iterdir())


def _record(tmp_path: Path, record: object | str) -> Path:
    new = tmp_path / "new"
    new.mkdir(exist_ok=True)
    text = record if isinstance(record, str) else json.dumps(record)
    (new / "reestimate.json").write_text(text, encoding="utf-8")
    return new


GOOD = {"kind": "det", "source": {"hashes": {"inference.pdmodel": "00"}},
        "split": {"calibration_reference": [["slip_0000", "ab"]], "calibration_target": [["slip_0001", None]]}}


@pytest.mark.parametrize(("change", "message"), [
    ({"kind": "cls"}, "kind: 'cls' is not det or rec"),
    ({"source": {"hashes": ["inference.pdmodel"]}}, "source.hashes: expected an object of file name -> sha256"),
    ({"source": {}}, "source.hashes: missing 'hashes'"),
    ({"split": {"calibration_reference": []}}, "split.calibration_target: missing 'calibration_target'"),
    ({"split": {"calibration_reference": [["a"]], "calibration_target": []}},
     "split.calibration_reference: expected a list of [image id, sha256] pairs"),
    ({"split": {"calibration_reference": "ab", "calibration_target": []}},
     "split.calibration_reference: expected a list of [image id, sha256] pairs"),
])
def test_a_malformed_reestimate_record_is_one_line(tmp_path: Path, change: dict, message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    new = _record(tmp_path, {**GOOD, **change})
    assert main(["bn", "evaluate", str(new), "--original", str(tmp_path), "--corpus", str(CORPUS)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ocr-harness: error: {new / 'reestimate.json'}: {message} (not a bn reestimate record)"]


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "the top level: expected a JSON object"),
    ('{"kind": NaN}', "NaN is not a number JSON allows"),
    ("{", "not a bn reestimate record: JSONDecodeError"),
])
def test_a_reestimate_record_that_is_not_json_is_one_line(tmp_path: Path, text: str, message: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    new = _record(tmp_path, text)
    assert main(["bn", "evaluate", str(new), "--original", str(tmp_path), "--corpus", str(CORPUS)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(new / "reestimate.json") in err[0], err


def test_a_sound_record_reaches_the_model_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = _record(tmp_path, GOOD)
    assert main(["bn", "evaluate", str(new), "--original", str(tmp_path), "--corpus", str(CORPUS)]) == 2
    assert "not the model" in capsys.readouterr().err


# --- a golden check that judged nothing -------------------------------------------------------------------------

def test_a_golden_check_where_no_image_ran_says_it_judged_nothing(tmp_path: Path) -> None:
    s = Synthetic(tmp_path)
    status = golden_status(s.store, SYNTHETIC_IDS, True, {"paddle": "3.3.0"})
    assert status.likely_cause  # the goldens' stack differs: the cause a failure would name
    failed = {i: ImageOutcome(i, error="worker crashed with SIGABRT") for i in SYNTHETIC_IDS}
    check = golden_check(s.items, failed, "profile", s.goldens, s.profile, status)
    assert not check.passed and check.judged == 0
    assert check.summary.startswith("8 of 8 images did not run on the profile path: slip_0000, ")
    assert check.summary.endswith(" | judged nothing: no image was compared with its golden")
    assert "differ" not in check.summary and "likely cause" not in check.summary
    # One image compared and differing: the failure and its likely cause are still named.
    some = {**failed, "slip_0002": s.outcomes["slip_0002"]}
    check = golden_check(s.items, some, "profile", s.goldens, s.profile, status)
    assert "8 of 8 images differ" in check.summary and "likely cause" in check.summary


def test_a_merge_where_one_shard_ran_nothing_names_the_differences(tmp_path: Path) -> None:
    from harness.checks import registry
    from harness.run.shards.merge import merge_shards

    s = Synthetic(tmp_path)
    for i in SYNTHETIC_IDS[4:]:  # shard 1 of 2: slip_0004-0007, none ran
        s.outcomes[i] = ImageOutcome(i, error="worker crashed with SIGABRT")
    assert "judged nothing" in s.shard(1).data["checks"]["golden"]["summary"]
    merged = merge_shards([s.shard(1), s.shard(2)], registry.specs()).report["checks"]["golden"]["summary"]
    assert "differ from their golden" in merged and "judged nothing" not in merged and "did not run" not in merged
