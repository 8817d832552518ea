"""Collecting a raw transaction log: read a source, snapshot it, map it.

Stage 02 of the customer identification process. A source is described by a
parameter file (:class:`helpers.config.SourceParams`): a CSV or whitespace
text file, an Excel workbook (all or some sheets), a Parquet file, or a table
or query in a DuckDB or SQLite database.

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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import hashlib
import os
import shutil
import sqlite3
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from helpers import paths, store
from helpers.config import ColumnMap, Params, SourceParams
from helpers.errors import DataError, show_rows
from helpers.schemas import collected_schema, validate

LIFETIMES_PREFIX = "lifetimes:"
CANONICAL_ORDER = ["customer_id", "order_id", "order_ts", "amount", "quantity", "unit_price",
                   "product_code", "description", "country", "channel", "source_row"]


@dataclass(frozen=True)
class Snapshot:
    """An immutable raw snapshot and its manifest."""

    directory: Path
    file: Path
    manifest: dict[str, Any]


def resolve_source_path(path: str) -> Path:
    """Resolve a source path; ``lifetimes:<file>`` is a data set shipped with lifetimes.

    >>> resolve_source_path("lifetimes:CDNOW_sample.txt").name
    'CDNOW_sample.txt'
    """
    if path.startswith(LIFETIMES_PREFIX):
        import lifetimes.datasets

        resolved = Path(lifetimes.datasets.__file__).parent / path[len(LIFETIMES_PREFIX):]
    else:
        resolved = paths.resolve(path)
    if not resolved.is_file():
        raise DataError(f"source file not found: {path!r} (looked for {resolved})")
    return resolved


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# reading


def _line_numbers(n: int, first: int) -> list[str]:
    """``source_row`` values ``first`` .. ``first + n - 1`` as text (vectorised: sources have millions of lines).

    >>> _line_numbers(3, 2)
    ['2', '3', '4']
    """
    return np.arange(first, first + n).astype(str).tolist()


def _read_text(spec: SourceParams, file: Path) -> pd.DataFrame:
    sep = r"\s+" if spec.sep == "whitespace" else spec.sep
    try:
        frame = pd.read_csv(
            file, sep=sep, dtype=str, encoding=spec.encoding, header=0 if spec.header else None,
            names=spec.names, keep_default_na=False, na_values=[""], skipinitialspace=True,
        )
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{file}: cannot be read as {spec.encoding} text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
            "set source.encoding in the parameter file (Online Retail exports are latin-1)"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{file}: the file is empty (no header, no rows)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{file}: not a {spec.kind} file with separator {spec.sep!r}: {exc}") from None
    first_line = 2 if spec.header else 1
    frame["source_row"] = _line_numbers(len(frame), first_line)
    return frame


def _read_excel(spec: SourceParams, file: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    try:
        book = pd.ExcelFile(file, engine="openpyxl")
    except Exception as exc:  # openpyxl raises several unrelated types for a bad workbook
        raise DataError(f"{file}: not a readable Excel workbook ({type(exc).__name__}: {exc})") from None
    wanted = book.sheet_names if spec.sheets == "all" else spec.sheets
    missing = [s for s in wanted if s not in book.sheet_names]
    if missing:
        raise DataError(f"{file}: sheet(s) {missing} not found; sheets in the workbook: {book.sheet_names}")
    parts, sizes = [], {}
    for sheet in wanted:
        part = book.parse(sheet, dtype=object, header=0 if spec.header else None, names=spec.names)
        part["source_row"] = [f"{sheet}!{i + 2}" for i in range(len(part))]
        parts.append(part)
        sizes[sheet] = len(part)
    return pd.concat(parts, ignore_index=True), sizes


def read_snapshot(spec: SourceParams, file: Path) -> tuple[pd.DataFrame, dict[str, int] | None]:
    """Read a raw snapshot file as a DataFrame of source columns plus ``source_row``.

    Returns the frame and, for a workbook, the number of rows per sheet.
    """
    if spec.kind in ("csv", "text"):
        return _read_text(spec, file), None
    if spec.kind == "excel":
        return _read_excel(spec, file)
    try:
        frame = pd.read_parquet(file)  # parquet sources, and SQL extracts
    except Exception as exc:
        raise DataError(f"{file}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    frame["source_row"] = _line_numbers(len(frame), 1)
    return frame, None


def extract_sql(spec: SourceParams, database: Path) -> pd.DataFrame:
    """Run the table or query of a DuckDB or SQLite source (read-only) and return its rows."""
    sql = spec.query or f"SELECT * FROM {spec.table}"
    try:
        if spec.kind == "duckdb":
            con = duckdb.connect(str(database), read_only=True)
            try:
                return con.execute(sql).df()
            finally:
                con.close()
        uri = f"file:{database}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as con:  # sqlite3's own `with` does not close
            return pd.read_sql_query(sql, con)
    except (duckdb.Error, sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise DataError(f"{database}: the {spec.kind} query failed: {sql!r}: {exc}") from None


# ---------------------------------------------------------------------------
# snapshots


def _make_read_only(path: Path) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def snapshot_source(params: Params) -> Snapshot:
    """Copy the source into an immutable, content-addressed raw snapshot.

    Collecting identical data again returns the existing snapshot (its
    checksum verified); a snapshot is never overwritten.
    """
    spec = params.source
    source_file = resolve_source_path(spec.path)
    staging = Path(tempfile.mkdtemp(prefix=".collect-", dir=_ensure(paths.raw_dir(params.dataset))))
    try:
        if spec.kind in ("duckdb", "sqlite"):
            name = f"{spec.table or 'query'}.parquet"
            store.write_parquet(extract_sql(spec, source_file), staging / name)
        else:
            name = source_file.name
            shutil.copyfile(source_file, staging / name)
        digest = sha256_file(staging / name)
        if spec.kind not in ("duckdb", "sqlite") and digest != sha256_file(source_file):
            raise DataError(f"{source_file}: the file changed while it was being copied; collect again")
        target = paths.raw_dir(params.dataset) / digest[:16]
        if (target / "manifest.json").exists():
            existing = store.json_load(target / "manifest.json")
            if sha256_file(target / existing["file"]) != existing["sha256"]:
                raise DataError(f"raw snapshot {target} no longer matches its manifest checksum; it was modified")
            return Snapshot(target, target / existing["file"], existing)
        rows, columns, sheets = _shape(spec, staging / name)
        manifest = {
            "dataset": params.dataset,
            "snapshot_id": digest[:16],
            "source": {"kind": spec.kind, "path": spec.path, "resolved": str(source_file),
                       "table": spec.table, "query": spec.query, "encoding": spec.encoding},
            "file": name,
            "sha256": digest,
            "bytes": (staging / name).stat().st_size,
            "rows": rows,
            "columns": columns,
            "sheets": sheets,
            "collected_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
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


def _shape(spec: SourceParams, file: Path) -> tuple[int, list[str], dict[str, int] | None]:
    """Rows, columns and (workbooks) rows per sheet of a snapshot file; Parquet from its metadata alone."""
    if spec.kind in ("parquet", "duckdb", "sqlite"):
        try:
            meta = pq.ParquetFile(file)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise DataError(f"{file}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
        return meta.metadata.num_rows, meta.schema_arrow.names, None
    frame, sheets = read_snapshot(spec, file)
    return len(frame), [c for c in frame.columns if c != "source_row"], sheets


def _ensure(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory


# ---------------------------------------------------------------------------
# mapping onto the contract


def _missing_column_error(where: str, column: str, role: str, found: list[str]) -> DataError:
    close = difflib.get_close_matches(column, found, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return DataError(
        f"{where}: column {column!r} (mapped to {role}) not found{hint} Columns found: {found}. "
        "Fix 'columns' in the parameter file."
    )


def _examples(raw: pd.Series, bad: pd.Series, frame: pd.DataFrame) -> str:
    rows = frame.loc[bad, "source_row"].tolist()
    values = raw[bad].astype(str).tolist()
    pairs = [f"row {r}: {v!r}" for r, v in zip(rows[:5], values[:5], strict=True)]
    more = f" ... ({int(bad.sum())} rows in all)" if bad.sum() > 5 else ""
    return ", ".join(pairs) + more


def parse_timestamps(raw: pd.Series, date_format: str | None, frame: pd.DataFrame, where: str, column: str) -> pd.Series:
    """Parse a timestamp column; unparseable or empty values raise a :class:`DataError` with example rows.

    >>> f = pd.DataFrame({"d": ["12/1/2010 8:26", "1/13/2011 10:00"], "source_row": ["2", "3"]})
    >>> parse_timestamps(f["d"], "%m/%d/%Y %H:%M", f, "x.csv", "d").dt.strftime("%Y-%m-%d").tolist()
    ['2010-12-01', '2011-01-13']
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) is not None else raw
    else:
        parsed = pd.to_datetime(raw, format=date_format or "ISO8601", errors="coerce")
    bad = parsed.isna()
    if bad.any():
        how = f"with date_format {date_format!r}" if date_format else "as ISO dates (set date_format in the parameter file)"
        hint = "" if date_format else day_month_hint(raw[bad], frame.loc[bad, "source_row"])
        raise DataError(f"{where}: column {column!r} has {int(bad.sum())} timestamps that cannot be read {how}: "
                        f"{_examples(raw, bad, frame)}{hint}")
    return parsed.astype("datetime64[ns]")


