from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from builders import ocr_result, quad

from harness.golden.refresh import plan_refresh
from harness.run.goldens.refresh import apply_refresh
from harness.golden.status import golden_status
from harness.golden.store import Golden, GoldenMeta, GoldenStore, dumps_golden, loads_golden, stack_id
from harness.model.results import Line, OcrResult
from harness.model.settings import Tolerances
from harness.util.errors import UserError

STACK: dict[str, Any] = {"paddle": "3.2.2", "cpu": {"isa_flags": ["avx2"]}}


def slip(image_id: str, amount: str = "¥1,234.50", score: float = 0.5, dy: int = 0) -> OcrResult:
    return ocr_result(Line("中国工商银行", 0.75, quad(10, 10, 200, 20)),
                      Line(f"金额：{amount}", score, quad(10, 40 + dy, 200, 20)), image_id=image_id)


def clock(day: int) -> Any:
    return lambda: datetime(2025, 1, day, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> GoldenStore:
    s = GoldenStore(tmp_path, "default")
    first = {i: slip(i) for i in ("same", "drift", "broken")}
    apply_refresh(plan_refresh(s, first, "all", Tolerances(), dict.fromkeys(first, True)), s, STACK, now=clock(1))
    return s


def current() -> dict[str, OcrResult]:
    return {
        "same": slip("same"),
        "drift": slip("drift", score=0.5 + 1e-6),  # within the default score tolerance
        "broken": slip("broken", amount="¥1,284.50"),
        "nested/new": slip("nested/new"),
    }


def actions(plan: Any) -> dict[str, str]:
    return {item.image_id: item.action for item in plan.items}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("new-only", {"same": "unchanged", "drift": "kept", "broken": "kept", "nested/new": "new"}),
        ("failed", {"same": "unchanged", "drift": "kept", "broken": "changed", "nested/new": "new"}),
        ("all", {"same": "unchanged", "drift": "changed", "broken": "changed", "nested/new": "new"}),
    ],
)
def test_plan_per_mode(store: GoldenStore, mode: Any, expected: dict[str, str]) -> None:
    cur = current()
    plan = plan_refresh(store, cur, mode, Tolerances(), dict.fromkeys(cur, True))
    assert actions(plan) == expected


def test_review_markdown_lists_every_changed_line(store: GoldenStore) -> None:
    cur = current()
    plan = plan_refresh(store, cur, "all", Tolerances(), dict.fromkeys(cur, True),
                        key_texts={"broken": {"amount": "1234.50"}})
    md = plan.to_markdown()
    assert "mode `all`" in md and "1 new, 2 changed, 1 unchanged, 0 kept, 0 refused" in md
    assert "- line 1: text '金额：¥1,234.50' -> '金额：¥1,284.50' (CER 0.0833) [CRITICAL: amount]" in md
    assert "score 0.5 -> 0.500001 (+1e-06) (within tolerance)" in md
    assert "#### `nested/new` (2 lines)" in md and "- line 0: '中国工商银行' (score 0.7500)" in md
    json.dumps(plan.to_dict(), ensure_ascii=False)


def test_apply_writes_only_what_changed(store: GoldenStore) -> None:
    same_before = store.path_for("same").stat().st_mtime_ns
    cur = current()
    plan = plan_refresh(store, cur, "failed", Tolerances(), dict.fromkeys(cur, True))
    written = apply_refresh(plan, store, {**STACK, "paddle": "3.3.1"}, now=clock(2))
    assert written == ("broken", "nested/new")
    new_id = stack_id({**STACK, "paddle": "3.3.1"})
    assert store.load("broken") == Golden(cur["broken"], stack_id=new_id)
    assert store.load("drift") == Golden(slip("drift"), stack_id=stack_id(STACK))  # kept: within tolerance
    assert store.path_for("same").stat().st_mtime_ns == same_before
    meta = store.meta()
    assert meta is not None and meta.stack["paddle"] == "3.3.1"
    assert meta.created == "2025-01-01T12:00:00Z" and meta.updated == "2025-01-02T12:00:00Z"
    assert plan_refresh(store, cur, "failed", Tolerances(), {}).to_write == ()


def test_nothing_to_write_touches_nothing(store: GoldenStore) -> None:
    before = store.meta_path.read_bytes()
    plan = plan_refresh(store, {"same": slip("same")}, "all", Tolerances(), {"same": True})
    assert apply_refresh(plan, store, {"other": 1}) == ()
    assert store.meta_path.read_bytes() == before


