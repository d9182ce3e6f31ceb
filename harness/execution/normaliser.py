"""The speed check's yardstick: a fixed CPU workload timed in the process that runs the engine, next to every
image, and the process's peak memory.

A per-image latency alone says nothing on a shared machine or a CI runner that is not the machine that made the
baseline: both move it by 2x and more. So the check judges what the engine costs per image against what the
yardstick costs, measured the same way in the same process within the same second:
- in a worker process (paddle, onnxruntime): CPU seconds. The engine's are its process's (every thread it
  runs), the yardstick's its own thread's. CPU time barely moves when other processes compete for the cores
  (wall time on a busy 2-core machine moved 4x while it did), and a slower or faster CPU moves both alike;
  what makes the engine do more work (oneDNN off, a batch size of 1, threads that spin oversubscribed, a
  runtime that got slower) moves only the engine's.
- in the harness process (the http backend, whose CPU is the service's): wall seconds, which is all a client
  can see; a busy client machine then moves the ratio too.
The workload is float32 SIMD arithmetic on an L2-sized buffer with numpy's own ufunc loops (single-threaded, no
BLAS, no oneDNN, no Paddle): it gains from AVX-512 as the engine's kernels do, and shares nothing with the
runtime under test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

# Recorded with every baseline: a run measured with another workload is not compared with it.
WORKLOAD = "f32-ufunc-64k-x150/1"
_ROUNDS = 150
_BUFFER = np.random.default_rng(0).standard_normal(64 * 1024).astype(np.float32)


def reference_seconds(clock: Callable[[], float] = time.thread_time) -> float:
    """`clock` seconds of one pass of the fixed workload (about 15 ms on a quiet 2-core machine); CPU time of
    this thread by default."""
    y = np.empty_like(_BUFFER)
    t0 = clock()
    for _ in range(_ROUNDS):
        np.multiply(_BUFFER, 1.0001, out=y)
        np.add(y, 0.5, out=y)
        np.abs(y, out=y)
        np.sqrt(y, out=y)
        np.exp(np.negative(y, out=y), out=y)
        y.sum()
    return clock() - t0


def peak_rss_kib(pid: int | None = None) -> int | None:
    """Peak resident set size (VmHWM) of a live process in KiB; None where /proc is not available."""
    try:
        with open(f"/proc/{pid or os.getpid()}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
