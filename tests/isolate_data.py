"""pytest plugin (loaded with ``-p isolate_data`` from pyproject.toml).

Points the generated data and reports of the whole test session, including
notebook kernels started by nbval and papermill (they inherit the
environment), at a temporary folder, so ``make test`` never touches the
user's ``data/`` and ``reports/``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    root = Path(tempfile.mkdtemp(prefix="cin-test-"))
    os.environ["CIN_DATA_DIR"] = str(root / "data")
    os.environ["CIN_REPORTS_DIR"] = str(root / "reports")
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    os.environ.pop("MPLBACKEND", None)
    config.stash[_ROOT] = root


_ROOT = pytest.StashKey[Path]()
