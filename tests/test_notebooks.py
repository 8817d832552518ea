"""nbval: every stage notebook runs top to bottom with its default parameters, in order, and raises nothing.

The notebooks are one test here rather than nbval items of the main session, so that ``make test``'s
pytest-xdist workers cannot split them: each notebook reads the artifacts of the one before it. nbval
runs in a pytest of its own (``--nbval-lax``: outputs are not compared, errors fail), in this test's
data and reports folders.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import paths

pytestmark = pytest.mark.notebooks


def test_every_notebook_runs_top_to_bottom_under_nbval(isolated: Path) -> None:
    notebooks = sorted(paths.NOTEBOOKS_DIR.glob("*.ipynb"))
    assert len(notebooks) == 8, [n.name for n in notebooks]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--nbval-lax",
         "--nbval-current-env", *[str(n) for n in notebooks]],
        cwd=paths.PROJECT_ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=1800)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, f"nbval failed ({summary}):\n{done.stdout[-8000:]}\n{done.stderr[-2000:]}"
    assert " passed" in summary and "failed" not in summary, summary
