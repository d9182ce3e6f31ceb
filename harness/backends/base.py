"""The backend protocol: what every engine the harness can run (in a worker or in this process) provides.

A backend turns decoded images into canonical `OcrResult`s and says which stack it is: runtime name and
version, the model files and their hashes, and anything else that decides its outputs (a service's reported
settings). Checks never see which backend ran; they compare `OcrResult`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from harness.model.inference import TransportNotes
from harness.model.results import OcrResult


@runtime_checkable
class Backend(Protocol):
    """One loaded engine, reused for every image and repeat; `engine.factory` callables return one too."""

    name: str

    def predict(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[OcrResult]:
        """Several images in one call (one image is the service path); results in input order."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class RemoteBackend(Backend, Protocol):
    """A backend behind a network: the worker hands it each image's time budget and collects its notes."""

    def set_image_timeout(self, seconds: float) -> None: ...

    def take_notes(self, image_id: str) -> TransportNotes: ...
