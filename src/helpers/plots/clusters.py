"""Notebook 06's figures: one function per figure, each drawn from stage 06's result (:mod:`helpers.stages.cluster`).

Each returns a :class:`matplotlib.figure.Figure` (made by :func:`figure`), which
a notebook shows once, where the call stands.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from helpers import plots
from helpers.kchoice import STABLE_ARI
from helpers.stages.cluster import ClusterResult

#: The four scores of the scan over k, with their panel titles.
SCAN_PANELS = [("inertia", "elbow: within-cluster sum of squares"), ("silhouette", "silhouette (higher is better)"),
               ("calinski_harabasz", "Calinski-Harabasz (higher is better)"),
               ("stability", f"bootstrap stability, mean ARI (stable: >= {STABLE_ARI})")]


def figure(width: float, height: float) -> Figure:
    """A new figure that a notebook shows once, where the call returning it stands.

    Made through pyplot (which loads the notebook's inline backend, whose formatter shows a
    returned Figure) and closed at once, so the backend does not show it again at the end of the cell.
    """
    fig = plt.figure(figsize=(width, height))
    plt.close(fig)
    return fig


def k_scan(result: ClusterResult) -> Figure:
    """The elbow, silhouette, Calinski-Harabasz and stability curves over k: the chosen k marked (red), the k
    outside ``clusters.k_min .. k_max`` shaded (scanned for reference only), the stability threshold dashed."""
    fig = figure(17, 3.8)
    scan = result.choice.scan
    outside = scan.loc[~scan["eligible"].astype(bool), "k"] if len(scan) else scan["k"]
    for ax, (col, title) in zip(fig.subplots(1, 4), SCAN_PANELS, strict=True):
        ax.plot(scan["k"], scan[col], marker="o")
        ax.axvline(result.k, color="tab:red", ls="--", lw=1)
        if len(outside):
            ax.axvspan(outside.min() - 0.5, outside.max() + 0.5, color="0.85", zorder=0)
        ax.set(title=title, xlabel="k")
    fig.axes[3].axhline(STABLE_ARI, color="grey", ls=":", lw=1)
    fig.axes[3].text(result.k, STABLE_ARI, f" chosen k = {result.k}", color="tab:red", va="bottom", fontsize=8)
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


def places(result: ClusterResult) -> Figure | None:
    """Geographic segments: customer and revenue shares per place, and spend per place (log scale).

    None (nothing drawn) when the customers have no known place (e.g. CDNOW).
    """
    geo = result.geography
    if not geo.available:
        return None
    table = geo.table
    fig = figure(15, 4.2)
    left, right = fig.subplots(1, 2)
    ypos = np.arange(len(table))
    left.barh(ypos - 0.2, table["customer_share"], 0.4, label="customers")
    left.barh(ypos + 0.2, table["revenue_share"], 0.4, label="revenue")
    left.set(yticks=ypos, yticklabels=table.index, title=f"share of customers and revenue by {geo.label}")
    left.invert_yaxis()
    left.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    left.legend()
    plots.boxes(right, result.customers["monetary_total"], geo.groups, list(table.index), log=True)
    p = "" if geo.kw_p is None else f" (Kruskal-Wallis p = {geo.kw_p:.3g})"
    right.set(title=f"spend per customer by {geo.label}{p}", xlabel="spend (log scale)", ylabel="")
    fig.tight_layout()
    return fig

