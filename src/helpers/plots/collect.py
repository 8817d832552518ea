"""Notebook 02's figure: the collected lines per month and the new customers per month, before cleaning."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from helpers.stages.collect import CollectResult


def lines_per_month(result: CollectResult, dataset: str) -> Figure:
    """Transaction lines per month as collected, and below them the customers whose first line is in that month."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, height_ratios=[3, 2])
    top.bar(result.monthly["month"], result.monthly["lines"], width=20)
    top.set(title=f"{dataset}: transaction lines per month (as collected)", ylabel="lines")
    bottom.bar(result.acquisition["month"], result.acquisition["new_customers"], width=20, color="tab:green")
    bottom.set(title="new customers per month (their first line in the log)", xlabel="month", ylabel="customers")
    fig.tight_layout()
    plt.close(fig)
    return fig
