"""Notebook 05's figures (lifetime value), one function per figure, each from the stage result.

Every function takes a :class:`helpers.stages.value.ValueResult` and returns
the matplotlib Figure, or a :class:`Note` saying why there is nothing to draw
(no forecast, nobody bought twice), which a notebook shows as plain text. The
figures are closed before they are returned, so a notebook shows each once.
"""

from __future__ import annotations

import warnings
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from helpers import plots, privacy

#: What a figure function says when the run has no forecast.
NO_FORECAST = "no forecast: nothing to draw (see above)"


class Note(str):
    """A short message returned instead of a figure; a notebook shows it as plain text.

    >>> Note("no forecast")
    no forecast
    """

    def __repr__(self) -> str:
        return str(self)


def _done(fig: Figure) -> Figure:
    fig.tight_layout()
    plt.close(fig)  # returned, not left open: the notebook shows it once
    return fig


def holdout_check(result: Any) -> Figure | Note:
    """Repeat purchases in calibration (actual vs simulated) and holdout purchases by calibration purchases."""
    from lifetimes import plotting as ltplot

    if not result.forecast:
        return Note(NO_FORECAST)
    cal_fit, calhold = result.cal_fit, result.calhold
    holdout_view = calhold.rename(columns={"frequency": "frequency_cal", "recency": "recency_cal", "T": "T_cal"})
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    (100 * cal_fit.period_transactions(calhold)).plot.bar(ax=axes[0], rot=0)
    axes[0].set(xlabel="repeat purchases in calibration (7 = 7 or more)", ylabel="% of customers")
    axes[0].set_title(f"{cal_fit.label}: repeat purchases in calibration,\nactual vs simulated from the model")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No artists with labels")  # from lifetimes' own plot
        ltplot.plot_calibration_purchases_vs_holdout_purchases(cal_fit.model, holdout_view, n=7, ax=axes[1])
    axes[1].set_title("holdout purchases by calibration purchases:\nactual vs predicted")
    return _done(fig)


def holdout_by_calibration(result: Any) -> Figure | Note:
    """Mean holdout purchases, actual vs the calibration fit, by calibration frequency and by recency (binned)."""
    from helpers.plots.diagnostics import holdout_by_figure

    tables = result.holdout_by()
    return Note(NO_FORECAST) if tables is None else holdout_by_figure(*tables, result.cal_fit.label,
                                                                      result.unit_name.rstrip("s"))


def spend_fit(result: Any) -> Figure | Note:
    """The repeat buyers' mean spend against the fitted Gamma-Gamma: densities and cumulative distributions."""
    from helpers.plots.diagnostics import spend_fit_figure

    check = result.spend_check()
    return Note("no Gamma-Gamma fit: no spend distribution to compare") if check is None else spend_fit_figure(check)


def tracking(result: Any) -> Figure | Note:
    """The cohort's repeat purchases per period and cumulated, actual vs the calibration fit, across the holdout."""
    from helpers.plots.tracking import tracking_figure

    if not result.forecast or result.tracking is None:
        return Note(NO_FORECAST)
    return _done(tracking_figure(result.tracking, result.cal_fit.label, result.unit_name.rstrip("s")))


def _matrix(result: Any, draw: str, title: str, **kwargs: Any) -> Figure | Note:
    """One of lifetimes' frequency x recency matrices of the full-history fit (they draw on the current figure)."""
    from lifetimes import plotting as ltplot

    if not result.forecast:
        return Note(NO_FORECAST)
    if result.fit.name == "bgbb":  # a discrete-time run (clv.discrete_period): lifetimes draws these for T, not n
        return Note("BG/BB (discrete time): no frequency x recency matrix; P(alive) and expected transactions are "
                    "in the customer table")
    fig = plt.figure(figsize=(6.5, 5))
    getattr(ltplot, draw)(result.fit.model, **kwargs)
    plt.title(title)
    plt.close(fig)
    return fig


def expected_purchases_matrix(result: Any) -> Figure | Note:
    """Expected purchases over the horizon by frequency and recency."""
    c = result.params.clv
    from helpers.clv import DAYS_PER_MONTH, UNIT_DAYS

    horizon = c.horizon_months * DAYS_PER_MONTH / UNIT_DAYS[c.time_unit]
    return _matrix(result, "plot_frequency_recency_matrix", f"expected purchases in the next {c.horizon_months} "
                   f"months\nby frequency and recency ({result.unit_name})", T=horizon)


def p_alive_matrix(result: Any) -> Figure | Note:
    """P(alive) by frequency and recency."""
    return _matrix(result, "plot_probability_alive_matrix", f"P(alive) by frequency and recency ({result.unit_name})")


def alive_path(result: Any) -> Figure | Note:
    """The example customer's P(alive) from the first purchase to ``as_of``, purchase days marked."""
    if not result.forecast:
        return Note(NO_FORECAST)
    if result.example_path is None:
        return Note("nobody bought twice: there is no P(alive) history worth showing")
    path = result.example_path
    fig, ax = plt.subplots(figsize=(11, 3.5))
    ax.plot(path.index, path["p_alive"], color="tab:blue")
    for day in path.index[path["purchase"]]:
        ax.axvline(day, color="tab:red", lw=0.8, ls="--")
    who = privacy.shown_id(result.example, result.params.privacy.raw_ids)
    ax.set(title=f"P(alive) of customer {who} over time (red: purchase days); today {path['p_alive'].iloc[-1]:.2f}",
           ylabel="P(alive)", ylim=(0, 1.05))
    plt.close(fig)
    return fig


