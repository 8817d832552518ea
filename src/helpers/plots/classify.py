"""Notebook 07's figures: one function per figure, each drawn from stage 07's result (:mod:`helpers.stages.classify`).

Each returns a :class:`matplotlib.figure.Figure` (made by
:func:`helpers.plots.clusters.figure`: a notebook shows it once, where the call
stands), or None when the question it shows was skipped (the notebook has printed why).
"""

from __future__ import annotations

import seaborn as sns
from matplotlib.figure import Figure

from helpers.plots.clusters import figure
from helpers.stages.classify import ClassifyResult


def tier_confusions(result: ClassifyResult) -> Figure | None:
    """Question 1: actual vs predicted tier on the test period, for the model and the one-rule baseline."""
    tables = result.q1_confusions()
    if not tables:
        return None
    fig = figure(12, 4.2)
    for ax, (title, table) in zip(fig.subplots(1, 2), tables.items(), strict=True):
        sns.heatmap(table, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
        ax.set(title=f"question 1, {title}: actual vs predicted tier")
    fig.tight_layout()
    return fig


def high_value(result: ClassifyResult) -> Figure | None:
    """Question 2 on the test period: the confusion matrix of calling the top share, cumulative gains and lift."""
    confusion = result.q2_confusion()
    if confusion is None:
        return None
    fig = figure(16, 4.2)
    axes = fig.subplots(1, 3)
    sns.heatmap(confusion, annot=True, fmt="d", cmap="Blues", cbar=False, ax=axes[0])
    axes[0].set(title=f"calling the top {result.target_share:.0%} by model score")
    for label, table in result.gains().items():
        axes[1].plot([0, *table["cumulative_share_of_customers"]], [0, *table["cumulative_gain"]], marker="o", label=label)
        axes[2].plot(table.index, table["lift"], marker="o", label=label)
    axes[1].plot([0, 1], [0, 1], color="grey", ls=":", label="random")
    axes[1].set(title="cumulative gains", xlabel="share of customers called (best scores first)",
                ylabel="share of high-value customers found")
    axes[2].axhline(1, color="grey", ls=":")
    axes[2].set(title="cumulative lift by decile", xlabel="decile (1 = highest scores)", ylabel="lift")
    axes[1].legend()
    axes[2].legend()
    fig.tight_layout()
    return fig


def importance(result: ClassifyResult) -> Figure | None:
    """Question 2: permutation importance (drop in ROC-AUC when a feature is shuffled), None when there is none."""
    imp = result.importance
    if imp.empty:
        return None
    fig = figure(8, 3.5)
    ax = fig.subplots()
    ax.barh(imp["feature"], imp["importance"], xerr=imp["std"], color="tab:blue")
    ax.invert_yaxis()
    ax.set(title="question 2: permutation importance (drop in ROC-AUC)", xlabel="importance")
    return fig
