"""Stage 08, the segment report: the export, the headline numbers and everything notebook 08 shows, in one call.

:func:`report` reads what stages 03-07 wrote in the run's catalog, writes the
customer export (``customer_segments`` Parquet and CSV, pseudonymous keys only),
the value per customer and month (``customer_value_by_month``) and ``metrics`` there, and returns a :class:`ReportResult`: the headline rows
and caveats, the segment, tier, cluster and prospect tables, the validation
texts, and the migration since the published earlier report of the same data
set (by the ``as_of`` each run recorded) with the earlier runs side by side.
Texts the reader sees are in the run's language (``params.language``); the
tables are in English and translated when shown (:mod:`helpers.plots.report`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from helpers import history, i18n, names
from helpers import report as content
from helpers import report_forecast as forecast_sections
from helpers import report_texts as texts
from helpers.catalog import Catalog
from helpers.interpret import report as interpret
from helpers.migration import (GridMoves, LadderMoves, changed_text, grid_moves, ladder_moves, migration,
                               migration_summary)
from helpers.rfm import load_segment_map
from helpers.tiers import tier_table


@dataclass
class ReportResult:
    """Stage 08's result: the export and its metrics, and each section of the report."""

    language: str
    dataset: str
    as_of: dt.date
    export: pd.DataFrame
    metrics: dict[str, Any]
    files: dict[str, Path]
    header: str
    headline: pd.DataFrame  # one column (the data set): label -> text, labels in the run's language
    caveats_html: str  # the marked box of caveats ("" when there are none)
    segments: pd.DataFrame  # per RFM segment, with its action
    abc_cuts: tuple[float, float]
    tiers: pd.DataFrame | None  # the value pyramid's table (None without a forecast)
    no_pyramid: str | None  # why there is no pyramid (None with a forecast)
    clusters: pd.DataFrame | None  # per discovered cluster (None when stage 06 made none)
    prospects: pd.DataFrame
    withheld: str | None  # why no prospects are flagged (None when some are)
    validation: str
    classifier: str | None  # the classifier's ROC-AUC sentence (None without one)
    previous: str | None = None  # the earlier report compared with (its run)
    no_previous: str | None = None  # why there is none
    matrix: pd.DataFrame | None = None
    flows: pd.DataFrame | None = None
    changed: str | None = None  # "compared with the report of ...: N customers changed segment"
    moved: dict[str, Any] | None = None  # helpers.migration.migration_summary
    runs: pd.DataFrame | None = None  # the earlier runs side by side (None when none was recorded)
    states: dict[str, str] | None = None  # the segment map's states (segment -> state)
    abc_names: dict[str, str] | None = None  # "A" -> "key customers (A)", in the run's language
    ladders: dict[str, GridMoves | LadderMoves] | None = None  # moves on the pyramid's grid and the A/B/C ladder
    ladder_texts: list[str] | None = None  # one sentence per scale (helpers.interpret.report.migration_texts)
    summary: str = ""  # the manager summary (helpers.interpret.report.summary)
    # the forecast sections (helpers.report_forecast.sections): each text says why its section is absent
    uncertainty: str = ""  # how wide the CLV intervals are, how many customers could change tier within them
    top_clv: pd.DataFrame | None = None  # the most valuable customers with their 80% CLV interval
    tracking: pd.DataFrame | None = None  # stage 05's tracking table (helpers.clv.tracking.tracking)
    tracking_text: str = ""  # whom the tracking plot follows, and the holdout's purchases made vs expected
    model_label: str = "model"  # the chosen model's family, for the tracking plot's legend
    unit_name: str = "week"  # the model's time unit, for the tracking plot's axes
    by_month: pd.DataFrame | None = None  # the cohort's discounted value per month (value, cumulative_value)
    months_text: str = ""  # the value month by month in words
    segments_note: str = ""  # why the segment table's mean P(alive) leaves one-time buyers out ('' when it does not)
    new_customer_text: str = ""  # the value of a newly acquired customer: the ceiling on acquiring one

    @property
    def forecast(self) -> bool:
        """Whether stage 05 made a BTYD forecast (CLV, P(alive), the value pyramid)."""
        return bool(self.metrics["forecast"])

    def t(self, text: str) -> str:
        """``text`` in the report's language."""
        return i18n.translate(text, self.language)


