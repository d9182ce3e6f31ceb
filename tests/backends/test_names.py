"""No backend name as a string literal outside its own package (harness/backends/<name>/): what differs between
backends is a capability or a hook of its spec (harness.backends.spec), so a new backend is one package."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "harness"
BACKENDS = ("paddle", "onnxruntime", "http")
# (file, literal): why the literal there is not a test of which backend runs.
ALLOWED = {
    # The default backend, declared once: profiles that name none and goldens made before backends existed.
    ("model/settings.py", "paddle"),
    # The environment record's package-version key (recorded for every backend), and its readers.
    ("environment.py", "paddle"), ("report/view.py", "paddle"),
    ("cli/doctor_cmd.py", "paddle"),
    # A URL scheme, not the backend.
    ("util/service_url.py", "http"),
}


def literal_sites(path: Path) -> list[tuple[int, str]]:
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        if tok.type != tokenize.STRING:
            continue
        try:
            value = ast.literal_eval(tok.string)
        except (ValueError, SyntaxError):  # an f-string
            continue
        if value in BACKENDS:
            out.append((tok.start[0], value))
    return out


def test_no_backend_name_outside_its_package() -> None:
    found, allowed_once = [], set(ALLOWED)  # each allowed literal once: a second one is a new backend test
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for line, name in literal_sites(path):
            if rel.startswith(f"backends/{name}/"):
                continue
            if (rel, name) in allowed_once:
                allowed_once.remove((rel, name))
                continue
            found.append(f"harness/{rel}:{line}: {name!r}")
    assert not found, "backend names outside their package:\n" + "\n".join(found)
    assert not allowed_once, f"allowed but gone (remove from ALLOWED): {sorted(allowed_once)}"


def test_a_planted_backend_test_is_found(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text('def f(backend: str) -> bool:\n    return backend == "onnxruntime"\n', encoding="utf-8")
    assert literal_sites(planted) == [(2, "onnxruntime")]
