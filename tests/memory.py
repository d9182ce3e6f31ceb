"""Peak memory of one CLI command, measured in a child process against that child's own baseline."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

# The child imports what the command will import, records its peak RSS (the baseline), runs the command and
# records the peak again: the difference is what the command itself held at its worst.
_CHILD = """
import json, resource, sys
import numpy, PIL.Image
import harness.corpus.importers, harness.corpus.loader, harness.run.shards.merge
from harness.cli import main
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(sys.argv[1:])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"code": code, "baseline_kb": baseline, "peak_kb": peak}))
"""


def peak_above_baseline(argv: Sequence[str]) -> tuple[int, int, str]:
    """(exit code, peak RSS above the baseline in bytes, stderr) of `ocr-harness argv`."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, *argv], capture_output=True, text=True, timeout=600)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["code"], (result["peak_kb"] - result["baseline_kb"]) * 1024, proc.stderr
