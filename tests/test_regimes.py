"""The regime matrix: logs nobody tuned the project for, each run through all eight stages.

Seven synthetic regimes (:data:`helpers.synth.REGIMES`: almost all one-time buyers, 120 days, ten years,
B2B, a fixed monthly subscription, one single day, heavy-tailed spend) and the Olist tables through a
``duckdb`` ``query`` source. Each run must either complete with finite numbers in what it publishes, or
stop with a :class:`~helpers.errors.DataError` / :class:`~helpers.errors.ConfigError` whose message names
a parameter to change - never a library traceback. Each completed run then reruns stage 05 on a copy of
its own artifacts and asserts the same choice, the same parameters and the same customer values
(6 significant digits).

The generator tests at the top are fast (no notebooks); the runs are marked ``notebooks``. They run in-process
(the stage functions) once every stage has one, through papermill until then (:data:`tests_support.NOTEBOOKS`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import pkgutil
import re
import shutil
import time
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import BaseModel

import helpers
from helpers import paths, stages, store, synth
from helpers.catalog import Catalog
from helpers.config import Params, load_params
from helpers.errors import ConfigError, DataError
from helpers.run import StageFailed
from tests_support import NOTEBOOKS, QUICK_PARAMS, pipeline_run, published, write_params

REGIMES = list(synth.REGIMES)
MATRIX = [*REGIMES, "olist"]
SEED = 2005
#: Speed only: fewer bootstrap refits (stage 06) and CV folds (stage 07); the matrix tests the other defaults as they are.
QUICK = QUICK_PARAMS
#: What each regime must give (measured when the matrix was written): the run completes, with or without a
#: BTYD forecast. A regression that stops a run, or silently forecasts where there is nothing to learn from
#: (one-time buyers, one day), fails here even when its message is clear.
FORECAST = {"one_time": False, "short": True, "ten_years": True, "b2b": True, "subscription": True,
            "single_day": False, "heavy_tail": True, "olist": False}
#: Columns of the export that carry the BTYD forecast.
FORECAST_COLUMNS = ["p_alive", "expected_purchases", "expected_spend", "clv"]


# --- the generator -----------------------------------------------------------------------------------

def purchase_days(log: pd.DataFrame) -> pd.DataFrame:
    """The log's purchases as (customer, day), dirt removed the way stage 03 removes it."""
    lines = log[log["Customer ID"].notna() & ~log["Invoice"].str.startswith("C") & (log["StockCode"] != "POST")
                & (log["Price"] > 0)]
    return lines.assign(day=lines["InvoiceDate"].dt.floor("D"))[["Customer ID", "Invoice", "day"]].drop_duplicates()


def test_each_regime_is_deterministic_from_its_seed_and_within_its_period() -> None:
    for name in REGIMES:
        log, design = synth.regime_log(name, SEED), synth.regime_design(name, SEED)
        assert list(log.columns) == synth.RAW_COLUMNS, name
        assert log.equals(synth.regime_log(name, SEED)), f"{name}: same seed, different log"
        assert not log.equals(synth.regime_log(name, SEED + 1)), f"{name}: the seed changes nothing"
        days = purchase_days(log)["day"]
        assert days.min() >= pd.Timestamp(design.start) and days.max() <= pd.Timestamp(design.as_of), name
        customers = log["Customer ID"].nunique()
        assert 40 <= customers <= 2000, f"{name}: {customers} customers is not small"


def test_one_time_regime_is_almost_all_one_time_buyers() -> None:
    days = purchase_days(synth.regime_log("one_time", SEED)).drop_duplicates(["Customer ID", "day"])
    per_customer = days.groupby("Customer ID").size()
    assert 0.97 <= (per_customer == 1).mean() < 1.0  # some repeat buyers: a forecast is possible, only barely


def test_short_and_ten_years_regimes_span_what_they_say() -> None:
    short = purchase_days(synth.regime_log("short", SEED))["day"]
    assert 100 <= (short.max() - short.min()).days < 183  # shorter than six months
    ten = purchase_days(synth.regime_log("ten_years", SEED))["day"]
    assert (ten.max() - ten.min()).days >= 3500


def test_b2b_regime_has_few_customers_with_large_regular_orders_of_many_lines() -> None:
    log = synth.regime_log("b2b", SEED)
    clean = log[log["Customer ID"].notna() & ~log["Invoice"].str.startswith("C") & (log["StockCode"] != "POST")]
    orders = clean.assign(value=clean["Quantity"] * clean["Price"]).groupby("Invoice").agg(
        customer=("Customer ID", "first"), lines=("StockCode", "size"), value=("value", "sum"), ts=("InvoiceDate", "min"))
    assert 40 <= orders["customer"].nunique() <= 80
    assert orders["lines"].median() >= 15
    retail = synth.regime_log("heavy_tail", SEED)
    retail_orders = (retail["Quantity"] * retail["Price"]).groupby(retail["Invoice"]).sum()
    assert orders["value"].median() > 20 * retail_orders.median()
    gaps = orders.sort_values("ts").groupby("customer")["ts"].diff().dt.days.dropna()
    cv = gaps.groupby(orders.loc[gaps.index, "customer"]).agg(lambda g: g.std() / g.mean())
    assert cv.median() < 0.5  # regular: an exponential (Poisson) process has CV 1
    assert orders.groupby("customer").size().median() >= 15


