"""The report's content: the customer export, the headline metrics, the caveats, the texts and the tables.

What stage 08 (:mod:`helpers.stages.report`) computes and notebook 08 shows;
its sentences (header, validation, prospects withheld) are in :mod:`helpers.report_texts`;
the run bookkeeping (published runs, the runs log, the manifest) is in
:mod:`helpers.history`, migration between reports in :mod:`helpers.migration`
and the HTML rendering in :mod:`helpers.render`. What a run publishes under
``reports/<dataset>/<as_of>[-<experiment>]/``:

- the executed notebooks and ``report.html`` (notebook 08 without code);
- ``customer_segments.parquet`` / ``.csv``: one row per customer with a
  pseudonymous ``customer_key`` (never the raw id), scores, segment, tier,
  ABC class, CLV, P(alive), lifecycle stage, cluster and predictions;
- ``customer_value_by_month.parquet`` / ``.csv``: the predicted value (discounted) per customer
  (``customer_key``) and month of the horizon, ``clv_month_01`` ..; it sums to the customer's CLV.
  Without a forecast the table is empty but keeps its columns;
- ``metrics.json``: the headline numbers and their ``caveats`` (what the stages and the report
  say about reading them: :func:`gather_caveats`);
- ``manifest.json``: parameters, input checksum, package versions, git commit.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from helpers.catalog import Catalog
from helpers.clv.intervals import INTERVAL_COLUMNS
from helpers.names import top_rows  # noqa: F401  (re-exported: stage 08 and its tests read it here)
from helpers.privacy import in_key_order, key_order, pseudonymize
from helpers.report_texts import (  # noqa: F401  (the report's sentences, re-exported: helpers.report is their home)
    NO_PYRAMID, classifier_text, has_forecast, header_markdown, no_forecast_text, prospects_flagged,
    prospects_withheld, validation_section, validation_text)

EXPORT_COLUMNS = [
    "customer_key", "country", "first_purchase", "last_purchase", "recency_days", "frequency", "monetary_total",
    "r_score", "f_score", "m_score", "rfm_segment", "abc_class", "value_tier", "p_alive", "expected_purchases",
    "clv", *INTERVAL_COLUMNS, "lifecycle_stage", "cluster", "predicted_tier", "p_high_value", "prospect",
]

#: The stage artifacts whose ``"caveats"`` lists the report gathers (the team contract of issue 11).
CAVEAT_SOURCES = {"04-rfm-value-tiers": "rfm", "05-clv-lifetimes": "clv_validation",
                  "06-cluster-segments": "clusters_summary",
                  "07-classify-prospects": "classification"}  # stage -> artifact name (helpers.catalog)
REPORT_STAGE = "08-segment-report"
#: P(alive) at or above the run's decline threshold (:func:`alive_cut`) for at least this share of customers is
#: called out (the model may not tell who left).
NEARLY_ALL_ALIVE = 0.99


def export_table(catalog: Catalog, raw_ids: bool = False) -> pd.DataFrame:
    """The customer export: stage 05's table joined with clusters and predictions, keyed pseudonymously.

    Raw customer ids are added (as ``customer_id``, after the key) only when ``raw_ids`` is true
    (the parameter ``privacy.raw_ids``).
    """
    return export_in_key_order(catalog, raw_ids)[0]


def export_in_key_order(catalog: Catalog, raw_ids: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`export_table`, and the positions in stage 05's ``customers`` of its rows (its key order).

    The value per month (:func:`helpers.report_forecast.month_export`), written in the customers'
    order, is put in the export's order with them.
    """
    def exported(names: list[str]) -> list[str]:  # the export's columns among ``names``, and the join key
        return [c for c in names if c in EXPORT_COLUMNS or c == "customer_id"]

    def columns_of(name: str, stage: str) -> list[str]:
        return exported(pq.ParquetFile(catalog.require(name, stage)).schema_arrow.names)

    customers = catalog.read_parquet("customers", columns_of("customers", "05-clv-lifetimes"))
    for name in ("clusters", "predictions"):
        if catalog.exists(name):
            extra = catalog.read_parquet(name, columns_of(name, "06 or 07"))
            if extra["customer_id"].equals(customers["customer_id"]):  # the same customers in the same order (the
                for column in extra.columns.drop("customer_id"):       # stages write them so): the left join is
                    customers[column] = extra[column].to_numpy()       # its columns, without copying the table
            else:
                customers = customers.merge(extra, on="customer_id", how="left")
            del extra
    columns = (["customer_id"] if raw_ids else []) + EXPORT_COLUMNS[1:]
    keys = pseudonymize(customers["customer_id"])
    order = key_order(keys)
    return in_key_order(keys, customers, [c for c in columns if c in customers], order), order


