"""The check registry (harness.checks.registry): a check is one module. The dummy check (tests/dummy_check.py),
registered through $OCR_HARNESS_CHECKS with no other file touched, reaches config validation, `run --help`,
report.json, junit.xml, summary.md, report.html and `report merge`, and its planted failure fails the run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import CORPUS, ROOT, CliRun, run_cli
from harness.checks import registry
from harness.util.errors import UserError

TESTS = Path(__file__).resolve().parents[1]
PLUGIN_ENV = {registry.PLUGINS_ENV: "dummy_check", "PYTHONPATH": str(TESTS)}
IDS = ("slip_0007", "slip_0003")  # shard 1/2 and shard 2/2


@pytest.fixture
def with_dummy(monkeypatch: pytest.MonkeyPatch) -> Iterator[registry.CheckSpec]:
    """The dummy check registered in this process for one test, then gone."""
    registry.specs()
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))
    import dummy_check

    yield registry.register(dummy_check.SPEC)


def config(tmp_path: Path, **checks: object) -> Path:
    lines = ["[profiles.t]", f'corpus = "{CORPUS.as_posix()}"', f'golden_dir = "{(ROOT / "golden").as_posix()}"',
             'golden_set = "default"', "[profiles.t.checks]", "repeats = 2"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in checks.items()]
    path = tmp_path / "harness.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- the registry itself ---------------------------------------------------------------------------------------

def test_builtin_checks_in_report_order() -> None:
    assert registry.report_order() == (
        "run", "inference", "served_settings", "audit", "probe", "bn_drift", "golden", "parity", "repeat",
        "cross_process", "mutation", "batch_paths", "variations", "speed", "accuracy")
    assert [s.flag for s in registry.specs() if s.flag] == [
        "--cross-process", "--batch-paths", "--variations", "--goldens", "--probe", "--bn-drift", "--speed"]


def test_a_name_registered_twice_is_refused(with_dummy: registry.CheckSpec) -> None:
    import dataclasses

    with pytest.raises(ValueError, match="registered twice"):
        registry.register(dataclasses.replace(with_dummy))
    with pytest.raises(ValueError, match="reserved"):
        registry.register(dataclasses.replace(with_dummy, name="accuracy"))


def test_plugin_options_are_validated_like_the_file(tmp_path: Path, with_dummy: registry.CheckSpec) -> None:
    from harness.config import load_profile

    profile, _ = load_profile(config(tmp_path, dummy=True, dummy_min_lines=5), "t", registry.catalogue())
    assert profile.checks.get("dummy") is True and profile.checks.get("dummy_min_lines") == 5
    assert profile.settings_dict()["checks"]["dummy_min_lines"] == 5
    with pytest.raises(UserError, match=r"profiles\.t\.checks\.dummy_min_lines: must be >= 1"):
        load_profile(config(tmp_path, dummy_min_lines=0), "t", registry.catalogue())
    with pytest.raises(UserError, match=r"profiles\.t\.checks\.dummy_min_lines: expected int"):
        load_profile(config(tmp_path, dummy_min_lines="5"), "t", registry.catalogue())
    with pytest.raises(UserError, match=r"dummy_min_line: unknown key \(did you mean 'dummy_min_lines'\?\)"):
        load_profile(config(tmp_path, dummy_min_line=5), "t", registry.catalogue())


def test_without_the_plugin_its_keys_are_unknown(tmp_path: Path) -> None:
    from harness.config import load_profile

    assert registry.get("dummy") is None
    with pytest.raises(UserError, match=r"profiles\.t\.checks\.dummy_min_lines: unknown key"):
        load_profile(config(tmp_path, dummy_min_lines=5), "t", registry.catalogue())


def test_dummy_flag_in_run_help_only_when_registered() -> None:
    with_plugin = run_cli(["run", "--help"], env=PLUGIN_ENV)
    assert with_plugin.returncode == 0, with_plugin.stderr
    assert "--dummy, --no-dummy" in with_plugin.stdout and "checks.dummy_min_lines" in with_plugin.stdout
    plain = run_cli(["run", "--help"])
    assert plain.returncode == 0 and "--dummy" not in plain.stdout


def test_unknown_plugin_module_is_a_one_line_usage_error() -> None:
    res = run_cli(["run", "--help"], env={registry.PLUGINS_ENV: "no_such_check_module"})
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].endswith(
        "$OCR_HARNESS_CHECKS: cannot import check module 'no_such_check_module': No module named "
        "'no_such_check_module'")


# --- end to end: real runs -------------------------------------------------------------------------------------

def shard_run(tmp_path: Path, shard: str, *args: str) -> CliRun:
    out = tmp_path / f"shard-{shard.replace('/', '-')}"
    return run_cli(["run", "--profile", "release", *(a for i in IDS for a in ("--id", i)), "--repeats", "2",
                    "--shard", shard, "--dummy", "--html", "--out", str(out), *args], env=PLUGIN_ENV, out=out)


def assert_dummy_everywhere(out: Path, passed: bool, images: int) -> None:
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    dummy = report["checks"]["dummy"]
    assert dummy["passed"] is passed and not dummy["skipped"] and dummy["judged"] == images, dummy
    assert all("dummy" in img["checks"] for img in report["images"])
    suites = {s.get("name"): s for s in ET.parse(out / "junit.xml").getroot().iter("testsuite")}
    assert suites["dummy"].get("tests") == str(images + 1)  # one per image and the check's own case
    assert suites["dummy"].get("failures") == ("0" if passed else str(images + 1))
    summary = (out / "summary.md").read_text(encoding="utf-8")
    status = "✅ passed" if passed else "❌ failed"
    assert f"| `dummy` | {status} | {'' if passed else images} | {dummy['summary']} |" in summary
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f"<tr><td>dummy</td><td><span class=\"{'passed' if passed else 'failed'}\">" in html


@pytest.mark.slow
def test_dummy_check_in_every_report_and_in_report_merge(tmp_path: Path) -> None:
    shards = [shard_run(tmp_path, "1/2"), shard_run(tmp_path, "2/2")]
    for s in shards:
        assert s.returncode == 0, s.stderr[-2000:]
        assert_dummy_everywhere(s.out, passed=True, images=1)
        assert "ok  dummy: all 1 images clean" in s.stdout
    merged = tmp_path / "merged"
    res = run_cli(["report", "merge", *(str(s.out) for s in shards), "--out", str(merged), "--html"],
                  env=PLUGIN_ENV, out=merged)
    assert res.returncode == 0, res.stderr[-2000:]
    assert_dummy_everywhere(merged, passed=True, images=2)
    assert res.report["checks"]["dummy"]["summary"] == "all 2 images clean"


@pytest.mark.slow
def test_planted_dummy_failure_fails_the_run_and_names_the_image(tmp_path: Path) -> None:
    cfg = config(tmp_path, dummy=True, dummy_min_lines=10_000)  # more lines than any slip has
    out = tmp_path / "out"
    res = run_cli(["run", "--config", str(cfg), "--profile", "t", "--id", IDS[0], "--html", "--out", str(out)],
                  env=PLUGIN_ENV, out=out)
    assert res.returncode == 1, res.stderr[-2000:]
    assert not res.report["passed"]
    dummy = res.report["checks"]["dummy"]
    assert dummy["failed_images"] == [IDS[0]]
    assert dummy["summary"] == f"1 of 1 images read fewer than 10000 lines: {IDS[0]}"
    assert_dummy_everywhere(out, passed=False, images=1)
    assert "FAIL  dummy:" in res.stdout


def test_the_docs_show_the_dummy_check_as_it_is() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc.split("**A new check is one module.**", 1)[1].split("**A new engine is one module**", 1)[0]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert example.strip() and example.strip() in (TESTS / "dummy_check.py").read_text(encoding="utf-8")
