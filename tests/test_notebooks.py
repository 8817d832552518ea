"""nbval: every stage notebook runs top to bottom as a user opening it runs it, in order, and raises nothing.

The notebooks are one test here rather than nbval items of the main session, so that ``make test``'s
pytest-xdist workers cannot split them: each notebook reads the artifacts of the one before it. nbval
runs in a pytest of its own (``--nbval-lax``: outputs are not compared, errors fail), in this test's
data and reports folders, without the runner: ``run_folder`` stays ``None``, so the notebooks work in the
run folder under ``data/processed/`` as they do when opened by hand.

The notebooks run from copies whose parameters cell is edited as a user edits it: the CDNOW sample (the
2,357 customers of Fader, Hardie and Lee's papers) instead of the full cohort, with the suite's quick
overrides (fewer bootstrap refits and folds). The full cohort runs through the same stage functions in
``tests/test_run.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import paths
from tests_support import QUICK_PARAMS

pytestmark = pytest.mark.notebooks
#: The parameters cell's two lines as the copies have them.
EDITED = {"params_file": 'params_file = "cdnow_sample.yaml"',
          "overrides": "overrides = " + repr({f"{s}.{n}": v for s, values in QUICK_PARAMS.items() for n, v in values.items()})}


def edited_copy(notebook: Path, folder: Path) -> Path:
    """``notebook`` copied into ``folder`` with its parameters cell's ``params_file`` and ``overrides`` lines replaced."""
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for name, line in EDITED.items():
        cell.source, n = re.subn(rf"^{name} = .*$", line, cell.source, count=1, flags=re.MULTILINE)
        assert n == 1, f"{notebook.name}: no {name} line in the parameters cell"
    target = folder / notebook.name
    nbformat.write(nb, target)
    return target


def test_every_notebook_runs_top_to_bottom_under_nbval(isolated: Path) -> None:
    notebooks = sorted(paths.NOTEBOOKS_DIR.glob("*.ipynb"))
    assert len(notebooks) == 8, [n.name for n in notebooks]
    (isolated / "notebooks").mkdir()
    copies = [edited_copy(n, isolated / "notebooks") for n in notebooks]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--nbval-lax",
         "--nbval-current-env", "--rootdir", str(isolated / "notebooks"), *[str(n) for n in copies]],
        cwd=isolated / "notebooks", env=os.environ.copy(), capture_output=True, text=True, timeout=1800)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, f"nbval failed ({summary}):\n{done.stdout[-8000:]}\n{done.stderr[-2000:]}"
    assert " passed" in summary and "failed" not in summary, summary
    published = paths.data_dir() / "processed" / "cdnow_sample" / "1998-06-30"
    assert (published / "customer_segments.parquet").exists()  # the notebooks opened by hand wrote their run folder