def report(params: Any, catalog: Catalog) -> ReportResult:
    """Run stage 08: write the export and the metrics into ``catalog``, return every section of the report."""
    t = i18n.translator(params.language)
    segment_map = load_segment_map(params.rfm.segment_map, params.rfm.bins)
    export, order = content.export_in_key_order(catalog, raw_ids=True)  # the ids key the months, then go unless
    # privacy.raw_ids; order: the export's rows in stage 05's customers, the months' order
    keys = pd.Series(export["customer_key"].to_numpy(), index=export["customer_id"].astype(str).to_numpy())
    if not params.privacy.raw_ids:
        del export["customer_id"]  # in place: a drop would copy ten million customers' every column
    metrics = content.headline_metrics(catalog, export, params.rfm.outlier_factor)
    clv_check = catalog.read_json("clv_validation")
    forecast = bool(metrics["forecast"])
    months = forecast_sections.month_export(catalog, forecast, params.clv.horizon_months, params.privacy.raw_ids, keys,
                                            order)
    files = content.save_export(catalog, export, metrics, months, params.export.csv_pandas_rows)
    classification = catalog.read_json("classification", {})
    # BG/NBD's P(alive) is 1 for every one-time buyer: the segment table averages repeat buyers only
    one_time_alive = forecast and content.one_time_alive_by_construction(clv_check) and \
        bool((export["frequency"] == 1).any())
    rows = content.headline_rows(metrics, export, params.clv.horizon_months, params.rfm.outlier_factor, t)
    result = ReportResult(
        language=params.language, dataset=params.dataset, as_of=params.as_of, export=export, metrics=metrics,
        files=files, header=content.header_markdown(params.title, params.dataset, params.as_of, params.experiment, t),
        headline=pd.Series(rows, name=params.dataset).to_frame(),
        caveats_html=content.caveats_html([c | {"text": texts.caveat_text(c, params.language)}
                                           for c in metrics["caveats"]], t),
        segments=content.segment_table(export, segment_map.actions(), one_time_alive),
        segments_note=t(texts.ONE_TIME_ALIVE_NOTE) if one_time_alive else "", abc_cuts=tuple(params.rfm.abc_cuts),
        tiers=tier_table(export, segment_map.tiers) if forecast else None,
        no_pyramid=None if forecast else t(texts.NO_PYRAMID), clusters=content.cluster_table(export),
        prospects=content.prospects(export), withheld=texts.prospects_withheld(export, classification, t),
        validation=texts.validation_section(clv_check, params.as_of, _comparison(catalog), t),
        classifier=texts.classifier_text(metrics, classification, t),
        runs=history.earlier_runs(params.dataset), states=segment_map.states,
        abc_names={c: f"{t(row['name'])} ({c})" if row["name"] != c else c
                   for c, row in segment_map.abc_classes().iterrows()},
        **forecast_sections.sections(params, export, months, clv_check, _tracking(catalog, forecast), forecast, t))
    previous = history.previous_run(params.dataset, params.as_of, params.experiment)
    if previous is None:
        result.no_previous = history.no_previous_text(params.dataset, params.as_of, params.experiment, t)
    else:  # the published earlier report's export, the only thing read from outside this run
        result.previous = previous.name
        before = pd.read_parquet(previous / history.PUBLISHED_FILE)
        result.matrix, result.flows = migration(before, export)
        result.changed = changed_text(previous.name, result.flows, t)
        result.moved = migration_summary(result.flows, segment_map.states, t)  # by the map's states, not by names
        ladders = {"value_tier": grid_moves(before, export),  # a 2 x 2 grid: moves per axis
                   "abc_class": ladder_moves(before, export, "abc_class", names.ABC)}
        result.ladders = {c: m for c, m in ladders.items() if m is not None}
        result.ladder_texts = interpret.migration_texts(result)
    result.summary = interpret.summary(result)
    return result


def _tracking(catalog: Catalog, forecast: bool) -> pd.DataFrame | None:
    """Stage 05's tracking table (``None`` without a forecast, or when it wrote none)."""
    return catalog.read_parquet("tracking") if forecast and catalog.exists("tracking") else None


def _comparison(catalog: Catalog) -> pd.DataFrame | None:
    """Stage 05's model comparison (every fit and its holdout scores), ``None`` when it wrote none."""
    return pd.read_csv(catalog.path("model_comparison")) if catalog.exists("model_comparison") else None
