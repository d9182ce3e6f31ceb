"""The stack sample: deterministic, stratified, the same for every shard; and the repeat check's power."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from builders import profile_toml, write_profiles
from conftest import CORPUS
from harness.corpus.loader import load_corpus
from harness.sampling import describe_power, detectable_rate, stratified_sample


@pytest.fixture(scope="module")
def items():  # type: ignore[no-untyped-def]
    return load_corpus(CORPUS, subset="full").items


def test_sample_covers_every_template_and_tag_and_is_deterministic(items) -> None:  # type: ignore[no-untyped-def]
    sample = stratified_sample(items, 16)
    assert len(sample) >= 16 and sample == stratified_sample(items, 16)
    cells = {(it.template, tag) for it in items for tag in it.tags}
    assert cells <= {(it.template, tag) for it in sample for tag in it.tags}
    assert list(sample) == [it for it in items if it in sample]  # corpus order
    assert stratified_sample(items, 0) == tuple(items) == stratified_sample(items, 1000)


def test_sample_of_the_whole_selection_splits_over_shards(items) -> None:  # type: ignore[no-untyped-def]
    from harness.run.pipeline.plan import shard_items

    whole = {it.id for it in stratified_sample(items, 16)}
    parts = [{it.id for it in shard_items(items, (k, 3))} & whole for k in (1, 2, 3)]
    assert set().union(*parts) == whole and sum(map(len, parts)) == len(whole)


def test_repeat_power() -> None:
    assert detectable_rate(0) is None and describe_power(0) == "no repeated call compared"
    rate = detectable_rate(320)
    assert rate is not None and math.isclose((1 - rate) ** 320, 0.05)
    assert describe_power(320) == ("320 compared model calls: a fault on 1 call in 107 or more often is caught "
                                   "with 95% probability")


def test_stack_sample_must_not_be_negative(tmp_path: Path) -> None:
    from harness.config import load_profile
    from harness.checks.registry import catalogue
    from harness.util.errors import UserError

    config = tmp_path / "harness.toml"
    config.write_text("[profiles.t.checks]\nstack_sample = -1\n", encoding="utf-8")
    with pytest.raises(UserError, match="stack_sample"):
        load_profile(config, "t", catalogue())


@pytest.mark.slow
def test_stack_checks_run_on_the_sample_and_say_so(tmp_path: Path) -> None:
    import shutil

    from conftest import run_cli

    corpus = tmp_path / "corpus"  # a plain directory: one (template, tag) cell, so the sample is what we ask
    corpus.mkdir()
    for i in ("0004", "0005", "0006"):
        shutil.copyfile(CORPUS / "images" / f"slip_{i}.png", corpus / f"slip_{i}.png")
    config = write_profiles(tmp_path, profile_toml(corpus=corpus, checks={
        "repeats": 2, "goldens": False, "audit": False, "cross_process": True, "variations": True,
        "variation_threads": [1], "stack_sample": 1}))
    out = tmp_path / "out"
    res = run_cli(["run", "--config", str(config), "--profile", "t", "--out", str(out)], out=out)
    assert res.returncode == 0, res.stderr[-2000:]
    checks = res.report["checks"]
    assert checks["repeat"]["judged"] == 3  # repeats judge every image
    for name in ("cross_process", "variations"):
        assert checks[name]["judged"] == 1, checks[name]
        sample = checks[name]["details"]["sample"]
        assert (sample["size"], sample["of"]) == (1, 3) and len(sample["ids"]) == 1
        assert checks[name]["summary"].endswith("[stack check on a stratified sample of 1 of 3 images]")
