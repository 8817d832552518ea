"""One deterministic customer sample for large customer bases (``scale.sample_customers``, issue 15).

Above ``scale.sample_customers`` customers, the stages fit, choose and
diagnose on a sample of that many customers and score everyone exactly:
stage 05 compares, fits and checks the BTYD models on it (the CLV, P(alive)
and intervals of every customer come from the fitted model per distinct
(frequency, recency, T) row), stage 06 chooses k and fits k-means and the
Gaussian mixture on it (every customer is then labelled by ``predict``),
stage 07 trains its models on it (every customer is scored by ``predict``).
At or below the size nothing is sampled: every shipped data set is below
the default, so its results do not depend on this module.

The sample is the same in every stage and every run: the customers whose
:func:`key_hash` (a fixed 64-bit hash of the customer id, not the pseudonym's
keyed HMAC, so the sample does not depend on the installation's secret) is
smallest. A smaller size gives a subset of a larger one, and a customer is
in or out of the sample whatever the other customers are.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from helpers.config import ScaleParams

#: The parameter's default (defined once, in :class:`helpers.config.ScaleParams`).
SAMPLE_CUSTOMERS: int = ScaleParams.model_fields["sample_customers"].default
#: The sample's rule in words (notebooks and JSON artifacts quote it).
SAMPLE_RULE = ("the customers with the smallest hash of their customer id (a fixed 64-bit hash: the same customers "
               "in every stage and run)")


def key_hash(keys: Iterable[object]) -> np.ndarray:
    """A fixed 64-bit hash of each customer id (as text): the order of :func:`sample_mask`.

    >>> a = key_hash(["c1", "c2"]); bool((a == key_hash(pd.Index(["c1", "c2"]))).all()), a.dtype.name
    (True, 'uint64')
    """
    text = pd.Series(np.asarray(pd.Index(keys), dtype=object))  # hashed as text (str() of a non-text id)
    return pd.util.hash_pandas_object(text, index=False).to_numpy()


def is_sampled(n: int, size: int | None) -> bool:
    """Whether ``n`` customers are more than the sample size (``size`` None: never).

    >>> is_sampled(10, 5), is_sampled(5, 5), is_sampled(10, None)
    (True, False, False)
    """
    return size is not None and n > size


def sample_mask(keys: Iterable[object], size: int | None) -> np.ndarray:
    """True for the customers of the sample: all of them up to ``size``, else the ``size`` smallest :func:`key_hash`.

    Ties of the hash (practically never) are broken by position, so exactly ``size`` are True.

    >>> keys = [f"c{i}" for i in range(10)]
    >>> int(sample_mask(keys, 4).sum()), bool(sample_mask(keys, 20).all())
    (4, True)
    >>> bool((sample_mask(keys, 4) <= sample_mask(keys, 6)).all())  # nested: a smaller sample is a subset
    True
    """
    hashes = key_hash(keys)
    mask = np.ones(len(hashes), dtype=bool)
    if is_sampled(len(hashes), size):
        mask[:] = False
        mask[np.argsort(hashes, kind="stable")[:size]] = True
    return mask


def sample_index(index: pd.Index, size: int | None) -> pd.Index:
    """The customers of ``index`` (customer ids) in the sample, in the order of ``index``."""
    return index[sample_mask(index, size)]


def sample_rows(frame: pd.DataFrame, size: int | None, column: str | None = None) -> pd.DataFrame:
    """The rows of ``frame`` whose customer (the index, or ``column``) is in the sample of its distinct customers.

    Every row of a sampled customer is kept (a purchase-days frame keeps whole customers), in the frame's order.

    >>> f = pd.DataFrame({"customer_id": ["a", "b", "a", "c"], "x": [1, 2, 3, 4]})
    >>> len(sample_rows(f, 5, "customer_id")), sample_rows(f, 2, "customer_id")["customer_id"].nunique()
    (4, 2)
    """
    keys = frame.index if column is None else pd.Index(frame[column])
    codes, uniques = pd.factorize(keys)
    if not is_sampled(len(uniques), size):
        return frame
    return frame[sample_mask(uniques, size)[codes]]


def sample_note(sampled: int, total: int, what: str = "fitted") -> str:
    """The sentence a notebook and an artifact give when a sample was used (empty when it was not).

    >>> sample_note(200_000, 1_000_000)
    'fitted on a sample of 200,000 of 1,000,000 customers (scale.sample_customers)'
    >>> sample_note(10, 10)
    ''
    """
    if sampled >= total:
        return ""
    return f"{what} on a sample of {sampled:,} of {total:,} customers (scale.sample_customers)"


def sample_reading(text: str) -> str:
    """The reading's sentence (notebooks 05-07) for a stage's :func:`sample_note` (empty when there was no sample).

    >>> sample_reading(sample_note(2, 5))
    '**Fitted on a sample:** fitted on a sample of 2 of 5 customers (scale.sample_customers); every customer is scored.'
    """
    return f"**Fitted on a sample:** {text}; every customer is scored." if text else ""


def sample_customers(table: pd.DataFrame, rows: pd.DataFrame, size: int | None,
                     column: str = "customer_id") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sample of ``table`` (one row per customer, indexed by customer id) and the ``rows`` of its customers.

    Both unchanged (the same objects) when ``table`` has at most ``size`` customers.

    >>> t = pd.DataFrame({"x": [1, 2, 3]}, index=["a", "b", "c"])
    >>> r = pd.DataFrame({"customer_id": ["a", "a", "b", "c"]})
    >>> small, lines = sample_customers(t, r, 2)
    >>> len(small), sorted(set(lines["customer_id"])) == sorted(small.index), sample_customers(t, r, 3)[0] is t
    (2, True, True)
    """
    if not is_sampled(len(table), size):
        return table, rows
    keep = sample_index(table.index, size)
    return table.loc[keep], rows[rows[column].isin(keep)]
