"""The files of a shard run, read as untrusted input: `report merge` gets them from other machines and jobs.

A field the merge reads with the wrong type, a NaN or an infinity (Python's json accepts both; JSON does not),
JSON nested deeper than the parser recurses, or a results line that is not one image's result: each is one
UserError naming the file and the field, before anything is written. Fields the merge only compares (stack,
environment, details it passes through) may hold anything JSON does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.model.results import OcrResult
from harness.util.errors import UserError
from harness.util.files import LISTING_MAX, read_input
from harness.util.values import no_constant, value_problem


def loads_strict(text: str, where: str) -> Any:
    """json.loads without NaN/Infinity or lone surrogates, with deep nesting and syntax errors as one UserError line."""
    try:
        value = json.loads(text, parse_constant=no_constant)
    except RecursionError:
        raise UserError(f"{where}: invalid JSON (nested too deeply)") from None
    except ValueError as e:  # JSONDecodeError is one
        raise UserError(f"{where}: invalid JSON ({e})") from None
    if (bad := value_problem(value)) is not None:  # a lone surrogate or 1e999: the merged report could not hold it
        raise UserError(f"{where}: {bad[0]}: {bad[1]}")
    return value


def read_report(path: Path, missing: str) -> dict[str, Any]:
    try:
        text = read_input(path, LISTING_MAX).decode("utf-8")
    except FileNotFoundError:
        raise UserError(missing) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: unreadable: {e}") from None
    data = loads_strict(text, str(path))
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def check_results_line(line: str, where: str) -> str:
    """One results.jsonl line: an object with a string `id`, a string-or-null `error` and a readable `result`."""
    record = loads_strict(line, where)
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise UserError(f"{where}: expected an object with a string 'id'")
    if record.get("error") is not None and not isinstance(record["error"], str):
        raise UserError(f"{where}: 'error' must be a string or null")
    if record.get("result") is not None:
        try:
            OcrResult.from_dict(record["result"])
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{where}: 'result' is not an OCR result ({type(e).__name__}: {e})") from None
    return line


# --- the report's shape: only what the merge reads ----------------------------------------------------------

def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _need(ok: bool, where: str, key: str, what: str) -> None:
    if not ok:
        raise UserError(f"{where}: {key} must be {what}")


def _table(value: Any, where: str, key: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{where}: {key} must be an object")
    return value


def _check(c: Any, where: str, key: str, *, image: bool) -> None:
    c = _table(c, where, key)
    _need(isinstance(c.get("passed"), bool), where, f"{key}.passed", "true or false")
    _need(isinstance(c.get("summary"), str), where, f"{key}.summary", "a string")
    _table(c.get("details"), where, f"{key}.details")
    if not image:
        _need(isinstance(c.get("skipped"), bool), where, f"{key}.skipped", "true or false")
        failed = c.get("failed_images")
        _need(isinstance(failed, list) and all(isinstance(i, str) for i in failed), where, f"{key}.failed_images",
              "a list of ids")


def _accuracy(a: Any, where: str, key: str) -> None:
    if a is None:
        return
    a = _table(a, where, key)
    _need(_number(a.get("cer")), where, f"{key}.cer", "a finite number")
    for k in ("edits", "ref_chars", "lines_exact", "lines_total"):
        _need(_count(a.get(k)), where, f"{key}.{k}", "a count")
    det = _table(a.get("det"), where, f"{key}.det")
    for k in ("tp", "fp", "fn"):
        _need(_count(det.get(k)), where, f"{key}.det.{k}", "a count")
    _table(a.get("fields"), where, f"{key}.fields")


def check_report(r: Mapping[str, Any], where: str) -> None:
    """UserError naming the first field the merge would read and cannot. A missing shard or selection, or an
    image without an index, is left to the merge's own messages (an unsharded or an older run)."""
    _need(isinstance(r.get("started_at"), str), where, "started_at", "a string")
    _need(_number(r.get("duration_s")), where, "duration_s", "a finite number")
    _need(r.get("complete") is None or isinstance(r["complete"], bool), where, "complete", "true or false")
    _table(r.get("environment"), where, "environment")
    _table(r.get("stack"), where, "stack")
    profile = _table(r.get("profile"), where, "profile")
    _need(isinstance(profile.get("name"), str), where, "profile.name", "a string")
    _table(profile.get("settings"), where, "profile.settings")
    corpus = _table(r.get("corpus"), where, "corpus")
    shard = corpus.get("shard")
    _need(shard is None or (isinstance(shard, list) and len(shard) == 2 and all(_count(v) for v in shard)
                            and 1 <= shard[0] <= shard[1]), where, "corpus.shard", "[K, N] with 1 <= K <= N")
    if "selection" in corpus:
        selection = _table(corpus["selection"], where, "corpus.selection")
        _need(_count(selection.get("images")), where, "corpus.selection.images", "a count")
        _need(isinstance(selection.get("complete", False), bool), where, "corpus.selection.complete",
              "true or false")
    for name, check in _table(r.get("checks"), where, "checks").items():
        _check(check, where, f"checks.{name}", image=False)
    images = r.get("images")
    if not isinstance(images, list):
        raise UserError(f"{where}: images must be a list")
    for n, img in enumerate(images):
        key = f"images[{n}]"
        img = _table(img, where, key)
        _need(isinstance(img.get("id"), str), where, f"{key}.id", "a string")
        _need(img.get("index") is None or _count(img["index"]), where, f"{key}.index", "a count")
        for name, check in _table(img.get("checks"), where, f"{key}.checks").items():
            _check(check, where, f"{key}.checks.{name}", image=True)
        timings = _table(img.get("timings"), where, f"{key}.timings")
        if timings:
            _need(_number(timings.get("predict_s")), where, f"{key}.timings.predict_s", "a finite number")
        _accuracy(img.get("accuracy"), where, f"{key}.accuracy")
        if img.get("accuracy") is not None:
            _need(img.get("template") is None or isinstance(img["template"], str), where, f"{key}.template",
                  "a string or null")
            _need(isinstance(img.get("tags"), list), where, f"{key}.tags", "a list")
    timing = _table(r.get("timing"), where, "timing")
    _need(timing.get("model_load_s") is None or _number(timing["model_load_s"]), where, "timing.model_load_s",
          "a finite number or null")
    _need(_number(timing.get("wall_s")), where, "timing.wall_s", "a finite number")
    for label, phase in _table(timing.get("phases", {}), where, "timing.phases").items():
        phase = _table(phase, where, f"timing.phases.{label}")
        _need(_number(phase.get("wall_s")), where, f"timing.phases.{label}.wall_s", "a finite number")
        _need(_count(phase.get("images")), where, f"timing.phases.{label}.images", "a count")
        _need(phase.get("workers_started") is None or _count(phase["workers_started"]), where,
              f"timing.phases.{label}.workers_started", "a count")
