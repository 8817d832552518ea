"""The BTYD summary: frequency, recency and age per customer, from purchase days.

The "buy till you die" models describe each customer by three numbers at a
date (a purchase is a purchase day, as in stage 04):

- ``frequency`` - repeat purchases (purchase days after the first);
- ``recency``   - time from the first to the last purchase (**not** RFM recency);
- ``T``         - the customer's age: time from the first purchase to ``as_of``.

Time is measured in a chosen unit (days or weeks) as a real number of days
divided by the unit, which is how Fader, Hardie and Lee (2005) measured CDNOW
(and what the published-results tests check).

The summaries are defined once, in :mod:`helpers.summary`, on **purchase days**
- one row per customer and day, columns ``customer_id``, ``day`` and ``amount``
(:data:`PURCHASE_DAY_COLUMNS`), the run's ``purchase_days`` artifact that stage 04
computes in SQL and stage 05 reads. The functions here take those days or the
clean transactions (:func:`as_purchase_days` groups them by day in pandas), for
callers that hold lines in a frame.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from helpers import summary as days_summary
from helpers.rfm import purchase_days
from helpers.summary import UNIT_DAYS

DAYS_PER_MONTH = 365.25 / 12
#: The columns of a purchase-days frame: one row per customer and purchase day, the day's total amount.
PURCHASE_DAY_COLUMNS = ["customer_id", "day", "amount"]
#: The mark (in ``DataFrame.attrs``) of a frame :func:`as_purchase_days` returned: its ``as_of``. pandas keeps
#: it on row subsets (still sorted and up to ``as_of``); a frame whose days were changed must drop it.
_AS_OF = "purchase_days_as_of"


def as_purchase_days(frame: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Purchase days up to ``as_of`` from purchase days (``day`` column) or from transactions (``order_ts``).

    Either way the result is in customer and day order (a table from elsewhere
    may come in any order), columns :data:`PURCHASE_DAY_COLUMNS`.

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [1.0, 2.0, 4.0],
    ...     "order_ts": pd.to_datetime(["2020-01-01 09:00", "2020-01-01 17:00", "2020-02-05 08:00"])})
    >>> days = as_purchase_days(tx, dt.date(2020, 1, 31))
    >>> days.values.tolist()
    [['a', Timestamp('2020-01-01 00:00:00'), 3.0]]
    >>> as_purchase_days(as_purchase_days(tx, dt.date(2020, 2, 5)), dt.date(2020, 1, 31)).equals(days)
    True
    >>> as_purchase_days(days, dt.date(2020, 1, 31)) is days  # already sorted and cut at this as_of: no second sort
    True
    """
    if frame.attrs.get(_AS_OF) == as_of and list(frame.columns) == PURCHASE_DAY_COLUMNS:
        return frame  # already this function's result (or rows of it): a million customers' days sort in seconds
    if "day" not in frame.columns:
        out = purchase_days(frame, as_of)[PURCHASE_DAY_COLUMNS]
    else:  # in customer and day order, as grouped transactions are: a customer's first row is the first purchase
        out = days_summary.until(frame, as_of)[PURCHASE_DAY_COLUMNS].sort_values(["customer_id", "day"], kind="stable")
    out.attrs[_AS_OF] = as_of
    return out


def log_span_days(frame: pd.DataFrame, as_of: dt.date) -> int:
    """Days from the first purchase in the log (transactions or purchase days) to ``as_of``.

    What the data-derived defaults (holdout, acquisition window) are measured on.

    >>> log_span_days(pd.DataFrame({"customer_id": ["a"], "amount": [1.0], "day": pd.to_datetime(["2020-01-01"])}),
    ...               dt.date(2020, 1, 31))
    30
    """
    return (as_of - days_summary.log_start(as_purchase_days(frame, as_of), as_of)).days


def btyd_summary(frame: pd.DataFrame, as_of: dt.date, unit: str = "W") -> pd.DataFrame:
    """:func:`helpers.summary.btyd_summary` of the clean transactions or purchase days ``frame``.

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b"], "amount": [5.0, 1.0, 3.0, 2.0],
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-15", "2020-01-29"])})
    >>> btyd_summary(tx, dt.date(2020, 1, 29), "W").values.tolist()
    [[1.0, 2.0, 4.0, 3.0], [0.0, 0.0, 0.0, 0.0]]
    """
    return days_summary.btyd_summary(as_purchase_days(frame, as_of), as_of, unit)


