"""Customer value over the lifetime: BTYD models, their validation, Gamma-Gamma spend, CLV, lifecycle.

Stage 05. The "buy till you die" (BTYD) models of the ``lifetimes`` package
describe each customer by three numbers, computed here at ``as_of`` from the
clean transactions (a purchase is a purchase day, as in stage 04):

- ``frequency`` - repeat purchases (purchase days after the first);
- ``recency``   - time from the first to the last purchase (**not** RFM recency);
- ``T``         - the customer's age: time from the first purchase to ``as_of``.

Time is measured in a chosen unit (days or weeks) as a real number of days
divided by the unit, which is how Fader, Hardie and Lee (2005) measured CDNOW
(and what the published-results tests check). Models are fitted on a
calibration period and compared on the holdout period that follows it; the
chosen one is refitted on everything up to ``as_of``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.generate_data import beta_geometric_nbd_model, modified_beta_geometric_nbd_model, pareto_nbd_model
from lifetimes.utils import ConvergenceError
from scipy.stats import spearmanr

from helpers.errors import DataError
from helpers.rfm import log_start, purchase_days

UNIT_DAYS = {"D": 1.0, "W": 7.0}
DAYS_PER_MONTH = 365.25 / 12
MODEL_CLASSES = {"bgnbd": BetaGeoFitter, "pareto": ParetoNBDFitter, "mbgnbd": ModifiedBetaGeoFitter}
MODEL_LABELS = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD", "mbgnbd": "MBG/NBD"}
#: What a lifetimes fit raises when it fails (caught, reported and remedied here).
FIT_ERRORS = (ConvergenceError, ValueError, FloatingPointError, np.linalg.LinAlgError)
#: lifetimes' simulator of each model and the parameter names it takes.
GENERATORS = {BetaGeoFitter: (beta_geometric_nbd_model, ("r", "alpha", "a", "b")),
              ParetoNBDFitter: (pareto_nbd_model, ("r", "alpha", "s", "beta")),
              ModifiedBetaGeoFitter: (modified_beta_geometric_nbd_model, ("r", "alpha", "a", "b"))}


# ---------------------------------------------------------------------------
# summaries


def btyd_summary(transactions: pd.DataFrame, as_of: dt.date, unit: str = "W") -> pd.DataFrame:
    """Frequency, recency, T and mean repeat spend per customer at ``as_of``.

    ``monetary_value`` is the mean amount of the repeat purchase days (0 for
    one-time buyers), the input Gamma-Gamma expects.

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b"], "amount": [5.0, 1.0, 3.0, 2.0],
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-15", "2020-01-29"])})
    >>> btyd_summary(tx, dt.date(2020, 1, 29), "W").values.tolist()
    [[1.0, 2.0, 4.0, 3.0], [0.0, 0.0, 0.0, 0.0]]
    """
    days = purchase_days(transactions, as_of)
    g = days.groupby("customer_id", sort=True)
    first, last, n = g["day"].min(), g["day"].max(), g.size()
    unit_days = UNIT_DAYS[unit]
    repeat_total = g["amount"].sum() - g["amount"].first()
    frequency = (n - 1).astype(float)
    return pd.DataFrame({
        "frequency": frequency,
        "recency": (last - first).dt.days / unit_days,
        "T": (pd.Timestamp(as_of) - first).dt.days / unit_days,
        "monetary_value": np.where(frequency > 0, repeat_total / frequency.where(frequency > 0, 1), 0.0),
    })


def calibration_holdout(transactions: pd.DataFrame, calibration_end: dt.date, as_of: dt.date,
                        unit: str = "W") -> pd.DataFrame:
    """The calibration summary plus purchases in the holdout period (``calibration_end``, ``as_of``].

    Customers first seen in the holdout are not part of the calibration cohort and are left out.
    """
    if calibration_end >= as_of:
        raise DataError(f"calibration end {calibration_end} must be before as_of {as_of}")
    days = purchase_days(transactions, as_of)
    first_day = days["day"].min().date()
    if first_day > calibration_end:
        raise DataError(
            f"no purchases in the calibration period: the first purchase is on {first_day}, after the calibration "
            f"end {calibration_end} ({(as_of - calibration_end).days} holdout days before as_of {as_of}). "
            "Shorten clv.holdout_days so the calibration period holds purchases."
        )
    cal = btyd_summary(transactions, calibration_end, unit)
    later = days[days["day"] > pd.Timestamp(calibration_end)]
    if not later["customer_id"].isin(cal.index).any():
        raise DataError(
            f"no purchases in the holdout period {calibration_end} to {as_of} by the {len(cal)} customers of the "
            "calibration period, so the models cannot be compared on it. Check as_of (is the data complete up to "
            "it?) or change clv.holdout_days."
        )
    cal["frequency_holdout"] = later.groupby("customer_id").size().reindex(cal.index, fill_value=0).astype(float)
    cal["duration_holdout"] = (as_of - calibration_end).days / UNIT_DAYS[unit]
    return cal


# ---------------------------------------------------------------------------
# fitting


@dataclass
class Fit:
    """A fitted (or failed) BTYD model, with what it took to get there."""

    name: str
    penalizer: float
    model: Any = None
    message: str = ""
    attempts: list[str] = field(default_factory=list)
    boundary: str = ""

    @property
    def ok(self) -> bool:
        return self.model is not None

    @property
    def label(self) -> str:
        return f"{MODEL_LABELS[self.name]} (penalizer {self.penalizer:g})"


#: BTYD models describe how purchase rates and dropout vary across a population; below this many
#: customers their four parameters are not identified (one customer gives r in the hundreds of thousands).
MIN_CUSTOMERS = 10


def _check_fittable(summary: pd.DataFrame, what: str) -> None:
    if summary.empty:
        raise DataError(f"{what}: no customers to fit")
    if (summary["frequency"] == 0).all():
        raise DataError(
            f"{what}: none of the {len(summary)} customers made a repeat purchase, so the BTYD models have "
            "nothing to learn the purchase rate from. Use a longer period (an earlier first date or a later "
            "as_of), or a shorter holdout."
        )
    if len(summary) < MIN_CUSTOMERS:
        raise DataError(
            f"{what}: only {len(summary)} customer(s); the BTYD models describe how customers differ and need at "
            f"least {MIN_CUSTOMERS}. Collect more customers (a longer period or the whole customer base)."
        )


def _generator(cls: type) -> tuple[Any, tuple[str, ...]]:
    """lifetimes' simulator for a fitter class (or a subclass of one)."""
    return next(GENERATORS[base] for base in cls.__mro__ if base in GENERATORS)