_NUMERIC_DATE = r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})\b"


def day_month_hint(values: pd.Series, rows: pd.Series) -> str:
    """Say which order (day/month or month/day) non-ISO numeric dates can be read in; never guess.

    A value like ``03/04/2010`` reads both ways; ``13/04/2010`` only day first;
    ``04/13/2010`` only month first. If both unambiguous kinds occur, the
    column mixes formats. Returns a sentence to append to an error message
    ("" when the values are not numeric dates).

    >>> day_month_hint(pd.Series(["03/04/2010", "05/06/2010"]), pd.Series(["2", "3"]))[:62]
    '. Every one of these reads both as day/month and as month/day:'
    >>> "day first" in day_month_hint(pd.Series(["13/04/2010", "03/04/2010"]), pd.Series(["2", "3"]))
    True
    >>> "mixes" in day_month_hint(pd.Series(["13/04/2010", "04/13/2010"]), pd.Series(["2", "3"]))
    True
    """
    parts = values.astype(str).str.extract(_NUMERIC_DATE)
    if parts[0].isna().all():
        return ""
    first, second = pd.to_numeric(parts[0]), pd.to_numeric(parts[1])
    day_first = (first > 12) & (second <= 12)
    month_first = (second > 12) & (first <= 12)
    row_of = dict(zip(values.index, rows.astype(str), strict=True))

    def example(mask: pd.Series) -> str:
        i = mask[mask].index[0]
        return f"row {row_of[i]}: {values[i]!r}"

    if day_first.any() and month_first.any():
        return (f". The column mixes formats: {example(day_first)} is day/month, {example(month_first)} is "
                "month/day; fix the source so one format is used")
    if day_first.any():
        return f". They read day first ({example(day_first)}): set date_format, e.g. '%d/%m/%Y'"
    if month_first.any():
        return f". They read month first ({example(month_first)}): set date_format, e.g. '%m/%d/%Y'"
    return (". Every one of these reads both as day/month and as month/day: the order cannot be guessed. "
            "Set date_format ('%d/%m/%Y' or '%m/%d/%Y')")


