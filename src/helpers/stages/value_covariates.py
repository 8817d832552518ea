"""Stage 05's covariate analysis: does a customer's first purchase or country change how they buy? (issue 14).

Beside the chosen model, never instead of it: BG/NBD is fitted with and
without static covariates (:mod:`helpers.clv.covariates`) on the full
history (effects, standard errors, the likelihood-ratio test) and on the
calibration period (the holdout comparison per covariate group). No CLV,
tier or column of the customer table changes. The covariates
(``clv.covariates``):

- ``first_purchase_value``: the spend of the customer's first purchase day,
  ``log(1 + max(spend, 0))``, standardised over the customers (every log has it);
- ``country``: :data:`COUNTRY_RULE` (where the log has a country).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from helpers.clv import covariates as cov
from helpers.errors import DataError
from helpers.stages.value_views import headline

#: Countries with at least this share of the customers get an indicator, at most this many of them.
COUNTRY_MIN_SHARE = 0.05
COUNTRY_MAX = 5
COUNTRY_RULE = (f"the countries with at least {COUNTRY_MIN_SHARE:.0%} of the customers (the {COUNTRY_MAX} largest "
                "at most) each get a 0/1 indicator; the other countries and customers without one form the "
                "reference group 'other' (the largest country joins it when nothing else would)")
#: Below this p-value an effect or the likelihood-ratio test is called significant.
SIGNIFICANCE = 0.05
FAILURES = (DataError, ValueError, FloatingPointError, np.linalg.LinAlgError)


def first_purchase_value(days: pd.DataFrame) -> pd.Series:
    """The spend of each customer's first purchase day (purchase days in customer and day order), by customer."""
    return days.groupby("customer_id", sort=True)["amount"].first().astype(float)


def country_indicators(country: pd.Series) -> pd.DataFrame:
    """0/1 indicators of the large countries (:data:`COUNTRY_RULE`); no column when there is only one group.

    >>> country_indicators(pd.Series(["DE"] * 31 + ["FR"] * 8 + ["IT"])).sum().to_dict()  # DE joins IT in "other"
    {'country=FR': 8.0}
    """
    share = country.fillna("").value_counts(normalize=True)
    share = share[share.index != ""]
    large = list(share[share >= COUNTRY_MIN_SHARE].index[:COUNTRY_MAX])
    if large and share[large].sum() > 1 - COUNTRY_MIN_SHARE:  # keep a reference group: the largest joins 'other'
        large = large[1:]
    return pd.DataFrame({f"country={c}": (country == c).astype(float) for c in large}, index=country.index)


def design(wanted: list[str], days: pd.DataFrame, customers: pd.DataFrame,
           index: pd.Index) -> tuple[pd.DataFrame, pd.DataFrame, list[str], float]:
    """The covariate columns for the customers ``index``, their groups (for the holdout), what was skipped and why.

    Returns the design (standardised first-purchase value, country
    indicators), the groups (first-purchase quartile, country or 'other'),
    the skipped covariates with their reason, and the standard deviation of
    ``log(1 + first purchase value)`` (what a doubling moves the covariate by).
    """
    columns, groups, skipped, sd = {}, {}, [], float("nan")
    if "first_purchase_value" in wanted:
        raw = np.log1p(first_purchase_value(days).reindex(index).clip(lower=0).fillna(0))
        sd = float(raw.std())
        if sd > 0:
            columns["first_purchase_value"] = (raw - raw.mean()) / sd
            groups["first_purchase_value"] = pd.qcut(raw.rank(method="first"), 4, labels=["Q1 (lowest)", "Q2", "Q3",
                                                                                          "Q4 (highest)"])
        else:
            skipped.append("first_purchase_value: every customer's first purchase has the same value")
    if "country" in wanted:
        if "country" not in customers.columns:
            skipped.append("country: the log has no country column")
        else:
            country = pd.Series(customers["country"].to_numpy(), index=customers["customer_id"],  # not a copy
                                name="country").reindex(index)  # of the whole table indexed by id
            dummies = country_indicators(country)
            if dummies.empty:
                skipped.append("country: one country (or none large enough) holds nearly all customers")
            else:
                columns |= dict(dummies.items())
                named = [c.split("=", 1)[1] for c in dummies.columns]
                groups["country"] = country.where(country.isin(named), "other")
    return pd.DataFrame(columns, index=index), pd.DataFrame(groups, index=index), skipped, sd