def clv_by_segment(result: Any) -> Figure | Note:
    """Predicted CLV by RFM segment (box plot) and the histogram of P(alive)."""
    if not result.forecast:
        return Note(NO_FORECAST)
    value = result.value
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    order = value.groupby("rfm_segment")["clv"].median().sort_values(ascending=False).index
    plots.boxes(axes[0], value["clv"], value["rfm_segment"], order, fliers=False)
    axes[0].set(title="predicted CLV by RFM segment (notebook 04)",
                xlabel=f"CLV, next {result.params.clv.horizon_months} months", ylabel="")
    sns.histplot(x=value["p_alive"], bins=20, ax=axes[1])  # x=: a bare Series is wide-form, checked row by row
    axes[1].set(title="P(alive) of all customers", xlabel="P(alive)")
    return _done(fig)


def pyramid_to_scale(ax: Any, tiers: pd.DataFrame) -> None:
    """The value pyramid drawn to scale: each band's height is its share of customers, shares of value beside it.

    A triangle with platinum at the top; band widths follow the triangle, so
    a tier's area is not its share, its height is. Two columns on the left
    stack the tiers' shares of revenue and of predicted CLV on the same scale,
    so a band can be compared with what it brings. The labels sit at evenly
    spaced heights (a thin band still gets a readable label), each joined to its band.
    ``tiers`` is :func:`helpers.tiers.tier_table`'s output.
    """
    share = tiers["customers"] / tiers["customers"].sum()
    order = list(tiers.index[::-1])  # lead at the bottom
    for left, column, name in ((-1.75, "revenue_share", "revenue"), (-1.45, "clv_share", "CLV")):
        heights = tiers.loc[order, column].fillna(0).to_numpy()
        ax.bar(left, heights, width=0.25, bottom=np.concatenate([[0], np.cumsum(heights)[:-1]]), align="edge",
               color=[plots.TIER_COLORS[t] for t in order], ec="white")
        ax.text(left + 0.125, -0.02, name, ha="center", va="top", fontsize=9)
    bottom = 0.0
    for k, tier in enumerate(order):
        top = bottom + float(share[tier])
        ax.add_patch(Polygon([(-(1 - bottom), bottom), (1 - bottom, bottom), (1 - top, top), (-(1 - top), top)],
                             color=plots.TIER_COLORS[tier], ec="white"))
        middle, label_y = (bottom + top) / 2, (k + 0.5) / len(order)
        ax.plot([1 - middle, 1.12], [middle, label_y], color="0.5", lw=0.8)
        row = tiers.loc[tier]
        ax.text(1.15, label_y, f"{tier}: {share[tier]:.0%} of customers ({row['customers']:,})\n"
                f"{row['revenue_share']:.0%} of revenue, {row['clv_share']:.0%} of predicted CLV",
                va="center", fontsize=10)
        bottom = top
    ax.set(xlim=(-1.8, 2.9), ylim=(-0.06, 1.02))
    ax.set_axis_off()


def pyramid(result: Any) -> Figure | Note:
    """The value pyramid twice: the schematic (four equal bands) and drawn to scale (bands by customers)."""
    if result.tiers is None:
        return Note("The pyramid needs growth potential (CLV), and there is no forecast: only current value is "
                    "known. Notebook 04's ABC classes rank customers by it.")
    fig, axes = plt.subplots(1, 2, figsize=(15, 5))
    plots.pyramid(axes[0], result.tiers)
    axes[0].set_title("the customer value pyramid (schematic)")
    pyramid_to_scale(axes[1], result.tiers)
    axes[1].set_title("drawn to scale: band height = share of customers; left, shares of revenue and CLV")
    return _done(fig)


def value_map(result: Any) -> Figure | Note:
    """Current value x growth potential, coloured by tier (a sample of at most 20,000 customers)."""
    if result.tiers is None:
        return Note(NO_FORECAST)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    shown = plots.sample(result.value)  # a scatter of millions shows nothing more
    sns.scatterplot(data=shown, x=shown["monetary_total"].clip(lower=0.01), y=shown["clv"].clip(lower=0.01),
                    hue="value_tier", palette=plots.TIER_COLORS, hue_order=list(plots.TIER_COLORS), s=14, alpha=0.7,
                    ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="current value: spend so far (log)",
           ylabel="growth potential: predicted CLV (log)", title="current value x growth potential")
    return _done(fig)


def lifecycle(result: Any) -> Figure:
    """Customers per lifecycle stage (drawn with or without a forecast)."""
    fig, ax = plt.subplots(figsize=(9, 3.5))
    params = result.params
    plots.lifecycle(ax, result.value["lifecycle_stage"], f"{params.dataset}: customers by lifecycle stage at "
                                                         f"{params.as_of}")
    plt.close(fig)
    return fig
