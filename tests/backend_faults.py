"""Planted model faults for backend tests: a real model dir whose dictionary swaps two digits.

A wrong dictionary shipped next to the right weights is a real deployment fault: every line still reads
fluently, scores stay high, and amounts and account numbers change.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml


def swapped_digit_rec_dir(rec_dir: Path, target: Path, a: str = "1", b: str = "7") -> Path:
    """A copy of `rec_dir` (any format) whose inference.yml dictionary has digits `a` and `b` swapped."""
    shutil.copytree(rec_dir, target)
    (target / "pack.json").unlink(missing_ok=True)
    yml = target / "inference.yml"
    content = yaml.safe_load(yml.read_text(encoding="utf-8"))
    chars = content["PostProcess"]["character_dict"]
    i, j = chars.index(a), chars.index(b)
    chars[i], chars[j] = chars[j], chars[i]
    yml.write_text(yaml.safe_dump(content, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def swapped(text: str, a: str = "1", b: str = "7") -> str:
    """What a model with that dictionary reads for `text`."""
    return text.translate(str.maketrans(a + b, b + a))
