"""The project's vocabulary, defined once: value tiers, lifecycle stages, A/B/C classes, segment states.

Everything that lists these (schemas, plots, tables, the classifier, the
segment maps' checks) imports them from here; a segment map may rename RFM
segments, but not these.
"""

from __future__ import annotations

#: The customer value pyramid, top down (current value x growth potential, see :mod:`helpers.tiers`).
TIERS: tuple[str, ...] = ("platinum", "gold", "iron", "lead")
#: The customer lifecycle, in order (see :mod:`helpers.clv`'s lifecycle rule).
LIFECYCLE: tuple[str, ...] = ("acquisition", "growth", "maturity", "decline", "termination")
#: The 80/20 revenue classes, from the key customers down.
ABC: tuple[str, ...] = ("A", "B", "C")
#: What an RFM segment says about a customer's relation now (a segment map gives each segment one).
SEGMENT_STATES: tuple[str, ...] = ("new", "active", "cooling", "slipping", "lost")
