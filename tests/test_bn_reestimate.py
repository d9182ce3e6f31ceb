"""`bn reestimate`: BN statistics moved from a reference domain to a target domain, self-checked and judged.

Fast: the re-estimation arithmetic and the self-checks on the tiny reference net (conv + BN, old format), with
planted faults (a non-BN tensor changed, a recorded statistic the written model does not reproduce), PIR and bad
arguments as one-line errors. Slow: the pinned det on real slips, darkened (x0.3) and washed out (0.3p+178)
copies made here: delta re-estimation repairs both, PreciseBN-style replacement hurts in-domain, the dark-adapted
model hurts on clean slips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from bn_domains import darkened, domain_corpus, identity, washed_out
from conftest import CORPUS, ROOT

from harness.checks.bn_faults import write_reference_model
from harness.cli import main
from harness.config import EngineSettings
from harness.errors import UserError
from harness.modelpack import resolve_model_dirs
from harness.run.reestimate import RTOL, SelfCheckFailed, model_kind, reestimate_batches
from harness.run.reestimate_child import new_statistics

# ---------------------------------------------------------------- arithmetic (no paddle)


def test_delta_moves_stored_statistics_by_the_reference_to_target_change() -> None:
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([4.0, 0.25, 1.0])
    ref = (np.array([0.0, -1.0, 3.0]), np.array([1.0, 1.0, 0.0]))  # channel 2: the reference never excited it
    tgt = (np.array([1.0, 0.0, 5.0]), np.array([9.0, 0.25, 2.0]))
    new_mean, new_var = new_statistics("delta", mean, var, ref, tgt)
    a = np.array([3.0, 0.5, 1.0])
    assert np.allclose(new_var, a * a * var)
    assert np.allclose(new_mean[:2], tgt[0][:2] + a[:2] * (mean[:2] - ref[0][:2]))
    assert new_mean[2] == mean[2] and new_var[2] == var[2]  # kept, not divided by zero
    # In-domain (target = reference) delta is a no-op; replace takes the target's statistics.
    same = new_statistics("delta", mean, var, tgt, tgt)
    assert np.allclose(same[0], mean) and np.allclose(same[1], var)
    assert [list(x) for x in new_statistics("replace", mean, var, None, tgt)] == [list(tgt[0]), list(tgt[1])]


def test_kind_comes_from_the_yml(tmp_path: Path) -> None:
    dirs = resolve_model_dirs(EngineSettings(), ROOT)
    assert (model_kind(dirs.det), model_kind(dirs.rec), model_kind(dirs.det, "rec")) == ("det", "rec", "rec")
    (tmp_path / "inference.yml").write_text(yaml.safe_dump({"Global": {"model_name": "x"}}), encoding="utf-8")
    with pytest.raises(UserError, match="pass --kind det or --kind rec"):
        model_kind(tmp_path)


# ---------------------------------------------------------------- the tiny reference net (old format)

def _batches(tmp: Path, name: str, gain: float, offset: float, n: int = 3) -> list[Path]:
    rng = np.random.default_rng(len(name))
    out = []
    for i in range(n):
        path = tmp / f"{name}-{i}.npy"
        np.save(path, (rng.normal(0.5, 2.0, (4, 3, 16, 16)) * gain + offset).astype(np.float32))
        out.append(path)
    return out


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[Path]]:
    tmp = tmp_path_factory.mktemp("net")
    files = write_reference_model(tmp / "model", pir=False)
    return files.prefix.parent, _batches(tmp, "ref", 1.0, 0.0), _batches(tmp, "target", 3.0, 1.0)


def test_delta_on_a_shifted_domain_is_written_and_self_checked(net: tuple[Path, list[Path], list[Path]],
                                                              tmp_path: Path) -> None:
    model, ref, target = net
    res = reestimate_batches(model, ref, target, tmp_path / "out")
    [layer] = res["layers"]
    assert res["chosen"] == [layer["name"]] == ["batch_norm2d_0"] and layer["change_flagged"]
    check = res["self_check"]
    assert check["passed"] and check["tensors_compared"] >= 5 and check["max_relative_error"] <= RTOL
    # What delta promises: the target, normalised by the new statistics, has the reference's normalised moments.
    m, v = np.array(layer["stored_mean"]), np.array(layer["stored_var"])
    ref_norm = (np.array(layer["reference_mean"]) - m) / np.sqrt(v)
    tgt_norm = (np.array(layer["target_mean"]) - np.array(layer["new_mean"])) / np.sqrt(layer["new_var"])
    assert np.allclose(tgt_norm, ref_norm, atol=1e-5)
    assert np.allclose(np.array(layer["target_var"]) / layer["new_var"], np.array(layer["reference_var"]) / v,
                       rtol=1e-5)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in model.iterdir())


@pytest.mark.parametrize(("plant", "message"), [
    ("non-bn-tensor", r"tensor \S+ changed although it is not a re-estimated BN statistic"),
    ("wrong-statistic", r"batch_norm2d_0 channel 0: the written model on the target measures .* reestimate.json "
                        r"records .*relative error"),
], ids=["non-bn-tensor-changed", "wrong-recorded-statistic"])
def test_self_check_fires_when_planted(net: tuple[Path, list[Path], list[Path]], tmp_path: Path, plant: str,
                                       message: str) -> None:
    model, ref, target = net
    with pytest.raises(SelfCheckFailed, match=message):
        reestimate_batches(model, ref, target, tmp_path / "out", plant=plant)
    assert not (tmp_path / "out").exists()  # nothing is left behind that looks like a result


def test_unknown_layer_is_a_user_error(net: tuple[Path, list[Path], list[Path]], tmp_path: Path) -> None:
    model, ref, target = net
    with pytest.raises(UserError, match="no batch_norm layer nope .*batch_norm2d_0"):
        reestimate_batches(model, ref, target, tmp_path / "out", layers=("nope",))
    assert not (tmp_path / "out").exists()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["bn", *args])
    err = capsys.readouterr().err.strip()
    return code, err


def test_pir_program_and_bad_arguments_are_one_line_errors(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    pir = write_reference_model(tmp_path / "pir", pir=True).prefix.parent
    old = resolve_model_dirs(EngineSettings(), ROOT).det
    common = ["--reference", str(CORPUS), "--target", str(CORPUS)]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x", encoding="utf-8")
    cases = [
        (["reestimate", str(pir), *common, "--out", str(tmp_path / "o")], "PIR programs (inference.json) are not"),
        (["reestimate", str(old), *common, "--out", str(tmp_path / "o"), "--mode", "mean"], "invalid choice"),
        (["reestimate", str(old), *common, "--out", str(tmp_path / "o"), "--images", "1"], "--images must be"),
        (["reestimate", str(old), *common, "--out", str(tmp_path / "o"), "--layers", ","], "--layers ','"),
        (["reestimate", str(old), *common, "--out", str(tmp_path / "full")], "exists and is not empty"),
        (["reestimate", str(tmp_path / "none"), *common, "--out", str(tmp_path / "o")], "not a directory"),
        (["reestimate", str(old), "--reference", str(CORPUS), "--out", str(tmp_path / "o")], "required: --target"),
        (["evaluate", str(old), "--original", str(old), "--corpus", str(CORPUS)], "not a bn reestimate record"),
    ]
    for args, message in cases:
        code, err = _cli(capsys, *args)
        assert code == 2 and message in err and len(err.splitlines()) == 1, (args, err)
    assert not (tmp_path / "o").exists()
