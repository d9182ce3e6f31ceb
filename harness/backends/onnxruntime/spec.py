"""The onnxruntime backend as the harness sees it: its `[engine.onnxruntime]` table, its pack and stack record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.backends.onnxruntime import pack
from harness.backends.onnxruntime.settings import NAME, OnnxRuntimeSettings, onnxruntime_settings
from harness.backends.paddle.spec import PACK as PADDLE_PACK
from harness.backends.paddle.spec import STACK_KEYS as PADDLE_STACK_KEYS
from harness.backends.spec import BackendSpec, Pack
from harness.model.catalogue import BackendRules
from harness.model.settings import EngineSettings
from harness.util.packages import package_version



def stack(base: Mapping[str, Any], engine: EngineSettings, facts: Mapping[str, Any] | None) -> dict[str, Any]:
    """The neutral record with ONNX Runtime's version and its own thread count."""
    out = {k: v for k, v in base.items() if k not in PADDLE_STACK_KEYS}
    out["cpu_threads"] = onnxruntime_settings(engine).resolved_threads()
    return {**out, "backend": NAME, NAME: package_version(NAME)}


def _pinned() -> dict[str, str]:
    return {pf.source: pf.sha256 for pf in pack.ONNX_FILES}


SPEC = BackendSpec(
    paddlex_dirs=True,
    rules=BackendRules(NAME, settings=OnnxRuntimeSettings, hashed_table=True),
    engine="harness.backends.onnxruntime.engine:OnnxRuntimeEngine",
    resolve_models=pack.resolve_onnx_dirs,
    stack=stack,
    owned_stack_keys=(NAME, "cpu_threads"),
    # `models verify` checks the Paddle pack too (the ONNX pack takes its dictionary from it); the last is its own.
    packs=(PADDLE_PACK, Pack("bundled-onnx", "ONNX pack",
                             lambda: f"{pack.ONNX_PACK_ID} from {pack.CARRIER} {pack.CARRIER_VERSION}",
                             pack.verify_sources, _pinned, pack.verify_prepared)),
)
