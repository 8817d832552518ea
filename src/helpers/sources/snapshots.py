"""Immutable, content-addressed raw snapshots of a source, and the history of a data set's snapshots."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from helpers import paths, store
from helpers.config import Params, SourceParams
from helpers.errors import DataError
from helpers.sources.files import resolve_source_path, sha256_file, source_label
from helpers.sources.reading import read_source
from helpers.sources.sql import extract_sql, query_inputs


@dataclass(frozen=True)
class Snapshot:
    """An immutable raw snapshot and its manifest."""

    directory: Path
    file: Path
    manifest: dict[str, Any]





def _make_read_only(path: Path) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def snapshot_source(params: Params) -> Snapshot:
    """Copy the source into an immutable, content-addressed raw snapshot.

    Collecting identical data again returns the existing snapshot (its
    checksum verified); a snapshot is never overwritten.
    """
    spec = params.source
    label = source_label(spec)
    source_file = resolve_source_path(spec.path) if spec.path is not None else None
    staging = Path(tempfile.mkdtemp(prefix=".collect-", dir=_ensure(paths.raw_dir(params.dataset))))
    try:
        if spec.kind in ("duckdb", "sqlite"):
            name = f"{spec.table or 'query'}.parquet"
            store.write_parquet(extract_sql(spec, source_file), staging / name)
        else:
            assert source_file is not None  # SourceParams: only a duckdb query has no path
            name = source_file.name
            shutil.copyfile(source_file, staging / name)
        digest = sha256_file(staging / name)
        if spec.kind not in ("duckdb", "sqlite") and digest != sha256_file(source_file):
            raise DataError(f"{label}: the file changed while it was being copied; collect again")
        target = paths.raw_dir(params.dataset) / digest[:16]
        if (target / "manifest.json").exists():
            existing = store.json_load(target / "manifest.json")
            if sha256_file(target / existing["file"]) != existing["sha256"]:
                raise DataError(f"raw snapshot {target} no longer matches its manifest checksum; it was modified")
            return Snapshot(target, target / existing["file"], existing)
        rows, columns, sheets, bad_lines = _shape(spec, staging / name, label)
        source = {"kind": spec.kind, "path": spec.path, "resolved": str(source_file) if source_file else None,
                  "table": spec.table, "query": spec.query, "encoding": spec.encoding}
        if spec.query and spec.kind == "duckdb":
            source["inputs"] = query_inputs(spec.query)
        manifest = {
            "dataset": params.dataset,
            "snapshot_id": digest[:16],
            "source": source,
            "file": name,
            "sha256": digest,
            "bytes": (staging / name).stat().st_size,
            "rows": rows,
            "columns": columns,
            "sheets": sheets,
            "collected_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        if bad_lines is not None:
            manifest["bad_lines"] = bad_lines
        store.write_json(manifest, staging / "manifest.json")
        for f in staging.iterdir():
            _make_read_only(f)
        try:
            os.rename(staging, target)
        except OSError:  # another process made the same snapshot first
            if not (target / "manifest.json").exists():
                raise
            return Snapshot(target, target / name, store.json_load(target / "manifest.json"))
        return Snapshot(target, target / name, manifest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _shape(spec: SourceParams, file: Path, label: str) -> tuple[int, list[str], dict[str, int] | None, int | None]:
    """Rows, columns, (workbooks) rows per sheet and (text) bad lines of a snapshot file.

    Parquet from its metadata alone. Text lines with too many fields are
    counted here, not refused (``rows`` counts the others), so the snapshot
    exists and :func:`map_snapshot` names them as ``source.on_bad_lines`` says.
    """
    if spec.kind in ("parquet", "duckdb", "sqlite"):
        try:
            meta = pq.ParquetFile(file)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise DataError(f"{label}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
        return meta.metadata.num_rows, meta.schema_arrow.names, None, None
    frame, sheets, bad = read_source(spec, file, label, tolerate_bad_lines=True)
    return len(frame), [c for c in frame.columns if c != "source_row"], sheets, (bad.count if bad else None)


def _ensure(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory



def snapshot_history(dataset: str, used: str) -> pd.DataFrame:
    """Every raw snapshot of the data set (from their manifests), newest first; ``used`` marks this run's."""
    rows = []
    for manifest in sorted(paths.raw_dir(dataset).glob("*/manifest.json")):
        m = store.json_load(manifest)
        rows.append({"snapshot_id": m["snapshot_id"], "file": m["file"], "sha256": m["sha256"], "rows": m["rows"],
                     "source_path": m["source"]["path"] or f"{m['source']['kind']} query",
                     "collected_at": m["collected_at"], "used_by_this_run": m["snapshot_id"] == used})
    frame = pd.DataFrame(rows, columns=["snapshot_id", "file", "sha256", "rows", "source_path", "collected_at",
                                        "used_by_this_run"])
    return frame.sort_values(["collected_at", "snapshot_id"], ascending=False, ignore_index=True)