def calibration_holdout(frame: pd.DataFrame, calibration_end: dt.date, as_of: dt.date,
                        unit: str = "W") -> pd.DataFrame:
    """:func:`helpers.summary.calibration_holdout` of the clean transactions or purchase days ``frame``.

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b"], "amount": [1.0] * 4,
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-08", "2020-02-01", "2020-02-02"])})
    >>> calibration_holdout(tx, dt.date(2020, 1, 15), dt.date(2020, 2, 5), "D")[["frequency", "frequency_holdout"]]
                 frequency  frequency_holdout
    customer_id                              
    a                  1.0                1.0
    """
    return days_summary.calibration_holdout(as_purchase_days(frame, as_of), calibration_end, as_of, unit)


def purchase_halves(frame: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """:func:`helpers.summary.purchase_halves` (the lifecycle rule's trend) of the clean transactions or purchase days.

    >>> tx = pd.DataFrame({"customer_id": ["a"] * 4, "amount": [1.0] * 4,
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-20", "2020-03-01", "2020-03-20"])})
    >>> purchase_halves(tx, dt.date(2020, 3, 31)).values.tolist()
    [[1, 2]]
    """
    return days_summary.purchase_halves(as_purchase_days(frame, as_of), as_of)


def _distinct(frame: pd.DataFrame, cols: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each row's rank among the distinct rows of ``cols`` (sorted; ``groupby(cols).ngroup()``) and those rows.

    Each column's values become ordered integer codes (whole numbers in a
    short range are their own codes; others are numbered by a hash and a sort
    of the few distinct values), packed into one integer key per row, and the
    distinct keys unpacked into the distinct rows' values; a key space past
    2**62 or a missing value falls back to pandas' groupby.

    >>> codes, rows = _distinct(pd.DataFrame({"a": [2.0, 1.0, 2.0, 1.0], "b": [0.5, 3.0, 0.5, 0.0]}), ["a", "b"])
    >>> codes.tolist(), rows["a"].tolist(), rows["b"].tolist()
    ([2, 1, 2, 0], [1.0, 1.0, 2.0], [0.0, 3.0, 0.5])
    """
    key, size, tables = np.zeros(len(frame), dtype=np.int64), 1, []
    for col in cols:
        values = frame[col].to_numpy(dtype=float)
        low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
        codes = values.astype(np.int64) if high - low < 2**20 else None
        if codes is not None and np.array_equal(codes, values):  # whole numbers in a short range: their own codes
            codes -= int(low)
            table = low + np.arange(int(high - low) + 1, dtype=float)
        else:
            codes, distinct = pd.factorize(values)
            if (codes < 0).any():
                return _grouped(frame, cols)
            order = np.argsort(np.asarray(distinct), kind="stable")
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            codes, table = rank[codes], np.asarray(distinct, dtype=float)[order]
        size *= max(len(table), 1)
        if size > 2**62:
            return _grouped(frame, cols)
        key *= len(table)
        key += codes
        tables.append(table)
    codes, keys = pd.factorize(key, sort=True)
    rows = {}
    for col, table in reversed(list(zip(cols, tables))):
        keys, rest = np.divmod(keys, len(table))
        rows[col] = table[rest]
    return codes, {c: rows[c] for c in cols}


def _grouped(frame: pd.DataFrame, cols: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`_distinct` by pandas' groupby."""
    codes = frame.groupby(cols, sort=True, observed=True).ngroup().to_numpy()
    first = np.zeros(codes.max() + 1 if len(codes) else 0, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]  # first customer of each distinct row
    return codes, {c: frame[c].to_numpy(dtype=float)[first] for c in cols}


def distinct_rows(summary: pd.DataFrame, extra: tuple[str, ...] = ()) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct (frequency, recency, T) rows of ``summary`` with their counts, and each customer's row.

    The BTYD likelihoods and predictions depend on a customer only through
    these three numbers, so customers who share them can be fitted as one
    row with a weight and predicted once. ``rows.iloc[inverse]`` gives back
    the customers' rows in the order of ``summary``; ``extra`` columns (static
    covariates, :mod:`helpers.clv.covariates`) join the three in the key.

    >>> s = pd.DataFrame({"frequency": [1.0, 0.0, 1.0], "recency": [2.0, 0.0, 2.0], "T": [5.0, 3.0, 5.0]})
    >>> rows, inverse = distinct_rows(s)
    >>> rows["weight"].tolist(), inverse.tolist()
    ([1, 2], [1, 0, 1])
    """
    codes, values = _distinct(summary, ["frequency", "recency", "T", *extra])
    rows = pd.DataFrame(values)
    rows["weight"] = np.bincount(codes, minlength=len(rows))
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
