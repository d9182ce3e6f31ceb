"""The golden regression as pytest tests: one per image of the profile's selection (`release` by default).

Options (harness.pytest_plugin): --ocr-profile, --ocr-config, --ocr-id, --ocr-golden-dir, and
--ocr-regen new-only|failed|all to regenerate goldens from reproducible output. One model load per pytest
process, also under `pytest -n auto`.
"""

from __future__ import annotations

import pytest

from harness.pytest_plugin import GoldenRegression

pytestmark = pytest.mark.slow


def test_matches_golden(ocr_image_id: str, ocr_golden: GoldenRegression, request: pytest.FixtureRequest) -> None:
    verdict = ocr_golden.check(ocr_image_id)
    # Which process read this image and how often it loaded the model, for the test report (JUnit properties,
    # carried over from xdist workers). Appended directly: `record_property` warns under JUnit xunit2.
    request.node.user_properties += [("ocr_worker_pid", ocr_golden.worker_pid),
                                     ("ocr_model_loads", ocr_golden.model_loads)]
    if not verdict:
        pytest.fail(verdict.message, pytrace=False)
