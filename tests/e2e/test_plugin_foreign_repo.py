"""The pytest plugin in a repository that is not this one: made by `ocr-harness init`, three images imported
from PPOCRLabel, goldens refreshed; `pytest` there loads the plugin from its `pytest11` entry point alone
(no conftest, no -p) and judges each image against its golden."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from labels import write_ppocrlabel
from test_pytest_plugin import outer_free_env

from harness.cli import main

pytestmark = pytest.mark.slow
IDS = ["slip_0000", "slip_0001", "slip_0002"]


def _pytest(repo: Path, *args: str) -> tuple[int, str, dict[str, bool]]:
    junit = repo / "out" / f"junit-{len(list((repo / 'out').glob('junit-*.xml'))) if (repo / 'out').exists() else 0}.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={junit}",
                           *args], cwd=repo, env=outer_free_env(), capture_output=True, text=True, check=False,
                          timeout=900)
    cases = {}
    if junit.exists():
        for tc in ET.parse(junit).getroot().iter("testcase"):
            cases[tc.get("name", "")] = tc.find("failure") is None and tc.find("error") is None
    return proc.returncode, proc.stdout + proc.stderr, cases


def test_plugin_from_entry_point_in_a_foreign_repo(tmp_path: Path) -> None:
    repo = tmp_path / "their-repo"
    assert main(["init", str(repo)]) == 0
    label = write_ppocrlabel(tmp_path / "labels" / "slips", IDS, prefix="slips/")  # PPOCRLabel's layout
    assert main(["corpus", "import", "--from", "ppocrlabel", str(label), "--out", str(repo / "datasets" / "slips"),
                 "--field", r"amount=[¥￥]\s*([\d,]+\.\d{2})"]) == 0
    cli = Path(sys.executable).with_name("ocr-harness")
    refresh = subprocess.run([str(cli), "golden", "refresh", "--all", "--yes"], cwd=repo, env=outer_free_env(),
                             capture_output=True, text=True, check=False, timeout=900)
    assert refresh.returncode == 0, refresh.stdout + refresh.stderr
    assert sorted(p.stem for p in (repo / "golden" / "default").glob("slip_*.json")) == IDS

    # The options are documented by the installed plugin: `pytest --help` there lists them.
    help_text = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=repo, env=outer_free_env(),
                               capture_output=True, text=True, check=False, timeout=300).stdout
    for option in ("--ocr-profile", "--ocr-id", "--ocr-regen", "--ocr-golden-dir", "--ocr-config"):
        assert option in help_text

    rc, output, cases = _pytest(repo)
    assert rc == 0, output
    assert cases == {f"test_ocr_golden[{i}]": True for i in IDS}

    # Planted: one digit of slip_0001's golden amount line changed; only that test fails and names the line.
    path = repo / "golden" / "default" / "slip_0001.json"
    golden = json.loads(path.read_text(encoding="utf-8"))
    line = next(ln for ln in golden["lines"] if "82775.49" in ln["text"])
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(json.dumps(line["text"], ensure_ascii=False),
                                 json.dumps(line["text"].replace("82775", "82776"), ensure_ascii=False), 1),
                    encoding="utf-8")
    rc, output, cases = _pytest(repo)
    assert rc == 1, output
    assert cases == {"test_ocr_golden[slip_0000]": True, "test_ocr_golden[slip_0001]": False,
                     "test_ocr_golden[slip_0002]": True}
    assert "82776" in output

    # Without the entry point the test has no fixture: it is the entry point that loads the plugin.
    rc, output, _ = _pytest(repo, "-p", "no:harness.pytest_plugin", "--ocr-id", "slip_0000")
    assert rc != 0 and "unrecognized arguments: --ocr-id" in output
