"""Measures the limits of BN drift against an approved reference (harness.checks.bn.reference) on clean slips
DISJOINT from the reference's.

    python benchmarks/bn_reference_limits.py collect [--subset full] [--onednn on off] [--out DIR]
    python benchmarks/bn_reference_limits.py analyse [--out DIR]

`collect`: per oneDNN setting, every slip of the subset through one capturing worker of the default profile's
engine (what the predictor really receives), every det and rec BN layer's input measured per slip in a child
process; the per-slip counts, means and variances go to DIR/bn_per_slip-<onednn>.npz (about 15-30 minutes on
2 shared cores for the full corpus).
`analyse`: per oneDNN setting with enough slips, the reference is pooled over REFERENCE_IMAGES slips of one half
(even positions, then odd: both ways), each sample of the other half (MIN_IMAGES and 8 consecutive slips, and
the whole half) is judged against it as the check judges a run; prints per model and layer the largest channel
and layer values, then the maxima over everything (what harness.checks.bn.reference.MEASURED states). Settings
captured on common slips (e.g. `collect --subset smoke --onednn off` next to a full oneDNN-on collection, the
npz files in one DIR) are also compared slip by slip: what the runtime alone moves. Not a pytest module.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bn_limits import per_image_groups  # noqa: E402  (the sibling benchmark's split of a capture into slips)

from harness.checks.bn.capture import capture_inputs  # noqa: E402
from harness.checks.bn.channels import MIN_IMAGES, LayerStats  # noqa: E402
from harness.checks.bn.measure import measure_groups
from harness.checks.bn.reference import REFERENCE_IMAGES, ReferenceLimits, judge_model, model_record  # noqa: E402
from harness.backends import builtin as builtin_backends  # noqa: E402
from harness.backends import registry as backend_registry  # noqa: E402
from harness.checks import builtin, registry  # noqa: E402
from harness.config import load_profile  # noqa: E402
from harness.corpus.loader import load_corpus  # noqa: E402
from harness.backends.paddle.pack import resolve_model_dirs  # noqa: E402
from harness.model.inference import ImageRequest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZES = (MIN_IMAGES, 8)



def _catalogue() -> registry.Catalogue:
    registry.load(builtin)  # a script is its own composition root (once per process)
    backend_registry.load(builtin_backends)
    return registry.catalogue()

def collect(args: argparse.Namespace) -> None:
    profile, _ = load_profile(ROOT / "harness.toml", "default", _catalogue())
    corpus = load_corpus(ROOT / "datasets" / "bank_slips", subset=args.subset)
    requests = [ImageRequest(it.id, str(it.path), it.sha256) for it in corpus.items if it.problem is None]
    args.out.mkdir(parents=True, exist_ok=True)
    for setting in args.onednn:
        engine = dataclasses.replace(profile.engine, enable_mkldnn=setting == "on")
        dirs = resolve_model_dirs(engine, ROOT)
        with tempfile.TemporaryDirectory(prefix="bn-ref-limits-") as tmp:
            t0 = time.perf_counter()
            capture = capture_inputs(engine, dirs, requests, Path(tmp))
            print(f"oneDNN {setting}: {len(capture.images)} images captured in {time.perf_counter() - t0:.0f} s",
                  flush=True)
            saved: dict[str, np.ndarray] = {"images": np.array(capture.images)}
            for kind, model_dir in (("det", dirs.det), ("rec", dirs.rec)):
                files = capture.files(kind)
                groups = per_image_groups(capture, kind)
                assert len(groups) == len(capture.images) and sum(map(len, groups)) == len(files)
                t1 = time.perf_counter()
                measured = measure_groups(model_dir, files, groups, timeout_s=7200)
                print(f"  {kind}: {len(files)} batches measured in {time.perf_counter() - t1:.0f} s", flush=True)
                saved[f"{kind}.layers"] = np.array([layer.name for layer in measured[0]])
                for k, layer in enumerate(measured[0]):
                    saved[f"{kind}.{k}.epsilon"] = np.array([layer.epsilon])
                    saved[f"{kind}.{k}.stored_mean"] = layer.stored_mean
                    saved[f"{kind}.{k}.stored_var"] = layer.stored_var
                    saved[f"{kind}.{k}.count"] = np.array([one[k].samples for one in measured], np.float64)
                    saved[f"{kind}.{k}.mean"] = np.stack([one[k].corpus_mean for one in measured])
                    saved[f"{kind}.{k}.var"] = np.stack([one[k].corpus_var for one in measured])
            np.savez(args.out / f"bn_per_slip-{setting}.npz", **saved)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=("collect", "analyse"))
    ap.add_argument("--subset", default="full")
    ap.add_argument("--onednn", nargs="+", choices=("on", "off"), default=["on", "off"])
    ap.add_argument("--out", type=Path, default=Path("out/bn_reference_limits"))
    args = ap.parse_args()
    collect(args) if args.stage == "collect" else analyse(args)


def pooled(data: np.lib.npyio.NpzFile, kind: str, k: int, rows: list[int]) -> LayerStats:
    """Layer k of `kind` pooled over slips `rows` (exactly what one capture of those slips measures)."""
    n = data[f"{kind}.{k}.count"][rows]
    mu, var = data[f"{kind}.{k}.mean"][rows], data[f"{kind}.{k}.var"][rows]
    total = n.sum()
    mean = (n[:, None] * mu).sum(axis=0) / total
    pooled_var = (n[:, None] * (var + (mu - mean) ** 2)).sum(axis=0) / total
    return LayerStats(str(data[f"{kind}.layers"][k]), k, float(data[f"{kind}.{k}.epsilon"][0]),
                      data[f"{kind}.{k}.stored_mean"], data[f"{kind}.{k}.stored_var"], mean, pooled_var, int(total))


def analyse(args: argparse.Namespace) -> None:
    loose = ReferenceLimits(np.inf, np.inf, np.inf, np.inf)
    data = {s: np.load(args.out / f"bn_per_slip-{s}.npz") for s in args.onednn
            if (args.out / f"bn_per_slip-{s}.npz").exists()}
    overall: dict[str, np.ndarray] = {}
    for kind in ("det", "rec"):
        for setting, run_data in data.items():
            count = len(run_data["images"])
            if count < 2 * REFERENCE_IMAGES:
                print(f"oneDNN {setting}: {count} slips, too few for disjoint records of {REFERENCE_IMAGES}")
                continue
            layers = len(run_data[f"{kind}.layers"])
            for parity in (0, 1):
                ref_rows = list(range(parity, count, 2))[:REFERENCE_IMAGES]
                other = list(range(1 - parity, count, 2))
                record = model_record([pooled(run_data, kind, k, ref_rows) for k in range(layers)], {}, {}, 0)
                samples = [other[i:i + size] for size in SIZES for i in range(0, len(other) - size + 1, size)]
                samples.append(other)
                worst = np.zeros((layers, 4))
                for rows in samples:
                    moves, why = judge_model(kind, [pooled(run_data, kind, k, rows) for k in range(layers)], record,
                                             loose, top=10**6)
                    assert why is None, why
                    for k, m in enumerate(moves):
                        worst[k] = np.maximum(worst[k], [max(abs(c.log_ratio) for c in m.top),
                                                         max(c.shift for c in m.top), abs(m.mean_log_ratio),
                                                         m.mean_shift])
                for k in range(layers):
                    print(f"{kind} oneDNN {setting}, record on {'even' if parity == 0 else 'odd'} slips: "
                          f"{str(run_data[f'{kind}.layers'][k]):18s} max |r| {worst[k, 0]:.3f}  max z "
                          f"{worst[k, 1]:.3f}  |mean r| {worst[k, 2]:.3f}  mean z {worst[k, 3]:.3f}", flush=True)
                acc = overall.setdefault(kind, np.zeros(4))
                acc[:] = np.maximum(acc, worst.max(axis=0))
    for kind, (r, z, lr, lz) in overall.items():
        print(f"{kind}: max |r| {r:.3f}, max z {z:.3f}, max |mean r| {lr:.3f}, max mean z {lz:.3f}")
    # The same slips captured with oneDNN on and off, each slip judged against itself under the other setting:
    # what the runtime alone moves (a record made on another stack is still used).
    names = sorted(data)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ids_a, ids_b = list(data[a]["images"]), list(data[b]["images"])
            common = [x for x in ids_a if x in ids_b]
            for kind in ("det", "rec"):
                layers = len(data[a][f"{kind}.layers"])
                worst = np.zeros(2)
                for x in common:
                    rec_a = model_record([pooled(data[a], kind, k, [ids_a.index(x)]) for k in range(layers)], {}, {},
                                         0)
                    moves, _ = judge_model(kind, [pooled(data[b], kind, k, [ids_b.index(x)]) for k in range(layers)],
                                           rec_a, loose, top=10**6)
                    worst = np.maximum(worst, [max(abs(c.log_ratio) for m in moves for c in m.top),
                                               max(c.shift for m in moves for c in m.top)])
                print(f"{kind}: {len(common)} slips, oneDNN {a} vs {b}, slip by slip: max |r| {worst[0]:.2e}, "
                      f"max z {worst[1]:.2e}")


if __name__ == "__main__":
    main()
