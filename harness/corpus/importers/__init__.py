"""`corpus import`: the label files PaddleOCR users already have, turned into a harness corpus.

One module per label format, each registering its reader (harness.corpus.importers.labels.reader); the formats
(`--from`) are what is registered:
- ppocrlabel: PPOCRLabel's `Label.txt` (ppocrlabel.py).
- det: PaddleOCR's detection training labels (det.py).
- rec: PaddleOCR's recognition labels, one cropped line per image (rec.py).
- icdar2015: `gt_<name>.txt` files, one per image (icdar2015.py).

Don't-care regions (`###`, `difficult: true`) are not ground-truth lines: they go to the record's `ignore`
list, so they are kept but never scored as text. Key fields come from `--field` regexes (fields.py).

Everything is parsed and checked before anything is written; every bad line is one message `file:line: why`.
The checks, the copy and the all-or-nothing write are build.py's, the same for every format.
"""

from __future__ import annotations

from harness.corpus.importers import det, icdar2015, ppocrlabel, rec  # noqa: F401  each registers its format
from harness.corpus.importers.build import MARKER, ImportErrors, ImportResult, import_corpus, summary
from harness.corpus.importers.fields import FieldRule, parse_field_rules
from harness.corpus.importers.labels import formats

__all__ = ["MARKER", "FieldRule", "ImportErrors", "ImportResult", "formats", "import_corpus", "parse_field_rules",
           "summary"]
