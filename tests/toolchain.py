"""Finding a Python 3.12 for the wheel test, one way for the tests, `.ci/setup` and `.ci/run`: $OCR_HARNESS_TEST_PY312,
`python3.12` on PATH, or pyenv's 3.12 (whose `python3.12` shim answers only when asked for that version)."""

from __future__ import annotations

import os
import shutil
import subprocess


def _is_312(exe: str, env: dict[str, str] | None = None) -> str | None:
    try:
        probe = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2] == (3, 12), sys.executable)"],
                               capture_output=True, text=True, check=False, env=env, timeout=60)
    except OSError:
        return None
    answer = probe.stdout.split()
    return answer[1] if answer[:1] == ["True"] and len(answer) == 2 else None


def find_python312() -> str | None:
    """The real executable of a Python 3.12, or None."""
    for exe in (os.environ.get("OCR_HARNESS_TEST_PY312"), shutil.which("python3.12")):
        if exe and (found := _is_312(exe)):
            return found
    if shutil.which("pyenv") and (exe := shutil.which("python3.12")):
        return _is_312(exe, {**os.environ, "PYENV_VERSION": "3.12"})
    return None
