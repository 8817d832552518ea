"""Integrate and clean: rule-based, each rule configurable and logged.

Stage 03 of the customer identification process. The collected transactions
(:data:`helpers.schemas.collected_schema`) go through an ordered list of
rules; each rule either removes lines or rewrites values, and reports what it
did. The **quality log** has one row per rule with rows before, removed and
after, the money removed and the rows rewritten, so that

    rows in - sum(rows removed by each rule) == rows out

holds exactly (:func:`check_quality_log` asserts it). The result is validated
against :data:`helpers.schemas.transaction_schema` before anything is written.

When stage 02 skipped text lines with too many fields
(``source.on_bad_lines: skip``), the log starts with a row ``bad_lines``
(step 0): rows in are then the lines of the file, and its note lists the
skipped line numbers. Before any rule runs, an ``as_of`` before the first
transaction is refused with the log's first and last dates
(:func:`check_as_of`).

Rules, in order (names as in ``cleaning:`` of the parameter file):

=====================  ==========================================================
normalise_ids          customer keys: trim spaces, Excel's ``12417.0`` -> ``12417``
missing_customer_id    drop lines with no customer (they identify nobody)
future_timestamps      drop lines after the end of the ``as_of`` day
exact_duplicates       drop repeated identical lines (keep the first)
non_product_lines      drop postage, manual, adjustment, discount, carriage, fees
cancellations          cancellation / return lines: ``drop`` them, ``net`` them
                       against the purchases they cancel, or ``keep`` them
non_positive_price     drop lines with zero or negative unit price (or amount)
=====================  ==========================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pathlib import Path

from helpers import paths
from helpers.catalog import Catalog
from helpers.config import CleaningParams
from helpers.errors import CleaningError
from helpers.schemas import transaction_schema, validate


@dataclass
class RuleOutcome:
    """What one rule did: the frame it left and how many rows it rewrote."""

    frame: pd.DataFrame
    rows_modified: int = 0
    note: str = ""


Rule = Callable[[pd.DataFrame, CleaningParams, dt.date], RuleOutcome]


def normalise_ids(df: pd.DataFrame, cfg: CleaningParams, as_of: dt.date) -> RuleOutcome:
    """Trim customer keys and drop Excel's float suffix; blank keys become missing.

    >>> f = pd.DataFrame({"customer_id": ["12417.0", " 123", "123", "  ", None]})
    >>> out = normalise_ids(f, CleaningParams(), dt.date(2020, 1, 1))
    >>> out.frame["customer_id"].tolist(), out.rows_modified
    (['12417', '123', '123', None, None], 3)
    """
    ids = df["customer_id"]
    text = ids.astype("string").str.strip().str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    text = text.mask(text == "")
    new = text.astype(object).where(text.notna(), None)
    changed = int((ids.fillna("\0") != new.fillna("\0")).sum())
    out = df.copy()
    out["customer_id"] = new
    return RuleOutcome(out, changed, "trimmed spaces, removed Excel '.0' suffixes")


def missing_customer_id(df: pd.DataFrame, cfg: CleaningParams, as_of: dt.date) -> RuleOutcome:
    """Drop lines with no customer key: they cannot be attributed to anyone."""
    return RuleOutcome(df[df["customer_id"].notna()], note="no customer key")


def future_timestamps(df: pd.DataFrame, cfg: CleaningParams, as_of: dt.date) -> RuleOutcome:
    """Drop lines after the end of the ``as_of`` day (the observation end).

    >>> f = pd.DataFrame({"order_ts": pd.to_datetime(["2020-01-01 23:59", "2020-01-02 00:00"])})
    >>> len(future_timestamps(f, CleaningParams(), dt.date(2020, 1, 1)).frame)
    1
    """
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    kept = df[df["order_ts"] < end]
    note = f"after {as_of.isoformat()}"
    if len(kept):
        gap = (as_of - kept["order_ts"].max().date()).days
        if gap > 0:
            note += f"; the last line kept is {gap} days before as_of"
    return RuleOutcome(kept, note=note)


def exact_duplicates(df: pd.DataFrame, cfg: CleaningParams, as_of: dt.date) -> RuleOutcome:
    """Drop lines identical to an earlier line in every column but ``source_row``."""
    cols = [c for c in df.columns if c != "source_row"]
    return RuleOutcome(df[~df.duplicated(subset=cols, keep="first")], note="identical in every column")


def non_product_lines(df: pd.DataFrame, cfg: CleaningParams, as_of: dt.date) -> RuleOutcome:
    """Drop lines whose product code is a non-product code (postage, fees, adjustments, ...)."""
    if "product_code" not in df.columns:
        return RuleOutcome(df, note="skipped: no product_code column mapped")
    codes = {c.strip().upper() for c in cfg.non_product_codes}
    code = df["product_code"].astype("string").str.strip().str.upper()
    is_fee = code.isin(codes).fillna(False).to_numpy(dtype=bool)
    found = code[is_fee].value_counts().sort_index()
    note = ", ".join(f"{c} {n}" for c, n in found.items()) or "none found"
    return RuleOutcome(df[~is_fee], note=note)


def is_cancellation(df: pd.DataFrame, prefix: str | None) -> pd.Series:
    """Cancellation or return lines: order id starting with ``prefix``, or negative quantity or amount.

    >>> f = pd.DataFrame({"order_id": ["C1", "2", "3"], "amount": [-5.0, 3.0, -1.0]})
    >>> is_cancellation(f, "C").tolist()
    [True, False, True]
    """
    mask = df["amount"] < 0
    if "quantity" in df.columns:
        mask |= df["quantity"].fillna(0) < 0
    if prefix:
        mask |= df["order_id"].astype("string").str.startswith(prefix).fillna(False).to_numpy(dtype=bool)
    return mask


def net_cancellations(df: pd.DataFrame, mask: pd.Series) -> tuple[pd.DataFrame, int]:
    """Subtract each cancellation from the purchases it cancels, latest first.

    A cancellation is matched with earlier purchases of the same customer
    (and product, when there is a product code) at or before its time. The
    purchase amount (and quantity, in proportion) is reduced; purchases reduced
    to nothing are removed, as are the cancellation lines. Returns that are
    larger than the matching purchases (bought before the data starts) are
    dropped with the cancellation line. Returns the frame and the number of
    purchase lines reduced but kept.

    >>> f = pd.DataFrame({"customer_id": ["1", "1", "1"], "order_id": ["a", "b", "Cb"],
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]),
    ...     "amount": [10.0, 4.0, -6.0], "quantity": [5.0, 2.0, -3.0]})
    >>> out, partly = net_cancellations(f, is_cancellation(f, "C"))
    >>> out[["order_id", "amount", "quantity"]].values.tolist(), partly
    ([['a', 8.0, 4.0]], 1)
    """
    key = ["customer_id"] + (["product_code"] if "product_code" in df.columns else [])
    amount = df["amount"].to_numpy(dtype=float).copy()
    original = amount.copy()
    cancels = df[mask].sort_values("order_ts", kind="stable")
    buys = df[~mask]
    buys = buys[buys.set_index(key).index.isin(cancels.set_index(key).index)]
    positions = {label: i for i, label in enumerate(df.index)}
    groups = {(k if isinstance(k, tuple) else (k,)): g.sort_values("order_ts", kind="stable")
              for k, g in buys.groupby(key, sort=True, dropna=False)}
    for k, line in zip(cancels[key].itertuples(index=False, name=None), cancels.itertuples(), strict=True):
        group = groups.get(k)
        if group is None:
            continue
        remaining = -float(line.amount) if line.amount < 0 else -float(getattr(line, "quantity", 0) or 0)
        for label in reversed(group.index[group["order_ts"] <= line.order_ts].tolist()):
            if remaining <= 0:
                break
            pos = positions[label]
            take = min(remaining, amount[pos])
            amount[pos] -= take
            remaining -= take
    out = df.copy()
    out["amount"] = amount
    if "quantity" in out.columns:
        ratio = np.divide(amount, original, out=np.ones_like(amount), where=original != 0)
        out["quantity"] = out["quantity"] * ratio
    keep = ~mask.to_numpy() & (amount > 0) | (~mask.to_numpy() & (original <= 0))
    partly = int(((amount > 0) & (amount < original) & ~mask.to_numpy()).sum())
    return out[keep], partly


def cancellations(df: pd.DataFrame, cfg: CleaningParams, as_of: dt.date) -> RuleOutcome:
    """Handle cancellation and return lines as the ``cancellations`` parameter says."""
    mask = is_cancellation(df, cfg.cancellation_prefix)
    if cfg.cancellations == "keep":
        return RuleOutcome(df, note=f"kept {int(mask.sum())} cancellation lines")
    if cfg.cancellations == "drop":
        return RuleOutcome(df[~mask], note="cancellation lines dropped; purchases kept")
    out, partly = net_cancellations(df, mask)
    return RuleOutcome(out, partly, "netted against the purchases they cancel")


def non_positive_price(df: pd.DataFrame, cfg: CleaningParams, as_of: dt.date) -> RuleOutcome:
    """Drop lines with a zero or negative unit price (or amount, without a price column)."""
    if "unit_price" in df.columns:
        price = df["unit_price"]
        bad = (price <= 0) | (price.isna() & (df["amount"] <= 0))
        return RuleOutcome(df[~bad], note="unit_price <= 0 (amount <= 0 where no price)")
    return RuleOutcome(df[~(df["amount"] <= 0)], note="amount <= 0 (no unit_price column)")


#: The rules, in the order they run. Each can be switched off in ``cleaning:``.
RULES: list[tuple[str, Rule]] = [
    ("normalise_ids", normalise_ids),
    ("missing_customer_id", missing_customer_id),
    ("future_timestamps", future_timestamps),
    ("exact_duplicates", exact_duplicates),
    ("non_product_lines", non_product_lines),
    ("cancellations", cancellations),
    ("non_positive_price", non_positive_price),
]


def _enabled(cfg: CleaningParams, name: str) -> bool:
    value = getattr(cfg, name)
    return value != "keep" if name == "cancellations" else bool(value)


def check_as_of(first: pd.Timestamp, last: pd.Timestamp, as_of: dt.date, where: str) -> None:
    """Refuse an ``as_of`` before the first transaction, naming the log's first and last dates.

    Every line would be "in the future" and removed; the message says which
    dates ``as_of`` can take. An ``as_of`` after the last transaction is fine
    (customers are then older and quieter at the observation end).

    >>> check_as_of(pd.Timestamp("2011-01-03"), pd.Timestamp("2011-12-09"), dt.date(2011, 1, 3), "x")
    >>> check_as_of(pd.Timestamp("2011-01-03"), pd.Timestamp("2011-12-09"), dt.date(2010, 12, 31), "x")
    Traceback (most recent call last):
    ...
    helpers.errors.CleaningError: x: as_of 2010-12-31 is before the first transaction: the log runs from 2011-01-03 to 2011-12-09. Set as_of to a date in that range (e.g. as_of: 2011-12-09 in the parameter file, or -p as_of 2011-12-09)
    """
    if pd.isna(first) or first.date() <= as_of:
        return
    raise CleaningError(
        f"{where}: as_of {as_of.isoformat()} is before the first transaction: the log runs from "
        f"{first.date().isoformat()} to {last.date().isoformat()}. Set as_of to a date in that range "
        f"(e.g. as_of: {last.date().isoformat()} in the parameter file, or -p as_of {last.date().isoformat()})"
    )


def bad_lines_row(bad_lines: dict, rows_out: int, limit: int = 10) -> dict:
    """The quality-log row (step 0, ``bad_lines``) for text lines stage 02 skipped (``source.on_bad_lines: skip``).

    ``bad_lines`` is ``{"count", "lines", "expected_fields"}`` as stage 02
    records it; ``rows_out`` the lines it collected.

    >>> bad_lines_row({"count": 2, "lines": [4, 9], "expected_fields": 8}, 100)["note"]
    'skipped by source.on_bad_lines: skip (more fields than the 8 of the header): lines 4, 9'
    """
    count, lines = int(bad_lines["count"]), list(bad_lines["lines"])
    head = ", ".join(str(n) for n in lines[:limit])
    shown = head if count <= min(len(lines), limit) else f"{head} and {count - min(len(lines), limit)} more"
    note = (f"skipped by source.on_bad_lines: skip (more fields than the {bad_lines['expected_fields']} of the header)"
            + (f": lines {shown}" if count else ": none found"))
    return {"step": 0, "rule": "bad_lines", "enabled": True, "rows_before": rows_out + count,
            "rows_removed": count, "rows_after": rows_out, "rows_modified": 0, "amount_removed": 0.0, "note": note}


def clean_transactions(
    df: pd.DataFrame, cfg: CleaningParams, as_of: dt.date, where: str = "collected transactions",
    bad_lines: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every rule in :data:`RULES` and return the clean table and the quality log.

    ``bad_lines`` (stage 02's record of skipped text lines, see
    :func:`helpers.sources.read_info`) adds the first row ``bad_lines``, so
    the log accounts for every line of the file (their money is unknown: 0).
    Raises :class:`~helpers.errors.CleaningError` when ``as_of`` is before
    the first transaction (before any rule runs) and naming the rule that
    left no rows, and :class:`~helpers.errors.DataError` if the result
    breaks the clean-transaction schema.
    """
    if len(df):
        check_as_of(df["order_ts"].min(), df["order_ts"].max(), as_of, where)
    log = [bad_lines_row(bad_lines, len(df))] if bad_lines is not None else []
    current = df
    for step, (name, rule) in enumerate(RULES, start=1):
        before = len(current)
        money_before = float(current["amount"].sum())
        if _enabled(cfg, name):
            outcome = rule(current, cfg, as_of)
        else:
            outcome = RuleOutcome(current, note="off")
        current = outcome.frame
        log.append({
            "step": step, "rule": name, "enabled": _enabled(cfg, name),
            "rows_before": before, "rows_removed": before - len(current), "rows_after": len(current),
            "rows_modified": outcome.rows_modified,
            "amount_removed": round(money_before - float(current["amount"].sum()), 2),
            "note": outcome.note,
        })
        if before and current.empty:
            raise CleaningError(
                f"{where}: cleaning rule {name!r} removed the last {before} rows "
                f"({outcome.note}); nothing is left. Check the data or switch the rule off "
                f"with cleaning.{name} in the parameter file."
            )
    clean = current.sort_values(["customer_id", "order_ts", "order_id"], kind="stable").reset_index(drop=True)
    quality = pd.DataFrame(log)
    check_quality_log(quality, rows_in=len(df) + (int(bad_lines["count"]) if bad_lines else 0), rows_out=len(clean))
    return validate(clean, transaction_schema, where), quality


