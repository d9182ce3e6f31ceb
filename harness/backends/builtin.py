"""The harness's own backends, registered in this order (the order `must be one of ...` names them). Imported only
by a composition root (the CLI, the pytest plugin, a spawned worker), which then calls
`harness.backends.registry.load(builtin)`."""

from __future__ import annotations

from harness.backends import registry
from harness.backends.http import spec as http_spec
from harness.backends.onnxruntime import spec as onnxruntime_spec
from harness.backends.paddle import spec as paddle_spec

for _spec in (paddle_spec.SPEC, onnxruntime_spec.SPEC, http_spec.SPEC):
    registry.register(_spec)
