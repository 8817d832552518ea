"""The report's path at scale gives what the plain way gives: keys, their order, the top rows, the CSV export;
and the runner records what each stage cost. Small frames, under a second in all."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import store
from helpers.privacy import key_order, pseudonymize
from helpers.report import save_export, top_rows
from helpers.run import run


@pytest.mark.parametrize("key", [b"k", b"s" * 64, b"long secret " * 10])  # short, one block, hashed first (RFC 2104)
def test_the_keys_are_hmac_sha256_of_the_ids(key: bytes) -> None:
    ids = pd.Series(["12417", "00001", "ann@example.org", "", "çé", "12417"], index=[5, 3, 1, 0, 2, 4], name="customer_id")
    keys = pseudonymize(ids, key)
    assert keys.tolist() == [hmac.new(key, i.encode(), hashlib.sha256).hexdigest()[:16] for i in ids]
    assert keys.index.equals(ids.index) and keys.name == "customer_id"


def test_keys_sort_as_pandas_sorts_them() -> None:
    keys = pseudonymize(pd.Series([str(i) for i in range(2000)]), b"k")
    assert keys.iloc[key_order(keys)].tolist() == keys.sort_values().tolist()


def test_the_top_rows_are_those_of_a_full_sort() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"customer_key": pseudonymize(pd.Series([str(i) for i in range(3000)]), b"k"),
                          "p": rng.integers(0, 40, 3000) / 40.0})  # many ties
    frame.loc[rng.choice(3000, 200, replace=False), "p"] = np.nan
    for top in (1, 15, 3000):
        full = frame.sort_values(["p", "customer_key"], ascending=[False, True]).head(top)
        pd.testing.assert_frame_equal(top_rows(frame, "p", top), full)


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    return pd.DataFrame({
        "customer_key": [f"{i:016x}" for i in range(n)],
        "country": rng.choice(["United Kingdom", 'say "hi", twice', "", None], n),
        "first_purchase": pd.Timestamp("1997-01-01") + pd.to_timedelta(rng.integers(0, 500, n), unit="D"),
        "seen_at": pd.Timestamp("1997-01-01 10:30:05") + pd.to_timedelta(rng.integers(0, 500, n), unit="h"),
        "frequency": rng.integers(1, 30, n),
        "clv": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(3, 2, n)),
        "tiny": rng.random(n) * 1e-7, "huge": rng.random(n) * 1e17, "whole": rng.integers(0, 9, n).astype(float),
        "prospect": rng.random(n) < 0.3,
    })


def test_the_duckdb_csv_is_the_pandas_csv(tmp_path: Path) -> None:
    frame = _frame(500)
    parquet = store.write_parquet(frame, tmp_path / "x.parquet")
    fast = store.write_csv(frame, tmp_path / "fast.csv", parquet, pandas_rows=100)
    assert fast.read_bytes() == frame.to_csv(index=False).encode()


def test_the_export_switches_to_duckdb_above_the_parameter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.catalog import Catalog

    catalog, frame, used = Catalog("x", "r", tmp_path), _frame(50), []
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda self, *a, **k: used.append(len(self)) or "")
    for limit in (None, 50, 49):
        save_export(catalog, frame, {}, frame.head(10), csv_pandas_rows=limit)
    assert used == [50, 10, 50, 10, 10]  # pandas for each table up to the limit; 50 rows > 49 go through DuckDB
    assert catalog.path("customer_segments_csv").read_text().count("\n") == 51


def test_the_runner_prints_and_records_each_stages_seconds_and_peak_memory(isolated: Path) -> None:  # noqa: ARG001
    lines: list[str] = []
    run("cdnow_sample.yaml", stages=["01"], notebooks=False, log=lines.append)
    stage = [line for line in lines if "01-define" in line]
    assert len(stage) == 1 and re.fullmatch(r"  01-define-customer-data +\d+\.\ds  peak [\d,]+ MB", stage[0])
    assert int(stage[0].split("peak ")[1].split()[0].replace(",", "")) > 50  # this process, sampled during the stage
