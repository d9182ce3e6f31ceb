"""The paddle backend as the harness sees it: the flat `[engine]` keys it owns, its pack and its stack record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.backends.paddle import pack
from harness.backends.spec import BackendSpec, Pack
from harness.model.catalogue import BackendRules
from harness.model.settings import DEFAULT_BACKEND, EngineSettings
from harness.util.packages import package_version

NAME = DEFAULT_BACKEND
# `[engine]` keys of the paddle backend. They stay flat in `[engine]` (where profiles have always set them); every
# other backend has its own sub-table and rejects them.
PADDLE_KEYS = ("pack", "device", "enable_mkldnn", "cpu_threads", "delete_passes")
# What only a Paddle Inference stack records beyond the neutral record: other backends never carry them.
STACK_KEYS = (NAME, "onednn")


def stack(base: Mapping[str, Any], engine: EngineSettings, facts: Mapping[str, Any] | None) -> dict[str, Any]:
    """Exactly what the stack has always held (goldens made before backends existed read as paddle)."""
    return {**base, NAME: package_version("paddlepaddle"), "onednn": engine.enable_mkldnn, "backend": NAME}


def environment(engine: EngineSettings) -> dict[str, Any]:
    return {"onednn": engine.enable_mkldnn, "cpu_threads": engine.resolved_threads()}


def _pack(bundled: pack.BundledPack) -> Pack:
    return Pack(bundled.source, "pack", bundled.describe, bundled.verify_sources, bundled.pinned,
                bundled.verify_prepared)


PACKS = tuple(_pack(p) for p in pack.PACKS.values())
PACK = PACKS[0]  # the default pack (the ONNX pack takes its dictionary from it)
SPEC = BackendSpec(
    paddlex_dirs=True,
    rules=BackendRules(NAME, flat_keys=PADDLE_KEYS),
    engine="harness.backends.paddle.engine:OcrEngine",
    resolve_models=pack.resolve_model_dirs,
    paddle_programs=True,
    stack=stack,
    environment=environment,
    owned_stack_keys=(*STACK_KEYS, "cpu_threads", "paddleocr", "paddlex"),
    packs=PACKS,
    reference_resets=("device", "enable_mkldnn", "cpu_threads"),  # the profile's device and threads, not the reading
)
