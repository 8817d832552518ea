"""Notebook 04's figures, drawn from the stage result (:class:`helpers.stages.rfm.RFMResult`).

Each function returns its Figure closed to pyplot, so a notebook shows it
exactly where it calls ``display(...)`` (or as a cell's last value), once.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers import plots


def _figure(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A new figure and its axes, closed to pyplot (the inline backend would show it again at the cell's end)."""
    fig, ax = plt.subplots(figsize=figsize)
    plt.close(fig)
    return fig, ax


def segment_grid(result: Any, title: str) -> Figure:
    """The R x F grid as a heatmap: customers the grid places per cell, labelled with the cell's segment."""
    cells, grid = result.grid, result.segment_map.grid
    labels = pd.DataFrame([[f"{grid[r][f - 1]}\n{cells.loc[r, f]:,}" for f in cells.columns] for r in cells.index],
                          index=cells.index, columns=cells.columns)
    fig, ax = _figure((10, 5.5))
    plots.heatmap(cells, annot=labels, fmt="", cmap="Blues", cbar_kws={"label": result.who_in_grid}, ax=ax,
                annot_kws={"fontsize": 8})
    ax.set(title=f"{title}: {result.who_in_grid} per R x F cell and their segment", xlabel="F score (5 = most purchases)",
           ylabel="R score (5 = most recent)")
    return fig


def pareto(result: Any, title: str) -> Figure:
    """The Pareto (cumulative revenue) curve of the customers, with the A and B cuts."""
    fig, ax = _figure((7, 5))
    plots.pareto(ax, result.customers["monetary_total"], result.abc_cuts, f"{title}: Pareto curve")
    return fig
