"""Validation on the holdout and the choice of model.

Every model x penalizer of the grid is fitted on the calibration period and
scored on the holdout that follows it (:func:`compare_models`); the best sound
fit is chosen with a sentence saying why (:func:`choose_model`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from helpers import sampling
from helpers.clv.models import MODEL_LABELS, BTYDModel, fit_btyd
from helpers.errors import DataError


def holdout_metrics(predicted: pd.Series, actual: pd.Series) -> dict[str, float]:
    """Per-customer errors and totals of predicted vs actual holdout purchases.

    >>> m = holdout_metrics(pd.Series([1.0, 2.0, 0.0]), pd.Series([1.0, 0.0, 0.0]))
    >>> m["mae"], m["predicted_total"], m["actual_total"]
    (0.6667, 3.0, 1.0)
    """
    err = predicted - actual
    rho = spearmanr(predicted, actual).statistic if predicted.nunique() > 1 and actual.nunique() > 1 else np.nan
    total_actual = float(actual.sum())
    return {
        "mae": round(float(err.abs().mean()), 4),
        "rmse": round(float(np.sqrt((err ** 2).mean())), 4),
        "spearman": round(float(rho), 4),
        "predicted_total": round(float(predicted.sum()), 1),
        "actual_total": round(total_actual, 1),
        "total_error_pct": round(100 * (float(predicted.sum()) - total_actual) / total_actual, 2) if total_actual else np.nan,
    }


def decile_table(predicted: pd.Series, actual: pd.Series) -> pd.DataFrame:
    """Customers in ten equal groups by predicted holdout purchases (10 = highest), predicted vs actual means.

    >>> decile_table(pd.Series(range(20), dtype=float), pd.Series([0.0] * 10 + [1.0] * 10))["actual"].tolist()[-2:]
    [1.0, 1.0]
    """
    rank = predicted.rank(method="first")
    decile = np.ceil(rank * 10 / len(rank)).astype(int)
    table = pd.DataFrame({"decile": decile, "predicted": predicted, "actual": actual}).groupby("decile")
    out = table.agg(customers=("actual", "size"), predicted=("predicted", "mean"), actual=("actual", "mean"))
    return out.round(3)


def compare_models(calhold: pd.DataFrame, models: list[str], penalizers: list[float],
                   metric: str = "rmse", sample: int | None = None,
                   seed: int = 42) -> tuple[pd.DataFrame, dict[tuple[str, float], BTYDModel]]:
    """Fit every model x penalizer on the calibration period and score it on the holdout.

    Returns the comparison table (one row per fit, best first by ``metric``,
    failed or unsound fits last with their reason in ``status``; ``customers``
    says how many were used) and the fits. With ``sample``, a larger cohort is
    compared on a sample of that many customers (:mod:`helpers.sampling`: the
    same customers in every run); ``seed`` seeds the fits' starting values.
    """
    if sampling.is_sampled(len(calhold), sample):
        calhold = calhold[sampling.sample_mask(calhold.index, sample)].sort_index()
    rows, fits = [], {}
    actual = calhold["frequency_holdout"]
    for name in models:
        for pen in penalizers:
            fit = fit_btyd(name, calhold, pen, seed=seed)
            fits[(name, pen)] = fit
            row: dict[str, Any] = {"model": MODEL_LABELS[name], "key": name, "penalizer": pen, "status": fit.message,
                                   "customers": len(calhold)}
            if fit.ok:
                horizon = calhold["duration_holdout"].iloc[0]
                predicted = fit.expected_purchases(calhold, horizon)
                bad = fit.non_finite_predictions(calhold, horizon, predicted)
                if bad:  # lifetimes' hypergeometric terms can overflow for extreme parameters
                    row["status"] = f"unusable: {bad} customers get a non-finite prediction"
                    fits[(name, pen)] = BTYDModel(name, pen, None, row["status"], fit.attempts)
                    rows.append(row)
                    continue
                row |= holdout_metrics(predicted, actual)
                row["log_likelihood"] = round(fit.log_likelihood(calhold), 1)
                row["params"] = {k: round(float(v), 4) for k, v in fit.model.params_.items()}
            rows.append(row)
    table = pd.DataFrame(rows)
    if metric not in table or table[metric].isna().all():
        raise DataError("no BTYD model could be fitted on the calibration period:\n" +
                        "\n".join(f"  - {MODEL_LABELS[k[0]]}, penalizer {k[1]:g}: {f.message}" for k, f in fits.items()))
    order = table.sort_values([metric, "penalizer"], na_position="last", kind="stable").index
    return table.loc[order].reset_index(drop=True), fits


#: Below this gap on the selection metric (percent) the best other model is as good: the choice matters little.
MODELS_AGREE_PCT = 1.0
#: The selection metrics in words.
METRIC_NAMES = {"rmse": "root mean squared error", "mae": "mean absolute error"}


def runner_up(comparison: pd.DataFrame, metric: str, model: str) -> tuple[str, float] | None:
    """The best fit of another model than ``model`` (a label, e.g. "Pareto/NBD") and how much worse it is on
    ``metric`` than ``model``'s best fit, in percent (None when no other model was scored).

    >>> c = pd.DataFrame({"model": ["Pareto/NBD", "BG/NBD", "BG/NBD"], "rmse": [1.0, 1.02, float("nan")]})
    >>> runner_up(c, "rmse", "Pareto/NBD")
    ('BG/NBD', 2.0000000000000018)
    """
    ok = comparison.dropna(subset=[metric])
    mine, others = ok[ok["model"] == model], ok[ok["model"] != model]
    if mine.empty or others.empty or not mine[metric].min() > 0:
        return None
    best_other = others.loc[others[metric].idxmin()]
    return str(best_other["model"]), float(100 * (best_other[metric] - mine[metric].min()) / mine[metric].min())


def choose_model(comparison: pd.DataFrame, metric: str) -> tuple[str, float, str]:
    """The best fit of :func:`compare_models` and a sentence saying why it was chosen."""
    ok = comparison.dropna(subset=[metric])
    best = ok.iloc[0]
    why = (f"{best['model']} with penalizer {best['penalizer']:g} has the lowest holdout {metric.upper()} "
           f"({best[metric]:.4f} purchases per customer; MAE {best['mae']:.4f}, rank correlation "
           f"{best['spearman']:.3f}) and predicts {best['predicted_total']:,.0f} holdout purchases against "
           f"{best['actual_total']:,.0f} actual ({best['total_error_pct']:+.1f}%).")
    if (rival := runner_up(ok, metric, best["model"])) is not None:
        other, gap = rival
        why += f" The best other model, {other}, is {gap:.1f}% worse on {metric.upper()}."
        if gap < MODELS_AGREE_PCT:
            why += " The difference is small: the models agree, and the choice matters little."
    failed = comparison[comparison[metric].isna()]
    if not failed.empty:
        why += f" {len(failed)} fit(s) failed and were not considered (see status)."
    return str(best["key"]), float(best["penalizer"]), why