def load_collected(catalog: Catalog) -> pd.DataFrame:
    """Read the collected transactions written by stage 02."""
    return catalog.read_parquet("collected", stage="02-collect-sources")


def load_transactions(catalog: Catalog, columns: list[str] | None = None) -> pd.DataFrame:
    """Read the clean transactions written by stage 03 (what stages 04+ start from).

    ``columns`` reads only those of them the table has (a large table in
    pandas costs memory per column). Timestamps come back as nanoseconds
    whichever engine wrote them.
    """
    import pyarrow.parquet as pq

    file = catalog.require("transactions", "03-clean-integrate")
    if columns is not None:
        present = set(pq.ParquetFile(file).schema_arrow.names)
        columns = [c for c in columns if c in present]
    frame = pd.read_parquet(file, columns=columns)
    if "order_ts" in frame.columns:
        frame["order_ts"] = frame["order_ts"].astype("datetime64[ns]")
    return frame


def save_clean(catalog: Catalog, clean: pd.DataFrame, quality: pd.DataFrame) -> dict[str, Path]:
    """Write stage 03's artifacts: Parquet, the quality log (CSV) and the DuckDB tables."""
    files = {
        "transactions": catalog.write_parquet("transactions", clean),
        "quality_log": catalog.write_text("quality_log", quality.to_csv(index=False)),
    }
    catalog.write_tables({"transactions": clean, "quality_log": quality})
    return files


