from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import cv2
import numpy as np

from conftest import typed

from tools.screenshots.browser import dump_dom, find_chromium, screenshot
from harness.report.html import render_html
from harness.report.html_picture import CURRENT, GOLDEN
from tools.screenshots.sample import sample_run

# Anything that would make a browser fetch: remote or protocol-relative src/href, CSS url()/@import, <link>.
REMOTE = re.compile(r"""(?:src|href|action|poster)\s*=\s*["']?\s*(?:https?:)?//|url\(|@import|<link\b|<iframe\b""", re.I)


def pictures(html: str) -> list[np.ndarray]:
    return [cv2.imdecode(np.frombuffer(base64.b64decode(b), np.uint8), cv2.IMREAD_COLOR)
            for b in re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html)]


def near(img: np.ndarray, bgr: tuple[int, int, int], tol: int = 45) -> int:
    return int(np.count_nonzero(np.all(np.abs(img.astype(int) - bgr) <= tol, axis=2)))


def sample_html() -> str:
    report, results, images, goldens = sample_run()
    return render_html(typed(report), results, images.get, goldens=goldens)


def test_self_contained() -> None:
    html = sample_html()
    assert not REMOTE.search(html)
    assert "<script" not in html
    assert html.count("data:image/jpeg;base64,") == 3


def test_failing_first_and_highlighted() -> None:
    html = sample_html()
    order = [html.index(f'<h3>{i}</h3>') for i in ("slip_0001", "slip_0002", "slip_0003")]
    assert order == sorted(order)
    assert '<tr class="changed">' in html and '<tr class="missing">' in html
    assert '<mark class="del">7</mark>' in html and '<mark class="ins">1</mark>' in html
    assert "first divergence" in html and "0.0159" in html
    assert "<h5>bs1 vs profile</h5>" in html and "<th>profile</th><th>bs1</th>" in html  # batch-path differences
    assert 'id="img-0" open' in html and 'id="img-2" open' not in html


def test_boxes_drawn_current_and_golden() -> None:
    failing, _, passing = pictures(sample_html())
    assert near(failing, GOLDEN) > 200  # golden boxes of the changed and missing lines
    assert near(failing, CURRENT) > 200
    assert near(passing, GOLDEN) == 0
    assert failing.shape[1] <= 760


def test_escaping_and_missing_pictures() -> None:
    report = {"passed": False, "images": [
        {"id": "<script>alert(1)</script>", "passed": False, "error": "boom & <b>", "checks": {}},
        {"id": "gone", "passed": True, "checks": {}}]}

    def loader(image_id: str) -> np.ndarray | None:
        if image_id == "gone":
            raise FileNotFoundError("gone.png")
        return None

    html = render_html(typed(report), {}, loader)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "boom &amp; &lt;b&gt;" in html
    assert "picture not available: gone.png" in html


def test_picture_cap() -> None:
    report, results, images, goldens = sample_run()
    html = render_html(typed(report), results, images.get, goldens=goldens, max_pictures=1)
    assert html.count("data:image/jpeg;base64,") == 1
    assert "pictures embedded for the first 1 images only" in html


def test_without_goldens_rows_follow_current_lines() -> None:
    report, results, images, _ = sample_run()
    html = render_html(typed(report), results, images.get)
    assert '<mark class="del">7</mark>' in html and '<tr class="missing">' in html


PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-images-ok', String(ok));
  document.body.setAttribute('data-fetches', String(performance.getEntriesByType('resource').length));
});
</script></body>"""


def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    assert find_chromium() is not None, "no Chromium found: the suite needs it (Debian: apt-get install chromium)"
    start = time.perf_counter()
    html = sample_html()
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    shot = screenshot(page, tmp_path / "shot.png", window=(1280, 2000))
    img = cv2.imread(str(shot))
    assert img is not None and img.shape == (2000, 1280, 3)
    assert float(img.std()) > 20  # not blank
    assert near(img[:120], (46, 34, 207), tol=30) > 20_000  # the red FAIL banner on top
    assert near(img, CURRENT, tol=40) > 200  # a slip with its boxes

    # A copy with a probe script: every picture decoded, nothing fetched (names resolve to nothing anyway).
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE), encoding="utf-8")
    dom = dump_dom(probed)
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None, dom[:500]
    attrs = dict(re.findall(r'(data-[\w-]+)="(\d+)"', body.group(1)))
    assert attrs == {"data-images": "3", "data-images-ok": "3", "data-fetches": "0"}
    assert time.perf_counter() - start < 60
