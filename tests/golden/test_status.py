from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.golden.status import golden_status, isa_level, likely_cause, stack_differences
from harness.golden.store import Golden, GoldenMeta, GoldenStore
from harness.model.results import Line, OcrResult
from harness.util.errors import UserError

GOLDEN_STACK: dict[str, Any] = {
    "versions": {"python": "3.11.9", "paddle": "3.2.2", "paddleocr": "3.7.0", "paddlex": "3.7.2"},
    "models": {"det_sha256": "49ee", "rec_sha256": "a6db"},
    "profile_settings_sha256": "s1",
    "onednn": True,
    "cpu_threads": 2,
    "cpu": {"model": "Intel Xeon", "isa_flags": ["sse4_2", "avx", "avx2", "avx512f", "avx512bw"]},
}


def stack(**changes: Any) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in GOLDEN_STACK.items()}
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        target = out
        for part in path:
            target = target[part]
        target[last] = value
    return out


def make_store(tmp_path: Path, ids: list[str], with_meta: bool = True) -> GoldenStore:
    s = GoldenStore(tmp_path, "default")
    for image_id in ids:
        s.write(Golden(OcrResult(image_id, 10, 10, (Line("x", 0.5, ((0, 0), (5, 0), (5, 5), (0, 5))),))))
    if with_meta:
        s.write_meta(GoldenMeta("default", GOLDEN_STACK, "0.1.0", "2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z"))
    return s


def test_missing_goldens_and_orphans_on_a_full_run(tmp_path: Path) -> None:
    s = make_store(tmp_path, ["a", "b", "sub/c"])
    status = golden_status(s, ["a", "sub/c", "d"], selection_is_complete=True, current_stack=GOLDEN_STACK)
    assert status.missing == ("d",)
    assert status.orphans_judged and status.orphaned == ("b",)
    assert status.stack_matches and status.likely_cause is None
    assert status.summary() == "goldens (default): 2 of 3 images have one; 1 orphaned"
    assert status.to_dict()["orphaned"] == ["b"]


def test_orphans_are_never_judged_on_a_partial_run(tmp_path: Path) -> None:
    s = make_store(tmp_path, ["a", "b", "sub/c"])
    status = golden_status(s, ["a"], selection_is_complete=False, current_stack=GOLDEN_STACK)
    assert not status.orphans_judged and status.orphaned == () and status.missing == ()
    assert status.to_dict()["orphaned"] is None
    assert "orphans not judged (partial selection)" in status.summary()
    assert s.ids() == ["a", "b", "sub/c"]  # and nothing was touched


def test_stack_mismatch_names_keys_and_likely_cause(tmp_path: Path) -> None:
    s = make_store(tmp_path, ["a"])
    now = stack(versions__paddle="3.3.1", cpu__isa_flags=["sse4_2", "avx", "avx2"])
    status = golden_status(s, ["a"], True, now)
    assert [d.key for d in status.stack_differences] == ["cpu.isa_flags", "versions.paddle"]
    assert not status.stack_matches
    assert status.likely_cause == (
        "goldens were made with paddle 3.2.2 on avx512; this run is paddle 3.3.1 on avx2: "
        "differences may come from the stack, not the model."
    )
    assert "stack differs in cpu.isa_flags, versions.paddle" in status.summary()


def test_cpu_onednn_threads_and_same_isa_level() -> None:
    now = stack(cpu__model="AMD EPYC", onednn=False, cpu_threads=4,
                cpu__isa_flags=["sse4_2", "avx", "avx2", "avx512f"])
    cause = likely_cause(stack_differences(GOLDEN_STACK, now))
    assert cause == (
        "goldens were made with cpu_threads 2, oneDNN enabled on Intel Xeon (avx512 +avx512bw); "
        "this run is cpu_threads 4, oneDNN disabled on AMD EPYC (avx512 -avx512bw): "
        "differences may come from the stack, not the model."
    )


def test_model_and_settings_changes_are_told_apart() -> None:
    now = stack(models__det_sha256="ffff", profile_settings_sha256="s2")
    cause = likely_cause(stack_differences(GOLDEN_STACK, now))
    assert cause is not None
    # The most specific cause first: which file changed, old -> new hash, before "settings changed".
    assert cause.startswith("model files changed since the goldens were made (det_sha256 49ee -> ffff)"), cause
    assert cause.index("det_sha256") < cause.index("profile settings")
    assert "the profile settings changed since the goldens were made (profile_settings_sha256)" in cause
    assert "may come from the stack" not in cause


def test_keys_missing_on_one_side_and_ignored_keys() -> None:
    now = stack(versions__paddlex=None)
    del now["versions"]["paddlex"]
    now["hostname"] = "ci-7"
    diffs = stack_differences(GOLDEN_STACK, now, ignore_keys={"hostname"})
    assert [(d.key, d.golden, d.current) for d in diffs] == [("versions.paddlex", "3.7.2", None)]
    assert "this run is paddlex (not recorded)" in (likely_cause(diffs) or "")


def test_a_difference_in_brief_names_what_moved_in_a_list() -> None:
    cpu, flags = stack_differences({"isa": ["avx2", "avx512f"], "cpu": "A"},
                                   {"isa": ["avx2", "amx_tile"], "cpu": "B"})
    assert flags.brief() == "isa: +amx_tile -avx512f" and cpu.brief() == "cpu: 'A' -> 'B'"
    (order,) = stack_differences({"isa": ["a", "b"]}, {"isa": ["b", "a"]})
    assert order.brief() == "isa: same items, other order"


def test_no_meta_is_reported(tmp_path: Path) -> None:
    s = make_store(tmp_path, ["a"], with_meta=False)
    status = golden_status(s, ["a"], True, GOLDEN_STACK)
    assert not status.has_meta and not status.stack_matches
    assert status.likely_cause == "_meta.json is missing: the stack that made these goldens is unknown"
    empty = golden_status(GoldenStore(tmp_path / "none", "default"), ["a"], True, GOLDEN_STACK)
    assert empty.missing == ("a",) and empty.likely_cause is None


def test_wrong_profile_dir_is_a_user_error(tmp_path: Path) -> None:
    make_store(tmp_path, ["a"])
    (tmp_path / "default").rename(tmp_path / "nightly")
    with pytest.raises(UserError, match="made for profile 'default', not 'nightly'"):
        golden_status(GoldenStore(tmp_path, "nightly"), ["a"], True, GOLDEN_STACK)


@pytest.mark.parametrize(
    ("flags", "level"),
    [(["avx2", "avx512f"], "avx512"), ("sse4_2 avx avx2 fma", "avx2"), (["amx_tile", "avx512f"], "amx"),
     (["sse4_2"], "sse4.2"), ([], None), (None, None)],
)
def test_isa_level(flags: Any, level: str | None) -> None:
    assert isa_level(flags) == level