def clean_and_save(params, catalog: Catalog | None = None) -> tuple[pd.DataFrame, pd.Series, dict[str, Path], str]:  # noqa: ANN001
    """Stage 03 in one call, on the engine stage 02 used for this data set's snapshot.

    Returns the quality log, the headline numbers of the clean table, the
    files written and the engine (``pandas`` or ``duckdb``).
    """
    from helpers import sqlclean

    catalog = catalog if catalog is not None else Catalog.of(params)  # default: the run folder of params
    manifest = catalog.read_json("snapshot")
    snapshot_file = paths.raw_dir(params.dataset) / manifest["snapshot_id"] / manifest["file"]
    if sqlclean.engine(params, snapshot_file) == "duckdb":
        quality, numbers, files = sqlclean.clean(params, catalog)
        return quality, numbers, files, "duckdb"
    collected = load_collected(catalog)
    read = manifest.get("read") or {}
    bad_lines = read.get("bad_lines") if read.get("on_bad_lines") == "skip" else None
    clean, quality = clean_transactions(collected, params.cleaning, params.as_of,
                                        where=f"{params.dataset} collected lines", bad_lines=bad_lines)
    return quality, summarise(clean), save_clean(catalog, clean, quality), "pandas"


def summarise(clean: pd.DataFrame) -> pd.Series:
    """Headline numbers of a transaction table (customers, orders, lines, revenue, dates)."""
    return pd.Series({
        "customers": clean["customer_id"].nunique(),
        "orders": clean["order_id"].nunique(),
        "lines": len(clean),
        "revenue": round(float(clean["amount"].sum()), 2),
        "first order": clean["order_ts"].min().date().isoformat(),
        "last order": clean["order_ts"].max().date().isoformat(),
    })


def check_quality_log(log: pd.DataFrame, rows_in: int, rows_out: int) -> None:
    """Assert the quality log adds up: rows in minus every rule's removals equals rows out."""
    removed = int(log["rows_removed"].sum())
    if rows_in - removed != rows_out:
        raise AssertionError(f"quality log does not add up: {rows_in} in - {removed} removed != {rows_out} out")
    chained = (log["rows_after"].shift(1).fillna(rows_in) == log["rows_before"]).all()
    if not chained:
        raise AssertionError("quality log steps do not chain: a rule's rows_before differs from the last rows_after")
