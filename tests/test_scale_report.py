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
from helpers.rfm.customer_types import type_summary
from helpers.run import run
from helpers.tiers import is_star, tomorrows_stars


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


def test_tomorrows_stars_top_are_the_first_of_all_stars() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    customers = pd.DataFrame({"customer_id": [f"c{i:05d}" for i in rng.permutation(n)],
                              "abc_class": rng.choice(list("ABC"), n, p=[0.1, 0.2, 0.7]),
                              "clv": rng.integers(0, 30, n) / 3.0})  # many ties, some zeros
    every = tomorrows_stars(customers, 0.3)
    assert len(every) == int(is_star(customers, 0.3).sum()) > 10
    for top in (1, 10, n):
        pd.testing.assert_frame_equal(tomorrows_stars(customers, 0.3, top=top), every.head(top))


def test_type_summary_by_position_is_the_merge() -> None:
    rng = np.random.default_rng(6)
    n = 3000
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "monetary_total": rng.lognormal(3, 1, n)})
    types = pd.DataFrame({"customer_id": customers["customer_id"], "customer_type": rng.choice(
        ["transaction", "relationship", None], n), "orders": rng.integers(1, 9, n),
        "items_per_order": rng.integers(1, 40, n) / 2.0, "spend_per_order": rng.lognormal(3, 1, n)})
    types["purpose"] = np.where(types["items_per_order"] > 12, "intermediary", "end consumer")
    for by in ("customer_type", "purpose"):
        positional = type_summary(customers, types, by)  # the same customers in the same order: by position
        merged = type_summary(customers, types.iloc[::-1], by)  # another order: the merge
        pd.testing.assert_frame_equal(positional, merged, check_exact=True)
        assert positional["customers"].sum() == types[by].notna().sum()
        fewer = type_summary(customers, types.iloc[7:], by)  # customers without a type are left out
        assert fewer["customers"].sum() == types[by].iloc[7:].notna().sum()


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


def test_a_large_frame_written_a_row_group_at_a_time_is_the_file_pandas_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "PARQUET_ROW_GROUP", 64)
    frame = _frame(200)  # four row groups, the last short
    frame["late"] = [None] * 100 + ["x"] * 100  # no value in the first group: typed from the whole column
    frame["segment"] = pd.Categorical(np.resize(["a", "b", "c"], 200))
    for table in (frame, frame.drop(columns="late")):
        ours = store.write_parquet(table, tmp_path / "ours.parquet")
        table.to_parquet(tmp_path / "pandas.parquet", index=False, row_group_size=64)
        assert ours.read_bytes() == (tmp_path / "pandas.parquet").read_bytes()
        pd.testing.assert_frame_equal(store.read_parquet(ours), pd.read_parquet(tmp_path / "pandas.parquet"))
        pd.testing.assert_frame_equal(store.read_parquet(ours, ["clv", "country"]), table[["clv", "country"]])


def test_a_table_copied_from_parquet_is_the_table_from_the_frame(tmp_path: Path) -> None:
    frame = _frame(300)
    parquet = store.write_parquet(frame, tmp_path / "x.parquet")
    store.write_tables_file(tmp_path / "db.duckdb", {"from_frame": frame, "from_file": parquet})
    con = store.connect_file(tmp_path / "db.duckdb", read_only=True)
    try:
        kinds = [con.execute(f"DESCRIBE {t}").fetchall() for t in ("from_frame", "from_file")]
        assert kinds[0] == kinds[1]
        assert con.execute("SELECT count(*) FROM (SELECT * FROM from_frame EXCEPT ALL SELECT * FROM from_file)"
                           ).fetchone() == (0,)
    finally:
        con.close()