def stage_caveats(catalog: Catalog) -> list[dict[str, str]]:
    """The ``"caveats"`` the stages wrote into this run's artifacts, each with the stage it came from.

    A missing artifact or key contributes nothing; an entry that is a bare string is kept (code
    ``"unspecified"``); entries without text are dropped.
    """
    found = []
    for stage, name in CAVEAT_SOURCES.items():
        items = catalog.read_json(name, {}).get("caveats") or []
        for item in items if isinstance(items, list) else [items]:
            if isinstance(item, str):
                item = {"text": item}
            text = str(item.get("text") or "").strip() if isinstance(item, dict) else ""
            if text:
                found.append({"stage": stage, "code": str(item.get("code") or "unspecified"), "text": text})
    return found


def alive_cut(clv_validation: dict[str, Any]) -> float:
    """The run's P(alive) below which a customer is in decline, probably lapsed: stage 05's
    ``lifecycle.decline_p_alive`` as ``clv_validation.json`` records it (the default for older runs)."""
    from helpers.config import DECLINE_P_ALIVE

    return float(clv_validation.get("decline_p_alive") or DECLINE_P_ALIVE)


def report_caveats(export: pd.DataFrame, clv_validation: dict[str, Any],
                   classification: dict[str, Any]) -> list[dict[str, str]]:
    """The report's own caveats on its headline numbers: no forecast, no prospects, (almost) everyone alive."""
    own = []
    if not has_forecast(clv_validation):
        own.append({"code": "no_forecast", "text": no_forecast_text(clv_validation)})
    withheld = prospects_withheld(export, classification)
    if withheld:
        own.append({"code": "no_prospects", "text": withheld})
    alive = export["p_alive"].dropna() if "p_alive" in export.columns else pd.Series(dtype=float)
    cut = alive_cut(clv_validation)
    if has_forecast(clv_validation) and len(alive) and (alive >= cut).mean() >= NEARLY_ALL_ALIVE:
        own.append({"code": "nearly_all_alive", "text": (
            f"P(alive) is {cut:g} or more for {(alive >= cut).mean():.0%} of customers: the model sees almost nobody "
            "as lost. With few repeat purchases this says more about the model than about the customers; read "
            "'probably still active' as an upper bound.")})
    return [{"stage": REPORT_STAGE, **c} for c in own]


def gather_caveats(catalog: Catalog, export: pd.DataFrame) -> list[dict[str, str]]:
    """Every caveat of this run, in stage order: those of stages 04-07 (from their artifacts), then the report's."""
    stages = stage_caveats(catalog)
    said = {c["code"] for c in stages}
    own = report_caveats(export, catalog.read_json("clv_validation", {}), catalog.read_json("classification", {}))
    return stages + [c for c in own if not said & REDUNDANT.get(c["code"], {c["code"]})]


#: A report caveat that a stage has already said (in other words) is not repeated.
REDUNDANT = {"no_forecast": {"no_forecast"}, "no_prospects": {"q2_not_beating_baseline", "q2_not_judged"},
             "nearly_all_alive": {"bgnbd_one_time_p_alive"}}


def caveats_html(caveats: list[dict[str, str]], t: Callable[[str], str] = lambda s: s) -> str:
    """The caveats as a marked box for the report (empty when there are none); texts are HTML-escaped.

    >>> "Read these numbers with care" in caveats_html([{"stage": "05-clv-lifetimes", "code": "x", "text": "a < b"}])
    True
    >>> caveats_html([])
    ''
    """
    if not caveats:
        return ""
    items = "".join(f'<li>{html.escape(t(c["text"]))} <span style="color:#6b7280">({html.escape(c["stage"][:2])} · '
                    f'{html.escape(c["code"])})</span></li>' for c in caveats)
    return ('<div class="cin-caveats" role="note" style="border:2px solid #d97706;background:#fffbeb;'
            'padding:0.6em 1em;margin:0.8em 0;border-radius:6px">'
            f'<p style="margin:0 0 0.3em 0;font-weight:bold">&#9888; {html.escape(t("Read these numbers with care"))}</p>'
            f'<ul style="margin:0;padding-left:1.2em">{items}</ul></div>')


