"""The project's vocabulary, defined once: value tiers, lifecycle stages, A/B/C classes, segment states.

Everything that lists these (schemas, plots, tables, the classifier, the
segment maps' checks) imports them from here; a segment map may rename RFM
segments, but not these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: The customer value pyramid, top down (current value x growth potential, see :mod:`helpers.tiers`).
TIERS: tuple[str, ...] = ("platinum", "gold", "iron", "lead")
#: The customer lifecycle, in order (see :mod:`helpers.clv`'s lifecycle rule).
LIFECYCLE: tuple[str, ...] = ("acquisition", "growth", "maturity", "decline", "termination")
#: The 80/20 revenue classes, from the key customers down.
ABC: tuple[str, ...] = ("A", "B", "C")
#: What an RFM segment says about a customer's relation now (a segment map gives each segment one).
SEGMENT_STATES: tuple[str, ...] = ("new", "active", "cooling", "slipping", "lost")


def pick(conditions: Sequence[np.ndarray], choices: Sequence[str], default: str) -> np.ndarray:
    """``np.select`` for labels: an object array in which every row of a label holds the same ``str`` object.

    ``np.select`` with texts builds a fixed-width unicode array, and a pandas column made of it gets one
    Python string per row: 0.6 GB for a column of ten million customers, against 80 MB of pointers here.
    The values are the same.

    >>> out = pick([np.array([True, False, False, True]), np.array([True, True, False, False])], ["a", "b"], "c")
    >>> out.tolist(), out[0] is out[3]
    (['a', 'b', 'c', 'a'], True)
    """
    labels = np.array([*choices, default], dtype=object)
    codes = np.select(list(conditions), list(range(len(choices))), default=len(choices))
    return labels[codes]


def shared_texts(values: pd.Series) -> pd.Series:
    """The same column of texts with one ``str`` object per distinct value (missing values left as they are).

    A text column read from DuckDB holds one Python string per row: a country column of ten million
    customers is half a gigabyte of copies of a few names. The values, the dtype and the index are
    unchanged.

    >>> s = pd.Series(["".join(["F", "R"]), "DE", None, "".join(["F", "R"])], name="country")
    >>> out = shared_texts(s)
    >>> out.tolist(), out[0] is out[3], out.name
    (['FR', 'DE', None, 'FR'], True, 'country')
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    out = values.to_numpy(dtype=object, copy=True)
    known = codes >= 0
    out[known] = np.asarray(uniques, dtype=object)[codes[known]]
    return pd.Series(out, index=values.index, name=values.name)


def crosstab(rows: pd.Series, columns: pd.Series, margins: bool = False, normalize: bool | str = False) -> pd.DataFrame:
    """``pd.crosstab(rows, columns, margins=..., normalize=...)`` (``normalize``: ``False`` or ``"index"``) for labels.

    pandas builds the table through a pivot of the whole frame (8 s for ten million customers' segments and
    classes); here each column is factorised once and the cells counted with ``np.bincount``. The table is
    the same: labels sorted, named as the inputs, ``All`` margins, counts as int64 or row shares. Inputs that
    are not named, plain object or integer columns on the same index without missing values go to pandas.

    >>> r, c = pd.Series(list("abab"), name="r"), pd.Series(list("xxyx"), name="c")
    >>> crosstab(r, c, margins=True).equals(pd.crosstab(r, c, margins=True))
    True
    """
    plain = all(s.dtype == object or pd.api.types.is_integer_dtype(s.dtype) for s in (rows, columns))
    if not plain or normalize not in (False, "index") or not rows.index.equals(columns.index) or not len(rows) \
            or rows.name is None or columns.name is None or rows.isna().any() or columns.isna().any():
        return pd.crosstab(rows, columns, margins=margins, normalize=normalize)
    try:
        r_codes, r_labels = pd.factorize(rows, sort=True)
        c_codes, c_labels = pd.factorize(columns, sort=True)
    except TypeError:  # labels that do not sort together
        return pd.crosstab(rows, columns, margins=margins, normalize=normalize)
    cells = np.bincount(r_codes.astype(np.int64) * len(c_labels) + c_codes,
                        minlength=len(r_labels) * len(c_labels)).reshape(len(r_labels), len(c_labels))
    index = pd.Index(r_labels, name=rows.name)
    table = pd.DataFrame(cells.astype(np.int64), index=index, columns=pd.Index(c_labels, name=columns.name))
    if normalize == "index":
        return table.div(table.sum(axis=1), axis=0)
    if margins:
        table["All"] = table.sum(axis=1)
        table.loc["All"] = table.sum(axis=0)
    return table


def joined_labels(*columns: np.ndarray) -> np.ndarray:
    """Each row's values of the integer ``columns`` written one after the other (``5``, ``3``, ``1`` -> ``'531'``).

    What ``a.astype(str) + b.astype(str) + ...`` gives for columns of integers without missing values (RFM
    scores), as an object array holding one string object per distinct combination (the concatenation
    makes one per row: half a gigabyte at ten million rows). Not for floats or missing values: values
    equal as numbers (``0.0`` and ``-0.0``) would share one text.

    >>> joined_labels(np.array([5, 1, 5]), np.array([3, 10, 3])).tolist()
    ['53', '110', '53']
    """
    factorized = [pd.factorize(np.asarray(c), use_na_sentinel=False) for c in columns]
    if not factorized or not len(factorized[0][0]):
        return np.empty(0, dtype=object)
    key = factorized[0][0].astype(np.int64)
    for codes, values in factorized[1:]:  # one integer per combination (sizes multiply: a few hundred here)
        key = key * len(values) + codes
    rows, keys = pd.factorize(key)
    digits = []
    for _, values in reversed(factorized):
        digits.append(values[keys % len(values)])
        keys = keys // len(values)
    labels = np.array(["".join(str(v) for v in row) for row in zip(*reversed(digits))], dtype=object)
    return labels[rows]


def top_rows(frame: pd.DataFrame, by: str, top: int, key: str = "customer_key") -> pd.DataFrame:
    """The ``top`` rows with the largest ``by`` (missing last), ties by ``key``: only the candidates are sorted.

    The rows at or above the ``top``-th largest value hold every row of the answer, so ten million customers
    are not sorted (by their texts, too) for fifteen: the same rows in the same order as the full sort.

    >>> f = pd.DataFrame({"customer_key": list("dcba"), "p": [0.5, 0.9, 0.5, None]})
    >>> top_rows(f, "p", 2)["customer_key"].tolist(), top_rows(f, "p", 9)["customer_key"].tolist()
    (['c', 'b'], ['c', 'b', 'd', 'a'])
    """
    values = frame[by]
    if values.notna().sum() > top:
        frame = frame[values >= values.nlargest(top).iloc[-1]]
    return frame.sort_values([by, key], ascending=[False, True]).head(top)
