"""Notebook 08's figures and tables, drawn from stage 08's result (:class:`helpers.stages.report.ReportResult`).

Each figure function returns a closed matplotlib Figure (the notebook shows it
once, with ``display``); each table function shows one section's table in the
report's language, or the sentence that replaces it (no forecast: no pyramid;
no prospects flagged: why). Labels are translated here, when shown; the result's
tables stay in English.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from helpers import i18n, plots

#: Printed once when the report is in Chinese and matplotlib finds no CJK font.
NO_CJK_FONT = "no CJK font is installed: Chinese labels in the plots may not render (make setup installs one)"
_warned: set[str] = set()


def _language(result: Any) -> None:
    """Use a font for the report's language in the figures (and say once when there is none)."""
    if i18n.use_language_in_plots(result.language) is None and result.language == "zh" and "zh" not in _warned:
        _warned.add("zh")
        print(NO_CJK_FONT)


def _done(fig: Figure, result: Any, layout: bool = True) -> Figure:
    """Put every text of the figure in the report's language, lay it out and close it (the notebook shows it once).

    The figures are drawn in English and translated at the end (:func:`helpers.i18n.translate_figure`), so
    legends, annotations and the shared plots' labels are translated too, from templates.
    """
    i18n.translate_figure(fig, result.language)
    if layout:
        fig.tight_layout()
    plt.close(fig)
    return fig


def _shown(frame: pd.DataFrame, result: Any) -> pd.DataFrame:
    """``frame`` with its labels and text cells in the report's language."""
    return i18n.translate_frame(frame, result.language)


def value_figure(result: Any) -> Figure:
    """Revenue concentration (Pareto curve with the A/B cuts) and, with a forecast, the value pyramid beside it."""
    _language(result)
    forecast = result.forecast
    fig, axes = plt.subplots(1, 2 if forecast else 1, figsize=(15 if forecast else 8, 5),
                             gridspec_kw={"width_ratios": [1, 1.2]} if forecast else None, squeeze=False)
    plots.pareto(axes[0, 0], result.export["monetary_total"], result.abc_cuts, "Revenue concentration (ABC, 80/20)")
    if forecast:
        plots.pyramid(axes[0, 1], result.tiers)
        axes[0, 1].set_title("The customer value pyramid")
    return _done(fig, result)


def lifecycle_figure(result: Any) -> Figure:
    """Customers per lifecycle stage and, beside them, each discovered cluster's share of revenue."""
    _language(result)
    fig, axes = plt.subplots(1, 2, figsize=(15, 4), gridspec_kw={"width_ratios": [1, 1.2]})
    plots.lifecycle(axes[0], result.export["lifecycle_stage"], "Lifecycle stages")
    if result.clusters is not None:
        axes[1].barh(result.clusters.index.astype(str), result.clusters["revenue_share"], color="tab:blue")
        axes[1].xaxis.set_major_formatter("{x:.0%}")
        axes[1].set(title="Discovered clusters", xlabel="revenue share")
    return _done(fig, result)


