"""`ocr-harness doctor`: everything that decides whether two runs can give identical outputs."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from harness.cli.run_cmd import add_profile_args, resolve_profile
from harness.environment import environment
from harness.util.errors import EXIT_OK

# Asked in a child so this process never imports Paddle.
_PADDLE_PROBE = (
    "import json, paddle\n"
    "print(json.dumps({'onednn_compiled': bool(paddle.base.core.is_compiled_with_mkldnn()),"
    " 'cuda_compiled': bool(paddle.is_compiled_with_cuda()), 'version': paddle.__version__}))\n"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="print versions, CPU ISA, oneDNN and thread settings")
    add_profile_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=doctor)


def paddle_facts() -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", _PADDLE_PROBE], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"import paddle failed: {tail}"}
    facts: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])  # the probe prints one JSON object
    return facts


def doctor(args: argparse.Namespace) -> int:
    profile, _ = resolve_profile(args)
    env = environment()
    facts = {**env, "paddle_runtime": paddle_facts(), "profile": profile.name,
             "engine": {"enable_mkldnn": profile.engine.enable_mkldnn,
                        "cpu_threads": profile.engine.resolved_threads(),
                        "rec_batch_size": profile.engine.rec_batch_size, "device": profile.engine.device}}
    if args.json:
        print(json.dumps(facts, indent=2, sort_keys=True))
        return EXIT_OK
    pr = facts["paddle_runtime"]
    print(f"python      {env['python']}  ({env['platform']})")
    for name, version in env["packages"].items():
        print(f"{name:<22} {version or 'not installed'}")
    print(f"cpu         {env['cpu_model']}  cores={env['cores']}")
    print(f"isa         {' '.join(env['isa']) or 'unknown'}")
    print(f"oneDNN      compiled={pr.get('onednn_compiled')}  enabled by profile={profile.engine.enable_mkldnn}")
    if "error" in pr:
        print(f"paddle      {pr['error']}")
    print(f"threads     cpu_threads={profile.engine.resolved_threads()}  rec_batch_size={profile.engine.rec_batch_size}")
    print("env         " + (" ".join(f"{k}={v}" for k, v in env["env"].items()) or "(no relevant variables set)"))
    if (env["paddle"] or "").startswith("3.3."):
        print("warning     paddle 3.3.x crashes with oneDNN on the PP-OCRv4 det model (Paddle issue 77340)")
    return EXIT_OK
