"""BG/NBD (Fader, Hardie and Lee 2005): a customer may drop out only right after a purchase.

A one-time buyer has P(alive) = 1 by construction. Purchase rates are Gamma
(r, alpha) across customers; the drop-out probability after each purchase is
Beta (a, b).
"""

from __future__ import annotations

from lifetimes import BetaGeoFitter

from helpers.clv.models import bgnbd_fit, simulate
from helpers.clv.models.base import BETA_MAX, BETA_MIN, BTYDModel


class BetaGeo(BTYDModel, key="bgnbd", title="BG/NBD", fitter=BetaGeoFitter, simulator=simulate.bgnbd,
              parameter_names=("r", "alpha", "a", "b")):
    """The BG/NBD wrapper; its drop-out Beta (a, b) is what :meth:`drop_out_problems` checks.

    >>> BetaGeo.boundary_problems({"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4})
    []
    >>> BetaGeo.boundary_problems({"r": 0.5, "alpha": 3.0, "a": 1e-9, "b": 2e-7})[0][-51:]
    'customers either never drop out or drop out at once'
    >>> BetaGeo.boundary_problems({"r": 0.5, "alpha": 3.0, "a": 3.9e-7, "b": 5080.0})[0].split(": ")[1]
    "the drop-out probability collapses to 0, so no customer ever drops out and everyone stays 'alive'"
    """
    fast_fit = bgnbd_fit.lifetimes_fit  # lifetimes' BFGS with the numpy gradient instead of autograd's

    @classmethod
    def drop_out_problems(cls, params: dict[str, float], t_max: float | None) -> list[str]:
        """The drop-out Beta collapsing to 0 or 1, or exploding (everyone the same), in business terms."""
        a, b = params["a"], params["b"]
        if a < BETA_MIN and b < BETA_MIN:
            return [f"a = {a:.3g} and b = {b:.3g}: the drop-out Beta collapses to 0 and 1, so customers either "
                    "never drop out or drop out at once"]
        if a < BETA_MIN:
            return [f"a = {a:.3g} (b = {b:.3g}): the drop-out probability collapses to 0, so no customer ever "
                    "drops out and everyone stays 'alive'"]
        if b < BETA_MIN:
            return [f"b = {b:.3g} (a = {a:.3g}): the drop-out probability collapses to 1, so every customer "
                    "drops out right after a purchase"]
        if a > BETA_MAX and b > BETA_MAX:
            return [f"a = {a:.4g} and b = {b:.4g} explode: every customer has the same chance of dropping out "
                    "after a purchase"]
        return []