def migration_figure(result: Any) -> Figure:
    """The migration matrix as a heatmap: customers by segment in the earlier report (rows) and now (columns)."""
    _language(result)
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(result.matrix) + 2))
    plots.heatmap(result.matrix, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
    ax.set(title=f"before ({result.previous}) -> after ({result.as_of})", xlabel="after", ylabel="before")
    return _done(fig, result, layout=False)  # no tight_layout: the heatmap keeps its own margins


def ladder_figure(result: Any) -> Figure:
    """Moves between value tiers and between A/B/C classes since the earlier report: one heatmap per scale."""
    _language(result)
    ladders = result.ladders or {}
    fig, axes = plt.subplots(1, max(1, len(ladders)), figsize=(13, 4), squeeze=False)
    titles = {"value_tier": "Value tiers", "abc_class": "A/B/C classes"}
    for ax, (column, moves) in zip(axes[0], ladders.items(), strict=False):
        matrix = moves.matrix
        if column == "abc_class":  # the classes by name ("key customers (A)"), already in the report's language
            matrix = matrix.rename(index=result.abc_names, columns=result.abc_names)
        plots.heatmap(matrix, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
        ax.tick_params(axis="y", rotation=0)
        ax.set(title=titles[column], xlabel=f"after ({result.as_of})", ylabel=f"before ({result.previous})")
    return _done(fig, result)


#: What a missing cell shows in the report's tables.
DASH = "-"
#: The value columns of the segment and cluster tables: the label shown, and its format.
VALUE_COLUMNS = {"revenue_share": ("revenue share", "{:.1%}"), "mean_clv": ("mean CLV", "{:,.1f}"),
                 "mean_p_alive": ("mean P(alive)", "{:.2f}")}


def _value_table(frame: pd.DataFrame, result: Any) -> Any:
    """``frame`` (a segment or cluster table) with its value columns named and formatted, in the report's language."""
    t = result.t
    table = _shown(frame.rename(columns={c: label for c, (label, _) in VALUE_COLUMNS.items()}), result)
    return table.style.format({t(label): f for label, f in VALUE_COLUMNS.values() if t(label) in table.columns},
                              na_rep=DASH)


def segments(result: Any) -> Any:
    """The segment table (customers, revenue share, mean CLV and P(alive), action), formatted (a Styler)."""
    styled = _value_table(result.segments.round({"mean_clv": 1, "mean_p_alive": 2}).rename_axis("segment"), result)
    return styled.set_caption(result.segments_note) if result.segments_note else styled


def with_dashes(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as the reader sees it: a missing cell shown as a dash, never as None or NaN.

    >>> with_dashes(pd.DataFrame({"model": ["BG/NBD", None], "auc": [0.8, float("nan")]})).values.tolist()
    [['BG/NBD', 0.8], ['-', '-']]
    """
    missing = frame.isna()
    return frame.astype(object).mask(missing, DASH) if missing.to_numpy().any() else frame


def _show(table: Any, text: str | None = None) -> None:
    """Display ``table`` (when there is one; a frame's missing cells as dashes), else ``text`` as a paragraph."""
    import html

    from IPython.display import HTML, display

    if table is not None:
        display(with_dashes(table) if isinstance(table, pd.DataFrame) else table)
    elif text:
        display(HTML(f"<p>{html.escape(text)}</p>"))


def tiers(result: Any) -> None:
    """Show the value tiers with their customers and actions, or why there is no pyramid."""
    _show(None if result.tiers is None else _shown(result.tiers[["customers", "action"]].rename_axis("tier"), result),
          result.no_pyramid)


def clusters(result: Any) -> Any:
    """The discovered clusters' table, formatted as the segments' (a Styler; nothing when stage 06 made no clusters)."""
    return None if result.clusters is None else _value_table(result.clusters, result)


def prospects(result: Any) -> None:
    """Show the likely high-value customers of next period, or why none are flagged."""
    _show(None if result.withheld else _shown(result.prospects.set_index("customer_key").round(2), result),
          result.withheld)


def flows(result: Any) -> pd.DataFrame:
    """The ten biggest flows between segments since the earlier report, in the report's language."""
    return _shown(result.flows.head(10), result)


def runs_table(result: Any) -> pd.DataFrame | None:
    """The earlier runs of the data set side by side (the last eight), labels in the report's language."""
    t = result.t
    return None if result.runs is None else _shown(result.runs.tail(8).rename(
        columns=lambda c: f"{t('customers')}: {t(c[2:])}" if c.startswith("n_") else c), result)


def runs(result: Any) -> None:
    """Show the earlier runs of the data set side by side (the last eight), or that none were recorded."""
    t = result.t
    if result.runs is not None:
        print(t("parameters that differ between runs, and the headline numbers (python -m helpers.compare shows the "
                "same):"))
    _show(runs_table(result), t("no earlier runs recorded yet"))


def top_clv_table(result: Any) -> pd.DataFrame | None:
    """The most valuable customers with their 80% CLV interval, in the report's language (``None`` without one)."""
    if result.top_clv is None:
        return None
    return _shown(result.top_clv.set_index("customer_key").rename(columns={
        "value_tier": "tier", "clv": "CLV", "clv_low_80": "80% interval from", "clv_high_80": "80% interval to",
        "p_alive": "P(alive)"}).round(2), result)


def top_clv(result: Any) -> None:
    """Show the most valuable customers with their 80% CLV interval (nothing without intervals)."""
    _show(top_clv_table(result))


def tracking_figure(result: Any) -> Figure:
    """Weekly and cumulative repeat purchases of the cohort, actual vs the model, the calibration's end marked."""
    from helpers.plots.tracking import tracking_figure as draw

    _language(result)
    return _done(draw(result.tracking, result.model_label, result.unit_name), result)


def tracking(result: Any) -> None:
    """Show the tracking figure (nothing without a forecast: the text says why)."""
    if result.tracking is not None:
        _show(tracking_figure(result))


def months_figure(result: Any) -> Figure:
    """The cohort's predicted value in each month of the horizon (bars) and accumulated (line, right axis)."""
    _language(result)
    months = result.by_month
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.bar(months.index, months["value"], color="tab:blue", label="value in the month")
    ax.set(title="Predicted value month by month (all customers, discounted)", xlabel="month",
           ylabel="value in the month", xticks=list(months.index), ylim=(0, 1.3 * months["value"].max()))
    right = ax.twinx()
    right.plot(months.index, months["cumulative_value"], color="tab:orange", marker="o", label="accumulated")
    right.set(ylabel="accumulated", ylim=(0, 1.1 * months["cumulative_value"].max()))
    right.grid(False)  # the left axis's grid only
    for axis in (ax.yaxis, right.yaxis):
        axis.set_major_formatter("{x:,.0f}")
    lines = [*ax.get_legend_handles_labels()[0], *right.get_legend_handles_labels()[0]]
    ax.legend(lines, [line.get_label() for line in lines], loc="upper center", ncol=2)
    return _done(fig, result)


def months(result: Any) -> None:
    """Show the value month by month (nothing without a forecast: the text says why)."""
    if result.by_month is not None:
        _show(months_figure(result))
