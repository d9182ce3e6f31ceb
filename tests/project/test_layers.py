"""One-way layers (pyproject's [tool.importlinter]): `lint-imports` keeps a copy of the clean package and refuses a
copy with an upward import planted, and reading a profile loads no check, no renderer and no OpenCV."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """The package and its contracts, apart from the checkout: plants change the copy only."""
    shutil.copytree(ROOT / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, before the installed checkout.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)


def plant(path: Path, line: str) -> None:
    text = path.read_text(encoding="utf-8")
    anchor = "from __future__ import annotations\n"
    assert anchor in text
    path.write_text(text.replace(anchor, anchor + line, 1), encoding="utf-8")


def test_the_clean_package_keeps_every_contract(package_copy: Path) -> None:
    res = lint_imports(package_copy)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout and "BROKEN" not in res.stdout


@pytest.mark.parametrize(("module", "line", "named"), [
    ("util/atomic.py", "from harness.run.pipeline.plan import plan\n",
     "harness.util.atomic -> harness.run.pipeline.plan"),
    # A TYPE_CHECKING import is an import: the layers hold for the type checker's view too.
    ("model/report.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from harness.checks.registry import "
                        "CheckSpec\n", "harness.model.report -> harness.checks.registry"),
    ("model/outcome.py", "import harness.config\n", "harness.model.outcome -> harness.config"),
    # Below the composition root nothing imports the built-in checks: they are handed down as a catalogue.
    ("run/pipeline/execute.py", "from harness.checks import builtin\n",
     "harness.run.pipeline.execute -> harness.checks.builtin"),
    # execution (workers, pool, scheduler) <- checks <- run: execution calls no check, a check no run step.
    ("execution/scheduler.py", "from harness.checks import registry\n",
     "harness.execution.scheduler -> harness.checks.registry"),
    ("checks/parity.py", "from harness.run.pipeline.plan import plan\n",
     "harness.checks.parity -> harness.run.pipeline.plan"),
    # The config layer (config, corpus, golden store, metrics, ...) reads no engine, check or run.
    ("metrics.py", "from harness.backends import resolve_models\n", "harness.metrics -> harness.backends"),
    # Renderers are handed the check order and read the typed report: no check, no merge, no runner.
    ("report/view.py", "from harness.checks import registry\n", "harness.report.view -> harness.checks"),
    ("report/writer.py", "from harness.run.shards import merge\n", "harness.report.writer -> harness.run.shards.merge"),
    # The full map: an engine runs no worker pool, a renderer starts no engine, a check no CLI command.
    ("backends/paddle/passes.py", "from harness.execution.pool import make_worker\n",
     "harness.backends.paddle.passes -> harness.execution.pool"),
    ("report/html.py", "import harness.engine\n", "harness.report.html -> harness.engine"),
    ("checks/probe.py", "from harness.cli import main\n", "harness.checks.probe -> harness.cli"),
    # No cycles among siblings: two modules of one layer that import each other (metrics reads key fields).
    ("keyfields.py", "import harness.metrics\n", "No cycles are allowed in harness"),
    # A backend package imports no run workflow (the export agreement and the golden workflows live in run/).
    ("backends/onnxruntime/export.py", "from harness.run.pipeline.plan import plan\n",
     "harness.backends.onnxruntime.export -> harness.run.pipeline.plan"),
])
def test_an_upward_import_breaks_the_layers(package_copy: Path, module: str, line: str, named: str) -> None:
    plant(package_copy / "harness" / module, line)
    res = lint_imports(package_copy)
    assert res.returncode != 0
    assert "BROKEN" in res.stdout and named in res.stdout, res.stdout


def test_a_module_named_in_no_layer_breaks_the_contract(package_copy: Path) -> None:
    (package_copy / "harness" / "newcomer.py").write_text('"""In no layer yet."""\n', encoding="utf-8")
    res = lint_imports(package_copy)
    assert res.returncode != 0 and "harness.newcomer" in res.stdout, res.stdout


LOAD_A_PROFILE = """
import json, sys
from pathlib import Path
from harness.config import load_profile
from harness.model.catalogue import BackendRules, Catalogue, Option

# What the composition root hands down, written out: one check's option and one backend's rules.
catalogue = Catalogue(options={"speed": Option("speed", bool, False)},
                      backends={"paddle": BackendRules("paddle", flat_keys=("cpu_threads",))})
