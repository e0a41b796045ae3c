"""`make benchmark` works: this program and Helm side by side on a local cluster (scripts/benchmark.py).

Not a timed test: the figures depend on the machine. CI runs the quick form once (one run, overhead only) to
prove that every step of both tools runs to its end and that the table comes out; the README holds the
figures of a full run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STEPS = ("install", "preview", "image update", "rollback", "remove")
ROW = re.compile(r"^\| (?P<step>[a-z ]+) \| (?P<ours>[0-9.]+) \| (?P<helm>[0-9.]+) \| (?P<ratio>[0-9.]+) \|$", re.M)


def _rows(text: str) -> list[str]:
    return [m["step"] for m in ROW.finditer(text) if float(m["ours"]) > 0 and float(m["helm"]) > 0]


def test_quick_benchmark_prints_every_step_for_both_tools(toolchain_bin):
    readme = (REPO / "README.md").read_text()
    proc = subprocess.run([sys.executable, "scripts/benchmark.py", "--quick"], cwd=REPO, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "LANGFLOW_TOOLCHAIN_BIN": str(toolchain_bin)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Overhead" in proc.stdout and _rows(proc.stdout) == list(STEPS), proc.stdout
    assert (REPO / "README.md").read_text() == readme  # only --write-readme writes it


def test_readme_holds_both_tables_of_a_full_run():
    section = (REPO / "README.md").read_text().split("<!-- benchmark:start -->")[1].split("<!-- benchmark:end -->")[0]
    assert "Overhead" in section and "End to end" in section and "median of 3" in section
    assert _rows(section) == list(STEPS) * 2