def test_subscription_regime_buys_every_30_days_at_a_fixed_price() -> None:
    p = synth.regime_purchases("subscription", SEED)
    gaps = p.groupby("customer")["t"].diff().dropna()
    assert len(gaps) > 1000 and np.allclose(gaps, 30.0)
    assert p.groupby("customer")["value"].nunique().eq(1).all()


def test_single_day_regime_has_one_date_and_some_customers_buy_twice_that_day() -> None:
    log = synth.regime_log("single_day", SEED)
    days = purchase_days(log)
    assert days["day"].nunique() == 1 and days["day"].iloc[0] == pd.Timestamp(synth.regime_design("single_day").as_of)
    assert days.groupby("Customer ID")["Invoice"].nunique().gt(1).any()


def test_heavy_tail_regime_has_a_few_huge_spenders() -> None:
    log = synth.regime_log("heavy_tail", SEED)
    clean = log[log["Customer ID"].notna() & ~log["Invoice"].str.startswith("C") & (log["Price"] > 0)]
    spend = (clean["Quantity"] * clean["Price"]).groupby(clean["Customer ID"]).sum().sort_values()
    assert spend.iloc[-1] > 1000 * spend.median()
    assert spend.iloc[-10:].sum() > 0.25 * spend.sum()  # ten customers of 1,000 hold a quarter of revenue


def test_write_regime_writes_a_log_and_a_parameter_file_that_loads(tmp_path: Path) -> None:
    file = synth.write_regime("b2b", tmp_path, SEED, fmt="parquet", overrides=QUICK)
    params = load_params(file)
    assert params.dataset == "synth_b2b" and params.as_of == synth.regime_design("b2b").as_of
    assert params.source.kind == "parquet" and params.clusters.bootstrap == 5
    assert pd.read_parquet(params.source.path).equals(synth.regime_log("b2b", SEED))
    with pytest.raises(ValueError, match="unknown regime 'b2c'; regimes: one_time"):
        synth.regime_log("b2c")


# --- what counts as a clear stop ----------------------------------------------------------------------

def parameter_names() -> set[str]:
    """Every dotted parameter name (``clv.holdout_days``) and the top-level ones with an underscore (``as_of``)."""
    names: set[str] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        for key, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{key}.")
            elif prefix or "_" in key:
                names.add(prefix + key)

    walk(Params, "")
    return names


def user_errors() -> set[str]:
    """Names of the project's user-facing exceptions: DataError, ConfigError and their subclasses in helpers."""
    for mod in pkgutil.iter_modules(helpers.__path__):
        importlib.import_module(f"helpers.{mod.name}")
    found, todo = set(), [DataError, ConfigError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


def named_parameters(message: str) -> list[str]:
    """The parameter names that appear (as whole names) in ``message``."""
    return sorted(n for n in parameter_names() if re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])", message))


def test_named_parameters_finds_whole_dotted_names_only() -> None:
    assert named_parameters("Shorten clv.holdout_days so the calibration period holds purchases") == ["clv.holdout_days"]
    assert named_parameters("check as_of (2018-05-31) or classify.label_days.") == ["as_of", "classify.label_days"]
    assert named_parameters("the holdout_days are too many; xclv.holdout_days") == []


def assert_clear_stop(exc: BaseException) -> None:
    """A stop the user can act on: one of the project's errors, naming a parameter to change."""
    message = str(exc)
    if isinstance(exc, StageFailed):
        found = re.search(r"(?:in cell \d+: |\(|failed: )(\w+): ", message)  # papermill's or the in-process runner's
        kind = found.group(1) if found else "an unreadable failure"
    else:
        kind = type(exc).__name__
    assert kind in user_errors(), f"a library traceback, not a clear stop: {message}"
    assert named_parameters(message), f"the message names no parameter to change: {message}"


# --- the runs ------------------------------------------------------------------------------------------

def regime_params_file(name: str, folder: Path, request: pytest.FixtureRequest) -> Path:
    """The parameter file of a regime (its log written into ``folder``), or params/olist.yaml (a query over the CSVs)."""
    if name == "olist":
        request.getfixturevalue("olist_tables")  # the tables beside the project (CI fails without them)
        shipped = yaml.safe_load((paths.PARAMS_DIR / "olist.yaml").read_text(encoding="utf-8"))  # the walk-through's file
        folder.mkdir(parents=True, exist_ok=True)
        return write_params(synth.merge(shipped, QUICK), folder / "olist.yaml")
    return synth.write_regime(name, folder, SEED, overrides=QUICK)


