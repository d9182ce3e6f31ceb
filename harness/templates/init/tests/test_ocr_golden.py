"""The golden regression as pytest tests, one per corpus image (the ocr-harness pytest plugin, loaded on
`pip install ocr-harness`). Options: --ocr-profile (default release), --ocr-id ID, --ocr-golden-dir,
--ocr-config, --ocr-regen new-only|failed|all."""

import pytest


def test_ocr_golden(ocr_image_id, ocr_golden):
    verdict = ocr_golden.check(ocr_image_id)
    if not verdict:
        pytest.fail(verdict.message, pytrace=False)
