"""Measures the per-channel BN limits (harness.checks.bn_drift.CHANNEL_LIMITS) on the clean corpus.

    python benchmarks/bn_limits.py [--subset full] [--onednn on off] [--out DIR]

For each oneDNN setting: every slip of the subset through one capturing worker of the default profile's engine
(what the predictor really receives), then every det and rec BN layer measured per channel in a child process,
per slip (the check may pool as few as one image) and pooled over all of them. Prints, per setting, model and
layer, the extremes of the log ratio r, of its distance d from the layer's median and of the mean shift z, then
the maxima over everything; writes the per-channel values to DIR/bn_channels-<onednn>.npz. Not a pytest module:
about 15-30 minutes on 2 shared cores for the full corpus.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.checks.bn_capture import Capture, capture_inputs
from harness.checks.bn_drift import LayerStats, measure_groups
from harness.config import load_profile
from harness.corpus.loader import load_corpus
from harness.modelpack import resolve_model_dirs
from harness.worker import ImageRequest

ROOT = Path(__file__).resolve().parents[1]


def per_image_groups(capture: Capture, kind: str) -> list[list[int]]:
    """Indices of `kind`'s batches per image: one worker feeds an image's det batch, then its rec batches, so the
    capture's sequence numbers split at every det batch."""
    seqs = sorted((int(f.stem.rsplit("-", 1)[1]), f.stem.split("-")[0]) for f in capture.dir.glob("*.npy"))
    groups: list[list[int]] = []
    index = 0
    for _, k in seqs:
        if k == "det":
            groups.append([])
        if k == kind:
            groups[-1].append(index)
            index += 1
    return [g for g in groups if g]


def extremes(layer: LayerStats) -> tuple[float, float, float, float]:
    r = layer.log_ratio()
    return float(r.max()), float(r.min()), float(np.abs(layer.spread()).max()), float(layer.shift().max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subset", default="full")
    ap.add_argument("--onednn", nargs="+", choices=("on", "off"), default=["on", "off"])
    ap.add_argument("--out", type=Path, default=Path("out/bn_limits"))
    args = ap.parse_args()
    profile, _ = load_profile(ROOT / "harness.toml", "default")
    corpus = load_corpus(ROOT / "datasets" / "bank_slips", subset=args.subset)
    requests = [ImageRequest(it.id, str(it.path), it.sha256) for it in corpus.items if it.problem is None]
    args.out.mkdir(parents=True, exist_ok=True)
    overall: dict[str, np.ndarray] = {}
    for setting in args.onednn:
        engine = dataclasses.replace(profile.engine, enable_mkldnn=setting == "on")
        dirs = resolve_model_dirs(engine, ROOT)
        with tempfile.TemporaryDirectory(prefix="bn-limits-") as tmp:
            t0 = time.perf_counter()
            capture = capture_inputs(engine, dirs, requests, Path(tmp))  # one worker: the order splits images
            print(f"oneDNN {setting}: {len(capture.images)} images captured in {time.perf_counter() - t0:.0f} s, "
                  f"{len(capture.failed)} failed", flush=True)
            saved: dict[str, np.ndarray] = {}
            for kind, model_dir in (("det", dirs.det), ("rec", dirs.rec)):
                files = capture.files(kind)
                groups = per_image_groups(capture, kind)
                assert len(groups) == len(capture.images) and sum(map(len, groups)) == len(files)
                t1 = time.perf_counter()
                measured = measure_groups(model_dir, files, [*groups, list(range(len(files)))])
                print(f"  {kind}: {len(files)} batches measured in {time.perf_counter() - t1:.0f} s", flush=True)
                *per_image, pooled = measured
                for k, layer in enumerate(pooled):
                    ext = np.array([extremes(img[k]) for img in per_image] + [extremes(layer)])
                    worst = np.array([ext[:, 0].max(), ext[:, 1].min(), ext[:, 2].max(), ext[:, 3].max()])
                    saved[f"{kind}.{layer.name}.r"] = layer.log_ratio()
                    saved[f"{kind}.{layer.name}.per_image_extremes"] = ext
                    print(f"    {layer.name:18s} ch {layer.channels:4d}  per image and pooled: r "
                          f"[{worst[1]:+.3f}, {worst[0]:+.3f}]  |d| max {worst[2]:.3f}  z max {worst[3]:.3f}; "
                          f"pooled r median {np.median(layer.log_ratio()):+.3f}", flush=True)
                    acc = overall.setdefault(kind, np.array([-np.inf, np.inf, -np.inf, -np.inf]))
                    acc[:] = [max(acc[0], worst[0]), min(acc[1], worst[1]), max(acc[2], worst[2]),
                              max(acc[3], worst[3])]
            np.savez(args.out / f"bn_channels-{setting}.npz", **saved)
    for kind, (up, down, d, z) in overall.items():
        print(f"{kind}: r up to {up:+.3f}, down to {down:+.3f}, |d| up to {d:.3f}, z up to {z:.3f}")


if __name__ == "__main__":
    main()
