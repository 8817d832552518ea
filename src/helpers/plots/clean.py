"""Notebook 03's figure: the lines each cleaning rule removed."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from helpers.stages.clean import CleanResult


def rows_removed(result: CleanResult, dataset: str) -> Figure:
    """Lines removed by each rule (grey: the rule is off), annotated with the counts."""
    quality = result.quality
    fig, ax = plt.subplots(figsize=(9, 3.5))
    colors = ["tab:red" if on else "lightgrey" for on in quality["enabled"]]
    ax.barh(quality["rule"], quality["rows_removed"], color=colors)
    ax.invert_yaxis()
    ax.margins(x=0.12)
    for y, n in enumerate(quality["rows_removed"]):
        ax.annotate(f"{n:,}", (n, y), xytext=(4, 0), textcoords="offset points", va="center")
    ax.set(title=f"{dataset}: lines removed by each cleaning rule ({result.rows_in:,} in, {result.rows_out:,} out)",
           xlabel="lines removed")
    plt.close(fig)
    return fig
