"""Headless Chromium for report.html: screenshots for the README and a rendered-DOM check for tests.

    python -m tools.screenshots.browser OUT.png [REPORT.html]

Without REPORT.html the built-in sample run is rendered. Every name resolves to nothing
(--host-resolver-rules), so a page that tried to fetch anything would show it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness.checks import registry
from harness.report.html import render_html
from tools.screenshots.sample import sample_report
from harness.util.atomic import write_bytes as atomic_write_bytes, write_text as atomic_write_text

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1280, 2000)


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _run(args: Sequence[str], html_path: Path, browser: str | None,
         timeout: float) -> subprocess.CompletedProcess[bytes]:
    exe = browser or find_chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium found (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="ocr-harness-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               "--disable-dev-shm-usage", '--host-resolver-rules=MAP * ~NOTFOUND', f"--user-data-dir={profile}",
               *args, html_path.resolve().as_uri()]
        return subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=profile, check=False)


def screenshot(html_path: Path | str, png_path: Path | str, *, window: tuple[int, int] = WINDOW,
               browser: str | None = None, timeout: float = 120) -> Path:
    """Render ``html_path`` and write a PNG of its first ``window`` pixels."""
    with tempfile.TemporaryDirectory(prefix="ocr-harness-shot-") as tmp:
        shot = Path(tmp) / "shot.png"
        args = [f"--screenshot={shot}", f"--window-size={window[0]},{window[1]}"]
        proc = _run(args, Path(html_path), browser, timeout)
        if not shot.exists() or shot.stat().st_size == 0:
            raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}): "
                               + proc.stderr.decode("utf-8", "replace")[-2000:])
        return atomic_write_bytes(png_path, shot.read_bytes())


def dump_dom(html_path: Path | str, *, browser: str | None = None, timeout: float = 120) -> str:
    """The DOM after load (scripts run), as serialised HTML."""
    proc = _run(["--dump-dom", "--virtual-time-budget=5000"], Path(html_path), browser, timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium --dump-dom failed (exit {proc.returncode}): "
                           + proc.stderr.decode("utf-8", "replace")[-2000:])
    return proc.stdout.decode("utf-8", "replace")


def sample_html() -> str:
    report, results, images, goldens = sample_report()
    return render_html(report.laid_out(registry.layout()), results, images.get, goldens=goldens)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.screenshots.browser", description=__doc__.splitlines()[0])
    ap.add_argument("png", type=Path, help="screenshot to write (e.g. docs/report-screenshot.png)")
    ap.add_argument("html", type=Path, nargs="?", help="report.html to render (default: the sample run)")
    ap.add_argument("--width", type=int, default=WINDOW[0])
    ap.add_argument("--height", type=int, default=WINDOW[1])
    a = ap.parse_args(argv)
    if find_chromium() is None:
        print("error: no Chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ocr-harness-sample-") as tmp:
        html_path = a.html or atomic_write_text(Path(tmp) / "report.html", sample_html())
        screenshot(html_path, a.png, window=(a.width, a.height))
    print(a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
