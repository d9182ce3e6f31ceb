"""Corpora of the same slips in another domain (darkened, washed out), built in the test from the committed ones."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

Transform = Callable[[np.ndarray], np.ndarray]


def darkened(img: np.ndarray) -> np.ndarray:
    """An under-exposed scan: every pixel x0.3."""
    return (img.astype(np.float32) * 0.3).astype(np.uint8)


def washed_out(img: np.ndarray) -> np.ndarray:
    """A washed-out scan: 0.3p + 178 (white stays white, black becomes light grey)."""
    return (img.astype(np.float32) * 0.3 + 178.0).astype(np.uint8)


def identity(img: np.ndarray) -> np.ndarray:
    return img


def domain_corpus(src: Path, dst: Path, ids: Sequence[str], transform: Transform) -> Path:
    """A corpus in `dst` holding `ids` of the corpus `src` (manifest order kept), images transformed, truth and
    fields unchanged, sha256 of the new bytes."""
    (dst / "images").mkdir(parents=True, exist_ok=True)
    wanted = set(ids)
    lines = []
    for raw in (src / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(raw)
        if rec["id"] not in wanted:
            continue
        img = transform(cv2.imread(str(src / rec["file"]), cv2.IMREAD_COLOR))
        name = f"images/{rec['id']}.png"
        ok, data = cv2.imencode(".png", img)
        assert ok
        (dst / name).write_bytes(data.tobytes())
        rec.update(file=name, sha256=hashlib.sha256(data.tobytes()).hexdigest(), subsets=[])
        lines.append(json.dumps(rec, ensure_ascii=False))
    (dst / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dst
