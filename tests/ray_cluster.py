"""A real local Ray cluster for the test session, started the way the harness starts its own ("local": loopback,
no dashboard, usage stats off, its own temp dir), in a process of its own so that the test process keeps its
signal handlers. Prints the cluster's address, then holds the cluster until its stdin closes.

Run as `python ray_cluster.py TEMP_DIR`; the cluster's processes inherit this process's environment (HOME, the
model cache, PYTHONPATH with the planted faults)."""

from __future__ import annotations

import sys

import ray

from harness.ray_executor import init_local_cluster


def main() -> None:
    info = init_local_cluster(sys.argv[1])
    print(info.address_info["gcs_address"], flush=True)
    sys.stdin.read()
    ray.shutdown()


if __name__ == "__main__":
    main()
