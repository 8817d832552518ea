"""Plots shared by several notebooks (the stage notebooks and the report).

A stage's own figures live in a module of this package named after the stage
(``helpers.plots.value`` for notebook 05, ``helpers.plots.clusters`` for 06, ...):
each function draws one figure from a stage result and returns it, so notebooks
stay one call per figure.
"""

from __future__ import annotations

import colorsys
import inspect
from collections.abc import Callable
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.patches import Polygon

from helpers import names
from helpers.rfm import pareto_curve, revenue_share_at

TIER_COLORS = {"platinum": "#8e44ad", "gold": "#d4a017", "iron": "#2e86c1", "lead": "#7f8c8d"}
LIFECYCLE = list(names.LIFECYCLE)


#: The most points a curve over customers is drawn with (a million customers' Pareto curve is thinned to these).
DRAWN_POINTS = 100_000


def _same(text: str) -> str:
    return text


def pareto(ax: Axes, monetary: pd.Series, cuts: tuple[float, float], title: str,
           t: Callable[[str], str] = _same) -> float:
    """The Pareto (cumulative revenue) curve with the A and B cuts; returns the revenue share of the top 20%."""
    curve = pareto_curve(monetary)

    def share_at(x: float) -> float:
        return revenue_share_at(curve, x)

    drawn = curve.iloc[::-(-len(curve) // DRAWN_POINTS)]  # every point up to DRAWN_POINTS, else evenly thinned
    drawn = pd.concat([drawn, curve.iloc[-1:]]) if drawn.index[-1] != curve.index[-1] else drawn
    ax.plot(drawn["customer_share"], drawn["revenue_share"], color="tab:blue", label="cumulative revenue")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="every customer equal")
    for cut, name in zip(cuts, ["A", "B"], strict=True):
        y = share_at(cut)
        ax.axvline(cut, color="tab:red", ls="--", lw=1)
        ax.annotate(f"{name}: top {cut:.0%} -> {y:.0%}", (cut, y), xytext=(8, -14), textcoords="offset points", fontsize=9)
    top20 = share_at(0.2)
    ax.set(title=title, xlabel=t("share of customers"), ylabel=t("share of revenue"))
    ax.xaxis.set_major_formatter("{x:.0%}")
    ax.yaxis.set_major_formatter("{x:.0%}")
    ax.legend(loc="lower right")
    return top20


def heatmap(*args: Any, **kwargs: Any) -> Axes:
    """``seaborn.heatmap``, importing seaborn (and scipy.stats under it, about 1.5 s) only when a figure needs it."""
    import seaborn as sns

    return sns.heatmap(*args, **kwargs)


def pyramid(ax: Axes, tiers: pd.DataFrame, t: Callable[[str], str] = _same) -> None:
    """The value pyramid as four fixed bands (platinum on top), labelled with customers and value shares.

    ``tiers`` is :func:`helpers.tiers.tier_table`'s output.
    """
    for i, tier in enumerate(tiers.index):
        top, bottom = 4 - i, 3 - i
        ax.add_patch(Polygon([(-i / 4, top), (i / 4, top), ((i + 1) / 4, bottom), (-(i + 1) / 4, bottom)],
                             color=TIER_COLORS[tier], ec="white"))
        row = tiers.loc[tier]
        ax.text(1.1, bottom + 0.5, f"{t(tier)}: {row['customers']:,} {t('customers')}\n"
                f"{row['revenue_share']:.0%} {t('share of revenue')}, {row['clv_share']:.0%} CLV",
                va="center", fontsize=10)
    ax.set(xlim=(-1.05, 2.9), ylim=(0, 4))
    ax.set_axis_off()


def lifecycle(ax: Axes, stages: pd.Series, title: str, t: Callable[[str], str] = _same) -> None:
    """Customers per lifecycle stage, in lifecycle order (``stages``: one stage per customer)."""
    counts = stages.value_counts().reindex(LIFECYCLE).fillna(0)
    ax.bar([t(s) for s in LIFECYCLE], counts.to_numpy(), color=plt.get_cmap("RdYlGn_r")([0.1, 0.3, 0.5, 0.7, 0.9]))
    ax.set(title=title, ylabel=t("customers"))


def sample(frame: pd.DataFrame, size: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """At most ``size`` rows of ``frame`` (seeded) for a scatter plot; all of them when there are fewer.

    >>> len(sample(pd.DataFrame({"a": range(50)}), 10)), len(sample(pd.DataFrame({"a": range(5)}), 10))
    (10, 5)
    """
    return frame if len(frame) <= size else frame.sample(size, random_state=seed)


def boxes(ax: Axes, values: pd.Series, groups: pd.Series, order: Any, color: str = "tab:blue",
          log: bool = False, fliers: bool = True, fliersize: float = 2.0) -> None:
    """Horizontal box plots of ``values`` per label of ``groups``, one row per label of ``order`` (first on top).

    Seaborn's box plot with ``orient="y"`` and the same statistics (matplotlib's ``boxplot_stats``,
    whiskers at 1.5 IQR, on log10 values when ``log`` as seaborn's ``log_scale`` does), drawn with
    ``Axes.bxp``. Seaborn took 30 s for ten million customers, checking and regrouping every row in
    Python; this is one pass over the group codes and a percentile per group. Missing values are left out.
    """
    codes = pd.Categorical(groups, categories=list(order)).codes
    data = values.to_numpy(dtype=float)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            data = np.log10(data)
    stats = []
    for i, label in enumerate(order):
        part = data[codes == i]
        box = mpl.cbook.boxplot_stats(part[np.isfinite(part)], whis=1.5)[0]
        if log:
            box = {k: (10 ** v if k != "label" else v) for k, v in box.items()}
        stats.append({**box, "label": str(label)})
    color = sns.desaturate(color, 0.75)  # seaborn's default saturation of a fill
    hls = colorsys.rgb_to_hls(*mpl.colors.to_rgb(color))
    line = str(min(hls[1] * 0.6, 0.95))  # seaborn's "auto" line colour: a grey darker than the fill
    ax.bxp(stats, positions=np.arange(len(stats)), widths=0.8, patch_artist=True, showfliers=fliers,
           **({"orientation": "horizontal"} if _HAS_ORIENTATION else {"vert": False}),
           boxprops={"facecolor": color, "edgecolor": line}, medianprops={"color": line},
           whiskerprops={"color": line}, capprops={"color": line},
           flierprops={"markeredgecolor": line, "markersize": fliersize, "marker": "d"})
    if log:
        ax.set_xscale("log")
    ax.set_ylim(len(stats) - 0.5, -0.5)  # the first label on top, as seaborn puts it


#: Whether ``Axes.bxp`` takes ``orientation`` (matplotlib 3.10; ``vert`` is deprecated from 3.11).
_HAS_ORIENTATION = "orientation" in inspect.signature(mpl.axes.Axes.bxp).parameters
