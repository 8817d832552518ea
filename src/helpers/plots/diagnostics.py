"""Notebook 05's diagnostic figures: holdout purchases by calibration frequency and recency, the spend fit.

Drawn from :mod:`helpers.clv.diagnostics`'s tables (the functions of
:mod:`helpers.plots.value` take the stage result and call these): actual in
black (solid), the model in red (dashed), as in the R BTYD walkthrough.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from helpers.clv.diagnostics import SpendCheck, spend_cdf, spend_density
from helpers.plots.tracking import ACTUAL, MODEL


def holdout_by_figure(by_frequency: pd.DataFrame, by_recency: pd.DataFrame, model_label: str = "model",
                      unit_name: str = "week") -> Figure:
    """Mean holdout purchases, actual vs ``model_label``, by calibration frequency (left) and recency (right).

    The grey bars (right axis) count the customers of each group.

    >>> t = pd.DataFrame({"customers": [5, 3], "actual": [0.2, 1.0], "model": [0.3, 0.9]}, index=["0", "1+"])
    >>> [ax.get_xlabel() for ax in holdout_by_figure(t, t).axes][:2]
    ['repeat purchases in calibration', 'recency in calibration (weeks from the first to the last purchase)']
    """
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    panels = [(by_frequency, "repeat purchases in calibration"),
              (by_recency, f"recency in calibration ({unit_name}s from the first to the last purchase)")]
    for ax, (table, xlabel) in zip(axes, panels, strict=True):
        x = np.arange(len(table))
        counts = ax.twinx()
        counts.bar(x, table["customers"], color="0.85", width=0.6, zorder=0)
        counts.set_ylabel("customers", color="0.5")
        ax.set_zorder(counts.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.plot(x, table["actual"], color=ACTUAL, marker="o", lw=1.3, label="actual")
        ax.plot(x, table["model"], color=MODEL, marker="o", ls="--", lw=1.3, label=model_label)
        ax.set_xticks(x, [str(k) for k in table.index], rotation=30 if len(table) > 8 else 0, ha="right"
                      if len(table) > 8 else "center")
        ax.set(xlabel=xlabel, ylabel="mean holdout purchases", ylim=(0, None))
        ax.legend(loc="upper left")
    axes[0].set_title("holdout purchases by calibration frequency")
    axes[1].set_title("holdout purchases by calibration recency")
    fig.tight_layout()
    plt.close(fig)  # returned, not left open: a notebook shows it once
    return fig


def spend_fit_figure(check: SpendCheck) -> Figure:
    """The repeat buyers' mean spend against the fitted Gamma-Gamma: densities (log spend) and distributions.

    Left, the histogram of the observed mean spend per repeat purchase on a
    log axis with the model's density (per log spend, so the areas compare);
    right, both cumulative distributions with the KS distance marked.
    """
    p, q, v = check.params["p"], check.params["q"], check.params["v"]
    rows, counts = np.unique(check.purchases.to_numpy(dtype=float), return_counts=True)
    weights = counts / counts.sum()
    spend = np.sort(check.spend.to_numpy(dtype=float))
    grid = np.geomspace(spend[0] / 1.5, spend[-1] * 1.5, 400)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    bins = np.geomspace(spend[0], spend[-1], 40)
    per_log = np.full(len(spend), 1 / (len(spend) * np.log(bins[1] / bins[0])))  # the histogram's area is 1 in log spend
    axes[0].hist(spend, bins=bins, weights=per_log, color="0.75", label="actual")
    axes[0].plot(grid, grid * spend_density(grid, rows, p, q, v, weights), color=MODEL, ls="--", lw=1.5, label="Gamma-Gamma")
    axes[0].set(xscale="log", xlabel="mean spend per repeat purchase (log)", ylabel="density per log spend",
                title="mean spend of the repeat buyers: actual vs the model")
    axes[0].legend()
    axes[1].step(spend, np.arange(1, len(spend) + 1) / len(spend), where="post", color=ACTUAL, lw=1.3,
                 label="actual")
    axes[1].plot(grid, spend_cdf(grid, rows, p, q, v, weights), color=MODEL, ls="--", lw=1.3, label="Gamma-Gamma")
    model_at = float(spend_cdf(np.array([check.at]), rows, p, q, v, weights)[0])
    axes[1].vlines(check.at, model_at, model_at + check.gap, color="tab:orange", lw=2.5,
                   label=f"KS distance {check.ks:.3f}")
    axes[1].set(xscale="log", xlabel="mean spend per repeat purchase (log)", ylabel="share of repeat buyers",
                ylim=(0, 1.02), title="cumulative distributions")
    axes[1].legend(loc="upper left")
    fig.tight_layout()
    plt.close(fig)
    return fig
