"""Stage 07's two windows, ``classify.early_days`` and ``classify.label_days``: as set, or derived from the log's span."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

#: Caps and shares of the span for the derived windows.
LABEL_DAYS_CAP, EARLY_DAYS_CAP = 180, 90
LABEL_SPAN_SHARE, EARLY_SPAN_SHARE = 1 / 3, 1 / 4
WINDOW_RULE = (
    "classify.label_days, when null, is a third of the log's span (days from its first purchase to as_of), "
    "so that history, training labels and test labels get equal periods, rounded to whole weeks and at most "
    f"{LABEL_DAYS_CAP} days; classify.early_days, when null, is a quarter of the span, rounded to whole weeks "
    f"and at most {EARLY_DAYS_CAP} days; both are at least 7 days."
)


def whole_weeks(days: float) -> int:
    """``days`` rounded to the nearest whole week (halves up), at least one week.

    >>> whole_weeks(30), whole_weeks(181.7), whole_weeks(2), whole_weeks(10.5)
    (28, 182, 7, 14)
    """
    return max(7, int(math.floor(days / 7 + 0.5)) * 7)


@dataclass(frozen=True)
class Windows:
    """The two windows of stage 07 and where they came from."""

    early_days: int
    label_days: int
    first_day: dt.date
    as_of: dt.date
    derived: tuple[str, ...] = ()

    @property
    def span_days(self) -> int:
        """Days from the log's first purchase to ``as_of``."""
        return (self.as_of - self.first_day).days

    def describe(self) -> str:
        """One line per window: its value and whether it was set or derived (and how)."""
        lines = [f"the log spans {self.span_days:,} days, from its first purchase on {self.first_day} to as_of {self.as_of}"]
        for name, value, share, cap, what in [
                ("label_days", self.label_days, LABEL_SPAN_SHARE, LABEL_DAYS_CAP, "a third"),
                ("early_days", self.early_days, EARLY_SPAN_SHARE, EARLY_DAYS_CAP, "a quarter")]:
            if name in self.derived:
                raw = whole_weeks(self.span_days * share)
                how = f"derived: {what} of the span in whole weeks = {raw}" + (f", capped at {cap}" if raw > cap else "")
            else:
                how = "set in the parameters"
            lines.append(f"classify.{name} = {value} ({how})")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The windows for ``classification.json`` (with the rule when one was derived)."""
        return {"early_days": self.early_days, "label_days": self.label_days, "span_days": self.span_days,
                "first_purchase": self.first_day.isoformat(), "derived": list(self.derived),
                "rule": WINDOW_RULE if self.derived else None}


def derive_windows(first_day: dt.date, as_of: dt.date, early_days: int | None = None,
                   label_days: int | None = None) -> Windows:
    """``classify.early_days`` and ``classify.label_days``: as given, or derived from the log's span when None.

    The rule (:data:`WINDOW_RULE`): label_days = a third of the span from the
    first purchase to ``as_of`` (three equal periods: history before the
    training cut-off, training labels, test labels), at most 180 days;
    early_days = a quarter of the span, at most 90 days; both rounded to whole
    weeks, at least 7 days. On CDNOW's 18 months this gives the classic 180 and
    90; on a 120-day log 42 and 28.

    >>> w = derive_windows(dt.date(1997, 1, 1), dt.date(1998, 6, 30))
    >>> w.label_days, w.early_days, w.derived
    (180, 90, ('label_days', 'early_days'))
    >>> w = derive_windows(dt.date(2021, 1, 1), dt.date(2021, 4, 30), early_days=14)
    >>> w.label_days, w.early_days, w.derived
    (42, 14, ('label_days',))
    """
    span = (as_of - first_day).days
    derived = []
    if label_days is None:
        label_days = min(LABEL_DAYS_CAP, whole_weeks(span * LABEL_SPAN_SHARE))
        derived.append("label_days")
    if early_days is None:
        early_days = min(EARLY_DAYS_CAP, whole_weeks(span * EARLY_SPAN_SHARE))
        derived.append("early_days")
    return Windows(int(early_days), int(label_days), first_day, as_of, tuple(derived))