def headline_rows(metrics: dict[str, Any], export: pd.DataFrame, horizon_months: int, outlier_factor: float,
                  t: Callable[[str], str] = lambda s: s) -> dict[str, str]:
    """The headline numbers as label -> text; no CLV or P(alive) rows when there is no forecast."""
    revenue = export["monetary_total"]
    rows = {
        t("customers"): f"{metrics['customers']:,}",
        t("transaction lines kept"): f"{metrics['lines_kept']:,} / {metrics['lines_in']:,}",
        t("revenue to date"): f"{metrics['revenue']:,.0f}",
    }
    if metrics.get("forecast", True) and metrics.get("total_clv") is not None:
        rows[f"{t('predicted value over the horizon (months)')}: {horizon_months}"] = f"{metrics['total_clv']:,.0f}"
        cut = metrics.get("decline_p_alive") or alive_cut({})
        rows[t("customers probably still active (P(alive) >= {cut})").format(cut=f"{cut:g}")] = \
            f"{(export['p_alive'] >= cut).mean():.0%}"
    share = revenue.nlargest(max(1, len(export) // 5)).sum() / revenue.sum() if revenue.sum() else float("nan")
    rows[t("top 20% of customers' share of revenue")] = f"{share:.0%}"
    rows[t("customers spending over 100 times the median (kept, flagged)").replace("100", f"{outlier_factor:g}")] = \
        f"{metrics['spend_outliers']:,}"
    flagged = metrics.get("prospects", prospects_flagged(export))
    rows[t("prospects flagged")] = f"{flagged:,}" if flagged else t("none (see the note below)")
    return rows


def headline_metrics(catalog: Catalog, export: pd.DataFrame, outlier_factor: float = 100.0) -> dict[str, Any]:
    """The numbers a run is compared by: size, data kept, model and its holdout error, segments, clusters, AUC.

    ``spend_outliers`` counts customers spending more than ``outlier_factor`` times the median customer.
    ``forecast`` says whether stage 05 made a BTYD forecast (without one, ``total_clv`` is None);
    ``caveats`` lists what the stages and the report say about reading these numbers (:func:`gather_caveats`).
    """
    from helpers.rfm import spend_outliers

    quality = pd.read_csv(catalog.path("quality_log"))
    clv = catalog.read_json("clv_validation", {})
    clusters = catalog.read_json("clusters_summary", {})
    classification = catalog.read_json("classification", {})
    forecast = has_forecast(clv)
    return {
        "customers": int(len(export)),
        "lines_in": int(quality["rows_before"].iloc[0]),
        "lines_kept": int(quality["rows_after"].iloc[-1]),
        "revenue": round(float(export["monetary_total"].sum()), 2),
        "spend_outliers": int(len(spend_outliers(pd.DataFrame({"customer_id": export["customer_key"],  # two columns,
                                                               "monetary_total": export["monetary_total"]}),
                                                 outlier_factor))),  # not a copy of the export
        "model": clv.get("chosen_model"),
        "model_params": clv.get("params_full_history"),
        "holdout": clv.get("holdout"),
        "forecast": forecast,
        "decline_p_alive": alive_cut(clv),
        "total_clv": round(float(export["clv"].sum()), 2) if forecast and export["clv"].notna().any() else None,
        "segments": export["rfm_segment"].value_counts().sort_index().to_dict(),
        "tiers": export["value_tier"].value_counts().sort_index().to_dict(),
        "lifecycle": export["lifecycle_stage"].value_counts().sort_index().to_dict(),
        "clusters_k": clusters.get("k"),
        "silhouette": clusters.get("silhouette"),
        "classifier_auc_tier": (classification.get("q1") or {}).get("model", {}).get("ROC-AUC (one-vs-rest, macro)"),
        "classifier_auc_high_value": (classification.get("q2") or {}).get("model", {}).get("ROC-AUC"),
        "prospects": prospects_flagged(export),
        "caveats": gather_caveats(catalog, export),
    }


def one_time_alive_by_construction(clv_validation: dict[str, Any]) -> bool:
    """Whether stage 05's chosen model gives every one-time buyer P(alive) = 1 by construction (BG/NBD: a
    customer can only drop out after a repeat purchase), so their P(alive) says nothing about them.

    >>> one_time_alive_by_construction({"chosen_model": "BG/NBD (penalizer 0)"})
    True
    >>> one_time_alive_by_construction({"chosen_model": "MBG/NBD (penalizer 0)"}), one_time_alive_by_construction({})
    (False, False)
    """
    return str(clv_validation.get("chosen_model") or "").startswith("BG/NBD")


def segment_table(export: pd.DataFrame, actions: pd.DataFrame, repeat_buyers_alive: bool = False) -> pd.DataFrame:
    """Per RFM segment: customers, revenue share, mean CLV, mean P(alive), and the recommended action.

    With ``repeat_buyers_alive`` (:func:`one_time_alive_by_construction`) the mean P(alive) is over each segment's
    repeat buyers (``frequency`` > 1) only, missing for a segment of one-time buyers; columns the export has no
    values for (no forecast) are left out.

    >>> e = pd.DataFrame({"rfm_segment": ["new", "new", "loyal"], "monetary_total": [10.0, 30.0, 60.0],
    ...                   "frequency": [1, 1, 4], "clv": [5.0, 7.0, 50.0], "p_alive": [1.0, 1.0, 0.5]})
    >>> actions = pd.DataFrame({"action": ["welcome", "reward"]}, index=["new", "loyal"])
    >>> segment_table(e, actions)["mean_p_alive"].tolist(), segment_table(e, actions, True)["mean_p_alive"].tolist()
    ([0.5, 1.0], [0.5, nan])
    """
    alive = export["p_alive"].where(export["frequency"] > 1) if repeat_buyers_alive else export["p_alive"]
    g = export.groupby("rfm_segment")
    table = pd.DataFrame({
        "customers": g.size(),
        "revenue_share": g["monetary_total"].sum() / export["monetary_total"].sum(),
        "mean_clv": g["clv"].mean(),
        "mean_p_alive": alive.groupby(export["rfm_segment"]).mean(),
    }).join(actions[["action"]])
    table = table.drop(columns=[c for c, v in (("mean_clv", "clv"), ("mean_p_alive", "p_alive"))
                                if export[v].isna().all()])  # no forecast
    return table.sort_values("revenue_share", ascending=False)


def prospects(export: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """The customers most likely to be high value next period (pseudonymous keys only).

    The value tier and the CLV are left out when no customer has one (a run without a forecast).

    >>> x = pd.DataFrame({"customer_key": ["a", "b"], "rfm_segment": ["x", "y"], "value_tier": [None, None],
    ...                   "lifecycle_stage": ["new", "new"], "monetary_total": [5.0, 9.0], "clv": [float("nan")] * 2,
    ...                   "p_high_value": [0.2, 0.7]})
    >>> prospects(x).columns.tolist(), prospects(x)["customer_key"].tolist()
    (['customer_key', 'rfm_segment', 'lifecycle_stage', 'monetary_total', 'p_high_value'], ['b', 'a'])
    """
    cols = ["customer_key", "rfm_segment", "value_tier", "lifecycle_stage", "monetary_total", "clv", "p_high_value"]
    if "p_high_value" not in export.columns:
        return pd.DataFrame(columns=cols)
    table = top_rows(export, "p_high_value", top)[cols]
    return table.drop(columns=[c for c in ("value_tier", "clv") if table[c].isna().all()])


def cluster_table(export: pd.DataFrame) -> pd.DataFrame | None:
    """Per discovered cluster: customers, mean CLV, mean P(alive) and revenue share (``None`` without clusters).

    Columns that are empty throughout (no forecast: no CLV, no P(alive)) are left out.

    >>> x = pd.DataFrame({"cluster": [0, 0, 1], "customer_key": list("abc"), "monetary_total": [1.0, 2.0, 1.0],
    ...                   "clv": [None] * 3, "p_alive": [None] * 3})
    >>> cluster_table(x).to_dict("list")
    {'customers': [2, 1], 'revenue_share': [0.75, 0.25]}
    >>> cluster_table(x.drop(columns="cluster")) is None
    True
    """
    if "cluster" not in export:
        return None
    table = export.groupby("cluster").agg(customers=("customer_key", "size"), revenue=("monetary_total", "sum"),
                                          mean_clv=("clv", "mean"), mean_p_alive=("p_alive", "mean"))
    table["revenue_share"] = table["revenue"] / table["revenue"].sum()
    return table.drop(columns="revenue").dropna(axis=1, how="all")


def save_export(catalog: Catalog, export: pd.DataFrame, metrics: dict[str, Any],
                months: pd.DataFrame | None = None, csv_pandas_rows: int | None = None) -> dict[str, Path]:
    """Write the exports (Parquet and CSV) and the metrics into the run's catalog; the runner publishes them.

    ``months`` is the value per customer and month (:func:`helpers.report_forecast.month_export`). A table of
    more than ``csv_pandas_rows`` rows is written as CSV by DuckDB from its Parquet file
    (:func:`helpers.store.write_csv`, the parameter ``export.csv_pandas_rows``).
    """
    import concurrent.futures

    from helpers import store

    # Each CSV file is written while the next file is: DuckDB writes a large one on one thread (store.write_csv),
    # outside Python's lock (a million customers: stage 08 took 12.3 s against 16.4 s one after the other).
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="export-csv") as pool:
        def both(name: str, frame: pd.DataFrame) -> tuple[Path, concurrent.futures.Future]:
            parquet = catalog.write_parquet(name, frame)
            return parquet, pool.submit(store.write_csv, frame, catalog.path(f"{name}_csv"), parquet, csv_pandas_rows)

        files: dict[str, Any] = {}
        files["parquet"], files["csv"] = both("customer_segments", export)
        files["metrics"] = catalog.write_json("metrics", metrics)
        if months is not None:
            files["months_parquet"], files["months_csv"] = both("customer_value_by_month", months)
        return {key: f.result() if isinstance(f, concurrent.futures.Future) else f for key, f in files.items()}

