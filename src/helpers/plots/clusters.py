"""Notebook 06's figures: one function per figure, each drawn from stage 06's result (:mod:`helpers.stages.cluster`).

Each returns a :class:`matplotlib.figure.Figure` (made by :func:`figure`), which
a notebook shows once, where the call stands.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.figure import Figure

from helpers.stages.cluster import ClusterResult

#: The three scores of the scan over k, with their panel titles.
SCAN_PANELS = [("inertia", "elbow: within-cluster sum of squares"), ("silhouette", "silhouette (higher is better)"),
               ("calinski_harabasz", "Calinski-Harabasz (higher is better)")]


def figure(width: float, height: float) -> Figure:
    """A new figure that a notebook shows once, where the call returning it stands.

    Made through pyplot (which loads the notebook's inline backend, whose formatter shows a
    returned Figure) and closed at once, so the backend does not show it again at the end of the cell.
    """
    fig = plt.figure(figsize=(width, height))
    plt.close(fig)
    return fig


def k_scan(result: ClusterResult) -> Figure:
    """The elbow, silhouette and Calinski-Harabasz curves over k, the chosen k marked."""
    fig = figure(15, 3.8)
    scan = result.choice.scan
    for ax, (col, title) in zip(fig.subplots(1, 3), SCAN_PANELS, strict=True):
        ax.plot(scan["k"], scan[col], marker="o")
        ax.axvline(result.k, color="tab:red", ls="--", lw=1)
        ax.set(title=title, xlabel="k")
    fig.tight_layout()
    return fig


def centres(result: ClusterResult) -> Figure:
    """The cluster centres on the scaled features: a heatmap and a snake plot."""
    fig = figure(15, 0.6 * result.k + 3)
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.1]})
    table = result.centres
    sns.heatmap(table, annot=True, fmt=".2f", cmap="RdBu_r", center=0, ax=axes[0], cbar_kws={"label": "scaled mean"})
    axes[0].set(title="cluster centres (scaled features: 0 = the median customer)", ylabel="")
    for name, row in table.iterrows():
        axes[1].plot(table.columns, row.values, marker="o", label=name)
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].set(title="snake plot: scaled feature means by cluster")
    axes[1].legend(fontsize=8, loc="best")
    axes[1].tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def business(result: ClusterResult) -> Figure:
    """Each cluster's shares in the RFM segments (and in the value tiers, when there are tiers)."""
    panels = [(result.by_segment, "share of each cluster in each RFM segment", "Blues")]
    if result.by_tier is not None:
        panels.append((result.by_tier, "... and in each value tier", "Purples"))
    fig = figure(16 if result.has_tiers else 11, 0.6 * result.k + 3)
    axes = fig.subplots(1, len(panels), squeeze=False, gridspec_kw={"width_ratios": [2.2, 1][:len(panels)]})
    for ax, (table, title, cmap) in zip(axes[0], panels, strict=True):
        sns.heatmap(table, annot=True, fmt=".0%", cmap=cmap, ax=ax, cbar=False)
        ax.set(title=title, xlabel="", ylabel="")
    axes[0][0].tick_params(axis="x", rotation=40)
    fig.tight_layout()
    return fig
