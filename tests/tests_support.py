"""Small frames for tests (importable because pyproject puts tests/ on the path)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
from pathlib import Path
from typing import Any

import pandas as pd

from helpers import paths


def clean_frame() -> pd.DataFrame:
    """Three clean transaction lines."""
    return pd.DataFrame({
        "customer_id": ["1", "1", "2"],
        "order_id": ["a", "b", "c"],
        "order_ts": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-01-15"]),
        "amount": [10.0, 5.0, 7.5],
        "source_row": ["2", "3", "4"],
    })


def make_lines(rows: list[tuple]) -> pd.DataFrame:
    """Collected transactions from (customer, order, timestamp, amount[, quantity, price, code]) tuples."""
    cols = ["customer_id", "order_id", "order_ts", "amount", "quantity", "unit_price", "product_code"]
    frame = pd.DataFrame([r + (None,) * (len(cols) - len(r)) for r in rows], columns=cols)
    frame["order_ts"] = pd.to_datetime(frame["order_ts"])
    for c in ("amount", "quantity", "unit_price"):
        frame[c] = frame[c].astype(float)
    frame["source_row"] = [str(i + 2) for i in range(len(frame))]
    return frame


def stage_functions_ready() -> bool:
    """Whether every stage in ``helpers.stages.STAGE_FUNCTIONS`` has its module (then a run needs no notebooks)."""
    from helpers.stages import STAGE_FUNCTIONS

    return all(importlib.util.find_spec(target.split(":")[0]) is not None for target in STAGE_FUNCTIONS.values())


#: The suite's one switch: the tests' pipeline runs (:func:`pipeline_run`) go through the notebooks (papermill,
#: eight kernels a run) or through the stage functions in the test's own process (``run(..., notebooks=False)``:
#: the same artifacts and export, no executed notebooks, no report.html). In-process as soon as every stage
#: has its function; ``CIN_TEST_NOTEBOOKS=1`` forces the notebooks. Tests of the notebooks themselves, of
#: report.html and of the console pass ``notebooks=True``.
NOTEBOOKS: bool = os.environ.get("CIN_TEST_NOTEBOOKS") == "1" or not stage_functions_ready()


#: Fewer bootstrap refits, CV folds and boosting rounds, for the test runs that check none of them (stages 06 and
#: 07 dominate a run's time; 200 rounds of 4-class boosting are most of stage 07's).
QUICK_PARAMS: dict[str, dict[str, int]] = {"clusters": {"bootstrap": 5},
                                           "classify": {"cv_folds": 3, "boosting_rounds": 40}}
#: The same as ``-p`` overrides.
QUICK: dict[str, str] = {f"{section}.{name}": str(v) for section, values in QUICK_PARAMS.items()
                         for name, v in values.items()}


def pipeline_run(params_file: str | Path, overrides: dict[str, str] | None = None, *, notebooks: bool | None = None,
                 **kwargs: Any) -> Path:
    """``helpers.run.run`` without progress lines, through the notebooks or in-process as :data:`NOTEBOOKS` says.

    ``notebooks`` overrides the switch for one run; other keywords (``experiment``, ``stages``, ``log``) go to
    ``run``. Returns the published report folder.
    """
    from helpers.run import run

    kwargs.setdefault("log", lambda _: None)
    return run(params_file, overrides, notebooks=NOTEBOOKS if notebooks is None else notebooks, **kwargs)


def published(params_file: str | Path, overrides: dict[str, str] | None = None, *, partial: bool = False):  # noqa: ANN201
    """The :class:`~helpers.catalog.Catalog` of the published run ``params_file`` (and ``overrides``) describe."""
    from helpers.catalog import Catalog, run_folder
    from helpers.config import load_params

    full = Catalog.of(load_params(params_file, overrides))
    run = full.run + ("-partial" if partial else "")
    return Catalog(full.dataset, run, run_folder(full.dataset, run))


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by path relative to it (empty when there is no folder)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): _sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def purchases(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """Transactions from (customer, ISO timestamp, amount) tuples."""
    frame = pd.DataFrame(rows, columns=["customer_id", "order_ts", "amount"])
    frame["order_ts"] = pd.to_datetime(frame["order_ts"], format="ISO8601")
    return frame


def collected(params_file: str, data_dir, *, clean: bool = False) -> pd.DataFrame:  # noqa: ANN001
    """Collect (and, with ``clean``, clean) a data set, its files under ``data_dir``; the environment is restored."""
    import pytest

    from helpers.cleaning import clean_transactions
    from helpers.config import load_params
    from helpers.sources import collect

    params = load_params(params_file)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIN_DATA_DIR", str(data_dir))
        lines = collect(params)[1]
    return clean_transactions(lines, params.cleaning, params.as_of)[0] if clean else lines


#: The Olist tables (``../shared/data/olist``): three CSVs that join into one order per row.
OLIST_DIR = paths.PROJECT_ROOT.parent / "shared" / "data" / "olist"
OLIST_TABLES = {"orders": "olist_orders_dataset.csv", "payments": "olist_order_payments_dataset.csv",
                "customers": "olist_customers_dataset.csv"}


def write_params(params: dict, target: Path) -> Path:
    """Write a parameter dict as a YAML parameter file."""
    import yaml

    Path(target).write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return Path(target)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_files() -> list[Path]:
    """The raw inputs the tests read in place: the shared data folder and the data sets shipped with lifetimes."""
    import lifetimes.datasets

    folders = [paths.PROJECT_ROOT.parent / "shared" / "data", Path(lifetimes.datasets.__file__).parent]
    return sorted(f for d in folders if d.is_dir() for f in d.rglob("*") if f.is_file() and f.suffix in {".txt", ".csv", ".xlsx"})


def shipped_examples() -> list[Path]:
    """The example data shipped in the repository (``data/examples/``), read in place like any source."""
    from helpers import paths

    return sorted(f for f in (paths.PROJECT_ROOT / "data" / "examples").glob("*") if f.is_file() and f.suffix != ".md")


def raw_fingerprint(data_dir: Path) -> dict[str, str]:
    """sha256 of every source file and of every file in the raw layer (``<data_dir>/raw``)."""
    files = source_files() + shipped_examples() + sorted(p for p in (Path(data_dir) / "raw").rglob("*") if p.is_file())
    return {str(f): _sha256(f) for f in files}


def assert_raw_intact(before: dict[str, str], data_dir: Path) -> None:
    """Raw data was never modified: files seen before are unchanged, every snapshot matches its manifest and is read-only."""
    after = raw_fingerprint(data_dir)
    changed = [f for f, digest in before.items() if after.get(f) != digest]
    assert not changed, f"raw files modified or removed: {changed}"
    for manifest in (Path(data_dir) / "raw").glob("*/*/manifest.json"):
        meta = json.loads(manifest.read_text())
        file = manifest.parent / meta["file"]
        assert _sha256(file) == meta["sha256"], f"{file} does not match its manifest"
        assert not file.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), f"{file} is writable"
