"""The `served_settings` check: what a service reports about its settings, against the profile's.

A served model is a black box with its own defaults. PaddleX's serving config ships detection limits (min side
64) that differ from the harness's (max side 960), and that alone reads some slips differently. So before any
result is compared, every setting the service reports differently from the profile is named here, and the
check fails: a golden or parity difference next to it is then explained, not a mystery.

The preflight's answer is not enough: a load balancer can send the preflight to a well-configured replica and
the images to another. So the settings every answer reports are compared too, and a disagreement names the
images whose answers carried it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends import served_settings
from harness.model.outcome import CheckResult
from harness.model.settings import EngineSettings

SHOWN_IMAGES = 5


@dataclass(frozen=True)
class SettingDifference:
    key: str  # dotted, in the service's terms: text_det_params.limit_type
    profile: Any
    service: Any

    def describe(self) -> str:
        return f"{self.key}: profile {self.profile!r}, service {self.service!r}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "profile": self.profile, "service": self.service}


def settings_differences(expected: Mapping[str, Any], reported: Mapping[str, Any]) -> list[SettingDifference]:
    """Every expected setting the service reports differently, or does not report at all."""
    out: list[SettingDifference] = []

    def walk(exp: Any, rep: Any, prefix: str) -> None:
        if isinstance(exp, Mapping):
            for k, v in exp.items():
                walk(v, rep.get(k) if isinstance(rep, Mapping) else None,
                     f"{prefix}{k}" if not prefix else f"{prefix}.{k}")
            return
        same = (rep is not None and isinstance(exp, (int, float)) and not isinstance(exp, bool)
                and isinstance(rep, (int, float)) and not isinstance(rep, bool) and abs(float(exp) - float(rep)) < 1e-9)
        if not same and exp != rep:
            out.append(SettingDifference(prefix, exp, rep))

    walk(expected, reported, "")
    return out


def served_settings_check(engine: EngineSettings, facts: Mapping[str, Any],
                          answers: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> CheckResult:
    """`facts`: the preflight's (stack.service); `answers`: by image, the settings each of its answers reported."""
    expected = served_settings(engine)  # the backend's hook: the profile's settings in the service's terms
    reported = facts.get("reported") or {}
    answered_ids, by_image = _answers(expected, answers or {})
    answered = len(answered_ids)
    if not reported:
        return CheckResult("served_settings", False, "the service reported no settings (no text_det_params or "
                           "model_settings in its answer): cannot tell whether it runs the profile's settings",
                           details={"reported": {}})
    diffs = settings_differences(expected, reported)
    compared = len(_leaves(expected))
    details = {"reported": dict(reported), "expected": expected, "server": facts.get("server"),
               "differences": [d.to_dict() for d in diffs],
               "answers": {"differing": {i: [d.to_dict() for d in ds] for i, ds in by_image.items()}}}
    parts = []
    if diffs:
        parts.append(f"{len(diffs)} service settings differ from the profile: "
                     + "; ".join(d.describe() for d in diffs))
    preflight = "; ".join(d.describe() for d in diffs)
    drift = {i: by_image.get(i, []) for i in answered_ids
             if "; ".join(d.describe() for d in by_image.get(i, [])) != preflight}
    if drift:  # answers that say something else than the preflight did
        parts.append(_answers_summary(drift, answered, preflight_clean=not diffs))
    elif by_image:
        parts.append("the answers to every image report the same")
    if parts:
        summary = " | ".join(parts) + " | results below were read with the service's settings"
        return CheckResult("served_settings", False, summary, details=details, judged=compared, unit="settings")
    # No count of images: shards that all agree merge to one verdict, which must read true for the whole run (the
    # merge sums `judged`: each shard compared its own service's settings).
    also = "; so do the answers to every image" if answered else ""
    return CheckResult("served_settings", True, f"the service reports the profile's settings ({compared} compared)"
                       f"{also}", details=details, judged=compared, unit="settings")


def _answers(expected: Mapping[str, Any], answers: Mapping[str, Sequence[Mapping[str, Any]]]
             ) -> tuple[list[str], dict[str, list[SettingDifference]]]:
    """The images that were answered, and every difference their answers reported, by image."""
    answered: list[str] = []
    by_image: dict[str, list[SettingDifference]] = {}
    for image_id, reports in sorted(answers.items()):
        if not reports:
            continue  # no answer (the image failed to run): the inference check has it
        answered.append(image_id)
        found: dict[str, SettingDifference] = {}
        for rep in reports:
            for d in settings_differences(expected, rep):
                found.setdefault(f"{d.key}={d.service!r}", d)
        if found:
            by_image[image_id] = list(found.values())
    return answered, by_image


def _answers_summary(by_image: Mapping[str, list[SettingDifference]], images: int, preflight_clean: bool) -> str:
    groups: dict[str, list[str]] = {}
    for image_id, diffs in by_image.items():
        groups.setdefault("; ".join(d.describe() for d in diffs) or "the profile's settings", []).append(image_id)
    described = " | ".join(f"{what} ({_ids(ids)})" for what, ids in groups.items())
    preflight = "the preflight reported the profile's" if preflight_clean else "not what the preflight reported"
    return f"answers for {len(by_image)} of {images} images report other settings ({preflight}): {described}"


def _ids(ids: list[str]) -> str:
    return ", ".join(ids[:SHOWN_IMAGES]) + (f" and {len(ids) - SHOWN_IMAGES} more" if len(ids) > SHOWN_IMAGES else "")


def _leaves(d: Mapping[str, Any]) -> list[Any]:
    out: list[Any] = []
    for v in d.values():
        out += _leaves(v) if isinstance(v, Mapping) else [v]
    return out
