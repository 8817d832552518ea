"""The run catalog: every artifact a run makes, under one folder keyed by the run.

A run is a data set at an ``as_of`` day, optionally an analyst's experiment::

    data/processed/<dataset>/<as_of>[-<experiment>]/
        collected.parquet  snapshot.json  transactions.parquet  quality_log.csv
        purchase_days.parquet  customers_rfm.parquet  rfm.json  customers.parquet  clv_validation.json
        clusters.parquet  clusters.json  predictions.parquet  classification.json
        customer_segments.parquet  customer_segments.csv  metrics.json
        customer_value_by_month.parquet  customer_value_by_month.csv
        data_dictionary.csv  customers.duckdb

The catalog owns every artifact's name (:data:`ARTIFACTS`) and the run's
DuckDB database (tables and views). A run reads only its own artifacts (and,
for migration, the published earlier report under ``reports/``), so an
``--experiment`` or a failed run never touches the artifacts of another run.

The runner works in a staging folder beside the run folder and moves it into
place only when every stage succeeded (:func:`publish`); a failed rerun
leaves the last good run's artifacts as they were. Notebooks opened by hand
write straight into the run folder. Open a run's database with SQL any time::

    import duckdb
    con = duckdb.connect("data/processed/cdnow/1998-06-30/customers.duckdb", read_only=True)
    con.sql("select count(*) from transactions").show()
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from helpers import paths, store

#: Every artifact of a run, by name: its file in the run folder. Stages ask for names, never build paths.
ARTIFACTS: dict[str, str] = {
    "data_dictionary": "data_dictionary.csv",
    "collected": "collected.parquet",
    "snapshot": "snapshot.json",
    "transactions": "transactions.parquet",
    "quality_log": "quality_log.csv",
    "purchase_days": "purchase_days.parquet",
    "customers_rfm": "customers_rfm.parquet",
    "rfm": "rfm.json",
    "customer_types": "customer_types.parquet",
    "customers": "customers.parquet",
    "clv_validation": "clv_validation.json",
    "model_comparison": "model_comparison.csv",
    "tracking": "tracking.parquet",
    "value_per_period": "value_per_period.parquet",
    "clusters": "clusters.parquet",
    "clusters_summary": "clusters.json",
    "predictions": "predictions.parquet",
    "classification": "classification.json",
    "customer_segments": "customer_segments.parquet",
    "customer_segments_csv": "customer_segments.csv",
    "customer_value_by_month": "customer_value_by_month.parquet",
    "customer_value_by_month_csv": "customer_value_by_month.csv",
    "metrics": "metrics.json",
    "database": "customers.duckdb",
}


def run_key(as_of: Any, experiment: str | None = None) -> str:
    """The name of a run: ``<as_of>[-<experiment>]`` (the same name as its report folder).

    >>> run_key("1998-06-30"), run_key("1998-06-30", "net")
    ('1998-06-30', '1998-06-30-net')
    """
    stamp = as_of.isoformat() if hasattr(as_of, "isoformat") else str(as_of)
    return stamp + (f"-{experiment}" if experiment else "")


@dataclass(frozen=True)
class Catalog:
    """The artifacts of one run, in ``folder`` (the run folder, or the runner's staging folder for it)."""

    dataset: str
    run: str
    folder: Path

    @classmethod
    def of(cls, params: Any, folder: Path | None = None) -> Catalog:
        """The catalog of the run ``params`` describe (``folder`` overrides where it lives: staging)."""
        key = run_key(params.as_of, params.experiment)
        return cls(params.dataset, key, Path(folder) if folder is not None else run_folder(params.dataset, key))

    # -- files -----------------------------------------------------------
    def path(self, name: str) -> Path:
        """The file of artifact ``name`` (one of :data:`ARTIFACTS`)."""
        try:
            return self.folder / ARTIFACTS[name]
        except KeyError:
            raise KeyError(f"unknown artifact {name!r}; artifacts: {', '.join(ARTIFACTS)}") from None

    def exists(self, name: str) -> bool:
        """Whether this run has written artifact ``name``."""
        return self.path(name).exists()

    def require(self, name: str, stage: str) -> Path:
        """The file of ``name``, or a clear error naming the stage that writes it."""
        file = self.path(name)
        if not file.exists():
            raise FileNotFoundError(f"{paths.shown(file)} is missing: run stage {stage} of run {self.run} of "
                                    f"data set {self.dataset!r} first")
        return file

    def write_parquet(self, name: str, frame: pd.DataFrame) -> Path:
        """Write a frame artifact (atomically)."""
        return store.write_parquet(frame, self.path(name))

    def read_parquet(self, name: str, columns: list[str] | None = None, stage: str = "an earlier stage") -> pd.DataFrame:
        """Read a frame artifact (only ``columns``, when given)."""
        return store.read_parquet(self.require(name, stage), columns=columns)

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a JSON artifact (atomically)."""
        return store.write_json(obj, self.path(name))

    def read_json(self, name: str, default: Any = ...) -> Any:
        """Read a JSON artifact; ``default`` (when given) if this run has not written it."""
        if default is not ... and not self.exists(name):
            return default
        return store.json_load(self.require(name, "an earlier stage"))

    def write_text(self, name: str, text: str) -> Path:
        """Write a text artifact (atomically)."""
        return store.write_text(text, self.path(name))

    # -- the run's DuckDB database ----------------------------------------
    @property
    def database(self) -> Path:
        """The run's embedded DuckDB customer database."""
        return self.path("database")

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the run's database (created if missing, unless read-only)."""
        return store.connect_file(self.database, read_only=read_only,
                                  missing=f"no database for run {self.run} of data set {self.dataset!r}: "
                                          "run stage 02 (collect) first")

    def write_tables(self, tables: dict[str, pd.DataFrame | Path], views: dict[str, str] | None = None,
                     queries: dict[str, str] | None = None) -> None:
        """Replace tables (from frames, or copies of Parquet files) and views (over this run's Parquet artifacts, by name; or of SQL ``queries``)
        in one transaction."""
        store.write_tables_file(self.database, tables, {v: self.path(a) for v, a in (views or {}).items()}, queries)

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """A read-only SQL query on the run's database, as a DataFrame."""
        con = self.connect(read_only=True)
        try:
            return con.execute(sql, params or []).df()
        finally:
            con.close()


def dataset_folder(dataset: str) -> Path:
    """All runs of a data set: ``data/processed/<dataset>/``."""
    return paths.processed_dir() / dataset


def run_folder(dataset: str, run: str) -> Path:
    """The folder of one run: ``data/processed/<dataset>/<run>/``."""
    return dataset_folder(dataset) / run


def staging(params: Any, tag: str, partial: bool = False) -> Catalog:
    """A staging catalog for the run ``params`` describe (the runner's; ``tag`` names the process).

    A full run starts empty. A partial run (some stages only) is its own run,
    ``<run>-partial``, starting from a copy of the full run's artifacts (the
    stages it skips are read from there), so it never changes the full run.
    """
    full = Catalog.of(params)
    run = full.run + ("-partial" if partial else "")
    folder = full.folder.with_name(f".{run}.running-{tag}")
    if folder.exists():
        shutil.rmtree(folder)
    if partial and full.folder.is_dir():
        shutil.copytree(full.folder, folder)
        if (folder / ARTIFACTS["database"]).exists():
            store.relink_views(folder / ARTIFACTS["database"], full.folder, folder)
    folder.mkdir(parents=True, exist_ok=True)
    return Catalog(full.dataset, run, folder)


def publish(staged: Catalog) -> Catalog:
    """Move a staged run into its run folder (replacing the previous one at the last moment).

    The database's views read Parquet files by absolute path; they are pointed at the
    published files after the move, so the database works from its final place.
    """
    final = Catalog(staged.dataset, staged.run, run_folder(staged.dataset, staged.run))
    store.replace_folder(staged.folder, final.folder)
    if final.database.exists():
        store.relink_views(final.database, staged.folder, final.folder)
    return final


def discard(staged: Catalog) -> None:
    """Remove a staged run that failed (the run folder, if any, is untouched)."""
    if staged.folder.name.startswith("."):
        shutil.rmtree(staged.folder, ignore_errors=True)
