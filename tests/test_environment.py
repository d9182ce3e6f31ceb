"""What a report records about the environment: versions and CPU, and environment variables from an allowlist
only (others named, values never recorded: reports are shared)."""

from __future__ import annotations

import json

import pytest

from conftest import typed

from harness.environment import environment, relevant_env
from harness.report.html import render_html

SECRETS = {
    "OCR_HARNESS_UPLOAD_TOKEN": "s3cret-upload",  # the harness's own prefix: recorded in full before the allowlist
    "PADDLE_PDX_AISTUDIO_ACCESS_TOKEN": "s3cret-hub",
    "MY_API_TOKEN": "s3cret-api",
    "FLAGS_planted_api_key": "s3cret-flag",  # an allowlisted prefix does not make a secret-looking name safe
    "OMP_PLANTED_CACHE": "/home/someone/.cache/omp",  # nor a machine path
    "OCR_HARNESS_CACHE": "/home/someone/.cache/ocr-harness",
}


def test_only_allowlisted_values_are_recorded_the_rest_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**SECRETS, "OMP_NUM_THREADS": "2", "FLAGS_use_mkldnn": "1", "CI": "true"}.items():
        monkeypatch.setenv(name, value)
    env = environment()
    text = json.dumps(env)
    for value in SECRETS.values():
        assert value not in text
    assert set(SECRETS) <= set(env["env_redacted"]) and not set(SECRETS) & set(env["env"])
    assert "PATH" in env["env_redacted"] and "PATH" not in env["env"]
    assert {k: env["env"][k] for k in ("OMP_NUM_THREADS", "FLAGS_use_mkldnn", "CI")} == {
        "OMP_NUM_THREADS": "2", "FLAGS_use_mkldnn": "1", "CI": "true"}
    page = render_html(typed({"environment": env, "images": [], "checks": {}}), {}, lambda i: None)
    assert "MY_API_TOKEN" in page and "OMP_NUM_THREADS" in page
    for value in SECRETS.values():
        assert value not in page


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("OMP_NUM_THREADS", "4", True),
    ("MKL_ENABLE_INSTRUCTIONS", "AVX2", True),
    ("CUDA_VISIBLE_DEVICES", "", True),
    ("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True", True),
    ("HOME", "/root", False),
    ("GITHUB_TOKEN", "ghp_x", False),
    ("FLAGS_secret_password", "x", False),
    ("OMP_PLACES", "{0:4}", True),
    ("ONEDNN_VERBOSE", "C:\\logs", False),
    ("GLOG_log_dir", "/var/log", False),
    ("OPENBLAS_CORETYPE", "https://user:pw@example.org", False),
])
def test_allowlist(name: str, value: str, shown: bool) -> None:
    values, names = relevant_env({name: value})
    assert (values, names) == (({name: value}, []) if shown else ({}, [name]))
