"""Measures the per-channel BN limits (harness.checks.bn.channels.CHANNEL_LIMITS) on the clean corpus.

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

from harness.checks.bn.capture import Capture, capture_inputs
from harness.checks.bn.channels import MIN_IMAGES, LayerStats
from harness.checks.bn.measure import measure_groups
from harness.backends import builtin as builtin_backends
from harness.backends import registry as backend_registry
from harness.checks import builtin, registry
from harness.config import load_profile
from harness.corpus.loader import load_corpus
from harness.model.inference import ImageRequest
from harness.backends.paddle.pack import resolve_model_dirs

ROOT = Path(__file__).resolve().parents[1]
POOLS = (1, 2, 8)  # sample sizes measured; limits come from samples of MIN_IMAGES slips and more



def _catalogue() -> registry.Catalogue:
    registry.load(builtin)  # a script is its own composition root (once per process)
    backend_registry.load(builtin_backends)
    return registry.catalogue()

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
    profile, _ = load_profile(ROOT / "harness.toml", "default", _catalogue())
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
                # Samples of consecutive slips, of every size the check may take (MIN_IMAGES up) and all slips.
                pools = {size: [sum(groups[i:i + size], []) for i in range(0, len(groups) - size + 1, size)]
                         for size in POOLS}
                pools[len(groups)] = [list(range(len(files)))]
                flat = [g for size in sorted(pools) for g in pools[size]]
                measured = measure_groups(model_dir, files, flat, timeout_s=7200)
                print(f"  {kind}: {len(files)} batches measured in {time.perf_counter() - t1:.0f} s", flush=True)
                at = 0
                for size in sorted(pools):
                    sample = measured[at:at + len(pools[size])]
                    at += len(pools[size])
                    for k, layer in enumerate(sample[0]):
                        ext = np.array([extremes(one[k]) for one in sample])
                        worst = np.array([ext[:, 0].max(), ext[:, 1].min(), ext[:, 2].max(), ext[:, 3].max()])
                        saved[f"{kind}.{layer.name}.pool{size}"] = ext
                        print(f"    {size:2d} slips x {len(sample):2d}  {layer.name:18s} ch {layer.channels:4d}  r "
                              f"[{worst[1]:+.3f}, {worst[0]:+.3f}]  |d| max {worst[2]:.3f}  z max {worst[3]:.3f}",
                              flush=True)
                        if size >= MIN_IMAGES:
                            acc = overall.setdefault(kind, np.array([-np.inf, np.inf, -np.inf, -np.inf]))
                            acc[:] = [max(acc[0], worst[0]), min(acc[1], worst[1]), max(acc[2], worst[2]),
                                      max(acc[3], worst[3])]
            np.savez(args.out / f"bn_channels-{setting}.npz", **saved)
    for kind, (up, down, d, z) in overall.items():
        print(f"{kind}, samples of {MIN_IMAGES}+ slips: r up to {up:+.3f}, down to {down:+.3f}, |d| up to {d:.3f}, "
              f"z up to {z:.3f}")


if __name__ == "__main__":
    main()
