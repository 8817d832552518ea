"""The bench's peer: PyMC-Marketing's BG/NBD (and Pareto/NBD) MAP fits on the bench's summary, timed.

Runs in its own virtual environment (``make bench-peer-env``: ``.venv-peer``
from ``benchmarks/peer-requirements.txt``), never in the project's, and imports
nothing of the project: :func:`benchmarks.steps_clv.step_peer` writes the
summary (frequency, recency, T per customer, in days) to a CSV file, runs

    .venv-peer/bin/python benchmarks/peer_pymc.py SUMMARY.csv OUT.json --fits bgnbd:default bgnbd:flat pareto:default

and reads back, per model and prior set, the seconds of
``Model(model_config).fit(data, method="map")`` (building the PyMC model, compiling
its log density and gradient, and L-BFGS-B in ``pm.find_MAP``), the fitted
parameters and the versions. ``default``: PyMC-Marketing's own priors (what a user
gets); ``flat``: ``HalfFlat`` on every parameter, so the MAP is the maximum-likelihood
estimate (``find_MAP`` maximises the log density without the transforms' Jacobian).
Pareto/NBD with flat priors is left out by default: it takes about three times its
default fit (95 s against 34 s at 100k customers on this machine).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from importlib.metadata import version
from typing import Any

#: The parameters reported (PyMC-Marketing's names are lifetimes' names).
PARAMETERS = {"bgnbd": ("r", "alpha", "a", "b"), "pareto": ("r", "alpha", "s", "beta")}
#: The fits the bench asks for (model:priors).
FITS = ("bgnbd:default", "bgnbd:flat", "pareto:default")


def fit(model: str, data: Any, priors: str) -> dict[str, Any]:
    """One MAP fit: seconds (model build, compile and optimise), parameters, the priors used.

    An untimed fit on 200 customers first: pytensor compiles the model's C code
    once and caches it on disk, so the timed fit is what every later run costs.
    """
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel

    cls = BetaGeoModel if model == "bgnbd" else ParetoNBDModel
    config = {name: Prior("HalfFlat") for name in PARAMETERS[model]} if priors == "flat" else None
    cls(model_config=config).fit(data.head(200), method="map", progressbar=False, random_seed=0)  # C code cached
    t0 = time.perf_counter()
    fitted = cls(model_config=config)
    fitted.fit(data, method="map", progressbar=False, random_seed=0)
    seconds = time.perf_counter() - t0
    values = fitted.fit_summary()
    return {"seconds": round(seconds, 3), "params": {k: float(values[k]) for k in PARAMETERS[model]},
            "priors": {k: str(v) for k, v in fitted.model_config.items()
                       if k in PARAMETERS[model] or (k.endswith("_dropout") and "a" not in fitted.model_config)}}


def main(argv: list[str] | None = None) -> int:
    """Fit each model with each prior set on the summary; write the results as JSON."""
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", help="CSV with frequency, recency, T per customer")
    parser.add_argument("out", help="JSON file to write")
    parser.add_argument("--fits", nargs="+", default=list(FITS), metavar="MODEL:PRIORS",
                        help=f"models ({', '.join(PARAMETERS)}) and prior sets (default, flat) to fit")
    args = parser.parse_args(argv)
    data = pd.read_csv(args.summary)
    data.insert(0, "customer_id", range(len(data)))
    result: dict[str, Any] = {"versions": {p: version(p) for p in ("pymc-marketing", "pymc", "pytensor")},
                              "customers": len(data)}
    for model, priors in (entry.split(":") for entry in args.fits):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result[f"{model}_{priors}"] = fit(model, data, priors)
            except Exception as exc:  # reported, never fatal: the bench goes on
                result[f"{model}_{priors}"] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        with open(args.out, "w") as handle:  # kept if a later fit is stopped
            json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
