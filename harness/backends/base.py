"""The backend protocol: what every engine the harness can run (in a worker or in this process) provides.

A backend turns decoded images into canonical `OcrResult`s and says which stack it is: runtime name and
version, the model files and their hashes, and anything else that decides its outputs (a service's reported
settings). Checks never see which backend ran; they compare `OcrResult`s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from harness.model.results import OcrResult


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


@runtime_checkable
class Backend(Protocol):
    """One loaded engine, reused for every image and repeat; `engine.factory` callables return one too."""

    name: str

    def facts(self) -> StackFacts: ...

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        """Several images in one call (one image is the service path); results in input order."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TransportNotes:
    """What reaching a service took for one image, across its repeats: the report counts it, checks judge it."""

    retries: tuple[str, ...] = ()  # why each retry happened: "503", "429", "timed out", "connection reset"
    reported: tuple[Mapping[str, Any], ...] = ()  # the settings each answer said it ran with


@runtime_checkable
class RemoteBackend(Backend, Protocol):
    """A backend behind a network: the worker hands it each image's time budget and collects its notes."""

    def set_image_timeout(self, seconds: float) -> None: ...

    def take_notes(self, image_id: str) -> TransportNotes: ...
