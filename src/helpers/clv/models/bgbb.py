"""BG/BB (Fader, Hardie and Shang 2010): BTYD in discrete time, one transaction opportunity per period.

For logs where a customer can act at most once per period - an annual
donation, a yearly renewal, attending an event that runs once a month - the
BG/BB describes each customer by (``frequency``, ``recency``, ``n_periods``)
counted in whole periods after the first (the "birth" period): ``frequency``
is the number of later periods with a transaction, ``recency`` the last of
them (0: none), ``n_periods`` the opportunities observed. While alive a
customer transacts in a period with probability p ~ Beta(alpha, beta); at the
start of each period an alive customer drops out with probability
theta ~ Beta(gamma, delta).

A family of :class:`~helpers.clv.models.base.BTYDModel` (key ``"bgbb"``:
``fit_btyd("bgbb", summary)`` works), so it fits with the same remedies, on
the distinct rows with their counts (Fader and Hardie's recency/frequency
matrix: 22 rows for the 11,104 donors) and predicts once per distinct row.
What differs is said in the class: its opportunities ``n_periods`` stand
where the continuous families have ``T`` (:func:`as_btyd`), its P(alive)
takes a horizon, its boundary is that of two Betas. It is chosen by the
shape of the log (one opportunity per period), not compared with the
continuous-time families: ``clv.models`` (config) admits only those, so
stage 05's comparison never fits it on weeks or days.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from lifetimes import BetaGeoBetaBinomFitter
from scipy.special import gammaln

from helpers.clv.models import simulate
from helpers.clv.models.base import BTYDModel
from helpers.clv.summary import as_purchase_days
from helpers.errors import DataError

#: The columns of a BG/BB summary (per customer, or per distinct row with ``weight``).
BGBB_COLUMNS = ["frequency", "recency", "n_periods"]
#: Beyond these a fitted Beta parameter sits on the boundary (the optimizer ran off to 0 or infinity).
PARAM_MIN, PARAM_MAX = 1e-4, 1e4


def period_summary(frame: pd.DataFrame, calibration_end: dt.date, freq: str = "Y",
                   as_of: dt.date | None = None) -> pd.DataFrame:
    """The BG/BB summary per customer from purchase days or transactions: one opportunity per calendar period.

    Periods are pandas calendar periods (``freq``: ``"Y"`` years, ``"Q"``,
    ``"M"``, ``"W"``); a customer's periods are counted from the one of their
    first purchase, and several purchases in one period are one transaction.
    The calibration runs to the period holding ``calibration_end``; with
    ``as_of``, ``frequency_holdout`` counts the active periods after it, up to
    the one holding ``as_of`` (``n_periods_holdout`` of them). Customers first
    seen after the calibration are left out (they are not the cohort).

    >>> d = pd.DataFrame({"customer_id": ["a", "a", "a", "a", "b"], "amount": 1.0,
    ...     "day": pd.to_datetime(["2001-03-01", "2002-05-01", "2002-06-01", "2005-01-01", "2004-07-01"])})
    >>> period_summary(d, dt.date(2004, 12, 31), "Y", as_of=dt.date(2006, 12, 31)).values.tolist()
    [[1, 1, 3, 1, 2], [0, 0, 0, 0, 2]]
    """
    days = as_purchase_days(frame, as_of if as_of is not None else days_max(frame))
    cal = pd.Period(calibration_end, freq).ordinal
    active = pd.DataFrame({"customer_id": days["customer_id"].to_numpy(),
                           "period": pd.PeriodIndex(days["day"], freq=freq).asi8}).drop_duplicates()
    birth = active.groupby("customer_id", sort=True)["period"].min()
    birth = birth[birth <= cal]
    active = active[active["customer_id"].isin(birth.index)]
    since = active["period"] - active["customer_id"].map(birth)
    in_cal = active["period"] <= cal
    g = since.where(in_cal & (since > 0)).groupby(active["customer_id"])
    out = pd.DataFrame({
        "frequency": g.count().reindex(birth.index, fill_value=0).astype(np.int64),
        "recency": g.max().reindex(birth.index).fillna(0).astype(np.int64),
        "n_periods": (cal - birth).astype(np.int64),
    })
    if as_of is not None:
        hold = active.loc[~in_cal, "customer_id"].value_counts()
        out["frequency_holdout"] = hold.reindex(birth.index, fill_value=0).astype(np.int64)
        out["n_periods_holdout"] = pd.Period(as_of, freq).ordinal - cal
    out.index.name = "customer_id"
    return out


def days_max(frame: pd.DataFrame) -> dt.date:
    """The last day in a log of purchase days (``day``) or transactions (``order_ts``)."""
    return pd.Timestamp(frame["day" if "day" in frame.columns else "order_ts"].max()).date()


def rf_matrix(summary: pd.DataFrame) -> pd.DataFrame:
    """The distinct (frequency, recency, n_periods) rows with the number of customers on each (``weight``).

    Fader and Hardie's recency/frequency matrix (lifetimes' ``load_donations``
    is one, with ``periods`` and ``weights``).

    >>> s = pd.DataFrame({"frequency": [1, 0, 1], "recency": [2, 0, 2], "n_periods": [3, 3, 3]})
    >>> rf_matrix(s).values.tolist()
    [[0, 0, 3, 1], [1, 2, 3, 2]]
    """
    if "weight" in summary.columns:
        return summary[BGBB_COLUMNS + ["weight"]].reset_index(drop=True)
    rows = summary.groupby(BGBB_COLUMNS, sort=True).size().rename("weight").reset_index()
    return rows.astype(np.int64)


def as_btyd(summary: pd.DataFrame, *, customers: bool = False) -> pd.DataFrame:
    """``summary`` in the columns the model interface reads: ``n_periods`` as ``T`` (the opportunities observed).

    With ``customers``, an :func:`rf_matrix` (``weight`` column) becomes one row per customer, as
    :meth:`BTYDModel.fit` counts customers by their distinct rows itself.

    >>> m = pd.DataFrame({"frequency": [0, 2], "recency": [0, 3], "n_periods": [4, 4], "weight": [2, 1]})
    >>> as_btyd(m, customers=True).values.tolist()
    [[0.0, 0.0, 4.0], [0.0, 0.0, 4.0], [2.0, 3.0, 4.0]]
    """
    if customers and "weight" in summary.columns:
        summary = summary.loc[summary.index.repeat(summary["weight"])].reset_index(drop=True)
    return summary[BGBB_COLUMNS].rename(columns={"n_periods": "T"}).astype(float)


class BetaGeoBetaBinom(BTYDModel, key="bgbb", title="BG/BB", fitter=BetaGeoBetaBinomFitter,
                       simulator=simulate.bgbb, parameter_names=("alpha", "beta", "gamma", "delta")):
    """The BG/BB behind the model interface: fitting, remedies and prediction of :class:`BTYDModel`.

    What differs: the summary's opportunities ``n_periods`` stand where the
    continuous families have ``T`` (:func:`as_btyd`); P(alive) takes the
    horizon (lifetimes' BG/BB asks for it); the boundary is that of two Betas;
    no sample start (the distinct rows of a discrete log are few whatever
    the number of customers, and lifetimes does not rescale BG/BB time).
    """

    @classmethod
    def boundary_problems(cls, params: dict[str, float], t_max: float | None = None) -> list[str]:
        """What fitted parameters on the boundary mean, in business terms (empty: sound).

        >>> BetaGeoBetaBinom.boundary_problems({"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.8})
        []
        >>> BetaGeoBetaBinom.boundary_problems({"alpha": 0.7, "beta": 5.2, "gamma": 92.0, "delta": 2e4})[0][:40]
        'gamma = 92 and delta = 2e+04 explode: ev'
        """
        values = np.array(list(params.values()), dtype=float)
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            return [f"parameters not finite and positive: {params}"]
        out = []
        for a, b, what in (("alpha", "beta", "transacts in a period"), ("gamma", "delta", "drops out")):
            if params[a] > PARAM_MAX or params[b] > PARAM_MAX:
                out.append(f"{a} = {params[a]:.3g} and {b} = {params[b]:.3g} explode: every customer has the same "
                           f"chance that they {what}")
            elif min(params[a], params[b]) < PARAM_MIN:
                out.append(f"{a} = {params[a]:.3g} and {b} = {params[b]:.3g}: the chance that a customer {what} "
                           "collapses to 0 or 1")
        return out

    @classmethod
    def starting_values(cls, summary: pd.DataFrame, penalizer: float, sample: int = 20_000,
                        seed: int = 0) -> np.ndarray | None:
        """None: lifetimes' own start (a discrete log has few distinct rows; its time is not rescaled)."""
        return None

    @classmethod
    def fit(cls, summary: pd.DataFrame, penalizer: float = 0.0, *, weighted: bool = True,
            seed: int = 42) -> BTYDModel:
        """:meth:`BTYDModel.fit` on a BG/BB summary per customer or an :func:`rf_matrix` (``weight``).

        lifetimes averages the BG/BB's weighted log-likelihood, so the distinct
        rows with their counts give the optimum of one row per customer.
        """
        return super().fit(as_btyd(summary, customers=True), penalizer, weighted=weighted, seed=seed)

    def log_likelihood(self, summary: pd.DataFrame) -> float:
        """The total log-likelihood of ``summary`` (customers, or distinct rows with ``weight``), as in the paper."""
        rows = rf_matrix(summary)
        ll = self.model._loglikelihood(self.model._unload_params(*self.parameter_names),
                                       *(rows[c].to_numpy() for c in BGBB_COLUMNS))
        return float((ll * rows["weight"].to_numpy()).sum())

    def expected_purchases(self, summary: pd.DataFrame, t: float) -> pd.Series:
        """Expected transactions in the next ``t`` opportunities (FHS 2010 eq. 13), per row of ``summary``."""
        return super().expected_purchases(as_btyd(summary), t)

    def p_alive(self, summary: pd.DataFrame, periods_ahead: int = 1) -> pd.Series:
        """P(alive at opportunity n + ``periods_ahead``); 1 is FHS (2010) eq. 11 and BTYD's ``bgbb.PAlive``."""
        alive = self.model.conditional_probability_alive
        return self.on_distinct_rows(as_btyd(summary), lambda x, tx, n: alive(periods_ahead, x, tx, n)).clip(0, 1)

    def non_finite_predictions(self, summary: pd.DataFrame, t: float, predicted: pd.Series | None = None) -> int:
        """How many rows get a non-finite expected transactions over ``t`` or P(alive) (0: usable)."""
        predicted = self.expected_purchases(summary, t) if predicted is None else predicted
        return int((~np.isfinite(predicted.to_numpy()) | ~np.isfinite(self.p_alive(summary).to_numpy())).sum())

    def period_transactions(self, summary: pd.DataFrame, max_frequency: int = 7, sample: int = 20_000,
                            seed: int = 0) -> pd.DataFrame:
        """Share of customers by repeat transactions, actual vs simulated (:meth:`BTYDModel.period_transactions`)."""
        return super().period_transactions(as_btyd(summary, customers=True), max_frequency, sample, seed)

    def expected_new(self, periods: int | np.ndarray) -> np.ndarray:
        """Expected transactions of a newly acquired customer in their first ``periods`` opportunities (eq. 9)."""
        a, b, g, d = self.model._unload_params(*self.parameter_names)
        n = np.asarray(periods, dtype=float)
        log_ratio = (gammaln(g + d) - gammaln(g + d + n)) + (gammaln(1 + d + n) - gammaln(1 + d))  # 0 at n = 0
        return a / (a + b) * d / (g - 1) * -np.expm1(log_ratio)


def simulate_bgbb(n_customers: int, n_periods: int, params: dict[str, float], seed: int = 0) -> pd.DataFrame:
    """A seeded BG/BB cohort (one row per customer: frequency, recency, n_periods), vectorised.

    Each customer draws p ~ Beta(alpha, beta) and theta ~ Beta(gamma, delta),
    stays alive into each of the ``n_periods`` opportunities with
    probability 1 - theta and, while alive, transacts in it with probability p.

    >>> s = simulate_bgbb(1000, 6, {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.8}, seed=1)
    >>> bool((s["recency"] <= s["n_periods"]).all() and (s["frequency"] <= s["recency"]).all())
    True
    """
    cohort = simulate.bgbb(np.full(n_customers, n_periods), params["alpha"], params["beta"], params["gamma"],
                           params["delta"], np.random.default_rng(seed))
    return cohort.rename(columns={"T": "n_periods"})[BGBB_COLUMNS]


__all__ = ["BGBB_COLUMNS", "BetaGeoBetaBinom", "as_btyd", "period_summary", "rf_matrix", "simulate_bgbb"]