profile, _ = load_profile(Path(sys.argv[1]), "release", catalogue)
assert profile.checks.get("speed") is False and profile.checks.repeats == 2
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("harness", "cv2")))))
"""


def test_loading_a_profile_loads_no_check_no_renderer_and_no_opencv(tmp_path: Path) -> None:
    config = tmp_path / "harness.toml"
    config.write_text('[profiles.release]\ncorpus = "c"\n[profiles.release.checks]\nrepeats = 2\nspeed = false\n',
                      encoding="utf-8")
    res = subprocess.run([sys.executable, "-c", LOAD_A_PROFILE, str(config)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    loaded = json.loads(res.stdout)
    assert "harness.config" in loaded and "harness.model.settings" in loaded  # it did load what it reads with
    heavy = ("harness.report", "harness.checks", "cv2", "harness.run", "harness.execution", "harness.backends")
    assert not [m for m in loaded if m.startswith(heavy)], loaded


def test_below_the_composition_root_no_check_is_loaded_by_accident() -> None:
    code = ("from harness.checks import registry\n"
            "try:\n    registry.specs()\nexcept RuntimeError as e:\n    print(e)\n"
            "from harness.checks import builtin\nregistry.load(builtin)\nprint(len(registry.specs()))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    refused, count = res.stdout.splitlines()
    assert "the composition root calls harness.checks.registry.load" in refused and int(count) >= 10


def test_the_catalogue_contract_names_every_module_below_the_composition_root() -> None:
    """The contract lists its sources by hand: a new module missing from it could import the built-in checks."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    sources = next(c for c in contracts["contracts"] if c["id"] == "catalogue-handed-down")["source_modules"]
    root = {"harness", "harness.__main__", "harness.checks", "harness.checks.builtin", "harness.pytest_plugin"}
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in (ROOT / "harness").rglob("*.py")}
    unnamed = sorted(m for m in modules - root if not m.startswith(("harness.cli.", "harness.cli"))
                     and not any(m == s or m.startswith(s + ".") for s in sources))
    assert not unnamed, f"add to the catalogue-handed-down contract's source_modules: {unnamed}"


def test_the_renderers_contract_forbids_every_module_but_model_and_util() -> None:
    """The contract lists what renderers may not import by hand: a new module missing from it would be allowed."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contract = next(c for c in contracts["contracts"] if c["id"] == "renderers")
    renderers, forbidden = set(contract["source_modules"]), contract["forbidden_modules"]
    allowed = ("harness.model", "harness.util")
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in (ROOT / "harness").rglob("*.py")}
    unnamed = sorted(m for m in modules - renderers - {"harness", "harness.report"}
                     if not m.startswith(allowed) and not any(m == f or m.startswith(f + ".") for f in forbidden))
    assert not unnamed, f"add to the renderers contract's forbidden_modules: {unnamed}"


# An import by string (importlib, "module:function" tables) is invisible to lint-imports: below checks, no string
# may name a module of checks, run or the composition root (the Paddle child runner's tasks register themselves).
UPPER = ("harness.checks", "harness.run", "harness.cli", "harness.pytest_plugin", "harness.__main__")
BELOW_CHECKS = ("backends", "execution", "model", "util", "corpus", "golden", "report", "config.py", "engine.py",
                "environment.py", "keyfields.py", "metrics.py", "sampling.py")


def string_imports_upward(package: Path) -> list[str]:
    out = []
    for top in BELOW_CHECKS:
        for path in [package / top] if top.endswith(".py") else sorted((package / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                        re.fullmatch(r"harness(\.\w+)+(:\w+)?", node.value) and node.value.startswith(UPPER):
                    out.append(f"{path.relative_to(package.parent)}:{node.lineno}: {node.value}")
    return out


def test_no_string_import_points_up(package_copy: Path) -> None:
    assert string_imports_upward(ROOT / "harness") == []
    plant(package_copy / "harness" / "backends" / "paddle" / "child.py",
          'PLANTED = {"bn.measure": "harness.checks.bn.channels:measure_in_child"}\n')
    assert string_imports_upward(package_copy / "harness") == [
        "harness/backends/paddle/child.py:14: harness.checks.bn.channels:measure_in_child"]
