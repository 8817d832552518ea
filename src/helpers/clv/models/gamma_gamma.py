"""Gamma-Gamma (Fader, Hardie and Lee 2005b): spend per purchase, shrunk towards the population's.

Fitted on repeat buyers with a positive mean repeat spend; it assumes spend
per purchase does not depend on how often a customer buys, so the fit reports
the frequency-spend correlation, and beyond :data:`SPEND_CORRELATION_LIMIT`
the lifetime value is a ranking rather than money.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifetimes import GammaGammaFitter

from helpers.clv.models.base import FIT_ERRORS
from helpers.errors import DataError

#: Gamma-Gamma assumes spend per purchase independent of frequency; beyond this correlation, CLV is a ranking.
SPEND_CORRELATION_LIMIT = 0.3


@dataclass
class SpendFit:
    """Gamma-Gamma spend model and the checks made before fitting it."""

    model: GammaGammaFitter
    correlation: float
    used: int
    excluded_non_positive: int
    one_time_buyers: int
    message: str = "converged"

    @property
    def independent(self) -> bool:
        """True when the frequency-spend correlation is small enough for the model's independence assumption."""
        return abs(self.correlation) <= SPEND_CORRELATION_LIMIT

    @property
    def mean_spend(self) -> float:
        """The population's mean spend per purchase, ``p v / (q - 1)``."""
        p = self.model.params_
        return float(p["p"] * p["v"] / (p["q"] - 1))

    def describe(self) -> list[str]:
        """What the fit used, the independence check and the parameters, as sentences for the notebook."""
        lines = [] if self.message == "converged" else [f"Gamma-Gamma: {self.message}"]
        verdict = ("close to zero: the independence assumption is plausible" if self.independent
                   else "NOT close to zero: treat CLV with caution")
        return lines + [
            f"repeat buyers used: {self.used:,}; excluded for non-positive mean spend: {self.excluded_non_positive:,}; "
            f"one-time buyers (population mean spend): {self.one_time_buyers:,}",
            f"correlation of frequency and mean spend: {self.correlation:+.3f} ({verdict})",
            f"Gamma-Gamma parameters: {self.model.params_.round(3).to_dict()}; population mean spend per purchase "
            f"{self.mean_spend:,.2f}"]


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