def distinct_rows(summary: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct (frequency, recency, T) rows of ``summary`` with their counts, and each customer's row.

    The BTYD likelihoods and predictions depend on a customer only through
    these three numbers, so customers who share them can be fitted as one
    row with a weight and predicted once. ``rows.iloc[inverse]`` gives back
    the customers' rows in the order of ``summary``.

    >>> s = pd.DataFrame({"frequency": [1.0, 0.0, 1.0], "recency": [2.0, 0.0, 2.0], "T": [5.0, 3.0, 5.0]})
    >>> rows, inverse = distinct_rows(s)
    >>> rows["weight"].tolist(), inverse.tolist()
    ([1, 2], [1, 0, 1])
    """
    cols = ["frequency", "recency", "T"]
    codes = summary.groupby(cols, sort=True, observed=True).ngroup().to_numpy()
    counts = np.bincount(codes)
    first = np.zeros(len(counts), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]  # first customer of each distinct row
    rows = summary.iloc[first][cols].reset_index(drop=True).astype(float)
    rows["weight"] = counts
    return rows, codes


def _fit_lifetimes(cls: type, penalizer: float, summary: pd.DataFrame, tol: float, *, weighted: bool,
                   initial: np.ndarray | None = None) -> Any:
    """One ``lifetimes`` fit, on distinct rows with weights (``weighted``) or on every customer.

    Both give the same parameters: BG/NBD and MBG/NBD average the weighted
    log-likelihood; Pareto/NBD sums it and divides by the mean weight, so its
    penalizer is scaled by rows / customers to keep the same optimum. After a
    weighted fit ``model.data`` holds the customers (weight 1), so lifetimes'
    plots see the population, not the distinct rows.
    """
    kwargs: dict[str, Any] = {"tol": tol}
    if cls is ParetoNBDFitter:
        kwargs["maxiter"] = 20_000
    f, r, t = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    kwargs["initial_params"] = default_start(cls) if initial is None else initial
    if not weighted:
        return cls(penalizer_coef=penalizer).fit(f, r, t, **kwargs)
    rows, _ = distinct_rows(summary)
    w = rows["weight"].to_numpy()
    pen = penalizer * len(rows) / len(summary) if cls is ParetoNBDFitter else penalizer
    model = cls(penalizer_coef=pen).fit(rows["frequency"].to_numpy(), rows["recency"].to_numpy(),
                                        rows["T"].to_numpy(), weights=w, **kwargs)
    model.penalizer_coef = penalizer
    model.data = pd.DataFrame({"frequency": f.astype(int), "recency": r, "T": t, "weights": np.ones(len(f), int)},
                              index=summary.index)
    generate, names = _generator(cls)
    model.generate_new_data = lambda size=1: generate(t, *model._unload_params(*names), size=size)
    return model


def default_start(cls: type) -> np.ndarray:
    """lifetimes' own deterministic starting point, made explicit for every model.

    BG/NBD and MBG/NBD start from log parameters 0.1; lifetimes' Pareto/NBD
    draws its start from numpy's global random generator (unseeded: reruns
    differ), so it gets the centre of that draw, 1.0 for every (time-scaled)
    parameter.

    >>> default_start(ParetoNBDFitter).tolist(), default_start(BetaGeoFitter).tolist()
    ([1.0, 1.0, 1.0, 1.0], [0.1, 0.1, 0.1, 0.1])
    """
    return np.ones(4) if issubclass(cls, ParetoNBDFitter) else np.full(4, 0.1)


def seeded_start(cls: type, seed: int) -> np.ndarray:
    """A second, seeded starting point (the remedy when the first start does not converge).

    >>> bool(np.all(seeded_start(ParetoNBDFitter, 1) == seeded_start(ParetoNBDFitter, 1)))
    True
    """
    rng = np.random.default_rng(seed)
    if issubclass(cls, ParetoNBDFitter):
        return rng.uniform(0.3, 3.0, 4)
    return rng.normal(0.0, 0.7, 4)


#: Beyond these a fitted parameter sits on the boundary of the model (see :func:`boundary_problems`).
SHAPE_MAX = 100.0
SHAPE_MIN = 1e-3
BETA_MIN = 1e-3
BETA_MAX = 1e4
SCALE_MIN = 1e-4  # alpha and Pareto's beta relative to the oldest customer's age


def boundary_problems(name: str, params: dict[str, float], t_max: float | None = None) -> list[str]:
    """What is wrong with fitted parameters on the model's boundary, in business terms (empty: sound).

    A "converged" fit can sit where the model degenerates: a Gamma shape
    exploding (with its scale) means the model found no difference between
    customers' rates; a Beta collapsing to 0 and 1 means customers either never
    drop out or drop out at once; a scale (alpha, Pareto's beta) collapsing to
    0 against the oldest customer's age ``t_max`` means rates without bound.
    Predictions from such fits are not a forecast of this population.

    >>> boundary_problems("bgnbd", {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4})
    []
    >>> boundary_problems("mbgnbd", {"r": 22462.0, "alpha": 411752.0, "a": 0.5, "b": 1.0})[0][:43]
    'r = 2.246e+04 explodes (alpha = 4.118e+05):'
    >>> boundary_problems("bgnbd", {"r": 0.5, "alpha": 3.0, "a": 1e-9, "b": 2e-7})[0][-51:]
    'customers either never drop out or drop out at once'
    >>> boundary_problems("bgnbd", {"r": 0.5, "alpha": 3.0, "a": 3.9e-7, "b": 5080.0})[0].split(": ")[1]
    "the drop-out probability collapses to 0, so no customer ever drops out and everyone stays 'alive'"
    """
    out = []
    values = np.array(list(params.values()), dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        return [f"parameters not finite and positive: {params}"]
    r, alpha = params["r"], params["alpha"]
    if r > SHAPE_MAX:
        out.append(f"r = {r:.4g} explodes (alpha = {alpha:.4g}): purchase rates do not vary between customers "
                   "(every customer would buy at the same rate)")
    elif r < SHAPE_MIN:
        out.append(f"r = {r:.3g} collapses to 0: almost every customer's purchase rate would be zero")
    if t_max and alpha / t_max < SCALE_MIN:
        out.append(f"alpha = {alpha:.3g} collapses to 0: purchase rates without bound")
    if name == "pareto":
        s_, beta = params["s"], params["beta"]
        if t_max and beta / t_max < SCALE_MIN:
            out.append(f"beta = {beta:.3g} collapses to 0: drop-out rates without bound, customers drop out at once")
        if s_ > SHAPE_MAX:
            out.append(f"s = {s_:.4g} explodes (beta = {beta:.4g}): drop-out rates do not vary between customers")
        elif s_ < SHAPE_MIN:
            out.append(f"s = {s_:.3g} collapses to 0: customers either never drop out or drop out at once")
    else:
        a, b = params["a"], params["b"]
        if a < BETA_MIN and b < BETA_MIN:
            out.append(f"a = {a:.3g} and b = {b:.3g}: the drop-out Beta collapses to 0 and 1, so customers either "
                       "never drop out or drop out at once")
        elif a < BETA_MIN:
            out.append(f"a = {a:.3g} (b = {b:.3g}): the drop-out probability collapses to 0, so no customer ever "
                       "drops out and everyone stays 'alive'")
        elif b < BETA_MIN:
            out.append(f"b = {b:.3g} (a = {a:.3g}): the drop-out probability collapses to 1, so every customer "
                       "drops out right after a purchase")
        elif a > BETA_MAX and b > BETA_MAX:
            out.append(f"a = {a:.4g} and b = {b:.4g} explode: every customer has the same chance of dropping out "
                       "after a purchase")
    return out


def starting_values(cls: type, summary: pd.DataFrame, penalizer: float, sample: int = 20_000,
                    seed: int = 0) -> np.ndarray | None:
    """Starting values for a large fit: the parameters fitted on a seeded sample of customers.

    Returned in the form ``lifetimes`` expects as ``initial_params`` for the
    full data (log parameters for BG/NBD and MBG/NBD, natural ones for
    Pareto/NBD, with time scaled so the oldest customer's age is 1). Returns
    None for populations of at most ``sample`` customers, or if the sample
    fit fails (lifetimes' own start is used then).
    """
    if len(summary) <= sample:
        return None
    part = summary.sample(sample, random_state=seed)
    try:
        model = _fit_lifetimes(cls, penalizer, part, 1e-5, weighted=True)
    except FIT_ERRORS:
        return None
    params = model.params_.copy()
    scale = 1.0 / summary["T"].max()  # lifetimes' own time scaling of the full data
    for name in ("alpha", "beta"):
        if name in params:
            params[name] *= scale
    values = params.to_numpy(dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        return None
    return values if cls is ParetoNBDFitter else np.log(values)


def fit_btyd(name: str, summary: pd.DataFrame, penalizer: float = 0.0, *, weighted: bool = True,
             seed: int = 42) -> Fit:
    """Fit one BTYD model; on failure try the remedies and say what happened.

    The fit runs on the distinct (frequency, recency, T) rows with weights
    (``weighted``; same optimum as one row per customer, see
    :func:`_fit_lifetimes`), from :func:`starting_values` fitted on a sample
    when the population is large and from :func:`default_start` otherwise.
    lifetimes scales time so the oldest customer's age is 1, so days and weeks
    give the same fit. Every start is deterministic (``seed``), so reruns agree.

    The remedies, in order: a second, seeded starting point, a looser
    tolerance, then a larger penalizer. A fit counts as failed when lifetimes
    raises (``ConvergenceError``, linear algebra errors), the parameters are
    not finite and positive, or they sit on the model's boundary
    (:func:`boundary_problems`); ``Fit.boundary`` then says what that means,
    and no remedy is tried (the penalizer grid of the comparison is the place
    for shrinkage, and lifetimes' likelihood is slow near the boundary).
    """
    _check_fittable(summary, MODEL_LABELS[name])
    cls = MODEL_CLASSES[name]
    quiet = contextlib.redirect_stdout(io.StringIO())
    with warnings.catch_warnings(), np.errstate(all="ignore"), quiet:
        warnings.simplefilter("ignore")
        start = starting_values(cls, summary, penalizer, seed=seed) if weighted else None
    raised = max(10 * penalizer, 0.01)
    tries = [(penalizer, 1e-7, start, "as asked"),
             (penalizer, 1e-7, seeded_start(cls, seed), "other starting values (seeded)"),
             (penalizer, 1e-5, None, "looser tolerance 1e-5"), (raised, 1e-7, None, f"penalizer raised to {raised:g}")]
    result = Fit(name, penalizer)
    for pen, tol, initial, how in tries:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")  # lifetimes prints the optimizer's report and warns; we report ourselves
                model = _fit_lifetimes(cls, pen, summary, tol, weighted=weighted, initial=initial)
        except FIT_ERRORS as exc:
            result.attempts.append(f"{how}: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}")
            continue
        params = model.params_.to_numpy(dtype=float)
        if not np.all(np.isfinite(params)) or np.any(params <= 0) or np.any(params > 1e8):
            result.attempts.append(f"{how}: degenerate parameters {np.round(params, 4).tolist()}")
            continue
        problems = boundary_problems(name, {k: float(v) for k, v in model.params_.items()}, float(summary["T"].max()))
        if problems:  # where these data's likelihood is highest: another start or tolerance would not move it
            result.boundary = problems[0]
            result.attempts.append(f"{how}: boundary solution ({'; '.join(problems)})")
            break
        result.model, result.penalizer, result.boundary = model, pen, ""
        result.message = "converged" if how == "as asked" else f"converged after remedy ({how})"
        result.attempts.append(f"{how}: converged")
        return result
    result.message = (f"unsound: {result.boundary}" if result.boundary else "did not converge") + \
        " (" + "; ".join(result.attempts) + ")"
    return result


def log_likelihood(fit: Fit, summary: pd.DataFrame) -> float:
    """The model's total log-likelihood on ``summary`` (no penalty), as reported in the papers."""
    f, r, t = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    params = fit.model.params_.to_numpy(dtype=float)
    if fit.name == "pareto":
        return float(np.sum(ParetoNBDFitter._conditional_log_likelihood(params, f, r, t)))
    cls = MODEL_CLASSES[fit.name]
    return float(-cls._negative_log_likelihood(np.log(params), f, r, t, np.ones_like(f), 0.0) * len(f))


def _on_distinct_rows(summary: pd.DataFrame, compute: Any) -> pd.Series:
    """Evaluate ``compute(frequency, recency, T)`` once per distinct row and spread it over the customers."""
    rows, inverse = distinct_rows(summary)
    with np.errstate(all="ignore"):
        values = np.asarray(compute(rows["frequency"].to_numpy(), rows["recency"].to_numpy(), rows["T"].to_numpy()),
                            dtype=float)
    return pd.Series(values[inverse], index=summary.index)


def expected_purchases(fit: Fit, summary: pd.DataFrame, t: float) -> pd.Series:
    """Expected purchases in the next ``t`` time units for each customer of ``summary``."""
    model = fit.model
    return _on_distinct_rows(summary, lambda f, r, T: model.conditional_expected_number_of_purchases_up_to_time(t, f, r, T))


def p_alive(fit: Fit, summary: pd.DataFrame) -> pd.Series:
    """Probability that each customer is still active at the end of ``summary``'s period."""
    model = fit.model
    return _on_distinct_rows(summary, model.conditional_probability_alive).clip(0, 1)


def period_transactions(fit: Fit, summary: pd.DataFrame, max_frequency: int = 7, sample: int = 20_000,
                        seed: int = 0) -> pd.DataFrame:
    """Share of customers with 0, 1, ... repeat purchases: actual against simulated from the fitted model.

    The check of lifetimes' ``plot_period_transactions``, on a seeded sample
    of at most ``sample`` customers (lifetimes' simulator is a Python loop per
    customer) and as shares, so that populations of any size compare. The
    last row counts ``max_frequency`` or more.
    """
    part = summary.sample(min(sample, len(summary)), random_state=seed)
    generate, names = _generator(type(fit.model))
    state = np.random.get_state()
    try:
        np.random.seed(seed)  # lifetimes' simulators draw from numpy's global generator
        simulated = generate(part["T"].to_numpy(), *fit.model._unload_params(*names), size=len(part))
    finally:
        np.random.set_state(state)

    def shares(freq: pd.Series) -> pd.Series:
        counts = freq.clip(upper=max_frequency).astype(int).value_counts()
        return (counts.reindex(range(max_frequency + 1), fill_value=0) / len(freq)).rename_axis("repeat_purchases")

    return pd.DataFrame({"actual": shares(part["frequency"]), "model": shares(simulated["frequency"])})


# ---------------------------------------------------------------------------
# validation on the holdout


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
    """Customers in ten equal groups by predicted holdout purchases (10 = highest), predicted vs actual means."""
    rank = predicted.rank(method="first")
    decile = np.ceil(rank * 10 / len(rank)).astype(int)
    table = pd.DataFrame({"decile": decile, "predicted": predicted, "actual": actual}).groupby("decile")
    out = table.agg(customers=("actual", "size"), predicted=("predicted", "mean"), actual=("actual", "mean"))
    return out.round(3)


def non_finite_predictions(fit: Fit, summary: pd.DataFrame, t: float, predicted: pd.Series | None = None) -> int:
    """How many customers get a non-finite expected purchases over ``t`` or P(alive) (0: usable).

    lifetimes' hypergeometric terms overflow for some parameters and customers;
    such a fit must not price anyone. ``predicted`` passes the caller's
    :func:`expected_purchases` over ``t`` when it has them already.
    """
    predicted = expected_purchases(fit, summary, t) if predicted is None else predicted
    alive = _on_distinct_rows(summary, fit.model.conditional_probability_alive)
    return int((~np.isfinite(predicted.to_numpy()) | ~np.isfinite(alive.to_numpy())).sum())


def compare_models(calhold: pd.DataFrame, models: list[str], penalizers: list[float],
                   metric: str = "rmse", sample: int | None = None,
                   seed: int = 42) -> tuple[pd.DataFrame, dict[tuple[str, float], Fit]]:
    """Fit every model x penalizer on the calibration period and score it on the holdout.

    Returns the comparison table (one row per fit, best first by ``metric``,
    failed or unsound fits last with their reason in ``status``; ``customers``
    says how many were used) and the fits. With ``sample``, a larger cohort is
    compared on a sample of that many customers (seeded by ``seed``, as are
    the fits' starting values).
    """
    if sample is not None and len(calhold) > sample:
        calhold = calhold.sample(sample, random_state=seed).sort_index()
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
                predicted = expected_purchases(fit, calhold, horizon)
                bad = non_finite_predictions(fit, calhold, horizon, predicted)
                if bad:  # lifetimes' hypergeometric terms can overflow for extreme parameters
                    row["status"] = f"unusable: {bad} customers get a non-finite prediction"
                    fits[(name, pen)] = Fit(name, pen, None, row["status"], fit.attempts)
                    rows.append(row)
                    continue
                row |= holdout_metrics(predicted, actual)
                row["log_likelihood"] = round(log_likelihood(fit, calhold), 1)
                row["params"] = {k: round(float(v), 4) for k, v in fit.model.params_.items()}
            rows.append(row)
    table = pd.DataFrame(rows)
    if metric not in table or table[metric].isna().all():
        raise DataError("no BTYD model could be fitted on the calibration period:\n" +
                        "\n".join(f"  - {MODEL_LABELS[k[0]]}, penalizer {k[1]:g}: {f.message}" for k, f in fits.items()))
    order = table.sort_values([metric, "penalizer"], na_position="last", kind="stable").index
    return table.loc[order].reset_index(drop=True), fits


# ---------------------------------------------------------------------------
# spend and lifetime value


@dataclass
class SpendFit:
    """Gamma-Gamma spend model and the checks made before fitting it."""

    model: GammaGammaFitter
    correlation: float
    used: int
    excluded_non_positive: int
    one_time_buyers: int
    message: str = "converged"


def fit_spend(summary: pd.DataFrame, penalizer: float = 0.0) -> SpendFit:
    """Fit Gamma-Gamma on repeat buyers with positive mean spend.

    Reports the frequency-spend correlation (the model assumes independence)
    and how many customers were left out, and why. A fit that does not
    converge (very uneven spend, e.g. one customer spending a thousand times the
    median) is retried with larger penalizers; if none converges the error says so.
    """
    repeat = summary[summary["frequency"] > 0]
    positive = repeat[repeat["monetary_value"] > 0]
    if len(positive) < 10:
        raise DataError(f"Gamma-Gamma needs repeat buyers with positive spend; only {len(positive)} of "
                        f"{len(summary)} customers qualify ({len(repeat)} repeat buyers)")
    corr = float(positive[["frequency", "monetary_value"]].corr().iloc[0, 1])
    attempts = []
    for pen in dict.fromkeys([penalizer, max(penalizer, 0.001), max(penalizer, 0.01), max(penalizer, 0.1)]):
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                model = GammaGammaFitter(penalizer_coef=pen).fit(positive["frequency"], positive["monetary_value"])
        except FIT_ERRORS as exc:
            attempts.append(f"penalizer {pen:g}: {type(exc).__name__}")
            continue
        params = model.params_.to_numpy(dtype=float)
        if not np.all(np.isfinite(params)) or np.any(params <= 0):
            attempts.append(f"penalizer {pen:g}: degenerate parameters {np.round(params, 4).tolist()}")
            continue
        if model.params_["q"] <= 1:  # the population's mean spend v p / (q - 1) is undefined, expected spend < 0
            attempts.append(f"penalizer {pen:g}: q = {model.params_['q']:.3g} <= 1 (no finite mean spend)")
            continue
        message = "converged" if pen == penalizer else f"converged with penalizer {pen:g} ({'; '.join(attempts)})"
        return SpendFit(model, corr, len(positive), len(repeat) - len(positive), int((summary["frequency"] == 0).sum()),
                        message)
    top = positive["monetary_value"].max() / positive["monetary_value"].median()
    raise DataError(f"Gamma-Gamma gave no sound fit on {len(positive)} repeat buyers ({'; '.join(attempts)}); the highest "
                    f"mean spend is {top:,.0f} times the median: check the spend outliers of notebook 04")


def expected_spend(spend: SpendFit, summary: pd.DataFrame) -> pd.Series:
    """Expected mean spend per future purchase (one-time buyers get the population mean)."""
    values = spend.model.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"].clip(lower=0))
    return pd.Series(np.asarray(values, dtype=float), index=summary.index)


def lifetime_value(fit: Fit, spend_per_purchase: pd.Series, summary: pd.DataFrame, *, months: int, unit: str,
                   discount_rate_annual: float = 0.10, margin: float = 1.0,
                   days_per_month: float = DAYS_PER_MONTH) -> pd.DataFrame:
    """Discounted margin over the next ``months``: expected purchases per month x spend x margin.

    A month is ``days_per_month`` days (365.25/12) converted into the model's
    time unit, so the horizon is right whether the model counts days or weeks.
    The annual discount rate is applied monthly. Returns ``expected_purchases``
    (over the whole horizon) and ``clv``.
    """
    month = days_per_month / UNIT_DAYS[unit]
    monthly = (1 + discount_rate_annual) ** (1 / 12) - 1
    model = fit.model

    def per_row(f: np.ndarray, r: np.ndarray, T: np.ndarray) -> np.ndarray:
        # discounted expected purchases over the horizon, and the undiscounted total, per distinct row
        previous, discounted = np.zeros(len(f)), np.zeros(len(f))
        for i in range(1, months + 1):
            cumulative = np.asarray(model.conditional_expected_number_of_purchases_up_to_time(i * month, f, r, T),
                                    dtype=float)
            discounted += (cumulative - previous) / (1 + monthly) ** i
            previous = cumulative
        return np.stack([discounted, previous], axis=1)

    rows, inverse = distinct_rows(summary)
    with np.errstate(all="ignore"):
        both = per_row(rows["frequency"].to_numpy(), rows["recency"].to_numpy(), rows["T"].to_numpy())[inverse]
    value = pd.Series(both[:, 0], index=summary.index) * spend_per_purchase * margin
    return pd.DataFrame({"expected_purchases": both[:, 1], "clv": value.clip(lower=0)}, index=summary.index)


# ---------------------------------------------------------------------------
# lifecycle


def purchase_halves(transactions: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Repeat purchase days in the first and the second half of each customer's tenure.

    The first purchase (acquisition) is not counted; the halves split the time
    from the first purchase to ``as_of``.

    >>> tx = pd.DataFrame({"customer_id": ["a"] * 4, "amount": [1.0] * 4,
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-20", "2020-03-01", "2020-03-20"])})
    >>> purchase_halves(tx, dt.date(2020, 3, 31)).values.tolist()
    [[1, 2]]
    """
    days = purchase_days(transactions, as_of)
    first = days.groupby("customer_id")["day"].transform("min")
    midpoint = first + (pd.Timestamp(as_of) - first) / 2
    repeat = days["day"] > first
    halves = pd.DataFrame({"customer_id": days["customer_id"],
                           "repeat_first_half": repeat & (days["day"] < midpoint),
                           "repeat_second_half": repeat & (days["day"] >= midpoint)})
    return halves.groupby("customer_id", sort=True).sum().astype("int64")


LIFECYCLE_RULE = """\
1. acquisition  first purchase less than {acquisition_days} days before as_of;
2. termination  otherwise, P(alive) below {termination_p_alive};
3. decline      otherwise, P(alive) below {decline_p_alive}; or no repeat purchase since acquisition; or
                repeat purchases in the second half of the customer's tenure at least {trend_change:.0%}
                fewer than in the first half;
4. growth       otherwise, at least 2 repeat purchases in the second half and {trend_change:.0%} more than
                in the first half;
5. maturity     the rest: alive and buying at a steady rate."""


def lifecycle_stage(tenure_days: pd.Series, alive: pd.Series, halves: pd.DataFrame, *, acquisition_days: int,
                    decline_p_alive: float, termination_p_alive: float, trend_change: float = 0.5) -> pd.Series:
    """The lifecycle stage of each customer, by the rule in :data:`LIFECYCLE_RULE` (first match wins).

    >>> halves = pd.DataFrame({"repeat_first_half": [0, 3, 3, 0, 4, 1, 2],
    ...                        "repeat_second_half": [0, 3, 3, 0, 1, 3, 2]})
    >>> lifecycle_stage(pd.Series([10, 400, 400, 400, 400, 400, 400]), pd.Series([.9, .1, .4, .9, .9, .9, .9]),
    ...                 halves, acquisition_days=90, decline_p_alive=0.5, termination_p_alive=0.2).tolist()
    ['acquisition', 'termination', 'decline', 'decline', 'decline', 'growth', 'maturity']
    """
    a, b = halves["repeat_first_half"].to_numpy(), halves["repeat_second_half"].to_numpy()
    conditions = [
        tenure_days.to_numpy() < acquisition_days,
        alive.to_numpy() < termination_p_alive,
        (alive.to_numpy() < decline_p_alive) | (a + b == 0) | (b <= (1 - trend_change) * a),
        (b >= 2) & (b >= (1 + trend_change) * a),
    ]
    stages = np.select(conditions, ["acquisition", "termination", "decline", "growth"], default="maturity")
    return pd.Series(stages, index=tenure_days.index, dtype=object)


# ---------------------------------------------------------------------------
# choosing, assembling, saving


def choose_model(comparison: pd.DataFrame, metric: str) -> tuple[str, float, str]:
    """The best fit of :func:`compare_models` and a sentence saying why it was chosen."""
    ok = comparison.dropna(subset=[metric])
    best = ok.iloc[0]
    runner = ok[ok["key"] != best["key"]].head(1)
    why = (f"{best['model']} with penalizer {best['penalizer']:g} has the lowest holdout {metric.upper()} "
           f"({best[metric]:.4f} purchases per customer; MAE {best['mae']:.4f}, rank correlation "
           f"{best['spearman']:.3f}) and predicts {best['predicted_total']:,.0f} holdout purchases against "
           f"{best['actual_total']:,.0f} actual ({best['total_error_pct']:+.1f}%).")
    if not runner.empty:
        r = runner.iloc[0]
        gap = 100 * (r[metric] - best[metric]) / best[metric]
        why += f" The best other model, {r['model']}, is {gap:.1f}% worse on {metric.upper()}."
        if gap < 1:
            why += " The difference is small: the models agree, and the choice matters little."
    failed = comparison[comparison[metric].isna()]
    if not failed.empty:
        why += f" {len(failed)} fit(s) failed and were not considered (see status)."
    return str(best["key"]), float(best["penalizer"]), why


def alive_path(fit: Fit, days: pd.Series, as_of: dt.date, unit: str) -> pd.DataFrame:
    """P(alive) of one customer on every day from the first purchase to ``as_of``.

    ``days`` are the customer's purchase days. On each day the customer's
    frequency, recency and age are those known on that day.
    """
    days = pd.Series(sorted(pd.to_datetime(days).dt.normalize().unique()))
    grid = pd.date_range(days.iloc[0], pd.Timestamp(as_of), freq="D")
    bought = np.searchsorted(days.to_numpy(), grid.to_numpy(), side="right")
    last = days.to_numpy()[bought - 1]
    summary = pd.DataFrame({
        "frequency": (bought - 1).astype(float),
        "recency": (last - days.iloc[0].to_datetime64()) / np.timedelta64(1, "D") / UNIT_DAYS[unit],
        "T": (grid - days.iloc[0]).days / UNIT_DAYS[unit],
    }, index=grid)
    return pd.DataFrame({"p_alive": p_alive(fit, summary), "purchase": grid.isin(days)}, index=grid)


def log_span_days(transactions: pd.DataFrame, as_of: dt.date) -> int:
    """Days from the first purchase in the log to ``as_of`` (what data-derived defaults are measured on)."""
    return (as_of - log_start(transactions, as_of)).days


#: The data-derived holdout: a third of the span in whole weeks, between these bounds (days).
HOLDOUT_MAX_DAYS = 273
HOLDOUT_MIN_DAYS = 28
HOLDOUT_RULE = (f"a third of the log's span (first purchase to as_of) in whole weeks, at most {HOLDOUT_MAX_DAYS} "
                f"days (39 weeks, as in Fader, Hardie and Lee 2005); a span under {3 * HOLDOUT_MIN_DAYS} days "
                "leaves no holdout")
#: The data-derived acquisition window: a sixth of the span, at most 90 days.
ACQUISITION_MAX_DAYS = 90
ACQUISITION_RULE = f"a sixth of the log's span (first purchase to as_of), at most {ACQUISITION_MAX_DAYS} days, at least 1"


def default_holdout_days(span_days: int) -> int | None:
    """The holdout length when ``clv.holdout_days`` is not set (None: the log is too short for one).

    >>> default_holdout_days(545), default_holdout_days(365), default_holdout_days(60)
    (175, 119, None)
    >>> default_holdout_days(3650)
    273
    """
    days = min(HOLDOUT_MAX_DAYS, 7 * (span_days // 21))
    return days if days >= HOLDOUT_MIN_DAYS else None


def default_acquisition_days(span_days: int) -> int:
    """The acquisition window when ``lifecycle.acquisition_days`` is not set.

    >>> default_acquisition_days(545), default_acquisition_days(120), default_acquisition_days(0)
    (90, 20, 1)
    """
    return max(1, min(ACQUISITION_MAX_DAYS, span_days // 6))  # a log of one day: everyone was just acquired


def example_customer(summary: pd.DataFrame, alive: pd.Series) -> str | None:
    """A customer worth showing the P(alive) history of: a frequent buyer who is probably gone.

    The most frequent repeat buyer with P(alive) below 0.5 (ties: the lowest
    P(alive), then the key); when nobody is below 0.5, the repeat buyer with
    the lowest P(alive); None when nobody bought twice.

    >>> s = pd.DataFrame({"frequency": [0.0, 3.0, 5.0]}, index=["a", "b", "c"])
    >>> example_customer(s, pd.Series([1.0, 0.3, 0.9], index=s.index)), example_customer(s, pd.Series(1.0, s.index))
    ('b', 'c')
    """
    table = summary.assign(p=alive.reindex(summary.index))
    table = table[(table["frequency"] > 0) & table["p"].notna()].rename_axis("key").reset_index()
    if table.empty:
        return None
    gone = table[table["p"] < 0.5]
    pick = (gone.sort_values(["frequency", "p", "key"], ascending=[False, True, True]) if not gone.empty
            else table.sort_values(["p", "frequency", "key"], ascending=[True, False, True]))
    return str(pick["key"].iloc[0])


def own_spend(summary: pd.DataFrame) -> pd.Series:
    """Spend per purchase without a spend model: a repeat buyer's own mean, otherwise the repeat buyers' mean.

    The fallback when Gamma-Gamma cannot be fitted (no shrinkage towards the population).
    """
    repeat = summary.loc[summary["frequency"] > 0, "monetary_value"]
    overall = float(repeat[repeat > 0].mean()) if (repeat > 0).any() else 0.0
    own = summary["monetary_value"].where(summary["frequency"] > 0, overall).clip(lower=0)
    return own.astype(float)


def customer_value(customers: pd.DataFrame, transactions: pd.DataFrame, summary: pd.DataFrame, fit: Fit | None,
                   spend: SpendFit | pd.Series | None, as_of: dt.date, params: Any,
                   acquisition_days: int | None = None) -> pd.DataFrame:
    """Add the BTYD summary, P(alive), expected purchases, CLV, value tier and lifecycle stage.

    ``params`` is the run's :class:`helpers.config.Params` (``clv``, ``tiers`` and ``lifecycle`` sections).
    ``spend`` is a fitted Gamma-Gamma model or spend per purchase per customer (:func:`own_spend`).
    Without a forecast (``fit`` None) P(alive), expected purchases, spend, CLV and the value tier are
    missing, and the lifecycle rule runs without P(alive). ``acquisition_days`` overrides
    ``params.lifecycle.acquisition_days`` (the caller resolves a data-derived default).
    """
    from helpers.tiers import value_tiers

    c = params.clv
    out = customers.set_index("customer_id")
    btyd = summary.rename(columns={"frequency": "btyd_frequency", "recency": "btyd_recency", "T": "btyd_T",
                                   "monetary_value": "btyd_monetary"})
    out = out.join(btyd, how="left")
    if fit is not None and spend is not None:
        out["p_alive"] = p_alive(fit, summary)
        out["expected_spend"] = expected_spend(spend, summary) if isinstance(spend, SpendFit) else spend
        value = lifetime_value(fit, out["expected_spend"], summary, months=c.horizon_months, unit=c.time_unit,
                               discount_rate_annual=c.discount_rate_annual, margin=c.margin)
        out = out.join(value)
        out["value_tier"] = value_tiers(out["monetary_total"], out["clv"], params.tiers.current_high_share,
                                        params.tiers.potential_high_share)
    else:
        for column in ("p_alive", "expected_spend", "expected_purchases", "clv"):
            out[column] = np.nan
        out["value_tier"] = pd.Series(None, index=out.index, dtype=object)
    out = out.join(purchase_halves(transactions, as_of))
    lc = params.lifecycle
    days = lc.acquisition_days if acquisition_days is None else acquisition_days
    if days is None:
        days = default_acquisition_days(log_span_days(transactions, as_of))
    out["lifecycle_stage"] = lifecycle_stage(out["tenure_days"], out["p_alive"], out, acquisition_days=days,
                                             decline_p_alive=lc.decline_p_alive,
                                             termination_p_alive=lc.termination_p_alive, trend_change=lc.trend_change)
    return out.reset_index()
