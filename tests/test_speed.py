"""The fast paths give the plain paths' answers (property tests on random synthetic logs), and the bench runs.

Speed itself is measured by ``make bench``, never asserted here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from lifetimes import GammaGammaFitter
from lifetimes.utils import ConvergenceError, summary_data_from_transaction_data

from helpers.catalog import Catalog
from benchmarks import bench
from helpers import cleaning, clustering, clv, sources, sqlclean, synth
from helpers import summary as days_summary
from helpers.config import load_params
from helpers.errors import ConfigError, DataError
from tests_support import NOTEBOOKS, pipeline_run, published

# Each example fits models on thousands of customers: few examples, and no shrinking (minutes per step).
SLOW = settings(max_examples=4, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def btyd_population(seed: int, customers: int, r: float, alpha_days: float, a: float, b: float,
                    unit_days: float) -> pd.DataFrame:
    """A BTYD summary (daily purchase days, time in ``unit_days``) simulated from the given parameters."""
    design = synth.Design(customers, seed=seed)
    purchases = synth.simulate_purchases(design, {"r": r, "alpha": alpha_days, "a": a, "b": b}, synth.CDNOW_SPEND)
    purchases["day"] = np.floor(purchases["t"])
    days = purchases.groupby(["customer", "day"], as_index=False)["value"].sum()
    g = days.groupby("customer")
    first, n = g["day"].min(), g.size()
    end = design.observed_days - 1
    summary = pd.DataFrame({"frequency": (n - 1).astype(float), "recency": (g["day"].max() - first) / unit_days,
                            "T": (end - first) / unit_days})
    summary["monetary_value"] = np.where(summary["frequency"] > 0,
                                         (g["value"].sum() - g["value"].first()) / summary["frequency"].clip(lower=1), 0)
    return summary


populations = st.builds(
    btyd_population, seed=st.integers(0, 10_000), customers=st.integers(800, 2500),
    r=st.floats(0.15, 1.5), alpha_days=st.floats(10, 120), a=st.floats(0.3, 2.0), b=st.floats(1.0, 6.0),
    unit_days=st.sampled_from([1.0, 7.0]))


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto"])
@SLOW
@given(summary=populations, penalizer=st.sampled_from([0.0, 0.01]))
def test_weighted_fit_on_distinct_rows_equals_the_plain_fit(model: str, summary: pd.DataFrame, penalizer: float) -> None:
    try:
        plain = bench.plain_fit(model, summary, penalizer).params_
    except ConvergenceError:  # plain lifetimes stops without converging (seen: MBG/NBD, seed 1256): nothing to compare
        assume(False)
    # Pareto/NBD on BG/NBD data with nearly the same dropout rate for everyone is not identified: the likelihood
    # is flat along s, beta -> infinity (s / beta fixed), and any two optimizer runs stop at different points.
    assume(model != "pareto" or plain["s"] < 20)
    fast = clv.fit_btyd(model, summary, penalizer)
    assert fast.ok and fast.message.startswith("converged")  # a remedy (another start) may be needed: same optimum
    assert np.allclose(fast.model.params_.to_numpy(), plain.to_numpy(), rtol=1e-4)
    assert len(fast.model.data) == len(summary)  # lifetimes' plots see customers, not distinct rows


def test_large_fit_starts_from_a_sample_fit_and_matches_the_plain_fit() -> None:
    summary = btyd_population(7, 45_000, 0.25, 30.0, 0.8, 2.4, 1.0)
    start = clv.starting_values(clv.MODEL_CLASSES["bgnbd"], summary, 0.0)
    assert start is not None and start.shape == (4,)
    fast = clv.fit_btyd("bgnbd", summary)
    plain = bench.plain_fit("bgnbd", summary).params_
    assert np.allclose(fast.model.params_.to_numpy(), plain.to_numpy(), rtol=1e-4)


def test_days_and_weeks_give_the_same_fit() -> None:
    days = btyd_population(3, 3000, 0.3, 25.0, 0.9, 2.5, 1.0)
    weeks = days.assign(recency=days["recency"] / 7, T=days["T"] / 7)
    d, w = clv.fit_btyd("bgnbd", days).model.params_, clv.fit_btyd("bgnbd", weeks).model.params_
    assert d["alpha"] == pytest.approx(7 * w["alpha"], rel=1e-4)
    assert d[["r", "a", "b"]].to_numpy() == pytest.approx(w[["r", "a", "b"]].to_numpy(), rel=1e-4)


@SLOW
@given(summary=populations, months=st.integers(1, 24), monthly=st.floats(0.0, 0.03))
def test_clv_and_p_alive_equal_lifetimes(summary: pd.DataFrame, months: int, monthly: float) -> None:
    fit = clv.fit_btyd("bgnbd", summary)
    gg = GammaGammaFitter()  # the spend model's own fit is not what is compared here
    gg.params_ = pd.Series(synth.CDNOW_SPEND)
    f, r, T, m = (summary[c] for c in ("frequency", "recency", "T", "monetary_value"))
    unit = "D" if summary["T"].max() > 200 else "W"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        theirs = gg.customer_lifetime_value(fit.model, f, r, T, m, time=months, discount_rate=monthly, freq=unit)
        alive = fit.model.conditional_probability_alive(f, r, T)
    spend = gg.conditional_expected_average_profit(f, m)
    ours = clv.lifetime_value(fit, spend, summary, months=months, unit=unit,
                              discount_rate_annual=(1 + monthly) ** 12 - 1,
                              days_per_month=30 if unit == "D" else 4.345 * 7)  # lifetimes' month lengths
    assert np.allclose(ours["clv"], theirs, rtol=1e-6, atol=1e-9)
    assert np.allclose(clv.p_alive(fit, summary), alive, rtol=1e-6, atol=1e-12)


def test_distinct_rows_spread_back_to_every_customer() -> None:
    summary = btyd_population(5, 2000, 0.3, 30.0, 0.8, 2.4, 1.0)
    rows, inverse = clv.distinct_rows(summary)
    assert len(rows) < len(summary) and rows["weight"].sum() == len(summary)
    back = rows.iloc[inverse][["frequency", "recency", "T"]].to_numpy()
    assert np.array_equal(back, summary[["frequency", "recency", "T"]].to_numpy())


# --- DuckDB clean + summary against pandas + lifetimes ---------------------------------------------

def bench_params(tmp: Path, log: pd.DataFrame, **cleaning_overrides: object):  # noqa: ANN201
    file = tmp / "log.parquet"
    log.to_parquet(file)
    overrides = {"dataset": "synthetic", "as_of": "2022-06-30", "source.kind": "parquet", "source.path": str(file)}
    overrides |= {f"cleaning.{k}": v for k, v in cleaning_overrides.items()}
    return load_params("online_retail_sample.yaml", overrides), file


def sql_purchase_days(con, as_of: dt.date, folder: Path) -> pd.DataFrame:  # noqa: ANN001
    """The purchase days of the table ``clean`` in ``con``, as a run computes them (clean lines to Parquet, then SQL)."""
    from helpers.cleaning import CLEAN_ORDER

    lines = sqlclean.copy_to(con, f"SELECT * EXCLUDE (_row) FROM clean {CLEAN_ORDER}", folder / "transactions.parquet")
    return days_summary.purchase_days(lines, as_of)


def pandas_way(params, file: Path) -> tuple[pd.DataFrame, pd.DataFrame]:  # noqa: ANN001
    raw = pd.read_parquet(file)
    raw["source_row"] = [str(i + 1) for i in range(len(raw))]
    collected = sources.map_columns(raw, params.columns, params.date_format, str(file))
    clean, quality = cleaning.clean_transactions(collected, params.cleaning, params.as_of)
    summary = summary_data_from_transaction_data(clean, "customer_id", "order_ts", "amount", freq="D",
                                                 observation_period_end=pd.Timestamp(params.as_of))
    return summary.sort_index(), quality


@settings(max_examples=6, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), customers=st.integers(50, 400), dirt=st.floats(0.0, 0.1),
       rules=st.fixed_dictionaries({"exact_duplicates": st.booleans(), "non_product_lines": st.booleans(),
                                    "cancellations": st.sampled_from(["drop", "keep"]),
                                    "non_positive_price": st.booleans()}))
def test_duckdb_clean_and_summary_equal_pandas_and_lifetimes(tmp_path: Path, seed: int, customers: int, dirt: float,
                                                              rules: dict) -> None:
    design = synth.Design(customers, seed=seed, missing_customer=dirt, duplicates=dirt, cancellations=dirt,
                          zero_price=dirt / 10, postage=3 * dirt)
    log = synth.transaction_log(design)
    log.loc[log.sample(frac=0.05, random_state=seed).index, "Customer ID"] = np.nan
    params, file = bench_params(tmp_path, log, **rules)
    con = sqlclean.connect()
    try:
        expected, expected_quality = pandas_way(params, file)
    except DataError:  # e.g. returns kept and not dropped as non-positive: both paths refuse the table
        with pytest.raises(DataError):
            sqlclean.clean_lines(con, params, file)
        return
    quality = sqlclean.clean_lines(con, params, file)
    summary = days_summary.btyd_summary(sql_purchase_days(con, params.as_of, tmp_path), params.as_of, "D")
    cols = ["rule", "enabled", "rows_before", "rows_removed", "rows_after", "rows_modified"]
    pd.testing.assert_frame_equal(quality[cols], expected_quality[cols])
    assert np.allclose(quality["amount_removed"], expected_quality["amount_removed"], atol=0.011)
    assert summary.index.tolist() == expected.index.astype(str).tolist()
    pd.testing.assert_frame_equal(summary, expected.set_axis(summary.index), check_exact=False, rtol=1e-9,
                                  check_names=False)


def test_duckdb_customer_table_equals_the_pandas_one(tmp_path: Path) -> None:
    from helpers.rfm import customer_table

    params, file = bench_params(tmp_path, synth.transaction_log(synth.Design(300, seed=11)))
    con = sqlclean.connect()
    sqlclean.clean_lines(con, params, file)
    ours = days_summary.customer_table(sql_purchase_days(con, params.as_of, tmp_path), params.as_of, country=False)
    raw = pd.read_parquet(file).assign(source_row=lambda f: [str(i) for i in range(len(f))])
    clean, _ = cleaning.clean_transactions(sources.map_columns(raw, params.columns, None, "x"), params.cleaning,
                                           params.as_of)
    theirs = customer_table(clean, params.as_of).drop(columns="country")
    pd.testing.assert_frame_equal(ours, theirs[ours.columns], check_dtype=False, check_exact=False, rtol=1e-9)


def test_duckdb_path_nets_cancellations_as_the_pandas_path_does(tmp_path: Path) -> None:
    log = synth.transaction_log(synth.Design(200, seed=1, cancellations=0.1))
    params, file = bench_params(tmp_path, log, cancellations="net")
    quality = sqlclean.clean_lines(sqlclean.connect(), params, file)
    _, expected = pandas_way(params, file)
    assert quality.set_index("rule").loc["cancellations", "rows_removed"] > 0
    assert quality.set_index("rule").loc["cancellations", "note"] == "netted against the purchases they cancel"
    pd.testing.assert_frame_equal(quality, expected)


# --- clustering at scale, the bench itself --------------------------------------------------------

def test_large_populations_cluster_with_mini_batch_and_a_sampled_mixture(monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import sampling

    monkeypatch.setattr(clustering, "LARGE", 500)
    rng = np.random.default_rng(0)
    x = pd.DataFrame(np.vstack([rng.normal(0, 1, (800, 2)), rng.normal(6, 1, (800, 2))]), columns=["a", "b"])
    value = pd.Series(x["a"])
    fit_on = sampling.sample_mask([f"c{i}" for i in range(len(x))], 600)  # fitted on 600, everyone labelled
    for labels in (clustering.fit_kmeans(x, 2, value), clustering.fit_kmeans(x, 2, value, fit_on=fit_on),
                   clustering.fit_gmm(x, 2, value, fit_on=fit_on)):
        assert set(labels) == {0, 1}
        assert (labels[800:] == 0).mean() > 0.99 and (labels[:800] == 1).mean() > 0.99  # high-value group first


def test_bench_runs_every_step_and_reports_ratios_and_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import measure

    monkeypatch.setitem(bench.SIZES, "tiny", 1500)
    monkeypatch.setattr(measure, "START_METHOD", "forkserver")  # a process per step, without an import per step
    monkeypatch.setattr(bench, "PEER_PYTHON", tmp_path / "no-peer-env" / "python")  # never the real peer here
    result = bench.bench_size("tiny", tmp_path, report=False, log=lambda _: None)
    assert result["steps"]["fit_peer_pymc"]["skipped"] == "skipped: run make bench-peer-env"
    assert all("error" not in s for s in result["steps"].values()), result["steps"]
    assert result["checks"]["summary_same_customers"] and result["checks"]["summary_max_rel_diff"] < 1e-9
    assert result["checks"]["fit_bgnbd_max_rel_diff"] < 1e-4 and result["checks"]["clv_max_rel_diff"] < 1e-6
    assert all(v is None or v > 0 for v in result["ratios"].values())
    assert result["ratios"]["intervals_over_point"] > 0 and result["checks"]["intervals_point_max_rel_diff"] < 1e-9
    assert result["ratios"]["simulate"] > 1 and result["checks"]["simulate_share_max_abs_diff"] < 0.06  # same model
    assert all(s["peak_mb"] > 50 for s in result["steps"].values())  # the memory of the child was sampled
    assert result["steps"]["clean_summary_pipeline"]["engine"] == "pandas"  # a small source: as make report reads it
    assert "clean_summary_pipeline" in bench.table({"sizes": {"tiny": result}})


def test_the_peer_step_reads_the_peers_fits_and_the_bench_compares_them(tmp_path: Path) -> None:
    """The plumbing of the PyMC-Marketing step, with a stand-in for the peer's Python (the real one is slow)."""
    from benchmarks.results import compare
    from benchmarks.steps_clv import step_peer

    summary = tmp_path / "summary.parquet"
    pd.DataFrame({"frequency": [0.0, 2.0], "recency": [0.0, 5.0], "T": [9.0, 9.0]}).to_parquet(summary)
    fits = {"bgnbd_default": {"seconds": 3.0, "params": {"r": 0.3, "alpha": 4.0, "a": 0.8, "b": 2.4}},
            "bgnbd_flat": {"seconds": 2.0, "params": {"r": 0.2, "alpha": 4.0, "a": 0.8, "b": 2.4}}}
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\ntest -s \"$2\" && echo '{json.dumps(fits)}' > \"$3\"\n")
    fake.chmod(0o755)
    peer = step_peer(str(summary), str(tmp_path / "peer"), python=str(fake))
    assert peer["seconds"] == 3.0 and peer["converged"] and peer["bgnbd_flat"] == fits["bgnbd_flat"]
    assert pd.read_csv(tmp_path / "peer.csv").columns.tolist() == ["frequency", "recency", "T"]
    ours = {"seconds": 0.5, "params": {"r": 0.2, "alpha": 4.0, "a": 0.8, "b": 2.4}}
    steps = {"fit_bgnbd_fast": ours, "fit_peer_pymc": peer}
    steps.update({k: {"seconds": 1.0} for k in ("clean_summary_plain", "clean_summary_pipeline", "fit_bgnbd_plain",
                                                "fit_pareto_plain", "fit_pareto_fast", "fit_bgnbd_fast_weeks",
                                                "clv_palive_plain", "clv_palive_fast")})
    files = {k: str(tmp_path / "absent") for k in ("plain", "fast", "clv_plain", "clv_fast")}
    result = compare(steps, files)
    assert result["ratios"]["fit_bgnbd_peer"] == 6.0 and "fit_pareto_peer" not in result["ratios"]
    assert result["checks"]["fit_bgnbd_peer_flat_max_rel_diff"] == 0.0
    assert result["checks"]["fit_bgnbd_peer_default_max_rel_diff"] == pytest.approx(0.5)
    assert step_peer(str(summary), str(tmp_path / "p2"), python=str(tmp_path / "none"))["seconds"] is None


