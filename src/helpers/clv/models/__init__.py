"""The BTYD model families and the spend model: one wrapper base class, one module per family.

=========================  ==========================================================
module                     what
=========================  ==========================================================
:mod:`.base`               :class:`BTYDModel`: fitting, remedies, soundness, prediction
:mod:`.bgnbd`              BG/NBD (:class:`BetaGeo`)
:mod:`.pareto`             Pareto/NBD (:class:`ParetoNBD`)
:mod:`.pareto_fit`         Pareto/NBD's likelihood, its gradient, the fast fit
:mod:`.bgnbd_fit`          BG/NBD and MBG/NBD likelihood and gradient (optional covariates), lifetimes' BFGS
:mod:`.mbgnbd`             MBG/NBD (:class:`ModifiedBetaGeo`)
:mod:`.bgbb`               BG/BB for discrete-time logs (:class:`BetaGeoBetaBinom`; not in ``clv.models``' comparison)
:mod:`.simulate`           seeded, vectorised simulators of the four families (the holdout check's draws)
:mod:`.gamma_gamma`        Gamma-Gamma spend per purchase (:class:`SpendFit`)
=========================  ==========================================================

A new family is a subclass of :class:`BTYDModel` in a module of its own,
imported here, that names its key, label, lifetimes fitter and simulator (:mod:`.simulate`) in
its class line (``class F(BTYDModel, key="...", title="...", fitter=...,
simulator=..., parameter_names=(...))``) and overrides what differs (starts,
drop-out boundary, likelihood): it registers itself in :data:`MODEL_CLASSES`
and :data:`MODEL_LABELS`, and the ``clv.models`` parameter may name it.
"""

from __future__ import annotations

from helpers.clv.models.base import (BETA_MAX, BETA_MIN, FAMILIES, FIT_ERRORS, MIN_CUSTOMERS, MODEL_CLASSES, MODEL_LABELS,
                                     SCALE_MIN, SHAPE_MAX, SHAPE_MIN, BTYDModel, check_fittable, family_of)
from helpers.clv.models.bgbb import BetaGeoBetaBinom
from helpers.clv.models.bgnbd import BetaGeo
from helpers.clv.models.gamma_gamma import SPEND_CORRELATION_LIMIT, SpendFit, expected_spend, fit_spend
from helpers.clv.models.mbgnbd import ModifiedBetaGeo
from helpers.clv.models.pareto import ParetoNBD

import pandas as pd  # noqa: E402  (after the families: they register themselves on import)


def fit_btyd(name: str, summary: pd.DataFrame, penalizer: float = 0.0, *, weighted: bool = True,
             seed: int = 42) -> BTYDModel:
    """Fit the family ``name`` (a key of :data:`MODEL_CLASSES`) with its remedies: :meth:`BTYDModel.fit`."""
    return FAMILIES[name].fit(summary, penalizer, weighted=weighted, seed=seed)

__all__ = ["BETA_MAX", "BETA_MIN", "FAMILIES", "FIT_ERRORS", "MIN_CUSTOMERS", "MODEL_CLASSES", "MODEL_LABELS",
           "SCALE_MIN", "SHAPE_MAX", "SHAPE_MIN", "SPEND_CORRELATION_LIMIT", "BTYDModel", "BetaGeo", "BetaGeoBetaBinom",
           "ModifiedBetaGeo", "ParetoNBD", "SpendFit", "check_fittable", "expected_spend", "family_of", "fit_btyd", "fit_spend"]
