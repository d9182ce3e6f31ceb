"""The real PaddleX service fixture's helpers live in the package (benchmarks use them too)."""

from __future__ import annotations

from harness.backends.http.serving import Service, free_port, start_service

__all__ = ["Service", "free_port", "start_service"]
