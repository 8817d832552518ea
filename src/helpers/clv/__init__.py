"""Customer value over the lifetime (stage 05): BTYD models, their validation, Gamma-Gamma spend, CLV.

A package in the manner of PyMC-Marketing's ``clv/``:

- :mod:`.summary`     purchase days -> frequency, recency, T (the BTYD summary), calibration/holdout split;
- :mod:`.models`      one wrapper base class (:class:`~.models.base.BTYDModel`: fitting, remedies,
  soundness checks, prediction) and one module per family (BG/NBD, Pareto/NBD, MBG/NBD) and for
  the Gamma-Gamma spend model;
- :mod:`.evaluation`  holdout metrics, the decile table, the model comparison and choice;
- :mod:`.value`       lifetime value and the customer table (P(alive), CLV, tier, lifecycle stage).

The lifecycle rule lives beside the tiers, in :mod:`helpers.lifecycle`. Models
are fitted on a calibration period and compared on the holdout period that
follows it; the chosen one is refitted on everything up to ``as_of``. The
names below keep ``from helpers import clv; clv.fit_btyd(...)`` working.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from lifetimes import GammaGammaFitter

from helpers.clv import evaluation, models, summary, value
from helpers.clv.evaluation import choose_model, compare_models, decile_table, holdout_metrics
from helpers.clv.models import (FIT_ERRORS, MIN_CUSTOMERS, MODEL_CLASSES, MODEL_LABELS, SPEND_CORRELATION_LIMIT,
                                BTYDModel, SpendFit, expected_spend, family_of, fit_btyd, fit_spend)
from helpers.clv.summary import (DAYS_PER_MONTH, HOLDOUT_MAX_DAYS, HOLDOUT_MIN_DAYS, HOLDOUT_RULE,
                                 PURCHASE_DAY_COLUMNS, UNIT_DAYS, as_purchase_days, btyd_summary, calibration_holdout,
                                 default_holdout_days, distinct_rows, log_span_days, purchase_halves)
from helpers.clv.value import (alive_path, customer_value, example_customer, lifetime_value, own_spend,
                               top_customers)
from helpers.lifecycle import (ACQUISITION_MAX_DAYS, ACQUISITION_RULE, LIFECYCLE_RULE, default_acquisition_days,
                               lifecycle_stage)

#: A fit: the model wrapper (the name its callers know).
Fit = BTYDModel


def _of_the_fit(name: str) -> Any:
    """``BTYDModel.<name>`` as a function of the fit, dispatched to the fit's family (BG/BB overrides some)."""
    def call(fit: BTYDModel, *args: Any, **kwargs: Any) -> Any:
        return getattr(fit, name)(*args, **kwargs)

    call.__name__, call.__doc__ = name, getattr(BTYDModel, name).__doc__
    return call


#: Prediction and checks of a fit, as functions of the fit (``clv.p_alive(fit, summary)``).
log_likelihood = _of_the_fit("log_likelihood")
expected_purchases = _of_the_fit("expected_purchases")
p_alive = _of_the_fit("p_alive")
non_finite_predictions = _of_the_fit("non_finite_predictions")
period_transactions = _of_the_fit("period_transactions")


def default_start(cls: type) -> np.ndarray:
    """lifetimes' own deterministic starting point for a lifetimes fitter class, made explicit.

    BG/NBD and MBG/NBD start from log parameters 0.1; lifetimes' Pareto/NBD
    draws its start from numpy's global random generator (unseeded: reruns
    differ), so it gets the centre of that draw, 1.0 for every parameter.

    >>> from lifetimes import BetaGeoFitter, ParetoNBDFitter
    >>> default_start(ParetoNBDFitter).tolist(), default_start(BetaGeoFitter).tolist()
    ([1.0, 1.0, 1.0, 1.0], [0.1, 0.1, 0.1, 0.1])
    """
    return family_of(cls).default_start()


def seeded_start(cls: type, seed: int) -> np.ndarray:
    """A second, seeded starting point for a lifetimes fitter class (:meth:`BTYDModel.seeded_start`).

    >>> from lifetimes import ParetoNBDFitter
    >>> bool(np.all(seeded_start(ParetoNBDFitter, 1) == seeded_start(ParetoNBDFitter, 1)))
    True
    """
    return family_of(cls).seeded_start(seed)


def starting_values(cls: type, summary: pd.DataFrame, penalizer: float, sample: int = 20_000,
                    seed: int = 0) -> np.ndarray | None:
    """Starting values for a large fit of a lifetimes fitter class (:meth:`BTYDModel.starting_values`)."""
    return family_of(cls).starting_values(summary, penalizer, sample, seed)


def _fit_lifetimes(cls: type, penalizer: float, summary: pd.DataFrame, tol: float, *, weighted: bool,
                   initial: np.ndarray | None = None) -> Any:
    """One lifetimes fit of the fitter class ``cls`` (:meth:`BTYDModel.fit_lifetimes`)."""
    return family_of(cls).fit_lifetimes(penalizer, summary, tol, weighted=weighted, initial=initial, fitter=cls)


def boundary_problems(name: str, params: dict[str, float], t_max: float | None = None) -> list[str]:
    """What fitted parameters of the family ``name`` mean on the model's boundary (empty: sound).

    >>> boundary_problems("bgnbd", {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4})
    []
    """
    return models.FAMILIES[name].boundary_problems(params, t_max)


__all__ = ["ACQUISITION_MAX_DAYS", "ACQUISITION_RULE", "DAYS_PER_MONTH", "FIT_ERRORS", "HOLDOUT_MAX_DAYS",
           "HOLDOUT_MIN_DAYS", "HOLDOUT_RULE", "LIFECYCLE_RULE", "MIN_CUSTOMERS", "MODEL_CLASSES", "MODEL_LABELS",
           "PURCHASE_DAY_COLUMNS", "SPEND_CORRELATION_LIMIT", "UNIT_DAYS", "BTYDModel", "Fit", "GammaGammaFitter",
           "SpendFit", "alive_path", "as_purchase_days", "boundary_problems", "btyd_summary", "calibration_holdout",
           "choose_model", "compare_models", "customer_value", "decile_table", "default_acquisition_days",
           "default_holdout_days", "default_start", "distinct_rows", "evaluation", "example_customer",
           "expected_purchases", "expected_spend", "fit_btyd", "fit_spend", "holdout_metrics", "lifecycle_stage",
           "lifetime_value", "log_likelihood", "log_span_days", "models", "non_finite_predictions", "own_spend",
           "p_alive", "period_transactions", "purchase_halves", "seeded_start", "starting_values", "summary",
           "top_customers", "value"]

# issue 14: the parameters' uncertainty, intervals per customer and cohort, value per period, new-customer value
from helpers.clv import intervals, periods, uncertainty  # noqa: E402
from helpers.clv.intervals import customer_intervals, group_intervals, tier_changes  # noqa: E402
from helpers.clv.periods import new_customer_value, value_per_period  # noqa: E402
from helpers.clv.uncertainty import parameter_uncertainty, spend_uncertainty  # noqa: E402

__all__ += ["customer_intervals", "group_intervals", "intervals", "new_customer_value", "parameter_uncertainty",
            "periods", "spend_uncertainty", "tier_changes", "uncertainty", "value_per_period"]
