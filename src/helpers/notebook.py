"""The one setup call every stage notebook starts with.

    params, catalog = setup(params_file, overrides, run_folder)

It loads and checks the parameters (the same as ``python -m helpers.run``),
sets the plotting theme, prints which data set and ``as_of`` the notebook
works on, and returns the run's :class:`~helpers.catalog.Catalog`: where
every artifact of this run is read and written. The runner passes
``run_folder`` (its staging folder for the run); opened by hand, a notebook
works in the run folder ``data/processed/<dataset>/<as_of>[-<experiment>]/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.catalog import Catalog
from helpers.config import Params, load_params


def setup(params_file: str | Path, overrides: dict[str, Any] | None = None,
          run_folder: str | Path | None = None) -> tuple[Params, Catalog]:
    """Load the parameters, set the plot theme and return ``(params, catalog)`` for this run."""
    import pandas as pd
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    pd.set_option("display.max_colwidth", 90)
    params = load_params(params_file, overrides)
    catalog = Catalog.of(params, run_folder)
    print(f"data set: {params.dataset} - {params.title}\nas_of:    {params.as_of}\nrun:      {catalog.run}")
    return params, catalog
