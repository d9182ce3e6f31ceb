"""Label files as PaddleOCR users have them, written from the committed corpus's ground truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from conftest import CORPUS


def manifest_records(ids: list[str]) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in (CORPUS / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    by_id = {r["id"]: r for r in records}
    return [by_id[i] for i in ids]


def write_ppocrlabel(folder: Path, ids: list[str], *, prefix: str = "") -> Path:
    """`folder/Label.txt` and the images in `folder`, paths written as `prefix + name` (PPOCRLabel writes
    `<folder name>/<image>`; its folder's parent is then the root)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for r in manifest_records(ids):
        name = Path(r["file"]).name
        shutil.copyfile(CORPUS / r["file"], folder / name)
        boxes = [{"transcription": ln["text"], "points": ln["poly"], "difficult": False} for ln in r["lines"]]
        out.append(f"{prefix}{name}\t{json.dumps(boxes, ensure_ascii=False)}")
    label = folder / "Label.txt"
    label.write_text("\n".join(out) + "\n", encoding="utf-8")
    return label
