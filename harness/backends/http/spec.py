"""The http backend as the harness sees it: its `[engine.http]` table, its preflight and the stack record of a
service (what it reports about itself, not this machine)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.backends.http.client import allow_requests, cancel_requests
from harness.backends.http.engine import expected_settings, preflight
from harness.backends.http.settings import NAME, HttpSettings, http_settings, with_url
from harness.backends.paddle.spec import PACK as PADDLE_PACK
from harness.backends.paddle.spec import STACK_KEYS as PADDLE_STACK_KEYS
from harness.backends.spec import BackendSpec
from harness.model.catalogue import BackendRules
from harness.model.modeldirs import ModelDirs
from harness.model.settings import EngineSettings, Profile

SERVICE_SOURCE = "service"  # ModelDirs.source of a backend whose models live elsewhere
# The client machine's packages, CPU and threads do not decide what a service reads; what it reports does.
CLIENT_KEYS = ("paddleocr", "paddlex", "cpu_threads", "cpu_model", "isa", "models", "rec_batch_size")


def stack(base: Mapping[str, Any], engine: EngineSettings, facts: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {k: v for k, v in base.items() if k not in (*PADDLE_STACK_KEYS, *CLIENT_KEYS)}
    return {**out, "backend": NAME, "service": dict(facts or {})}


def service_dirs(settings: EngineSettings, base: Path, cache: str | None = None) -> ModelDirs:
    return ModelDirs(det=Path("."), rec=Path("."), source=SERVICE_SOURCE)


def max_retry_rate(engine: EngineSettings) -> float:
    return http_settings(engine).max_retry_rate


def requests_in_flight(profile: Profile) -> int:
    return http_settings(profile.engine).max_in_flight


SPEC = BackendSpec(
    rules=BackendRules(NAME, settings=HttpSettings, local_models=False),
    engine="harness.backends.http.engine:HttpBackend",
    resolve_models=service_dirs,
    in_worker=False,
    service=True,
    stack=stack,
    unsupported={"batch_paths": "the recognition batch size is the service's own setting; the client cannot vary it"},
    owned_stack_keys=("service",),
    preflight=preflight,
    drivers=requests_in_flight,
    max_retry_rate=max_retry_rate,
    packs=(PADDLE_PACK,),  # `models verify` has always checked the Paddle pack, whatever the backend
    models_note="the service (its models are not local; run reports record what it says about itself)",
    cancel=cancel_requests,
    allow=allow_requests,
    served_settings=expected_settings,
    with_service_url=with_url,
)
