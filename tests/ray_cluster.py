"""A real local Ray cluster for the tests, started the way the harness starts its own ("local": loopback, no
dashboard, usage stats off, its own temp dir), in a process of its own so that the test process keeps its signal
handlers. Prints the cluster's address, then holds the cluster until its stdin closes. Meanwhile a line "hold K" on
stdin takes every CPU of the cluster but K with an actor of its own (as another job on a shared cluster would),
"free" gives them back; each is answered with a line once done ("held", "freed"), or with what went wrong.
"actors STATE" answers how many of the harness's actors are in that state (PENDING_CREATION, ALIVE, ...).

`python ray_cluster.py TEMP_DIR`: one node. `python ray_cluster.py TEMP_DIR CACHE`: a head node plus a second node
(ray.cluster_utils.Cluster, one CPU each) whose OCR_HARNESS_CACHE is CACHE. The cluster's processes inherit this
process's environment (HOME, the model cache, PYTHONPATH with the planted faults)."""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

import ray
from ray._private import ray_constants
from ray.cluster_utils import Cluster

from harness.execution.ray_executor import LOCAL_CLUSTER_ENV, init_local_cluster


@ray.remote
class Hog:
    """Holds the CPUs it was given."""


def free_cpus() -> float:
    return ray.available_resources().get("CPU", 0.0)


def serve() -> None:
    """Answers "hold K", "free" and "actors STATE" until stdin closes."""
    hog, total = None, ray.cluster_resources()["CPU"]
    for line in sys.stdin:
        words = line.split()
        try:
            if words[:1] == ["hold"] and hog is None:
                hog = Hog.options(num_cpus=total - int(words[1])).remote()
                ray.get(hog.__ray_ready__.remote(), timeout=60)
                print("held", flush=True)
            elif words == ["free"] and hog is not None:
                ray.kill(hog)
                hog = None
                deadline = time.monotonic() + 60
                while free_cpus() < total and time.monotonic() < deadline:  # ray.kill returns before they are
                    time.sleep(0.1)
                print("freed" if free_cpus() == total else f"still taken: {total - free_cpus()} CPUs", flush=True)
            elif words[:1] == ["actors"]:
                found = ray._private.state.actors(actor_state_name=words[1]).values()
                print(sum(a["ActorClassName"] == "WorkerHost" for a in found), flush=True)
        except Exception as e:  # the test reads this line instead of its answer and fails with it
            print(f"{type(e).__name__}: {e}".splitlines()[0], flush=True)


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
