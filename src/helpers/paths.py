"""Where things live. The only place in the project that builds paths.

Jupyter, nbval and papermill start notebooks in different working
directories, so notebooks never write ``../data``; they ask this module.
Tests and experiments can move the generated data and reports elsewhere
with the environment variables ``CIN_DATA_DIR`` and ``CIN_REPORTS_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The project root: the folder holding ``pyproject.toml`` (``src/helpers/`` is two levels down).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PARAMS_DIR = PROJECT_ROOT / "params"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


def data_dir() -> Path:
    """The data folder (``data/`` unless ``CIN_DATA_DIR`` says otherwise)."""
    return Path(os.environ.get("CIN_DATA_DIR", PROJECT_ROOT / "data"))


def raw_dir(dataset: str) -> Path:
    """Immutable raw snapshots of one data set: ``data/raw/<dataset>/``."""
    return data_dir() / "raw" / dataset


def processed_dir() -> Path:
    """Regenerated artifacts: ``data/processed/`` (one folder per data set and run, see :mod:`helpers.catalog`)."""
    return data_dir() / "processed"


def reports_dir() -> Path:
    """The reports folder (``reports/`` unless ``CIN_REPORTS_DIR`` says otherwise)."""
    return Path(os.environ.get("CIN_REPORTS_DIR", PROJECT_ROOT / "reports"))


def resolve(path: str | Path, base: Path | None = None) -> Path:
    """Resolve a path from a parameter file.

    Absolute paths stay as they are; relative ones are taken from ``base``
    (the project root by default), never from the current directory.

    >>> resolve("/tmp/x.csv").as_posix()
    '/tmp/x.csv'
    >>> resolve("params/cdnow.yaml") == PROJECT_ROOT / "params" / "cdnow.yaml"
    True
    """
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base or PROJECT_ROOT) / p


def shown(path: Path) -> str:
    """A path as printed to a user: relative to the project root when inside it.

    >>> shown(PROJECT_ROOT / "data" / "raw")
    'data/raw'
    >>> shown(Path("/elsewhere/x"))
    '/elsewhere/x'
    """
    try:
        return Path(path).resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return Path(path).as_posix()