def parse_numbers(raw: pd.Series, frame: pd.DataFrame, where: str, column: str, *, allow_missing: bool) -> pd.Series:
    """Parse a numeric column; text that is not a number raises a :class:`DataError` with example rows."""
    parsed = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = parsed.isna() & (raw.notna() if allow_missing else True)
    if bad.any():
        what = "values that are not numbers" if raw[bad].notna().any() else "empty values"
        raise DataError(f"{where}: column {column!r} has {int(bad.sum())} {what}: {_examples(raw, bad, frame)}")
    return parsed


def _as_text(raw: pd.Series) -> pd.Series:
    text = raw.astype("string").astype(object)
    return text.where(raw.notna(), None)


def map_columns(raw: pd.DataFrame, columns: ColumnMap, date_format: str | None, where: str) -> pd.DataFrame:
    """Map source columns onto the canonical transaction contract.

    Missing columns are named with the columns found; timestamps and numbers
    are parsed with row-level errors. Without an order column, an order is a
    customer's purchases on one day. Without an amount column, amount is
    quantity x unit price.

    >>> raw = pd.DataFrame({"cust": ["7", "7"], "day": ["19970101", "19970102"], "usd": ["1.5", "2"],
    ...                     "source_row": ["2", "3"]})
    >>> cm = ColumnMap(customer_id="cust", order_ts="day", amount="usd")
    >>> map_columns(raw, cm, "%Y%m%d", "x.txt")[["customer_id", "order_id", "amount"]].values.tolist()
    [['7', '7@19970101', 1.5], ['7', '7@19970102', 2.0]]
    """
    found = [c for c in raw.columns if c != "source_row"]
    mapping = {role: col for role, col in columns.model_dump().items() if col is not None}
    for role, col in mapping.items():
        if col not in raw.columns:
            raise _missing_column_error(where, col, role, found)
    if raw.empty:
        raise DataError(f"{where}: the source has a header but no rows")
    out = pd.DataFrame(index=raw.index)
    out["customer_id"] = _as_text(raw[mapping["customer_id"]])
    out["order_ts"] = parse_timestamps(raw[mapping["order_ts"]], date_format, raw, where, mapping["order_ts"])
    for role in ("quantity", "unit_price"):
        if role in mapping:
            out[role] = parse_numbers(raw[mapping[role]], raw, where, mapping[role], allow_missing=columns.amount is not None)
    if "amount" in mapping:
        out["amount"] = parse_numbers(raw[mapping["amount"]], raw, where, mapping["amount"], allow_missing=False)
    else:
        out["amount"] = out["quantity"] * out["unit_price"]
    if "order_id" in mapping:
        out["order_id"] = _as_text(raw[mapping["order_id"]])
        empty = out["order_id"].isna()
        if empty.any():
            raise DataError(f"{where}: column {mapping['order_id']!r} has {int(empty.sum())} empty order ids: "
                            f"rows {show_rows(raw.loc[empty, 'source_row'])}")
    else:
        out["order_id"] = out["customer_id"].fillna("?") + "@" + out["order_ts"].dt.strftime("%Y%m%d")
    for role in ("product_code", "description", "country", "channel"):
        if role in mapping:
            out[role] = _as_text(raw[mapping[role]])
    out["source_row"] = raw["source_row"].astype(str)
    out = out[[c for c in CANONICAL_ORDER if c in out.columns]].reset_index(drop=True)
    return validate(out, collected_schema, where)


