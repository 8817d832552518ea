"""Collecting a raw transaction log: read a source, snapshot it, map it.

Stage 02 of the customer identification process. A source is described by a
parameter file (:class:`helpers.config.SourceParams`): a CSV or whitespace
text file, an Excel workbook (all or some sheets), a Parquet file, or a table
or query in a DuckDB or SQLite database. A DuckDB query needs no database
file: it then runs in an in-memory DuckDB whose relative file paths start at
the project root (a query joining CSV or Parquet tables).

Collecting does three things:

1. **Snapshot.** The source is copied byte for byte (a database extract is
   written as Parquet) to ``data/raw/<dataset>/<sha256[:16]>/`` with a
   ``manifest.json`` (source, rows, columns, sha256, bytes, time). Snapshots
   are content-addressed and read-only: collecting the same data again reuses
   the snapshot; new data gets a new one. Raw files are never modified.
2. **Read** the snapshot (never the live source), keeping where each line
   came from in ``source_row``.
3. **Map** its columns onto the canonical transaction contract
   (:data:`helpers.schemas.collected_schema`) with the column mapping of the
   parameter file, parsing dates and numbers with errors that name the rows.

The package's modules, by concern: :mod:`~helpers.sources.files` (where a
source is, how messages name it), :mod:`~helpers.sources.reading` (text,
Excel and Parquet with pandas), :mod:`~helpers.sources.sql` (DuckDB and
SQLite extracts), :mod:`~helpers.sources.snapshots` (the raw layer) and
:mod:`~helpers.sources.mapping` (the column mapping and parsing); this module
ties them into stage 02 (:func:`collect_and_save`).

Every error names the user's source as the parameter file gives it
(:func:`source_label`), never the snapshot's copy. Bad input said at once:
text lines with more fields than the header (their line numbers, and
``source.on_bad_lines: skip``), a file split on the wrong separator
(:func:`guess_separator`: "looks ';'-separated: set source.sep: ';'") and
amounts that are nearly all negative (:func:`check_signs`: the sign looks
flipped).
"""


from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from helpers import paths
from helpers.config import Params
from helpers.errors import DataError
from helpers.sources.files import LIFETIMES_PREFIX, resolve_source_path, sha256_file, source_label
from helpers.sources.mapping import (CANONICAL_ORDER, FLIPPED_SHARE, check_signs, day_month_hint, map_columns,
                                     parse_numbers, parse_timestamps, role_columns, sign_counts)
from helpers.sources.reading import (KEPT_LINES, SEPARATORS, SHOWN_LINES, BadLines, guess_separator, header_names,
                                     read_snapshot, read_source, separator_hint, show_lines)
from helpers.sources.snapshots import Snapshot, snapshot_history, snapshot_source
from helpers.sources.sql import extract_sql, query_inputs


def save_collected(catalog: Any, snap: Snapshot, collected: pd.DataFrame | None, read: dict[str, Any] | None = None,
                   view: str | None = None) -> Path:
    """Write stage 02's artifacts: ``collected.parquet`` and the run's DuckDB tables; return where the lines are.

    The table ``collected`` holds this collection; ``snapshots`` lists every raw
    snapshot of the data set and marks the one this run used (the run's own
    database never reads another run's).
    With ``collected`` None and a ``view`` (the DuckDB engine) the lines are not copied: ``collected``
    is the view ``view``, the raw snapshot mapped onto the contract in SQL
    (:func:`helpers.sqlclean.collected_sql`), which stage 03 cleans; with neither (Spark) the engine
    has written ``collected.parquet`` and ``collected`` is a view over it. ``snapshot.json`` is the
    snapshot's manifest plus ``read``: how this collection read it
    (``on_bad_lines`` and the lines skipped, :func:`read_info`), which
    stage 03 puts in the quality log. ``read`` defaults to ``collected``'s.
    """
    written = collected is None and view is None  # the engine (Spark) wrote collected.parquet itself
    target = catalog.database if view is not None else catalog.path("collected")
    if collected is not None:
        catalog.write_parquet("collected", collected)
        read = read if read is not None else read_info(collected)
    elif view is not None:
        catalog.path("collected").unlink(missing_ok=True)  # an earlier collection's, on the pandas engine
    catalog.write_json("snapshot", {**snap.manifest, "read": read})
    history = snapshot_history(catalog.dataset, snap.manifest["snapshot_id"])
    if collected is not None:
        catalog.write_tables({"collected": collected, "snapshots": history})
    elif written:
        catalog.write_tables({"snapshots": history}, views={"collected": "collected"})
    else:
        catalog.write_tables({"snapshots": history}, queries={"collected": view})
    return target