@pytest.mark.notebooks
def test_bench_report_parses_the_runners_stage_timings(tmp_path: Path) -> None:
    """`--report` reads the runner's progress lines: each stage's seconds as printed, summing to the runner's total.

    Stages 01-03 of a small log (three kernels, or in-process once the stage functions exist), then a run that
    fails: its error is kept.
    """
    file = tmp_path / "log.parquet"
    synth.transaction_log(synth.Design(300, seed=4)).to_parquet(file)
    params = tmp_path / "small.yaml"
    params.write_text(bench.BENCH_PARAMS.format(size="small", customers=300, as_of="2022-06-30", path=file))
    in_process = [] if NOTEBOOKS else ["--no-notebooks"]
    result = bench.run_report(params, tmp_path, ["--stages", "01", "02", "03", *in_process])
    assert "error" not in result, result
    assert list(result["stages"]) == ["01-define-customer-data", "02-collect-sources", "03-clean-integrate"]
    for stage, timing in result["stages"].items():
        printed = [line.split() for line in result["printed"] if line.split()[:1] == [stage]]
        assert [p[:2] for p in printed] == [[stage, f"{timing['seconds']:.1f}s"]]  # the seconds printed, parsed right
        assert timing["peak_mb"] > 50  # the memory of the runner and its kernels was sampled during the stage
    total = sum(t["seconds"] for t in result["stages"].values())
    assert result["runner_seconds"] is not None and total > 0
    assert abs(result["runner_seconds"] - total) < 1.0 + 0.05 * len(result["stages"])  # publishing takes the rest
    assert result["runner_seconds"] <= result["seconds"]  # the wall time adds the interpreter's start

    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: bad\nas_of: 2020-01-01\nsource: {kind: parquet, path: /nonexistent.parquet}\n"
                   "columns: {customer_id: a, order_ts: b, amount: c}\n")
    failed = bench.run_report(bad, tmp_path, in_process)
    assert "nonexistent.parquet" in failed["error"] and failed["runner_seconds"] is None


