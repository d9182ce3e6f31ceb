"""The model directories a run reads, and the hashes that name them in the stack record (harness.backends.paddle.pack
materialises the bundled pack; a profile may name its own directories)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelDirs:
    det: Path
    rec: Path
    source: str  # "bundled" (a bundled pack: "bundled", "bundled-v5", "bundled-onnx"), "user" or "service"

    @property
    def local(self) -> bool:
        """The models are files here (a service's live elsewhere)."""
        return self.source != "service"

    def file_hashes(self) -> dict[str, str]:
        """sha256 of every inference file, for the environment record and goldens' _meta.json."""
        out: dict[str, str] = {}
        if not self.local:  # the models live in the service; it reports what it can about them
            return out
        for kind, d in (("det", self.det), ("rec", self.rec)):
            for f in sorted(d.iterdir()):
                if f.is_file() and f.name.startswith("inference."):
                    out[f"{kind}/{f.name}"] = sha256_file(f)
        return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
