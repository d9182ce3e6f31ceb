"""The `served_settings` check: what a service reports about its settings, against the profile's.

A served model is a black box with its own defaults. PaddleX's serving config ships detection limits (min side
64) that differ from the harness's (max side 960), and that alone reads some slips differently. So before any
result is compared, every setting the service reports differently from the profile is named here, and the
check fails: a golden or parity difference next to it is then explained, not a mystery.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.backends.http import expected_settings, settings_differences
from harness.checks.outcome import CheckResult
from harness.config import EngineSettings


def served_settings_check(engine: EngineSettings, facts: Mapping[str, Any]) -> CheckResult:
    reported = facts.get("reported") or {}
    if not reported:
        return CheckResult("served_settings", False, "the service reported no settings (no text_det_params or "
                           "model_settings in its answer): cannot tell whether it runs the profile's settings",
                           details={"reported": {}})
    diffs = settings_differences(expected_settings(engine), reported)
    details = {"reported": dict(reported), "expected": expected_settings(engine), "server": facts.get("server"),
               "differences": [d.to_dict() for d in diffs]}
    if diffs:
        summary = (f"{len(diffs)} service settings differ from the profile: " + "; ".join(d.describe() for d in diffs)
                   + " | results below were read with the service's settings")
        return CheckResult("served_settings", False, summary, details=details)
    return CheckResult("served_settings", True, f"the service reports the profile's settings "
                       f"({len(_leaves(details['expected']))} compared)", details=details)


def _leaves(d: Mapping[str, Any]) -> list[Any]:
    out: list[Any] = []
    for v in d.values():
        out += _leaves(v) if isinstance(v, Mapping) else [v]
    return out
