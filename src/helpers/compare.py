"""Compare the runs of a data set side by side.

    python -m helpers.compare cdnow

Every published run appends its parameters and headline metrics to
``reports/<dataset>/runs.jsonl``; this prints one row per run with the
parameters that differ between runs, the chosen model's holdout RMSE, the
clustering silhouette, the classifier's ROC-AUC and the segment sizes.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from helpers.history import compare_runs


def main(argv: list[str] | None = None) -> int:
    """Print the runs of a data set side by side; 2 when none were recorded yet."""
    parser = argparse.ArgumentParser(prog="python -m helpers.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="data set name, e.g. cdnow")
    args = parser.parse_args(argv)
    try:
        table = compare_runs(args.dataset)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
