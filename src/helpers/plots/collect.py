"""Notebook 02's figure: the collected lines per month, before cleaning."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from helpers.stages.collect import CollectResult


def lines_per_month(result: CollectResult, dataset: str) -> Figure:
    """Transaction lines per month as collected (one bar per month)."""
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.bar(result.monthly["month"], result.monthly["lines"], width=20)
    ax.set(title=f"{dataset}: transaction lines per month (as collected)", xlabel="month", ylabel="lines")
    plt.close(fig)
    return fig
