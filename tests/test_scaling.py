"""The scaling bench's own parts: the ten-copy log and the table (the runs themselves are `make bench-scaling`)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from benchmarks import scaling
from helpers import synth


def test_replicated_copies_are_distinct_customers_with_the_same_purchases(tmp_path: Path) -> None:
    source, target = tmp_path / "log.parquet", tmp_path / "x3.parquet"
    log = synth.transaction_log(synth.Design(200, seed=3))
    log.to_parquet(source)
    scaling.replicate(source, 3, target, tmp_path / "tmp")
    copied = pd.read_parquet(target)
    assert len(copied) == 3 * len(log)
    assert copied["Customer ID"].nunique() == 3 * log["Customer ID"].nunique()
    copy = copied["Invoice"].str.extract(r"^C?(\d+)-", expand=False).astype(int)  # after the cancellation prefix
    assert sorted(copy.unique()) == [0, 1, 2]
    for k in (0, 2):
        part = copied[copy == k]
        assert len(part) == len(log) and part["InvoiceDate"].max() == log["InvoiceDate"].max()
        assert abs(part["Price"].sum() - log["Price"].sum()) < 1e-6
        ids = part["Customer ID"].dropna()
        assert ((ids // 1_000_000) == k).all()  # copy k shifted its ids by k million
    assert (copied["Invoice"].str.startswith("C")).sum() == 3 * log["Invoice"].astype(str).str.startswith("C").sum()
    orders = duckdb.sql(f"SELECT count(DISTINCT Invoice) FROM read_parquet('{target}')").fetchall()[0][0]
    assert orders == 3 * log["Invoice"].nunique()


def test_the_table_has_a_row_per_stage_and_a_column_per_run() -> None:
    runs = [{"size": "10k", "engine": "duckdb", "seconds": 30.0, "peak_mb": 900, "load_before": [0.1, 0, 0],
             "load_after": [1.9, 0, 0], "stages": {"01-define": {"seconds": 4.0, "peak_mb": 300},
                                                   "05-clv": {"seconds": 9.5, "peak_mb": 800}}},
            {"size": "10m", "engine": "spark", "seconds": 1.0, "peak_mb": 100, "load_before": [2.0, 0, 0],
             "load_after": [2.0, 0, 0], "stages": {"01-define": {"seconds": 4.2, "peak_mb": 310}},
             "error": "Traceback\nDataError: no Java"}]
    table = scaling.scaling_table(runs).splitlines()
    assert table[0] == "| stage | 10k (duckdb) | 10m (spark) |"
    assert "| 05-clv | 9.5 s / 800 MB | - |" in table
    assert table[-2] == "| **whole run** | **30.0 s / 900 MB** | failed: DataError: no Java |"
    assert table[-1].endswith("| 0.1 -> 1.9 | 2.0 -> 2.0 |")