@dataclass
class CovariateAnalysis:
    """The covariate analysis of one run: the fits, the test, the holdout comparison, or why there is none."""

    reason: str | None = None  # why there is no analysis (None: it ran)
    off: bool = False  # clv.covariates is empty
    used: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    fit: cov.CovariateFit | None = None
    base: cov.CovariateFit | None = None
    lr: dict[str, float] | None = None
    holdout: pd.DataFrame | None = None
    holdout_reason: str | None = None
    value_sd: float = float("nan")

    def _unit(self, name: str) -> float:
        """How far the covariate moves for the effect read out: a doubling of the first purchase, 0 -> 1 otherwise."""
        return np.log(2) / self.value_sd if name == "first_purchase_value" else 1.0

    def effects_table(self) -> pd.DataFrame | None:
        """One row per covariate: purchase-rate multiplier, mean drop-out probability, their p-values (rounded)."""
        table = self._effects()
        return None if table is None else table.round(4)

    def _effects(self) -> pd.DataFrame | None:
        """The effects per covariate, unrounded (the JSON's and the text's)."""
        if self.fit is None:
            return None
        f, rows = self.fit, []
        r, alpha, a, b = f.params
        k = len(f.names)
        for j, name in enumerate(f.names):
            u = self._unit(name)
            gp, ga, gb = (f.theta[4 + i * k + j] for i in range(3))
            p_ref, p_cov = a / (a + b), a * np.exp(ga * u) / (a * np.exp(ga * u) + b * np.exp(gb * u))
            p_cov = p_cov if f.dropout else np.nan
            co = f.coefficients
            rows.append({"covariate": name, "change": "first purchase x2" if name == "first_purchase_value" else
                         f"{name.split('=', 1)[1]} vs other",
                         "purchase_rate_x": np.exp(gp * u), "purchase_p": float(co["p_value"].iloc[j]),
                         "dropout_reference": p_ref, "dropout_with": p_cov, "dropout_x": p_cov / p_ref,
                         "dropout_p": self._dropout_p(j)})
        return pd.DataFrame(rows).set_index("covariate")

    def _dropout_p(self, j: int) -> float:
        """The joint Wald test of covariate ``j``'s two drop-out coefficients (a and b), 2 df."""
        f = self.fit
        if f is None or f.covariance is None:
            return float("nan")
        k = len(f.names)
        pos = [4 + k + j, 4 + 2 * k + j]
        g = f.theta[pos]
        return float(stats.chi2.sf(g @ np.linalg.solve(f.covariance[np.ix_(pos, pos)], g), 2))

    def holdout_table(self) -> pd.DataFrame | None:
        """Holdout purchases per covariate group and in total: actual, predicted without and with covariates, MAE."""
        return None if self.holdout is None else self.holdout.round(3)

    def text(self) -> str:
        """The analysis in words: the effects, the likelihood-ratio test, the holdout comparison."""
        if self.reason is not None:
            return f"No covariate analysis: {self.reason}"
        parts, table = [], self._effects()
        assert table is not None and self.lr is not None and self.fit is not None
        for name, row in table.iterrows():
            who = ("customers whose first purchase is twice as large" if name == "first_purchase_value"
                   else f"customers from {str(name).split('=', 1)[1]} (against the reference group 'other')")
            dropout = (f" and are {row['dropout_x']:.2f}x as likely to drop out after a purchase "
                       f"({_p(row['dropout_p'])})" if np.isfinite(row["dropout_x"]) else "")
            parts.append(f"{who} buy {row['purchase_rate_x']:.2f}x as often ({_p(row['purchase_p'])}){dropout}")
        lr = self.lr
        verdict = ("improve the likelihood significantly" if lr["p_value"] < SIGNIFICANCE
                   else "do not improve the likelihood significantly")
        scope = "" if self.fit.dropout else (" on the purchase rate only (with drop-out effects too the fit does not "
                                             "converge: drop-out is not identified on this log)")
        text = (f"BG/NBD with static covariates ({', '.join(self.used)}){scope}, fitted beside the chosen model (it "
                f"changes no CLV): " + "; ".join(parts) + f". The covariates {verdict} (LR {lr['statistic']:.1f}, df "
                f"{lr['df']}, {_p(lr['p_value'])})")
        if self.holdout is not None:
            total = self.holdout.iloc[-1]
            change = total["mae_with"] / total["mae_without"] - 1
            text += (f"; on the holdout the MAE per customer goes from {total['mae_without']:.3f} to "
                     f"{total['mae_with']:.3f} ({change:+.1%}) and the total error from {total['error_without']:+.1%}"
                     f" to {total['error_with']:+.1%}")
        elif self.holdout_reason:
            text += f"; no holdout comparison: {self.holdout_reason}"
        notes = "".join(f" Skipped: {s}." for s in self.skipped)
        return text + "." + notes

    def as_json(self) -> dict[str, Any] | None:
        """The ``covariates`` entry of ``clv_validation.json`` (None when ``clv.covariates`` is empty)."""
        if self.off:
            return None
        out: dict[str, Any] = {"reason": self.reason, "used": self.used, "skipped": self.skipped,
                               "country_rule": COUNTRY_RULE, "reading": self.text()}
        if self.fit is not None and self.base is not None:
            table = self._effects()
            out |= {"params": self.fit.params.round(6).to_dict(), "dropout_effects": self.fit.dropout,
                    "params_without": self.base.params.round(6).to_dict(),
                    "coefficients": _records(self.fit.coefficients),
                    "effects": _records(table.reset_index()) if table is not None else None,
                    "log_likelihood": round(self.fit.log_likelihood, 4),
                    "log_likelihood_without": round(self.base.log_likelihood, 4),
                    "lr_test": {k: _number(v) for k, v in (self.lr or {}).items()},
                    "holdout": None if self.holdout is None else _records(self.holdout),
                    "holdout_reason": self.holdout_reason}
        return out


