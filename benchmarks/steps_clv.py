"""The bench's CLV steps (each runs in its own process): BTYD fits, CLV + P(alive), the intervals, the peer.

Plain lifetimes against :mod:`helpers.clv` for the fits and the point
estimates; for the intervals, :func:`helpers.clv.intervals.customer_intervals`
(the delta method, once per distinct row) against the point estimates of the
same fit in the same process (:func:`step_intervals`); PyMC-Marketing's MAP
fits on the same summary in their own environment (:func:`step_peer`).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def plain_fit(model: str, summary: pd.DataFrame, penalizer: float = 0.0) -> Any:
    """Plain lifetimes: one row per customer, from lifetimes' own start, to the tolerance of the fast fit."""
    from helpers import clv

    cls = clv.MODEL_CLASSES[model]
    f, r, t = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    extra = {"maxiter": 20_000} if model == "pareto" else {}
    return cls(penalizer_coef=penalizer).fit(f, r, t, tol=1e-7, initial_params=clv.default_start(cls), **extra)


def step_fit(summary_file: str, model: str, weighted: bool, unit_days: float = 1.0) -> dict[str, Any]:
    """One BTYD fit: plain lifetimes (``weighted=False``, one row per customer) or :func:`helpers.clv.fit_btyd`."""
    from helpers import clv

    summary = pd.read_parquet(summary_file)[["frequency", "recency", "T"]] / [1.0, unit_days, unit_days]
    t0 = time.perf_counter()
    if weighted:
        fit = clv.fit_btyd(model, summary)
        ok, message = fit.ok, fit.message
        params = fit.model.params_ if fit.ok else None
    else:
        try:
            with np.errstate(all="ignore"):
                params = plain_fit(model, summary).params_
            ok = bool(np.all(np.isfinite(params.to_numpy()))) and bool(np.all(params.to_numpy() > 0))
            message = "converged" if ok else f"degenerate parameters {params.round(4).to_dict()}"
        except Exception as exc:  # what the user of plain lifetimes meets: ConvergenceError, NaN
            ok, message, params = False, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]}", None
    seconds = time.perf_counter() - t0
    out = None
    if params is not None:  # report time-scale parameters in days whatever unit was fitted
        out = {k: float(v) * (unit_days if k in ("alpha", "beta") else 1.0) for k, v in params.items()}
    rows = len(summary.drop_duplicates()) if weighted else len(summary)
    return {"seconds": round(seconds, 3), "converged": ok, "message": message, "params": out, "rows_fitted": rows}