def read_info(collected: pd.DataFrame) -> dict[str, Any] | None:
    """How the collected lines were read: ``{"on_bad_lines": ..., "bad_lines": {count, lines, expected_fields}}``.

    Kept in the frame's ``attrs`` by :func:`map_snapshot` (text sources
    only); None for other sources.
    """
    return collected.attrs.get("read")


def map_snapshot(params: Params, snap: Snapshot) -> pd.DataFrame:
    """Read a raw snapshot and map it onto the contract (the pandas engine of stage 02).

    Errors name the user's source (:func:`source_label`) and the snapshot.
    Text lines with too many fields stop here with their line numbers, or,
    with ``source.on_bad_lines: skip``, are dropped and recorded in the
    result's ``attrs["read"]`` (:func:`read_info`). A mapped column that is
    not found because the file is split on the wrong separator says which
    separator to set.
    """
    spec = params.source
    label = source_label(spec)
    raw, _, bad = read_source(spec, snap.file, label)
    found = [c for c in raw.columns if c != "source_row"]
    missing = [c for c in role_columns(params.columns).values() if c not in raw.columns]
    if missing and (hint := separator_hint(snap.file, spec, label)):
        raise DataError(f"{hint} (mapped column(s) {missing} not found with source.sep {spec.sep!r}; "
                        f"columns found: {found[:5]}{' ...' if len(found) > 5 else ''})")
    out = map_columns(raw, params.columns, params.date_format, f"{label} (snapshot {paths.shown(snap.file)})",
                      spec.decimal, spec.thousands)
    if bad is not None:
        out.attrs["read"] = {"on_bad_lines": spec.on_bad_lines, "bad_lines": bad.as_dict()}
    return out


def collect(params: Params) -> tuple[Snapshot, pd.DataFrame]:
    """Stage 02 in one call: snapshot the source, read the snapshot, map it onto the contract."""
    snap = snapshot_source(params)
    return snap, map_snapshot(params, snap)


def collect_and_save(params: Params, catalog: Any = None) -> tuple[Snapshot, str]:
    """Stage 02 in one call, on the engine the parameters choose; returns the snapshot and the engine.

    pandas: :func:`collect` then :func:`save_collected`. DuckDB (large Parquet
    sources, see :func:`helpers.sqlclean.engine`): the snapshot's mapping onto
    the contract is checked by :func:`helpers.sqlclean.collect`, in SQL, and kept as
    the view ``collected`` (the lines are neither loaded into pandas nor copied).
    Spark (``engine: spark``) maps a Parquet source the same way and writes ``collected.parquet``.
    """
    from helpers import sqlclean
    from helpers.catalog import Catalog

    catalog = catalog if catalog is not None else Catalog.of(params)  # default: the run folder of params
    snap = snapshot_source(params)
    engine = sqlclean.engine(params, snap.file)
    if engine == "duckdb":
        save_collected(catalog, snap, None, view=sqlclean.collect(params, snap.file))
    elif engine == "spark" and params.source.kind == "parquet":
        from helpers import sparkengine

        sqlclean.collect(params, snap.file, catalog.path("collected"), sparkengine.connect(params.spark))
        save_collected(catalog, snap, None)
    else:
        save_collected(catalog, snap, map_snapshot(params, snap))
    return snap, engine


__all__ = ["CANONICAL_ORDER", "FLIPPED_SHARE", "KEPT_LINES", "LIFETIMES_PREFIX", "SEPARATORS", "SHOWN_LINES",
           "BadLines", "Snapshot", "check_signs", "collect", "collect_and_save", "day_month_hint",
           "extract_sql", "guess_separator", "header_names", "map_columns", "map_snapshot", "parse_numbers",
           "parse_timestamps", "query_inputs", "read_info", "read_snapshot", "read_source",
           "resolve_source_path", "role_columns", "save_collected", "separator_hint", "sha256_file",
           "show_lines", "sign_counts", "snapshot_history", "snapshot_source", "source_label"]
