"""What a backend contributes to the stack record: the facts that decide its outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StackFacts:
    """What a backend contributes to the stack record (goldens' `_meta.json`, every report)."""

    backend: str
    runtime: str  # the package that runs the models: paddlepaddle, onnxruntime, or the service's own
    runtime_version: str | None
    models: Mapping[str, str] = field(default_factory=dict)  # "det/inference.onnx" -> sha256
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. what a service reports about itself

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "runtime": self.runtime, "runtime_version": self.runtime_version,
                "models": dict(self.models), **({"extra": dict(self.extra)} if self.extra else {})}
