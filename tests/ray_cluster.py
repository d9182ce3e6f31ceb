"""A real local Ray cluster for the tests, started the way the harness starts its own ("local": loopback, no
dashboard, usage stats off, its own temp dir), in a process of its own so that the test process keeps its signal
handlers. Prints the cluster's address, then holds the cluster until its stdin closes. Meanwhile a line "hold" on
stdin takes every CPU of the cluster with an actor of its own (as another job on a shared cluster would), "free"
gives them back; each is answered with a line once done.

`python ray_cluster.py TEMP_DIR`: one node. `python ray_cluster.py TEMP_DIR CACHE`: a head node plus a second node
(ray.cluster_utils.Cluster, one CPU each) whose OCR_HARNESS_CACHE is CACHE. The cluster's processes inherit this
process's environment (HOME, the model cache, PYTHONPATH with the planted faults)."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import ray
from ray._private import ray_constants
from ray.cluster_utils import Cluster

from harness.execution.ray_executor import LOCAL_CLUSTER_ENV, init_local_cluster


@ray.remote
class Hog:
    """Holds the CPUs it was given."""


def serve() -> None:
    """Answers "hold" and "free" until stdin closes."""
    hog = None
    for line in sys.stdin:
        if line.strip() == "hold" and hog is None:
            hog = Hog.options(num_cpus=ray.cluster_resources()["CPU"]).remote()
            ray.get(hog.__ray_ready__.remote())
            print("held", flush=True)
        elif line.strip() == "free" and hog is not None:
            ray.kill(hog)
            hog = None
            print("freed", flush=True)


def main() -> None:
    if len(sys.argv) == 2:
        info = init_local_cluster(sys.argv[1])
        print(info.address_info["gcs_address"], flush=True)
        serve()
        ray.shutdown()
        return
    os.environ.update(LOCAL_CLUSTER_ENV)
    os.environ["RAY_TMPDIR"] = sys.argv[1]  # Cluster writes ray/ray_current_cluster there, not in /tmp/ray
    os.makedirs(os.path.join(sys.argv[1], "ray"), exist_ok=True)
    token = Path.home() / ".ray" / "auth_token"  # ray.init makes one; Cluster expects it (HOME is a temp dir)
    token.parent.mkdir(parents=True, exist_ok=True)
    token.write_text(secrets.token_hex(32))
    ray_constants.ENABLE_RAY_CLUSTER = False  # loopback, as harness.execution.ray_executor.init_local_cluster does
    node = {"num_cpus": 1, "include_dashboard": False, "temp_dir": sys.argv[1]}
    cluster = Cluster(initialize_head=True, head_node_args=node)
    cluster.add_node(**node, env_vars={"OCR_HARNESS_CACHE": sys.argv[2]})
    cluster.wait_for_nodes()
    print(cluster.address, flush=True)
    sys.stdin.read()
    cluster.shutdown()


if __name__ == "__main__":
    main()