def test_nondeterministic_output_is_refused(store: GoldenStore) -> None:
    cur = current()
    reproducible = {"same": True, "drift": True, "broken": False}  # nested/new: unknown
    plan = plan_refresh(store, cur, "failed", Tolerances(), reproducible)
    refused = {item.image_id: (item.would_be, item.note) for item in plan.refused}
    assert refused == {
        "broken": ("changed", "repeated runs gave different output"),
        "nested/new": ("new", "reproducibility unknown (no repeat result)"),
    }
    assert "### Refused: output not reproducible" in plan.to_markdown()
    before = {i: store.path_for(i).read_bytes() for i in store.ids()}
    with pytest.raises(UserError, match=r"2 image\(s\) whose output was not reproducible \(broken, nested/new\)"):
        apply_refresh(plan, store, STACK)
    assert {i: store.path_for(i).read_bytes() for i in store.ids()} == before
    with pytest.raises(UserError, match="non-empty reason"):
        apply_refresh(plan, store, STACK, force_reason="  ")
    assert apply_refresh(plan, store, STACK, skip_refused=True) == ()


def test_forced_refresh_records_the_reason(store: GoldenStore) -> None:
    cur = current()
    plan = plan_refresh(store, cur, "failed", Tolerances(), {"broken": False, "nested/new": True})
    written = apply_refresh(plan, store, STACK, force_reason="scanner noise on line 2, see #41", now=clock(3))
    assert set(written) == {"broken", "nested/new"}
    meta = store.meta()
    assert meta is not None and len(meta.forced_refreshes) == 1
    forced = meta.forced_refreshes[0]
    assert (forced.reason, forced.time, forced.ids) == ("scanner noise on line 2, see #41", "2025-01-03T12:00:00Z",
                                                        ("broken",))
    assert store.load("broken") == Golden(cur["broken"], stack_id=stack_id(STACK))


def test_partial_refresh_restamps_only_what_it_rewrote(store: GoldenStore) -> None:
    new_stack = {**STACK, "paddle": "3.3.1"}
    plan = plan_refresh(store, {"broken": current()["broken"]}, "all", Tolerances(), {"broken": True})
    apply_refresh(plan, store, new_stack)
    meta = store.meta()
    assert meta is not None
    assert meta.stack_of(store.load("broken"))["paddle"] == "3.3.1"
    assert meta.stack_of(store.load("same"))["paddle"] == "3.2.2"  # not rewritten: still the stack that made it
    assert set(meta.stacks) == {stack_id(STACK), stack_id(new_stack)}
    status = golden_status(store, ["broken"], False, new_stack)
    assert status.stack_matches and status.stack_groups == ((stack_id(new_stack), 1),)
    status = golden_status(store, ["broken", "same"], False, new_stack)
    assert [(d.key, d.golden, d.current) for d in status.stack_differences] == [("paddle", "3.2.2", "3.3.1")]
    assert len(status.stack_groups) == 2 and "goldens made on 2 stacks" in status.summary()


def test_partial_refresh_of_a_legacy_set_keeps_its_stack(tmp_path: Path) -> None:
    """Goldens written before per-golden stacks name none: `_meta.json`'s `stack` stays theirs."""
    store = GoldenStore(tmp_path, "p")
    store.write_meta(GoldenMeta("p", STACK, "0.1.0", "2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z"))
    for i in ("a", "b"):
        store.write(Golden(slip(i)))
    new_stack = {**STACK, "paddle": "3.3.1"}
    apply_refresh(plan_refresh(store, {"a": slip("a", amount="¥9.99")}, "all", Tolerances(), {"a": True}), store,
                  new_stack)
    meta = store.meta()
    assert meta is not None and meta.stack == STACK and store.load("b").stack_id is None
    assert meta.stack_of(store.load("a")) == new_stack and meta.stack_of(store.load("b")) == STACK
    # Once no legacy golden is left, `stack` moves on.
    apply_refresh(plan_refresh(store, {"b": slip("b", amount="¥9.99")}, "all", Tolerances(), {"b": True}), store,
                  new_stack)
    meta = store.meta()
    assert meta is not None and meta.stack == new_stack and set(meta.stacks) == {stack_id(new_stack)}