def test_the_export_joins_clusters_and_predictions_whatever_their_order(tmp_path: Path) -> None:
    from helpers.catalog import Catalog
    from helpers.report import export_table

    rng = np.random.default_rng(5)
    n = 400
    ids = [f"c{i:04d}" for i in range(n)]
    customers = pd.DataFrame({"customer_id": ids, "country": rng.choice(["UK", "FR"], n),
                              "monetary_total": rng.lognormal(3, 1, n), "frequency": rng.integers(1, 9, n),
                              "clv": rng.lognormal(2, 1, n), "rfm_segment": rng.choice(["new", "loyal"], n),
                              "not_exported": rng.random(n)})
    clusters = pd.DataFrame({"customer_id": ids, "cluster": rng.choice(["big", "small"], n),
                             "cluster_id": rng.integers(0, 2, n)})
    predictions = pd.DataFrame({"customer_id": ids, "p_high_value": rng.random(n), "prospect": rng.random(n) < .2})
    exports = []
    for shuffled in (False, True):  # the stages' own order (columns taken over) or another one (a join)
        catalog = Catalog("x", f"r{shuffled}", tmp_path)
        catalog.write_parquet("customers", customers)
        catalog.write_parquet("clusters", clusters.sample(frac=1, random_state=1) if shuffled else clusters)
        catalog.write_parquet("predictions", predictions.iloc[: n - 7])  # some customers never scored: missing
        exports.append(export_table(catalog, raw_ids=True))
    pd.testing.assert_frame_equal(exports[0], exports[1])
    export = exports[0]
    expected = customers.drop(columns="not_exported").merge(clusters[["customer_id", "cluster"]], on="customer_id",
                                                            how="left")
    expected = expected.merge(predictions.iloc[: n - 7], on="customer_id", how="left")
    expected.insert(0, "customer_key", pseudonymize(expected["customer_id"]))
    expected = expected[export.columns].take(key_order(expected["customer_key"])).reset_index(drop=True)
    pd.testing.assert_frame_equal(export, expected)
    assert "not_exported" not in export and export["prospect"].isna().sum() == 7


def test_writing_no_parts_is_an_error_and_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no parts"):
        store.write_parquet_parts(iter([]), tmp_path / "none.parquet")
    assert not (tmp_path / "none.parquet").exists()


def test_the_months_follow_the_export_by_its_order_as_they_did_by_their_ids(tmp_path: Path) -> None:
    # stage 08 hands month_export the export's keys and its order in stage 05's customers: the months come out as
    # the lookup of their ids (keys only) and the hashing of them (nothing) give them, and a months table in
    # another order than the customers falls back to the lookup
    from helpers.catalog import Catalog
    from helpers.report import export_in_key_order
    from helpers.report_forecast import month_export

    rng = np.random.default_rng(11)
    n = 300
    ids = [f"k{i:03d}" for i in rng.permutation(n)]
    customers = pd.DataFrame({"customer_id": ids, "monetary_total": rng.lognormal(3, 1, n), "clv": rng.random(n)})
    wide = pd.DataFrame({"customer_id": ids, **{f"clv_month_{m:02d}": rng.random(n) for m in (1, 2, 3)}})
    for shuffled in (False, True):
        catalog = Catalog("x", f"m{shuffled}", tmp_path)
        catalog.write_parquet("customers", customers)
        catalog.write_parquet("value_per_period", wide.sample(frac=1, random_state=2) if shuffled else wide)
        export, order = export_in_key_order(catalog, raw_ids=True)
        keys = pd.Series(export["customer_key"].to_numpy(), index=export["customer_id"].to_numpy())
        for raw_ids in (False, True):
            plain = month_export(catalog, True, 3, raw_ids)
            pd.testing.assert_frame_equal(month_export(catalog, True, 3, raw_ids, keys, order), plain)
            pd.testing.assert_frame_equal(month_export(catalog, True, 3, raw_ids, keys), plain)
        assert plain["customer_key"].tolist() == export["customer_key"].tolist()
        assert plain["customer_id"].tolist() == export["customer_id"].tolist()


@pytest.mark.parametrize("log", [False, True])
def test_boxes_draw_what_seaborn_draws(log: bool) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from helpers import plots

    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"g": rng.choice(["x", "y", "z", "w"], 3000), "v": rng.lognormal(3, 1.5, 3000)})
    order = ["z", "x", "y"]  # "w" is left out, as seaborn leaves out what order does not list
    fig, (mine, theirs) = plt.subplots(1, 2)
    plots.boxes(mine, frame["v"], frame["g"], order, log=log)
    sns.boxplot(frame, x="v", y="g", order=order, ax=theirs, color="tab:blue", fliersize=2, log_scale=log)

    def drawn(ax):  # whiskers, caps, medians and fliers: every line's points
        return sorted((tuple(np.round(line.get_xdata(), 9)), tuple(np.round(line.get_ydata(), 9))) for line in ax.lines)

    assert drawn(mine) == drawn(theirs) and len(mine.lines) == 6 * len(order)
    assert [t.get_text() for t in mine.get_yticklabels()] == order and mine.get_ylim()[0] > mine.get_ylim()[1]
    assert mine.patches[0].get_facecolor() == theirs.patches[0].get_facecolor()
    plt.close(fig)