def _p(p: float) -> str:
    """A p-value in words.

    >>> _p(0.0001), _p(0.0312), _p(float("nan"))
    ('p < 0.001', 'p = 0.031', 'p unknown')
    """
    return "p unknown" if not np.isfinite(p) else "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON records, numbers to 6 significant digits, NaN as None."""
    return [{k: _number(v) for k, v in row.items()} for row in frame.astype(object).to_dict("records")]


def _number(v: Any) -> Any:
    """A number for JSON: 6 significant digits, NaN as None (anything else as it is).

    >>> _number(1.23456789e-9), _number(float("nan")), _number(3), _number("x")
    (1.23457e-09, None, 3, 'x')
    """
    if isinstance(v, float | np.floating):
        return float(f"{v:.6g}") if np.isfinite(v) else None
    return v


def _pair(summary: pd.DataFrame, z: pd.DataFrame,
          like: tuple[cov.CovariateFit, cov.CovariateFit] | None = None) -> tuple[cov.CovariateFit, cov.CovariateFit]:
    """The fits without and with the covariates ``z``; raise when one fails.

    The covariate fit starts from the plain one with zero coefficients; with
    ``like`` (the full-history pair) both start from its estimates and skip
    the standard errors (the holdout needs predictions only).
    """
    se = like is None
    base = cov.fit(summary, start=None if like is None else like[0].theta, se=se)
    if not base.converged:
        raise DataError(f"BG/NBD without covariates did not converge ({base.message})")
    start = np.concatenate([base.theta, np.zeros(3 * z.shape[1])]) if like is None else like[1].theta
    dropout = like is None or like[1].dropout
    fitted = cov.fit(summary, z, start=start, se=se, dropout=dropout)
    if not fitted.converged and dropout:  # drop-out effects not identified (a drop-out Beta on its boundary)
        fitted = cov.fit(summary, z, start=start, se=se, dropout=False)
    if not fitted.converged:
        raise DataError(f"BG/NBD with covariates did not converge ({fitted.message})")
    return base, fitted


def holdout_comparison(calhold: pd.DataFrame, z: pd.DataFrame, groups: pd.DataFrame,
                       like: tuple[cov.CovariateFit, cov.CovariateFit] | None = None) -> pd.DataFrame:
    """Holdout purchases per group and in total, by BG/NBD fitted on the calibration without and with ``z``."""
    z, groups = z.loc[calhold.index], groups.loc[calhold.index]
    base, fitted = _pair(calhold, z, like)
    t = calhold["duration_holdout"].to_numpy(float)
    frame = pd.DataFrame({"actual": calhold["frequency_holdout"].to_numpy(float),
                          "without": cov.expected_purchases(base, t, calhold),
                          "with": cov.expected_purchases(fitted, t, calhold, z)}, index=calhold.index)
    rows = []
    for by, labels in [*groups.items(), ("all", pd.Series("all customers", index=calhold.index))]:
        for label, part in frame.groupby(labels.astype(str), sort=True):
            actual = part["actual"].sum()
            rows.append({"group_by": by, "group": label, "customers": len(part), "actual": actual,
                         "predicted_without": part["without"].sum(), "predicted_with": part["with"].sum(),
                         "mae_without": (part["without"] - part["actual"]).abs().mean(),
                         "mae_with": (part["with"] - part["actual"]).abs().mean(),
                         "error_without": part["without"].sum() / actual - 1 if actual else np.nan,
                         "error_with": part["with"].sum() / actual - 1 if actual else np.nan})
    return pd.DataFrame(rows)


def covariate_analysis(params: Any, days: pd.DataFrame, customers: pd.DataFrame, result: Any) -> CovariateAnalysis:
    """Stage 05's covariate analysis of ``result`` (a :class:`~helpers.stages.value.ValueResult`); never raises."""
    wanted = list(params.clv.covariates)
    if not wanted:
        return CovariateAnalysis(reason="clv.covariates is empty: the analysis is off", off=True)
    if not result.forecast:
        return CovariateAnalysis(reason=f"no forecast in this run ({headline(result.forecast_reason)})")
    z, groups, skipped, sd = design(wanted, days, customers, result.fitted_on.index)
    if z.empty:
        return CovariateAnalysis(reason="none of clv.covariates is usable on this log", skipped=skipped)
    analysis = CovariateAnalysis(used=[c for c in wanted if c in groups.columns], skipped=skipped, value_sd=sd)
    try:
        analysis.base, analysis.fit = _pair(result.fitted_on, z)
    except FAILURES as exc:
        return CovariateAnalysis(reason=str(exc), skipped=skipped)
    analysis.lr = cov.lr_test(analysis.fit, analysis.base)
    if result.calhold is None:
        analysis.holdout_reason = "no calibration period"
    else:
        try:
            analysis.holdout = holdout_comparison(result.calhold, z, groups, (analysis.base, analysis.fit))
        except FAILURES as exc:
            analysis.holdout_reason = str(exc)
    return analysis
