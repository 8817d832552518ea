"""The tracking figure: the cohort's repeat purchases per period and cumulated, actual vs the model.

The figure of Fader, Hardie and Lee (2005) and of the R BTYD walkthrough
(``bgnbd.PlotTrackingInc`` and ``bgnbd.PlotTrackingCum`` side by side), drawn
from :func:`helpers.clv.tracking.tracking`'s table: left the repeat purchases
in each period, right their running total, actual (solid) against the model
(dashed), a vertical line where the calibration ends and the holdout begins.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

ACTUAL, MODEL = "black", "tab:red"


def tracking_figure(table: pd.DataFrame, model_label: str = "model", unit_name: str = "week") -> Figure:
    """Weekly (per ``unit_name``) and cumulative repeat purchases of the cohort, actual vs ``model_label``.

    >>> t = pd.DataFrame({"period": [1, 2, 3], "phase": ["calibration", "calibration", "holdout"],
    ...     "actual": [1, 2, 2], "expected": [1.5, 1.5, 1.5]})
    >>> t["actual_cumulative"], t["expected_cumulative"] = t["actual"].cumsum(), t["expected"].cumsum()
    >>> [ax.get_title() for ax in tracking_figure(t, "BG/NBD").axes][1]
    'cumulative repeat purchases\\nactual 5, BG/NBD 4.5 (-10.0%)'
    """
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    n_cal = int((table["phase"] == "calibration").sum())
    x = table["period"]
    panels = [("actual", "expected", f"repeat purchases per {unit_name}"),
              ("actual_cumulative", "expected_cumulative", "cumulative repeat purchases")]
    for ax, (actual, expected, what) in zip(axes, panels, strict=True):
        ax.plot(x, table[actual], color=ACTUAL, lw=1.3, label="actual")
        ax.plot(x, table[expected], color=MODEL, lw=1.3, ls="--", label=model_label)
        if 0 < n_cal < len(table):
            ax.axvline(n_cal + 0.5, color="grey", ls=":", lw=1)
            ax.annotate("calibration | holdout", (n_cal + 0.5, 0.0), xycoords=("data", "axes fraction"),
                        xytext=(0, 6), textcoords="offset points", ha="center", fontsize=8, color="grey")
        ax.set(xlabel=f"{unit_name} (1 = the cohort's first)", ylabel="repeat purchases", ylim=(0, None))
        ax.legend(loc="upper left" if actual == "actual_cumulative" else "upper right")
    last = table.iloc[-1]
    error = 100 * (last["expected_cumulative"] - last["actual_cumulative"]) / max(last["actual_cumulative"], 1)
    axes[0].set_title(f"{panels[0][2]}\nthe customers who first bought in the calibration")
    axes[1].set_title(f"{panels[1][2]}\nactual {last['actual_cumulative']:,.0f}, {model_label} "
                      f"{last['expected_cumulative']:,.1f} ({error:+.1f}%)")
    fig.tight_layout()
    plt.close(fig)  # returned, not left open: a notebook shows it once
    return fig


__all__ = ["tracking_figure"]
