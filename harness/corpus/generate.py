"""`corpus generate`: render N slips from a seed and write images plus manifest.jsonl.

Same seed, same generator version, same fonts and same library versions -> the same bytes. Every random draw
comes from one numpy Generator per slip, seeded by (seed, index), so slip k does not depend on the count.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import PIL
from PIL import Image

from harness.corpus import effects as fx
from harness.corpus.content import make_content
from harness.corpus.fonts import FontSet, find_fonts
from harness.corpus.templates import TEMPLATES, render
from harness.util.errors import UserError

GENERATOR_VERSION = 1
SMOKE_COUNT = 12

# Slip i gets template i % len(templates) and recipe i % len(RECIPES); the first 12 recipes hold every effect
# once, so any run of 12 or more covers them all, and the smoke subset (the first 12) does too.
RECIPES: tuple[tuple[str, ...], ...] = (
    ("clean",), ("scan_noise",), ("blur",), ("jpeg",), ("rotation",), ("perspective",), ("low_contrast",),
    ("low_resolution",), ("shadow",), ("fax",), ("rotation", "scan_noise"), ("perspective", "shadow", "jpeg"),
    ("blur", "low_contrast"), ("clean",), ("low_resolution", "jpeg"), ("perspective", "blur"),
)


@dataclass(frozen=True)
class Slip:
    id: str
    file: str  # relative to the corpus root, posix
    data: bytes
    template: str
    tags: tuple[str, ...]
    lines: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]
    fields: dict[str, str]
    subsets: tuple[str, ...]


def _encode(captured: fx.Captured) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    match captured.encoding:
        case "png-bilevel":
            Image.fromarray(captured.pixels).convert("1", dither=Image.Dither.NONE).save(buffer, "PNG",
                                                                                       compress_level=9)
            suffix = ".png"
        case "png-grey" | "png-rgb":
            Image.fromarray(captured.pixels).save(buffer, "PNG", compress_level=9)
            suffix = ".png"
        case "jpeg":
            # Baseline, 4:2:0, no EXIF and no optimisation pass: a plain camera/phone JPEG, same bytes each run.
            Image.fromarray(captured.pixels).save(buffer, "JPEG", quality=captured.jpeg_quality, subsampling=2,
                                                  optimize=False, progressive=False)
            suffix = ".jpg"
        case other:
            raise ValueError(f"unknown encoding {other}")
    return buffer.getvalue(), suffix


def _poly(quad: np.ndarray, width: int, height: int) -> tuple[tuple[int, int], ...]:
    return tuple((int(np.clip(round(float(x)), 0, width - 1)), int(np.clip(round(float(y)), 0, height - 1)))
                 for x, y in quad)


def make_slip(seed: int, index: int, templates: Sequence[str], fonts: FontSet, smoke: bool) -> Slip:
    rng = np.random.default_rng([seed, index])
    template = templates[index % len(templates)]
    recipe = RECIPES[index % len(RECIPES)]
    content = make_content(rng)
    rendered = render(template, content, fonts, rng)
    canvas = rendered.canvas
    quads = np.array([line.quad for line in canvas.lines], dtype=np.float64).reshape(-1, 4, 2)
    pixels = np.asarray(canvas.image, dtype=np.uint8)
    captured = fx.apply(pixels, quads, () if recipe == ("clean",) else recipe, rng)
    data, suffix = _encode(captured)
    height, width = captured.pixels.shape[:2]
    slip_id = f"slip_{index:04d}"
    lines = tuple((line.text, _poly(q, width, height)) for line, q in zip(canvas.lines, captured.quads, strict=True))
    return Slip(
        id=slip_id, file=f"images/{slip_id}{suffix}", data=data, template=template,
        tags=tuple(sorted(set(recipe) | set(rendered.features))), lines=lines, fields=dict(rendered.fields),
        subsets=("full", "smoke") if smoke else ("full",),
    )


def manifest_record(slip: Slip) -> str:
    record = {
        "id": slip.id, "file": slip.file, "sha256": hashlib.sha256(slip.data).hexdigest(), "template": slip.template,
        "tags": list(slip.tags),
        "lines": [{"text": text, "poly": [list(p) for p in poly]} for text, poly in slip.lines],
        "fields": slip.fields, "subsets": list(slip.subsets),
    }
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise UserError(f"--out {out}: directory is not empty (use --force to replace a generated corpus)")
        if not (out / "manifest.jsonl").is_file():
            raise UserError(f"--out {out}: not a generated corpus (no manifest.jsonl); refusing to overwrite")
        # Only what this generator writes is removed; anything else in the directory is left alone.
        for path in sorted((out / "images").glob("slip_*")):
            path.unlink()
        for name in ("manifest.jsonl", "generator.json"):
            (out / name).unlink(missing_ok=True)


def generate(seed: int, count: int, out: Path, templates: Sequence[str] = TEMPLATES, *, force: bool = False,
             command: str = "") -> list[Slip]:
    if count < 1:
        raise UserError(f"--count must be at least 1, got {count}")
    bad = [t for t in templates if t not in TEMPLATES]
    if bad or not templates:
        raise UserError(f"--templates: unknown {', '.join(bad) or '(none given)'}; known: {', '.join(TEMPLATES)}")
    fonts = find_fonts()
    _prepare_out(out, force)
    (out / "images").mkdir(parents=True, exist_ok=True)
    slips = []
    with open(out / "manifest.jsonl", "w", encoding="utf-8", newline="\n") as manifest:
        for index in range(count):
            slip = make_slip(seed, index, templates, fonts, smoke=index < SMOKE_COUNT)
            (out / slip.file).write_bytes(slip.data)
            manifest.write(manifest_record(slip) + "\n")
            slips.append(slip)
    info = {
        "command": command, "count": count, "generator_version": GENERATOR_VERSION, "seed": seed,
        "templates": list(templates),
        "fonts": [f.describe() for f in (fonts.sans, fonts.bold, fonts.serif, fonts.mono)],
        # Byte-identity also rests on these: zlib/libjpeg inside Pillow, FreeType, OpenCV's resamplers.
        "versions": {"numpy": np.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__},
    }
    (out / "generator.json").write_text(json.dumps(info, sort_keys=True, indent=2, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    return slips