# --- stages 02 and 03 on the DuckDB engine ---------------------------------------------------------

def run_stages_02_03(params, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[pd.DataFrame, pd.DataFrame, str]:  # noqa: ANN001
    from helpers import paths

    monkeypatch.setenv("CIN_DATA_DIR", str(data_dir))
    _, engine = sources.collect_and_save(params)
    quality, numbers, files, engine_03 = cleaning.clean_and_save(params)
    assert engine_03 == engine and numbers["lines"] == quality["rows_after"].iloc[-1]
    lines = cleaning.load_transactions(Catalog.of(params))
    lines = lines.assign(_row=lines["source_row"].astype(int)).sort_values(["customer_id", "order_ts", "_row"])
    assert Catalog.of(params).database.exists()
    return lines.drop(columns="_row").reset_index(drop=True), quality, engine


def test_duckdb_engine_writes_the_transactions_the_pandas_engine_writes(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    log = synth.transaction_log(synth.Design(400, seed=21))
    params, _ = bench_params(tmp_path, log)
    pandas_lines, pandas_quality, e1 = run_stages_02_03(params, tmp_path / "a", monkeypatch)
    duck_lines, duck_quality, e2 = run_stages_02_03(params.model_copy(update={"engine": "duckdb"}), tmp_path / "b",
                                                    monkeypatch)
    assert (e1, e2) == ("pandas", "duckdb")  # auto: a small file stays in pandas
    from helpers import store

    kinds = Catalog.of(params).query("select table_name, table_type from information_schema.tables")
    assert set(kinds.loc[kinds["table_type"] == "VIEW", "table_name"]) == {"collected", "transactions"}
    assert Catalog.of(params).query("select count(*) as n from transactions")["n"].item() == len(duck_lines)
    again, _, _ = run_stages_02_03(params, tmp_path / "b", monkeypatch)  # back to pandas: views become tables
    pd.testing.assert_frame_equal(again, pandas_lines)
    pd.testing.assert_frame_equal(duck_lines, pandas_lines[duck_lines.columns], check_exact=False, rtol=1e-12)
    assert list(duck_lines.columns) == list(pandas_lines.columns)
    cols = ["rule", "rows_before", "rows_removed", "rows_after", "rows_modified", "note"]
    pd.testing.assert_frame_equal(duck_quality[cols], pandas_quality[cols])


def test_a_large_logs_step_tables_on_disk_give_the_same_lines_and_leave_no_file(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Above ``SCRATCH_LINES`` the steps' tables are made in a DuckDB file in the run folder: the same clean lines
    and quality log as in memory, and the file is gone afterwards, also when the cleaning stops with an error."""
    from helpers.cleaning import engine

    log = synth.transaction_log(synth.Design(400, seed=21))
    params, _ = bench_params(tmp_path, log)
    params = params.model_copy(update={"engine": "duckdb"})
    in_memory = run_stages_02_03(params, tmp_path / "a", monkeypatch)
    kinds: list[str] = []
    step_table = engine.step_table
    monkeypatch.setattr(engine, "step_table", lambda con: kinds.append(step_table(con)) or kinds[-1])
    monkeypatch.setattr(sqlclean, "SCRATCH_LINES", 1)
    on_disk = run_stages_02_03(params, tmp_path / "b", monkeypatch)
    assert kinds and set(kinds) == {"TABLE"}  # every step table went to the file
    pd.testing.assert_frame_equal(on_disk[0], in_memory[0])
    pd.testing.assert_frame_equal(on_disk[1], in_memory[1])
    folder = Catalog.of(params).folder
    assert not list(folder.glob(".steps.*"))
    with pytest.raises(DataError, match="as_of"):
        cleaning.clean_and_save(params.model_copy(update={"as_of": dt.date(1990, 1, 1)}), Catalog.of(params))
    assert not list(folder.glob(".steps.*"))


def test_the_duckdb_engines_stage_03_reports_stage_02s_count_of_keys(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.stages import run_stage

    log = synth.transaction_log(synth.Design(300, seed=4))
    params, _ = bench_params(tmp_path, log)
    params = params.model_copy(update={"engine": "duckdb"})
    monkeypatch.setenv("CIN_DATA_DIR", str(tmp_path / "data"))
    catalog = Catalog.of(params)
    collected = run_stage("02-collect-sources", params, catalog)
    cleaned = run_stage("03-clean-integrate", params, catalog)
    assert collected.engine == "duckdb"
    keys = catalog.query("select count(distinct customer_id) as n from collected")["n"].item()
    assert catalog.read_json("snapshot")["collected"]["customers"] == cleaned.keys_in == keys == 300


def test_duckdb_engine_needs_a_parquet_source(tmp_path: Path) -> None:
    params = load_params("online_retail_sample.yaml", {"engine": "duckdb"})
    with pytest.raises(ConfigError, match="Parquet"):
        sqlclean.engine(params, tmp_path)


def test_large_populations_train_on_a_seeded_sample_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import classify

    monkeypatch.setattr(classify, "TRAIN_SAMPLE", 100)
    x = pd.DataFrame({"a": np.arange(1000.0)}, index=[f"c{i}" for i in range(1000)])
    y = pd.Series(np.arange(1000) % 2, index=x.index)
    xs, ys = classify._sample_rows(x, y, classify.TRAIN_SAMPLE, 0)
    assert len(xs) == 100 and xs.index.equals(ys.index) and set(xs.index) <= set(x.index)
    assert xs.equals(classify._sample_rows(x, y, 100, 0)[0])  # seeded: the same sample every run
    assert "seeded sample of 100" in classify._sampled(1000, 100) and classify._sampled(50, 100) == ""


def test_duckdb_engine_collects_only_the_mapped_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Personal fields beside the mapped columns stay in the raw snapshot on the DuckDB engine too."""
    log = synth.transaction_log(synth.Design(60, seed=5))
    log["Name"] = "Ada Lovelace"
    log["Email"] = "ada@example.org"
    params, _ = bench_params(tmp_path, log)
    run_stages_02_03(params.model_copy(update={"engine": "duckdb"}), tmp_path / "data", monkeypatch)
    processed = next((tmp_path / "data" / "processed" / params.dataset).iterdir())  # the one run
    assert not (processed / "collected.parquet").exists()  # the DuckDB engine copies no lines before cleaning
    collected = duckdb.connect(str(processed / "customers.duckdb"), read_only=True).sql("select * from collected").df()
    for frame in (collected, pd.read_parquet(processed / "transactions.parquet")):
        assert not {"Name", "Email"} & set(frame.columns)
        assert not frame.astype(str).apply(lambda c: c.str.contains("ada@example|Lovelace")).any().any()


@pytest.mark.notebooks
def test_the_stages_run_on_the_duckdb_engine(tmp_path: Path, isolated: Path) -> None:  # noqa: ARG001
    """Stages 01-05 with engine: duckdb: stages 02 and 03 ran on DuckDB (``collected`` and ``transactions`` are
    views over the run's Parquet files, which only the DuckDB engine makes), and the customers' numbers are those
    the pandas engine gives on the same log. In-process: the stage functions run the queries the notebooks show."""
    file = tmp_path / "log.parquet"
    synth.transaction_log(synth.Design(1500, seed=8)).to_parquet(file)
    params = tmp_path / "synthetic.yaml"
    params.write_text(bench.BENCH_PARAMS.format(size="small", customers=1500, as_of="2022-06-30", path=file)
                      + "engine: duckdb\n")
    stages = ["01", "02", "03", "04", "05"]
    folder = pipeline_run(params, stages=stages)
    assert folder.name.endswith("-partial")
    duck = published(params, partial=True)
    kinds = duck.query("select table_name, table_type from information_schema.tables").set_index("table_name")
    assert kinds.loc["transactions", "table_type"] == "VIEW" and kinds.loc["collected", "table_type"] == "VIEW"
    view = duck.query("select sql from duckdb_views() where view_name = 'transactions'")["sql"].item()
    assert str(duck.path("transactions")) in view  # over the run's own Parquet file, where it was published

    pipeline_run(params, {"engine": "pandas"}, experiment="pandas", stages=stages)
    reference = published(params, {"experiment": "pandas"}, partial=True)
    kinds = reference.query("select table_name, table_type from information_schema.tables").set_index("table_name")
    assert kinds.loc["transactions", "table_type"] == "BASE TABLE"  # the pandas engine: a table, not a view
    for name in ("customers_rfm", "customers"):
        ours, theirs = duck.read_parquet(name), reference.read_parquet(name)
        assert len(ours) > 1000 and ours.index.equals(theirs.index), name
        pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=1e-9)
    assert ours["clv"].notna().all() and ours["value_tier"].notna().all()  # a forecast, compared number by number


def test_out_of_core_run_replicates_the_log_and_cleans_it_in_duckdb(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(bench.SIZES, "tiny", 300)
    base_lines = len(synth.transaction_log(synth.Design(300)))
    result = bench.out_of_core(3 * base_lines / 1e6, tmp_path, lambda _: None, base="tiny")
    assert "error" not in result, result
    assert result["lines_in"] == 3 * base_lines and result["customers"] > 2 * 300  # the copies are new customers
    assert "out of core" in bench.table({"sizes": {}, "out_of_core": result})


def test_a_value_duckdb_cannot_convert_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    log = synth.transaction_log(synth.Design(40, seed=2)).astype({"Price": str})
    log.loc[3, "Price"] = "twelve"
    params, file = bench_params(tmp_path, log)
    with pytest.raises(DataError, match=rf"{file.name}: DuckDB could not read, map or clean the lines"):
        sqlclean.clean_lines(sqlclean.connect(), params, file)
