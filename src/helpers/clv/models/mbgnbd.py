"""MBG/NBD (Batislam, Denizel and Filiztekin 2007): BG/NBD where one-time buyers may drop out too.

The same parameters as BG/NBD (Gamma r, alpha; Beta a, b) and the same
boundary checks; a customer may also drop out right after the first purchase,
so one-time buyers get P(alive) below 1.
"""

from __future__ import annotations

from lifetimes import ModifiedBetaGeoFitter

from helpers.clv.models import simulate
from helpers.clv.models.bgnbd import BetaGeo


class ModifiedBetaGeo(BetaGeo, key="mbgnbd", title="MBG/NBD", fitter=ModifiedBetaGeoFitter,
                      simulator=simulate.mbgnbd):
    """The MBG/NBD wrapper.

    >>> ModifiedBetaGeo.boundary_problems({"r": 22462.0, "alpha": 411752.0, "a": 0.5, "b": 1.0})[0][:43]
    'r = 2.246e+04 explodes (alpha = 4.118e+05):'
    """
