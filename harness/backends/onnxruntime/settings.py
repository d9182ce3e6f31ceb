"""`[engine.onnxruntime]`: the onnxruntime backend's own table, read and validated by this type (harness.config
builds it key by key from its annotations; `validate` holds its rules)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from harness.model.settings import EngineSettings, require

NAME = "onnxruntime"


@dataclass(frozen=True)
class OnnxRuntimeSettings:
    """ONNX Runtime through PaddleX's own pre- and post-processing."""

    intra_op_threads: int | None = None  # None: the machine's cores
    graph_optimization_level: int | None = None  # None: ONNX Runtime's default (99, all)

    def validate(self, where: str) -> None:
        require(self.intra_op_threads is None or self.intra_op_threads >= 1, f"{where}.intra_op_threads",
                "must be >= 1")
        require(self.graph_optimization_level in (None, 0, 1, 2, 99), f"{where}.graph_optimization_level",
                "must be 0, 1, 2 or 99")

    def to_dict(self) -> dict[str, Any]:
        """As reports record it, and what the engine settings hash covers (both settings decide what is read)."""
        return dataclasses.asdict(self)

    def resolved_threads(self) -> int:
        return self.intra_op_threads if self.intra_op_threads is not None else (os.cpu_count() or 1)


def onnxruntime_settings(engine: EngineSettings) -> OnnxRuntimeSettings:
    """The profile's `[engine.onnxruntime]` table (its defaults when it sets none)."""
    return engine.table(NAME, OnnxRuntimeSettings)
