"""Hypothesis strategies for hostile input and the suite's fuzz budget.

Structure-aware: documents shaped like what each reader expects (a golden, a manifest line, an approval record,
a shard's results line, a harness.toml, a PaddleX answer), whose leaves are drawn from hostile values: the line
separators str.splitlines() breaks at, control characters, lone surrogates, RTL marks, backticks and pipes, NaN,
infinities, numbers past float range, wrong types. A leaf sometimes keeps its sound value, so the documents get
past the first check and reach the later ones.

Budgets (HYPOTHESIS_PROFILE): `ci` (the default, in the normal suite: derandomized, about a minute for every
target together) and `fuzz` (`tox -e fuzz`: random, 25x the examples). No example database: a failure found is
kept as an explicit `@example` in the test, where every run replays it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("fuzz", max_examples=1500, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

HOSTILE_CHARS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\n", "\r", "\t", '"', "\\",
                 "`", "``", "<img src=x>", "|", "\u200f", "\u202e", "\x00", "\x7f", "\ud800", "\udfff", "é", "账", "/",
                 "..", "_meta"]
texts = st.lists(st.one_of(st.sampled_from(HOSTILE_CHARS), st.characters()), max_size=12).map("".join)
long_texts = st.integers(4990, 5010).map(lambda n: "账" * n)
numbers = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, -1, 1, 0.5, 1e308, -0.0]))
leaves = st.one_of(st.none(), st.booleans(), numbers, texts, long_texts)
values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(texts, inner, max_size=4)), max_leaves=12)


def sound_or(sound: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the sound value, sometimes any hostile one."""
    return st.one_of(sound, sound, sound, values)


def dumps(value: Any, ensure_ascii: bool) -> bytes:
    """Python's JSON (NaN, Infinity, 1e999 as written) in UTF-8; a lone surrogate written raw becomes invalid
    UTF-8 (surrogatepass), written escaped it is the six characters JSON allows."""
    return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


polys = sound_or(st.lists(st.lists(sound_or(st.integers(0, 4000)), min_size=2, max_size=2), min_size=3, max_size=5))
golden_lines = st.fixed_dictionaries({"text": sound_or(texts), "score": sound_or(st.floats(0, 1)), "poly": polys})
goldens = st.fixed_dictionaries({
    "schema_version": sound_or(st.just(1)), "image_id": sound_or(st.just("a")),
    "width": sound_or(st.integers(1, 4000)), "height": sound_or(st.integers(1, 4000)),
    "lines": sound_or(st.lists(golden_lines, max_size=4)),
}, optional={"image_sha256": sound_or(st.just("ab" * 32)), "stack": sound_or(st.just("0123456789ab")),
             "extra": values})

manifest_records = st.fixed_dictionaries({
    "id": sound_or(st.sampled_from(["slip_0000", "a/b", "x"])), "file": sound_or(st.just("img.png")),
}, optional={"lines": sound_or(st.lists(st.fixed_dictionaries({"text": sound_or(texts), "poly": polys}), max_size=3)),
             "template": sound_or(texts), "tags": sound_or(st.lists(texts, max_size=3)),
             "fields": sound_or(st.dictionaries(texts, texts, max_size=3)), "subsets": sound_or(st.lists(texts)),
             "sha256": sound_or(st.just("ab" * 32))})

speed_images = st.dictionaries(texts, st.fixed_dictionaries({
    "cost_s": sound_or(st.floats(0.001, 10)), "reference_s": sound_or(st.floats(0.001, 10)),
    "latency_s": sound_or(st.floats(0.001, 10))}), max_size=3)
approvals = st.fixed_dictionaries({
    "schema": sound_or(st.just("ocr-harness/approval/1")), "golden_set": sound_or(st.just("g")),
    "speed": sound_or(st.dictionaries(texts, st.fixed_dictionaries({
        "approved_at": sound_or(st.just("t")), "stack": sound_or(st.just({})), "selection": sound_or(st.integers(0, 9)),
        "clock": sound_or(st.sampled_from(["cpu", "wall"])), "images": sound_or(speed_images),
        "peak_rss_kib": sound_or(st.integers(1, 10**7)), "served_at_peak": sound_or(st.integers(0, 99))}),
        max_size=2)),
}, optional={"other": values})

results_records = st.fixed_dictionaries({"id": sound_or(st.just("s0")), "error": sound_or(st.none())}, optional={
    "result": sound_or(st.fixed_dictionaries({
        "image_id": sound_or(st.just("s0")), "width": sound_or(st.integers(1, 99)),
        "height": sound_or(st.integers(1, 99)), "lines": sound_or(st.lists(golden_lines, max_size=3))}))})

answers = st.fixed_dictionaries({
    "logId": sound_or(st.just("x")), "errorCode": sound_or(st.just(0)), "errorMsg": sound_or(st.just("Success")),
    "result": sound_or(st.fixed_dictionaries({
        "ocrResults": sound_or(st.lists(st.fixed_dictionaries({"prunedResult": sound_or(st.fixed_dictionaries({
            "rec_texts": sound_or(st.lists(sound_or(texts), max_size=3)),
            "rec_scores": sound_or(st.lists(sound_or(st.floats(0, 1)), max_size=3)),
            "rec_polys": sound_or(st.lists(polys, max_size=3))}, optional={"model_settings": values}))}),
            min_size=1, max_size=2)),
        "dataInfo": sound_or(st.fixed_dictionaries({"width": sound_or(st.just(32)), "height": sound_or(st.just(32))}))
    })),
})


def toml_value(v: Any) -> str:
    """A TOML literal for a leaf: floats as TOML writes them (inf, nan), strings through JSON's escapes (a lone
    surrogate's \\ud800 escape is one TOML refuses)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(repr(v), repr(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v if x is not None and not isinstance(x, dict)) + "]"
    return json.dumps(str(v))


SETTINGS = {"tolerances": ["score_abs", "text_max_cer", "poly_px"], "engine": ["det_unclip_ratio", "det_thresh",
            "det_limit_side_len", "rec_batch_size", "det_model_name"], "checks": ["repeats", "goldens", "accuracy"],
            "": ["subset", "golden_set", "max_image_pixels"]}
config_entries = st.lists(st.sampled_from([(t, k) for t, ks in SETTINGS.items() for k in ks]).flatmap(
    lambda tk: st.tuples(st.just(tk[0]), st.just(tk[1]), st.one_of(leaves, st.lists(leaves, max_size=3)))),
    max_size=5)