def finite_numbers(obj: Any, where: str = "") -> list[str]:
    """Paths of the NaN or infinite numbers in a JSON object."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in finite_numbers(v, f"{where}.{k}")]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in finite_numbers(v, f"{where}[{i}]")]
    return [where] if isinstance(obj, float) and not math.isfinite(obj) else []


def assert_finite_report(folder: Path, dataset: str) -> None:
    """A published run whose numbers are finite: metrics, the export's forecast (or none, as the contract says).

    A run through the notebooks also has its report and no error in any executed notebook.
    """
    assert (folder / "report.html").exists() or not NOTEBOOKS
    for notebook in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(notebook, as_version=4)
        errors = [o["ename"] for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert errors == [], f"{notebook.name}: {errors}"
    metrics = store.json_load(folder / "metrics.json")
    assert finite_numbers(metrics) == [], f"metrics.json has non-finite values at {finite_numbers(metrics)}"
    export = pd.read_parquet(folder / "customer_segments.parquet")
    assert len(export) > 0
    validation = store.json_load(next((paths.data_dir() / "processed" / dataset).glob("*/clv_validation.json")))
    forecast = validation.get("forecast", True)
    for column in [c for c in FORECAST_COLUMNS if c in export]:
        values = pd.to_numeric(export[column], errors="coerce")
        if forecast:
            bad = int((~np.isfinite(values.to_numpy(dtype=float))).sum())
            assert bad == 0, f"{column}: {bad} of {len(export)} customers have a missing or non-finite value"
        else:
            assert values.isna().all(), f"forecast is false ({validation.get('forecast_reason')}) but {column} has values"


@pytest.mark.notebooks
@pytest.mark.parametrize("name", MATRIX)
def test_regime_runs_every_stage_or_stops_naming_a_parameter(name: str, isolated: Path,
                                                             request: pytest.FixtureRequest) -> None:
    params_file = regime_params_file(name, isolated / "source", request)
    params = load_params(params_file)
    progress: list[str] = []
    started = time.perf_counter()
    try:
        folder = pipeline_run(params_file, log=progress.append)
    except (StageFailed, DataError, ConfigError) as exc:
        print(f"{name}: stopped after {time.perf_counter() - started:.0f}s: {exc}")
        assert_clear_stop(exc)  # a clear stop is allowed by the contract, but these regimes all complete today
        pytest.fail(f"{name} used to complete and now stops (clearly): {exc}")
    print(f"{name}: completed in {time.perf_counter() - started:.0f}s")
    assert_finite_report(folder, params.dataset)
    metrics = store.json_load(folder / "metrics.json")
    assert metrics["forecast"] is FORECAST[name], metrics["caveats"]
    if not metrics["forecast"]:  # the reason travels with the numbers
        assert any(c["code"] == "no_forecast" for c in metrics["caveats"]), metrics["caveats"]
    assert_stage05_repeats(params, published(params_file), isolated / "stage05-again")


# --- determinism of stage 05's model choice -------------------------------------------------------

def assert_stage05_repeats(params: Params, published_run: Catalog, folder: Path) -> None:
    """Stage 05 rerun on the run's own inputs (a copy of its artifacts) writes what the run wrote.

    The forecast decision, every fit of the comparison (status and parameters), the chosen model and
    its parameters (``clv_validation.json``), and every customer's value, tier and lifecycle stage: discrete
    values exactly, numbers to 6 significant digits (:func:`differences`).
    """
    shutil.copytree(published_run.folder, folder)
    again = Catalog(published_run.dataset, published_run.run, folder)
    stages.run_stage("05-clv-lifetimes", params, again)
    found = differences(published_run.read_json("clv_validation"), again.read_json("clv_validation"))
    for name in ("customers", "model_comparison"):
        read = pd.read_csv if name == "model_comparison" else pd.read_parquet
        before, after = (read(c.path(name)) for c in (published_run, again))
        assert list(before.columns) == list(after.columns), name
        found += differences(before.to_dict("list"), after.to_dict("list"), name)
    assert found == [], "two fits of the same data differ:\n" + "\n".join(found[:20])


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two outcomes differ: discrete values exactly, numbers beyond 6 significant digits."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(a) + [k for k in b if k not in a]
        return [d for k in keys for d in (differences(a[k], b[k], f"{where}[{k!r}]") if k in a and k in b
                                          else [f"{where}[{k!r}]: only in one"])]
    if isinstance(a, tuple | list) and isinstance(b, tuple | list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    if isinstance(a, float | np.floating) and isinstance(b, float | np.floating):
        same = math.isclose(a, b, rel_tol=5e-6) or (math.isnan(a) and math.isnan(b))
    else:
        same = a == b
    return [] if same else [f"{where}: {a!r} then {b!r}"]


def test_differences_sees_the_seventh_digit_but_not_the_eighth() -> None:
    assert differences({"r": 0.2426001}, {"r": 0.24260012}) == []
    assert differences({"r": 0.24260}, {"r": 0.24262}) == ["['r']: 0.2426 then 0.24262"]
    assert differences(("bgnbd", 0.0), ("pareto", 0.0)) == ["[0]: 'bgnbd' then 'pareto'"]
