"""The BTYD summary: frequency, recency and age per customer, from purchase days.

The "buy till you die" models describe each customer by three numbers at a
date (a purchase is a purchase day, as in stage 04):

- ``frequency`` - repeat purchases (purchase days after the first);
- ``recency``   - time from the first to the last purchase (**not** RFM recency);
- ``T``         - the customer's age: time from the first purchase to ``as_of``.

Time is measured in a chosen unit (days or weeks) as a real number of days
divided by the unit, which is how Fader, Hardie and Lee (2005) measured CDNOW
(and what the published-results tests check).

Every function here starts from **purchase days** - one row per customer and
day, columns ``customer_id``, ``day`` and ``spend`` (:data:`PURCHASE_DAY_COLUMNS`)
- or from the clean transactions, which :func:`as_purchase_days` turns into
purchase days. Stage 05 groups the log by day once and passes the days on; a
purchase-days table computed elsewhere (in SQL) plugs in the same way.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from helpers.errors import DataError
from helpers.rfm import purchase_days

UNIT_DAYS = {"D": 1.0, "W": 7.0}
DAYS_PER_MONTH = 365.25 / 12
#: The columns of a purchase-days frame: one row per customer and purchase day, the day's total spend.
PURCHASE_DAY_COLUMNS = ["customer_id", "day", "spend"]


def as_purchase_days(frame: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Purchase days up to ``as_of`` from purchase days (``day`` column) or from transactions (``order_ts``).

    Either way the result is in customer and day order (a table from elsewhere,
    e.g. SQL, may come in any order).

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [1.0, 2.0, 4.0],
    ...     "order_ts": pd.to_datetime(["2020-01-01 09:00", "2020-01-01 17:00", "2020-02-05 08:00"])})
    >>> days = as_purchase_days(tx, dt.date(2020, 1, 31))
    >>> days.values.tolist()
    [['a', Timestamp('2020-01-01 00:00:00'), 3.0]]
    >>> as_purchase_days(as_purchase_days(tx, dt.date(2020, 2, 5)), dt.date(2020, 1, 31)).equals(days)
    True
    """
    if "day" not in frame.columns:
        days = purchase_days(frame, as_of).rename(columns={"amount": "spend"})
        return days[PURCHASE_DAY_COLUMNS]
    known = frame[frame["day"] <= pd.Timestamp(as_of)]
    if known.empty:
        raise DataError(f"no transactions on or before as_of {as_of.isoformat()}")
    # in customer and day order, as grouped transactions are: a customer's first row is the first purchase
    return known[PURCHASE_DAY_COLUMNS].sort_values(["customer_id", "day"], kind="stable")


def log_span_days(frame: pd.DataFrame, as_of: dt.date) -> int:
    """Days from the first purchase in the log (transactions or purchase days) to ``as_of``.

    What the data-derived defaults (holdout, acquisition window) are measured on.
    """
    return (as_of - as_purchase_days(frame, as_of)["day"].min().date()).days


def btyd_summary(frame: pd.DataFrame, as_of: dt.date, unit: str = "W") -> pd.DataFrame:
    """Frequency, recency, T and mean repeat spend per customer at ``as_of``.

    ``frame`` is the clean transactions or purchase days (:func:`as_purchase_days`).
    ``monetary_value`` is the mean amount of the repeat purchase days (0 for
    one-time buyers), the input Gamma-Gamma expects.

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b"], "amount": [5.0, 1.0, 3.0, 2.0],
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-15", "2020-01-29"])})
    >>> btyd_summary(tx, dt.date(2020, 1, 29), "W").values.tolist()
    [[1.0, 2.0, 4.0, 3.0], [0.0, 0.0, 0.0, 0.0]]
    """
    days = as_purchase_days(frame, as_of)
    g = days.groupby("customer_id", sort=True)
    first, last, n = g["day"].min(), g["day"].max(), g.size()
    unit_days = UNIT_DAYS[unit]
    repeat_total = g["spend"].sum() - g["spend"].first()
    frequency = (n - 1).astype(float)
    return pd.DataFrame({
        "frequency": frequency,
        "recency": (last - first).dt.days / unit_days,
        "T": (pd.Timestamp(as_of) - first).dt.days / unit_days,
        "monetary_value": np.where(frequency > 0, repeat_total / frequency.where(frequency > 0, 1), 0.0),
    })


def calibration_holdout(frame: pd.DataFrame, calibration_end: dt.date, as_of: dt.date,
                        unit: str = "W") -> pd.DataFrame:
    """The calibration summary plus purchases in the holdout period (``calibration_end``, ``as_of``].

    ``frame`` is the clean transactions or purchase days. Customers first seen
    in the holdout are not part of the calibration cohort and are left out.

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b"], "amount": [1.0] * 4,
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-08", "2020-02-01", "2020-02-02"])})
    >>> calibration_holdout(tx, dt.date(2020, 1, 15), dt.date(2020, 2, 5), "D")[["frequency", "frequency_holdout"]]
                 frequency  frequency_holdout
    customer_id                              
    a                  1.0                1.0
    """
    if calibration_end >= as_of:
        raise DataError(f"calibration end {calibration_end} must be before as_of {as_of}")
    days = as_purchase_days(frame, as_of)
    first_day = days["day"].min().date()
    if first_day > calibration_end:
        raise DataError(
            f"no purchases in the calibration period: the first purchase is on {first_day}, after the calibration "
            f"end {calibration_end} ({(as_of - calibration_end).days} holdout days before as_of {as_of}). "
            "Shorten clv.holdout_days so the calibration period holds purchases."
        )
    cal = btyd_summary(days, calibration_end, unit)
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


#: The data-derived holdout: a third of the span in whole weeks, between these bounds (days).
HOLDOUT_MAX_DAYS = 273
HOLDOUT_MIN_DAYS = 28
HOLDOUT_RULE = (f"a third of the log's span (first purchase to as_of) in whole weeks, at most {HOLDOUT_MAX_DAYS} "
                f"days (39 weeks, as in Fader, Hardie and Lee 2005); a span under {3 * HOLDOUT_MIN_DAYS} days "
                "leaves no holdout")


def default_holdout_days(span_days: int) -> int | None:
    """The holdout length when ``clv.holdout_days`` is not set (None: the log is too short for one).

    >>> default_holdout_days(545), default_holdout_days(365), default_holdout_days(60)
    (175, 119, None)
    >>> default_holdout_days(3650)
    273
    """
    days = min(HOLDOUT_MAX_DAYS, 7 * (span_days // 21))
    return days if days >= HOLDOUT_MIN_DAYS else None