def save_collected(dataset: str, snap: Snapshot, collected: pd.DataFrame | None) -> Path:
    """Write stage 02's artifacts: ``collected.parquet`` and the DuckDB tables.

    The table ``collected`` holds this collection; ``snapshots`` keeps one row
    per collection, so the database records where every run's data came from.
    With ``collected`` None, ``collected.parquet`` was written already (the
    DuckDB engine) and the table is loaded from it.
    """
    target = paths.processed_dir(dataset) / "collected.parquet"
    if collected is not None:
        store.write_parquet(collected, target)
    store.write_json(snap.manifest, paths.processed_dir(dataset) / "snapshot.json")
    if collected is not None:
        store.write_tables(dataset, {"collected": collected})
    else:
        store.write_tables(dataset, {}, parquet={"collected": target})
    m = snap.manifest
    store.append_table(dataset, "snapshots", pd.DataFrame([{
        "snapshot_id": m["snapshot_id"], "file": m["file"], "sha256": m["sha256"], "rows": m["rows"],
        "source_path": m["source"]["path"], "collected_at": m["collected_at"],
        "used_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }]))
    return target


def map_snapshot(params: Params, snap: Snapshot) -> pd.DataFrame:
    """Read a raw snapshot and map it onto the contract (the pandas engine of stage 02)."""
    raw, _ = read_snapshot(params.source, snap.file)
    return map_columns(raw, params.columns, params.date_format, f"{params.source.path} (snapshot {snap.file})")


def collect(params: Params) -> tuple[Snapshot, pd.DataFrame]:
    """Stage 02 in one call: snapshot the source, read the snapshot, map it onto the contract."""
    snap = snapshot_source(params)
    return snap, map_snapshot(params, snap)


def collect_and_save(params: Params) -> tuple[Snapshot, str]:
    """Stage 02 in one call, on the engine the parameters choose; returns the snapshot and the engine.

    pandas: :func:`collect` then :func:`save_collected`. DuckDB (large Parquet
    sources, see :func:`helpers.sqlclean.engine`): the snapshot is mapped onto
    the contract by :func:`helpers.sqlclean.collect` without loading it into pandas.
    """
    from helpers import sqlclean

    snap = snapshot_source(params)
    engine = sqlclean.engine(params, snap.file)
    if engine == "duckdb":
        sqlclean.collect(params, snap.file)
        save_collected(params.dataset, snap, None)
    else:
        save_collected(params.dataset, snap, map_snapshot(params, snap))
    return snap, engine