def test_image_hashes_are_stored_and_kept(store: GoldenStore) -> None:
    plan = plan_refresh(store, {"same": slip("same")}, "all", Tolerances(), {"same": True},
                        image_sha256={"same": "cd" * 32})
    assert actions(plan) == {"same": "changed"} and "image_sha256 None -> cdcd" in plan.to_markdown()
    apply_refresh(plan, store, STACK)
    plan = plan_refresh(store, {"same": slip("same")}, "all", Tolerances(), {"same": True})
    assert actions(plan) == {"same": "unchanged"}


def test_interrupted_refresh_leaves_every_file_old_or_new(store: GoldenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [f"slip_{i:02d}" for i in range(6)]
    olds = {i: slip(i) for i in ids}
    apply_refresh(plan_refresh(store, olds, "all", Tolerances(), dict.fromkeys(ids, True)), store, STACK)
    old_bytes = {i: store.path_for(i).read_bytes() for i in ids}
    news = {i: slip(i, amount="¥9.99", dy=3) for i in ids}
    new_stack = {**STACK, "paddle": "3.3.1"}  # a refresh on another stack: each golden must keep naming its own
    new_bytes = {i: dumps_golden(Golden(news[i], stack_id=stack_id(new_stack))).encode() for i in ids}
    plan = plan_refresh(store, news, "all", Tolerances(), dict.fromkeys(ids, True))
    assert len(plan.to_write) == len(ids)

    real_replace = os.replace
    calls = []

    def flaky_replace(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) > 3:  # _meta.json and two goldens land, then the machine "dies"
            raise OSError("injected failure")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(OSError, match="injected failure"):
        apply_refresh(plan, store, new_stack)
    monkeypatch.setattr(os, "replace", real_replace)

    states = []
    for i in ids:
        data = store.path_for(i).read_bytes()
        loads_golden(data.decode(), i)  # parses
        assert data in (old_bytes[i], new_bytes[i])
        states.append("new" if data == new_bytes[i] else "old")
    assert states == ["new", "new", "old", "old", "old", "old"]
    # _meta.json is consistent with every file: each golden's stack is in its table, old ones on the old stack.
    meta = GoldenStore(store.directory.parent, store.profile).meta()
    assert meta is not None
    made_on = [meta.stack_of(loads_golden(store.path_for(i).read_text("utf-8"), i)) for i in ids]
    assert [m["paddle"] if m else None for m in made_on] == ["3.3.1", "3.3.1", "3.2.2", "3.2.2", "3.2.2", "3.2.2"]
    assert not [p for p in store.directory.rglob(".*")]  # no temp files left behind
    # Re-running the same refresh finishes the job.
    apply_refresh(plan_refresh(store, news, "all", Tolerances(), dict.fromkeys(ids, True)), store, new_stack)
    assert all(store.path_for(i).read_bytes() == new_bytes[i] for i in ids)


def test_bad_mode_and_mismatched_ids(store: GoldenStore) -> None:
    with pytest.raises(UserError, match="refresh mode"):
        plan_refresh(store, {}, "everything", Tolerances(), {})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        plan_refresh(store, {"a": slip("b")}, "all", Tolerances(), {})
    other = GoldenStore(store.root, "nightly")
    with pytest.raises(ValueError):
        apply_refresh(replace(plan_refresh(store, {}, "all", Tolerances(), {})), other, STACK)


def test_restamp_moves_unchanged_goldens_to_the_current_stack_only_when_asked(store: GoldenStore) -> None:
    """After a deliberate stack change that kept every output (a thread count, say): by default an unchanged
    golden keeps the stack that made it; `restamp_unchanged` (CLI --restamp) re-stamps it, bits untouched."""
    new_stack = {**STACK, "cpu_threads": 1}
    same = {"same": slip("same")}
    plan = plan_refresh(store, same, "all", Tolerances(), {"same": True})
    assert apply_refresh(plan, store, new_stack) == ()
    assert store.meta().stack_of(store.load("same")) == STACK  # type: ignore[union-attr]
    assert apply_refresh(plan, store, new_stack, restamp_unchanged=True) == ("same",)
    meta = store.meta()
    assert meta is not None and meta.stack_of(store.load("same")) == new_stack
    assert store.load("same").result == slip("same") and set(meta.stacks) == {stack_id(STACK), stack_id(new_stack)}
    again = plan_refresh(store, same, "all", Tolerances(), {"same": True})
    assert apply_refresh(again, store, new_stack, restamp_unchanged=True) == ()  # already on this stack