def _models(bg_params: dict[str, float], summary: pd.DataFrame) -> tuple[Any, Any]:
    """A BG/NBD model with ``bg_params`` and a Gamma-Gamma model fitted on the repeat buyers."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    bg = BetaGeoFitter()
    bg.params_ = pd.Series(bg_params)[["r", "alpha", "a", "b"]]
    bg.predict = bg.conditional_expected_number_of_purchases_up_to_time  # as fit() would set it
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    return bg, gg


def step_clv(summary_file: str, bg_params: dict[str, float], fast: bool, out: str, months: int = 12,
             monthly_discount: float = 0.01) -> dict[str, Any]:
    """CLV over ``months`` 30-day months and P(alive) for every customer, plain or fast."""
    from helpers import clv

    summary = pd.read_parquet(summary_file)
    bg, gg = _models(bg_params, summary)
    f, r, T, m = (summary[c] for c in ("frequency", "recency", "T", "monetary_value"))
    spend = gg.conditional_expected_average_profit(f, m)
    t0 = time.perf_counter()
    if fast:
        fit = clv.Fit("bgnbd", 0.0, bg)
        value = clv.lifetime_value(fit, spend, summary, months=months, unit="D",
                                   discount_rate_annual=(1 + monthly_discount) ** 12 - 1, days_per_month=30)["clv"]
        alive = clv.p_alive(fit, summary)
    else:
        with np.errstate(all="ignore"):
            value = gg.customer_lifetime_value(bg, f, r, T, m, time=months, discount_rate=monthly_discount, freq="D")
            alive = pd.Series(bg.conditional_probability_alive(f, r, T), index=summary.index)
    seconds = time.perf_counter() - t0
    pd.DataFrame({"clv": np.asarray(value, dtype=float), "p_alive": np.asarray(alive, dtype=float)},
                 index=summary.index).to_parquet(out)
    return {"seconds": round(seconds, 3)}


def step_simulate(summary_file: str, bg_params: dict[str, float], fast: bool, sample: int = 20_000,
                  seed: int = 0) -> dict[str, Any]:
    """The holdout check's draws: one simulated BG/NBD customer per customer of a seeded sample, over its own T.

    Plain is lifetimes' ``beta_geometric_nbd_model`` (a Python loop per
    customer); fast is :func:`helpers.clv.models.simulate.bgnbd`. Both return
    the shares of 0-6 and 7+ repeat purchases, to check that they agree.
    """
    from lifetimes.generate_data import beta_geometric_nbd_model

    from helpers.clv.models import simulate

    summary = pd.read_parquet(summary_file, columns=["T"])
    T = summary["T"].sample(min(sample, len(summary)), random_state=seed).to_numpy(dtype=float)
    params = [bg_params[k] for k in ("r", "alpha", "a", "b")]
    t0 = time.perf_counter()
    if fast:
        drawn = simulate.bgnbd(T, *params, np.random.default_rng(seed))
    else:
        np.random.seed(seed)
        drawn = beta_geometric_nbd_model(T, *params, size=len(T))
    seconds = time.perf_counter() - t0
    shares = drawn["frequency"].clip(upper=7).astype(int).value_counts(normalize=True).reindex(range(8), fill_value=0)
    return {"seconds": round(seconds, 4), "customers": len(T), "shares": shares.round(5).tolist()}


def step_intervals(summary_file: str, out: str, months: int = 12, horizon_days: float = 365.0) -> dict[str, Any]:
    """80% and 95% intervals (delta method) against the point estimates, on the same BG/NBD + Gamma-Gamma fit.

    The fits are untimed (``fit_btyd`` and ``fit_spend`` on the summary, in
    days). Timed, in this one process: the point estimates (expected purchases
    over ``horizon_days``, P(alive), CLV over ``months`` months; each once per
    distinct row, as stage 05 computes them), the parameters' uncertainty (the
    Hessians of both fits) and :func:`helpers.clv.intervals.customer_intervals`.
    ``intervals_over_point`` is (Hessians + intervals) / point seconds.
    """
    from helpers import clv
    from helpers.clv.intervals import customer_intervals
    from helpers.clv.uncertainty import parameter_uncertainty

    summary = pd.read_parquet(summary_file)
    fit, spend = clv.fit_btyd("bgnbd", summary), clv.fit_spend(summary)
    expected_spend = clv.expected_spend(spend, summary)
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        point = pd.DataFrame({"expected_purchases": clv.expected_purchases(fit, summary, horizon_days),
                              "p_alive": clv.p_alive(fit, summary),
                              "clv": clv.lifetime_value(fit, expected_spend, summary, months=months, unit="D")["clv"]})
    t1 = time.perf_counter()
    uncertainty = parameter_uncertainty(fit)
    t2 = time.perf_counter()
    intervals = customer_intervals(fit, summary, t=horizon_days, months=months, unit="D", spend=spend,
                                   uncertainty=uncertainty)
    t3 = time.perf_counter()
    intervals.to_parquet(out)
    agree = max(float(np.nanmax(np.abs(intervals[c] - point[c]) / np.maximum(np.abs(point[c]), 1e-12)))
                for c in point.columns)
    return {"seconds": round(t3 - t1, 3), "point_s": round(t1 - t0, 3), "hessian_s": round(t2 - t1, 3),
            "intervals_s": round(t3 - t2, 3), "intervals_over_point": round((t3 - t1) / max(t1 - t0, 1e-9), 2),
            "distinct_rows": int(len(summary[["frequency", "recency", "T"]].drop_duplicates())),
            "point_max_rel_diff": agree, "converged": bool(uncertainty.ok)}


#: The peer's virtual environment (``make bench-peer-env``) and how long its fits may take in all.
PEER_PYTHON = Path(__file__).resolve().parents[1] / ".venv-peer" / "bin" / "python"
PEER_TIMEOUT = 1800


def step_peer(summary_file: str, out: str, python: str = str(PEER_PYTHON), fits: tuple[str, ...] = (),
              timeout: float = PEER_TIMEOUT) -> dict[str, Any]:
    """PyMC-Marketing's MAP fits on the same summary, in its own environment (:mod:`benchmarks.peer_pymc`).

    Skipped, never failed, when the environment is missing; fits not done after
    ``timeout`` seconds are left out. ``fits``: ``model:priors`` entries (none: the
    script's own, ``peer_pymc.FITS``). ``seconds`` is the
    peer's BG/NBD fit with its default priors; each ``<model>_<priors>`` entry
    has its seconds and parameters (time in days, as :func:`step_fit` reports).
    """
    if not Path(python).exists():
        return {"skipped": "skipped: run make bench-peer-env", "seconds": None}
    table, result = Path(out).with_suffix(".csv"), Path(out).with_suffix(".json")
    pd.read_parquet(summary_file)[["frequency", "recency", "T"]].to_csv(table, index=False)
    script = Path(__file__).resolve().with_name("peer_pymc.py")
    t0 = time.perf_counter()
    try:
        done = subprocess.run([python, str(script), str(table), str(result), *(["--fits", *fits] if fits else [])],
                              capture_output=True, text=True, timeout=timeout)
        note = done.stderr.strip().splitlines()[-1][:200] if done.returncode else ""
    except subprocess.TimeoutExpired:
        note = f"stopped after {timeout:g} s"
    fits = json.loads(result.read_text()) if result.exists() else {}
    bg = fits.get("bgnbd_default", {})
    return {**fits, "seconds": bg.get("seconds"), "process_s": round(time.perf_counter() - t0, 1),
            "converged": "params" in bg, "message": note or bg.get("error", "")}
