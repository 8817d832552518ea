"""Customer value now: the customer table, RFM scores and segments, and the ABC (80/20) split.

Stage 04. Conventions (also stated in notebook 04):

- **A purchase is a purchase day.** Several orders of one customer on one day
  count once (the convention of the lifetime-value literature, so RFM and the
  BTYD models of stage 05 count purchases the same way); their amounts add up.
- **RFM recency** is ``recency_days``: days from the last purchase to ``as_of``.
  It is not the BTYD models' recency (first to last purchase).
- **Scores** are quantile scores 1..``bins`` (5 = best) that follow the data:
  customers with equal values get equal scores (no tie broken by another
  measure or by the key). A value's score is one plus ``bins`` times the share
  of customers with a worse value, rounded down; without ties every score holds
  a fifth of the customers, and a value shared by many customers takes a single
  score, so fewer than ``bins`` levels may be used (:func:`spread_warnings`
  says so). Scores depend on the values only, so reruns are identical.
- **One-time buyers** (one purchase day) get the segment map's one-time
  segments, before the R x F grid: whoever bought once is never "champions".
- **ABC classes** rank customers by revenue (``rfm.abc_cuts``): A = key
  customers, B = major customers, C = ordinary customers; the names, meanings
  and tactics are data in the segment map (its ``abc`` section).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from helpers import names, paths
from helpers.catalog import Catalog
from helpers.errors import ConfigError, DataError
from helpers.schemas import customer_schema_for, validate

ABC = names.ABC


def purchase_days(transactions: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """One row per customer and purchase day up to ``as_of``, with the day's total amount.

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a"], "amount": [1.0, 2.0, 4.0],
    ...     "order_ts": pd.to_datetime(["2020-01-01 09:00", "2020-01-01 17:00", "2020-01-05 08:00"])})
    >>> days = purchase_days(tx, dt.date(2020, 1, 31))
    >>> days["day"].dt.strftime("%m-%d").tolist(), days["amount"].tolist()
    (['01-01', '01-05'], [3.0, 4.0])
    """
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    tx = transactions[transactions["order_ts"] < end]
    if tx.empty:
        raise DataError(f"no transactions on or before as_of {as_of.isoformat()}")
    days = tx.assign(day=tx["order_ts"].dt.normalize())
    return days.groupby(["customer_id", "day"], sort=True, as_index=False)["amount"].sum()


def log_start(transactions: pd.DataFrame, as_of: dt.date) -> dt.date:
    """The day of the first purchase on or before ``as_of`` (data-derived windows are measured from it).

    >>> log_start(pd.DataFrame({"order_ts": pd.to_datetime(["2020-01-05 10:00", "2020-01-02 09:00"])}),
    ...           dt.date(2020, 1, 31))
    datetime.date(2020, 1, 2)
    """
    known = transactions.loc[transactions["order_ts"] < pd.Timestamp(as_of) + pd.Timedelta(days=1), "order_ts"]
    if known.empty:
        raise DataError(f"no purchases on or before as_of {as_of}")
    return known.min().date()


def first_country(transactions: pd.DataFrame) -> pd.Series:
    """Each customer's country on their earliest line that has one (ties: the first such line).

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a"], "country": [None, "FR", "DE"],
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-02"])})
    >>> first_country(tx).to_dict()
    {'a': 'FR'}
    """
    known = transactions.loc[transactions["country"].notna(), ["customer_id", "order_ts", "country"]]
    known = known if known.index.is_unique else known.reset_index(drop=True)
    earliest = known.groupby("customer_id", sort=True)["order_ts"].idxmin()  # first occurrence of the minimum
    return pd.Series(known.loc[earliest.to_numpy(), "country"].to_numpy(), index=earliest.index, name="country")


def customer_table(transactions: pd.DataFrame, as_of: dt.date, days: pd.DataFrame | None = None,
                   country: bool = True) -> pd.DataFrame:
    """The customer table at ``as_of``: identity and behaviour columns of the information model.

    ``days`` may pass :func:`purchase_days` of the same transactions and
    ``as_of`` when the caller has them already (they are the costly part);
    ``country=False`` leaves out the country of the first order.

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [10.0, 20.0, 5.0],
    ...     "order_ts": pd.to_datetime(["2020-01-01", "2020-01-21", "2020-01-31"])})
    >>> customer_table(tx, dt.date(2020, 1, 31))[["customer_id", "recency_days", "frequency", "tenure_days"]].values.tolist()
    [['a', 10, 2, 30], ['b', 0, 1, 0]]
    """
    days = purchase_days(transactions, as_of) if days is None else days
    g = days.groupby("customer_id", sort=True)
    table = pd.DataFrame({
        "first_purchase": g["day"].min(),
        "last_purchase": g["day"].max(),
        "frequency": g["day"].size().astype("int64"),
        "monetary_total": g["amount"].sum().astype(float),
    })
    ts = pd.Timestamp(as_of)
    table["recency_days"] = (ts - table["last_purchase"]).dt.days.astype("int64")
    table["tenure_days"] = (ts - table["first_purchase"]).dt.days.astype("int64")
    table["monetary_avg"] = table["monetary_total"] / table["frequency"]
    if country and "country" in transactions.columns:
        table["country"] = first_country(transactions).reindex(table.index)
    table = table.reset_index()
    order = ["customer_id", "country", "first_purchase", "last_purchase", "recency_days", "frequency",
             "monetary_total", "monetary_avg", "tenure_days"]
    return table[[c for c in order if c in table.columns]]


def value_scores(values: pd.Series, higher_is_better: bool = True, bins: int = 5) -> pd.Series:
    """Scores 1..``bins`` from the share of customers with a worse value; equal values, equal scores.

    The score of a value is ``1 + floor(bins * w / n)``, where ``w`` counts the
    customers with a strictly worse value and ``n`` all customers (integer
    arithmetic, so no rounding differences). This is the quantile cut with the
    lower quantiles as edges: a tie group gets the score of its lowest member,
    so nobody is promoted by a tie. Without ties every score holds n / bins
    customers (give or take one); a value shared by many customers takes one
    score and some scores may stay unused. The worst value always scores 1.

    >>> f = pd.Series([1, 1, 1, 1, 1, 1, 1, 1, 2, 5])   # 80% buy once
    >>> value_scores(f, bins=5).tolist()
    [1, 1, 1, 1, 1, 1, 1, 1, 5, 5]
    >>> value_scores(pd.Series([30, 0, 10, 10]), higher_is_better=False, bins=4).tolist()
    [1, 4, 2, 2]
    """
    if values.isna().any():
        raise DataError(f"cannot score {values.name or 'a measure'}: {int(values.isna().sum())} missing value(s)")
    oriented = values.to_numpy() if higher_is_better else -values.to_numpy()
    n = len(oriented)
    worse = np.searchsorted(np.sort(oriented, kind="stable"), oriented, side="left").astype("int64")
    return pd.Series(np.minimum(worse * bins // max(n, 1) + 1, bins).astype("int64"), index=values.index)


#: The RFM measures: (column, score column, letter, higher is better).
MEASURES: list[tuple[str, str, str, bool]] = [
    ("recency_days", "r_score", "R", False),
    ("frequency", "f_score", "F", True),
    ("monetary_total", "m_score", "M", True),
]


def rfm_scores(customers: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Add ``r_score``, ``f_score``, ``m_score`` (``bins`` = most recent, most frequent, highest spend).

    Each score is :func:`value_scores` of its own measure only.
    """
    out = customers.copy()
    for column, score, _, better in MEASURES:
        out[score] = value_scores(out[column], better, bins)
    out["rfm_cell"] = out["r_score"].astype(str) + out["f_score"].astype(str) + out["m_score"].astype(str)
    return out


#: The states a segment map may give its segments (``state:``), for the report's migration summary:
#: new (first purchases, recent), active (buying recently and repeatedly), cooling (average or
#: below-average recency), slipping (used to buy, nothing for a while), lost (long gone).
SEGMENT_STATES = names.SEGMENT_STATES


@dataclass(frozen=True)
class SegmentMap:
    """The R x F segment grid, the one-time buyers' segments, and the meaning and action of each.

    ``one_time`` maps each R score to the segment of customers with a single
    purchase day; it applies before the grid. ``None`` (a map file without a
    ``one_time`` entry) lets the grid place one-time buyers too. ``abc`` gives
    each ABC class (``"A"``, ``"B"``, ``"C"``) a ``name``, ``meaning`` and
    ``action``; ``None`` (a map file without an ``abc`` entry) leaves the bare
    letters (see :meth:`abc_classes`).
    ``states`` maps each segment that has a ``state`` to one of :data:`SEGMENT_STATES`; ``None``
    when the map gives none (the report then cannot tell slipping away from won back).
    """

    grid: dict[int, list[str]]
    segments: dict[str, dict[str, str]]
    tiers: dict[str, dict[str, str]]
    one_time: dict[int, str] | None = None
    abc: dict[str, dict[str, str]] | None = None
    states: dict[str, str] | None = None

    def by_grid(self, frequency: pd.Series) -> pd.Series:
        """Which customers the R x F grid places (all but the one-time buyers, when the map has their segments)."""
        if self.one_time is None:
            return pd.Series(True, index=frequency.index)
        return frequency.ne(1)

    def segment(self, r: pd.Series, f: pd.Series, frequency: pd.Series | None = None) -> pd.Series:
        """The segment name of each customer: one-time segment by R when ``frequency`` is 1, else the (R, F) cell."""
        lookup = {(ri, fi + 1): name for ri, row in self.grid.items() for fi, name in enumerate(row)}
        out = pd.Series([lookup[(a, b)] for a, b in zip(r, f, strict=True)], index=r.index, dtype=object)
        if frequency is not None and self.one_time is not None:
            once = ~self.by_grid(frequency)
            out[once] = r[once].map(self.one_time)
        return out

    def actions(self) -> pd.DataFrame:
        """Segments with their meaning and recommended action, in the order of the file."""
        return pd.DataFrame.from_dict(self.segments, orient="index").rename_axis("segment")

    def abc_classes(self) -> pd.DataFrame:
        """Name, meaning and action of the classes A, B and C (the bare letter and empty texts when the map has none).

        >>> SegmentMap({}, {}, {}).abc_classes().values.tolist()
        [['A', '', ''], ['B', '', ''], ['C', '', '']]
        """
        given = self.abc or {}
        rows = {c: {"name": given.get(c, {}).get("name", c), "meaning": given.get(c, {}).get("meaning", ""),
                    "action": given.get(c, {}).get("action", "")} for c in ABC}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("abc_class")


def grid_counts(customers: pd.DataFrame, segment_map: SegmentMap, bins: int) -> pd.DataFrame:
    """Customers the grid places per (R, F) cell: rows R ``bins``..1, columns F 1..``bins`` (zeros included).

    One-time buyers are left out when the map gives them their own segments.
    """
    placed = customers[segment_map.by_grid(customers["frequency"])]
    counts = placed.groupby(["r_score", "f_score"]).size()
    rows = range(bins, 0, -1)
    cols = range(1, bins + 1)
    return pd.DataFrame([[int(counts.get((r, f), 0)) for f in cols] for r in rows],
                        index=pd.Index(rows, name="r_score"), columns=pd.Index(cols, name="f_score"))


def load_segment_map(name: str, bins: int = 5) -> SegmentMap:
    """Read and check a segment map file (relative to ``params/``).

    Every grid cell must name a segment described in ``segments``; the grid must
    be ``bins`` x ``bins``. The optional ``one_time`` entry is one segment name
    for all one-time buyers, or a name per R score 1..``bins``. Each segment may
    have a ``state`` (one of :data:`SEGMENT_STATES`); the report counts a segment
    without one neither as slipping away nor as won back, and names it.
    """
    file = paths.resolve(name, paths.PARAMS_DIR)
    if not file.exists():
        raise ConfigError(f"segment map not found: {file}")
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    grid = {int(k): list(v) for k, v in data.get("grid", {}).items()}
    if sorted(grid) != list(range(1, bins + 1)) or any(len(row) != bins for row in grid.values()):
        raise ConfigError(f"{file}: 'grid' must have rows 1..{bins}, each with {bins} segment names (F score 1..{bins}), "
                          f"because rfm.bins is {bins}; give a map with a {bins} x {bins} grid (rfm.segment_map) "
                          f"or set rfm.bins to the map's size")
    one_time = data.get("one_time")
    if isinstance(one_time, str):
        one_time = dict.fromkeys(range(1, bins + 1), one_time)
    elif isinstance(one_time, dict):
        one_time = {int(k): str(v) for k, v in one_time.items()}
        if sorted(one_time) != list(range(1, bins + 1)):
            raise ConfigError(f"{file}: 'one_time' must name a segment for each R score 1..{bins} "
                              f"(or be one segment name for all one-time buyers)")
    elif one_time is not None:
        raise ConfigError(f"{file}: 'one_time' must be a segment name or a mapping R score -> segment name")
    described = {str(k): dict(v or {}) for k, v in (data.get("segments") or {}).items()}
    named = {n for row in grid.values() for n in row} | set((one_time or {}).values())
    unknown = sorted(named - set(described))
    if unknown:
        raise ConfigError(f"{file}: grid or one_time names segments with no entry under 'segments': {unknown}")
    states = _segment_states(file, described)
    described = {k: {f: v for f, v in d.items() if f != "state"} for k, d in described.items()}
    tiers = data.get("tiers", {})
    if set(tiers) != set(names.TIERS):
        raise ConfigError(f"{file}: 'tiers' must describe platinum, gold, iron and lead")
    return SegmentMap(grid, described, tiers, one_time, _abc_entry(data.get("abc"), file), states)


def _abc_entry(abc: object, file: Path) -> dict[str, dict[str, str]] | None:
    """The map file's optional ``abc`` section, checked: classes A, B and C, each with a ``name``."""
    if abc is None:
        return None
    if not isinstance(abc, dict) or set(map(str, abc)) != set(ABC):
        raise ConfigError(f"{file}: 'abc' must describe the classes A, B and C (or be left out to show the bare letters)")
    out: dict[str, dict[str, str]] = {}
    for key, entry in abc.items():
        if not isinstance(entry, dict) or not str(entry.get("name") or "").strip():
            raise ConfigError(f"{file}: 'abc' class {key} needs a 'name' (and may have a 'meaning' and an 'action')")
        unknown = sorted(set(entry) - {"name", "meaning", "action"})
        if unknown:
            raise ConfigError(f"{file}: 'abc' class {key} has unknown entries {unknown}; use name, meaning and action")
        out[str(key)] = {k: str(entry.get(k) or "") for k in ("name", "meaning", "action")}
    return {c: out[c] for c in ABC}


def _segment_states(file: Path, described: dict[str, dict[str, str]]) -> dict[str, str] | None:
    """Segment -> state from the ``state`` of each entry under ``segments`` (``None`` if no entry has one)."""
    states = {name: d["state"] for name, d in described.items() if d.get("state") is not None}
    if not states:
        return None
    bad = {name: state for name, state in states.items() if state not in SEGMENT_STATES}
    if bad:
        raise ConfigError(f"{file}: unknown segment state(s) {bad}; a state is one of {', '.join(SEGMENT_STATES)}")
    return states


def abc_classes(monetary: pd.Series, ids: pd.Series, cuts: tuple[float, float] = (0.05, 0.20)) -> pd.Series:
    """ABC class by revenue rank: A = top ``cuts[0]`` of customers, B = up to ``cuts[1]``, C = the rest.

    >>> m = pd.Series([50.0, 10.0, 30.0, 5.0, 5.0]); ids = pd.Series(list("abcde"))
    >>> abc_classes(m, ids, (0.2, 0.6)).tolist()
    ['A', 'B', 'B', 'C', 'C']
    """
    order = pd.DataFrame({"m": monetary, "id": ids}).sort_values(["m", "id"], ascending=[False, True], kind="stable").index
    share = pd.Series((np.arange(len(order)) + 1) / len(order), index=order).reindex(monetary.index)
    return pd.Series(np.where(share <= cuts[0], "A", np.where(share <= cuts[1], "B", "C")), index=monetary.index)


def spend_outliers(customers: pd.DataFrame, factor: float = 100.0) -> pd.DataFrame:
    """Customers whose spend is more than ``factor`` times the median customer's, largest first.

    They are kept (a wholesaler is a real customer) but flagged: one of them can
    hold most of the revenue, and the notebooks and the report say so. Returns
    the customers' rows with ``times_median``.

    >>> c = pd.DataFrame({"customer_id": list("abcd"), "monetary_total": [10.0, 12.0, 9.0, 11000.0]})
    >>> spend_outliers(c)[["customer_id", "times_median"]].values.tolist()
    [['d', 1000.0]]
    """
    spend = customers["monetary_total"].astype(float)
    median = float(spend[spend > 0].median()) if (spend > 0).any() else 0.0
    if median <= 0:
        return customers.iloc[:0].assign(times_median=pd.Series(dtype=float))
    out = customers.assign(times_median=(spend / median).round(1))[spend > factor * median]
    return out.sort_values(["times_median", "customer_id"], ascending=[False, True])


def pareto_curve(monetary: pd.Series) -> pd.DataFrame:
    """Cumulative share of revenue against cumulative share of customers, best customers first.

    >>> pareto_curve(pd.Series([1.0, 3.0])).round(2).values.tolist()
    [[0.0, 0.0], [0.5, 0.75], [1.0, 1.0]]
    """
    values = np.sort(monetary.to_numpy(dtype=float))[::-1]
    total = values.sum()
    cum = np.concatenate([[0.0], np.cumsum(values) / total if total > 0 else np.zeros(len(values))])
    return pd.DataFrame({"customer_share": np.arange(len(values) + 1) / len(values), "revenue_share": cum})


def revenue_share_at(curve: pd.DataFrame, customer_share: float) -> float:
    """The share of revenue the top ``customer_share`` of customers bring, read off :func:`pareto_curve` (nearest point).

    >>> revenue_share_at(pareto_curve(pd.Series([1.0, 3.0])), 0.5)
    0.75
    """
    return float(curve.loc[(curve["customer_share"] - customer_share).abs().idxmin(), "revenue_share"])


def class_summary(customers: pd.DataFrame, by: str) -> pd.DataFrame:
    """Customers, revenue and their shares per class or segment, largest revenue first."""
    g = customers.groupby(by, sort=True)
    out = pd.DataFrame({"customers": g.size(), "revenue": g["monetary_total"].sum()})
    out["customer_share"] = out["customers"] / out["customers"].sum()
    out["revenue_share"] = out["revenue"] / out["revenue"].sum()
    out["avg_spend"] = out["revenue"] / out["customers"]
    return out.sort_values("revenue", ascending=False)


def abc_rules(cuts: tuple[float, float]) -> dict[str, str]:
    """Which customers each ABC class holds, in words, from the cuts ``rfm.abc_cuts``.

    >>> abc_rules((0.05, 0.20))
    {'A': 'top 5% by revenue', 'B': 'next 15%', 'C': 'other 80%'}
    """
    def pct(x: float) -> str:
        return f"{100 * x:.1f}".rstrip("0").rstrip(".") + "%"

    return {"A": f"top {pct(cuts[0])} by revenue", "B": f"next {pct(cuts[1] - cuts[0])}", "C": f"other {pct(1 - cuts[1])}"}


def abc_summary(customers: pd.DataFrame, segment_map: SegmentMap, cuts: tuple[float, float]) -> pd.DataFrame:
    """The ABC table: per class its name, which customers it holds, customers and revenue with their shares,
    and the class's meaning and recommended action (from the segment map; bare letters when it has none).

    >>> c = pd.DataFrame({"abc_class": ["A", "B", "C", "C"], "monetary_total": [60.0, 25.0, 10.0, 5.0]})
    >>> t = abc_summary(c, SegmentMap({}, {}, {}), (0.25, 0.5))
    >>> t[["name", "rule", "customers", "revenue_share"]].values.tolist()
    [['A', 'top 25% by revenue', 1, 0.6], ['B', 'next 25%', 1, 0.25], ['C', 'other 50%', 2, 0.15]]
    """
    summary = class_summary(customers, "abc_class").reindex(list(ABC))
    summary["customers"] = summary["customers"].fillna(0).astype(int)
    shares = ["revenue", "customer_share", "revenue_share"]
    summary[shares] = summary[shares].fillna(0.0)
    names = segment_map.abc_classes()
    out = summary.join(names[["name"]]).assign(rule=pd.Series(abc_rules(cuts)))
    out = out.join(names[["meaning", "action"]])
    columns = ["name", "rule", "customers", "customer_share", "revenue", "revenue_share", "avg_spend", "meaning", "action"]
    return out[columns].rename_axis("abc_class")


def rfm_table(transactions: pd.DataFrame, as_of: dt.date, bins: int, segment_map: SegmentMap,
              abc_cuts: tuple[float, float]) -> pd.DataFrame:
    """Stage 04 in one call: customer table, RFM scores, segments and ABC classes, validated."""
    customers = rfm_scores(customer_table(transactions, as_of), bins)
    customers["rfm_segment"] = segment_map.segment(customers["r_score"], customers["f_score"], customers["frequency"])
    customers["abc_class"] = abc_classes(customers["monetary_total"], customers["customer_id"], abc_cuts)
    return validate(customers, customer_schema_for(bins), "customer table")


#: A measure has "almost no spread" when one value is shared by at least this share of customers.
NO_SPREAD_SHARE = 0.9


def _values(lo: float, hi: float, column: str) -> str:
    """A value or range of one measure in words: '1 purchase day', '0-30 days since the last purchase'."""
    money = column == "monetary_total"
    shown = (lambda v: f"{v:,.2f}") if money else (lambda v: f"{int(v):,}")  # noqa: E731
    span = shown(lo) if lo == hi else f"{shown(lo)}-{shown(hi)}"
    if money:
        return f"total spend {span}"
    if column == "frequency":
        return f"{span} purchase day" + ("" if lo == hi == 1 else "s")
    return f"{span} day{'' if lo == hi == 1 else 's'} since the last purchase"


def spread_caveats(customers: pd.DataFrame, bins: int = 5) -> list[dict[str, str]]:
    """``{"code", "text"}`` caveats on the RFM measures of this customer table (scored by :func:`rfm_scores`).

    Two kinds: a measure with almost no spread (one value shared by at least
    :data:`NO_SPREAD_SHARE` of customers: the score cannot tell them apart),
    and a score that uses fewer than ``bins`` levels (equal values get equal
    scores), with the values behind each level used.
    """
    n = len(customers)
    out: list[dict[str, str]] = []
    if n == 0:
        return out
    for column, score, letter, _ in MEASURES:
        counts = customers[column].value_counts()
        top_value, top_n = counts.index[0], int(counts.iloc[0])
        if top_n == n:
            out.append({"code": f"rfm_no_spread_{column}", "text": (
                f"{column} has no spread: all {n:,} customers have {_values(top_value, top_value, column)}, "
                f"so every {letter} score is 1 and tells no customers apart"
                + (" (recent or lapsed in a segment name says nothing here)." if letter == "R" else "."))})
            continue
        if top_n / n >= NO_SPREAD_SHARE:
            top_score = int(customers.loc[customers[column] == top_value, score].iloc[0])
            out.append({"code": f"rfm_no_spread_{column}", "text": (
                f"{column} has almost no spread: {top_n / n:.1%} of customers ({top_n:,} of {n:,}) have the same "
                f"value, {_values(top_value, top_value, column)}; the {letter} score cannot tell them apart "
                f"(they all get {letter} {top_score}) and separates only the other {n - top_n:,}.")})
        levels = customers.groupby(score, sort=True)[column].agg(["min", "max", "size"])
        if len(levels) < bins:
            parts = [f"{letter} {lvl} = {_values(row['min'], row['max'], column)} "
                     f"({int(row['size']):,} customer{'' if row['size'] == 1 else 's'})"
                     for lvl, row in levels.iterrows()]
            why = (f"customers with equal {column} get equal scores" if len(counts) < n
                   else f"there are only {n:,} customers")
            out.append({"code": f"rfm_{letter.lower()}_levels", "text": (
                f"{letter} scores use only {len(levels)} of {bins} levels ({why}): " + "; ".join(parts) + ".")})
    return out


def spread_warnings(customers: pd.DataFrame, bins: int = 5) -> list[str]:
    """The sentences of :func:`spread_caveats`, for the notebook."""
    return [c["text"] for c in spread_caveats(customers, bins)]


def one_time_summary(customers: pd.DataFrame, segment_map: SegmentMap | None = None) -> str:
    """One sentence: how many customers bought on a single day, their revenue share and their segments."""
    n = len(customers)
    once = customers["frequency"].eq(1)
    k = int(once.sum())
    if k == 0:
        return f"No one-time buyers: all {n:,} customers bought on at least two days."
    revenue = float(customers["monetary_total"].sum())
    rev_share = float(customers.loc[once, "monetary_total"].sum()) / revenue if revenue > 0 else 0.0
    text = (f"{k:,} of {n:,} customers ({k / n:.1%}) bought on a single day (one-time buyers) and brought "
            f"{rev_share:.1%} of revenue; the other {n - k:,} bought on two or more days.")
    if "rfm_segment" in customers.columns:
        seg = customers.loc[once, "rfm_segment"].value_counts()
        listed = ", ".join(f"{name} {int(c):,}" for name, c in seg.items())
        if segment_map is not None and segment_map.one_time is None:
            text += f" The segment map has no one-time segments, so the R x F grid places them: {listed}."
        else:
            text += f" Their segments: {listed}."
    return text


def rfm_summary(customers: pd.DataFrame, bins: int) -> dict[str, Any]:
    """The content of ``rfm.json``: score levels used, one-time buyers, caveats (:func:`spread_caveats`)."""
    once = int(customers["frequency"].eq(1).sum())
    return {
        "bins": bins,
        "customers": len(customers),
        "one_time_buyers": once,
        "one_time_share": once / len(customers) if len(customers) else 0.0,
        "score_levels": {score: sorted(int(v) for v in customers[score].unique()) for _, score, *_ in MEASURES},
        "caveats": spread_caveats(customers, bins),
    }


def save_rfm_summary(catalog: Catalog, customers: pd.DataFrame, bins: int) -> Path:
    """Write ``rfm.json`` (:func:`rfm_summary`) beside ``customers_rfm.parquet``."""
    return catalog.write_json("rfm", rfm_summary(customers, bins))


def save_customers(catalog: Catalog, customers: pd.DataFrame, name: str = "customers") -> Path:
    """Write the customer table as Parquet and as a DuckDB table (same name)."""
    target = catalog.write_parquet(name, customers)
    catalog.write_tables({name: customers})
    return target


def load_customers(catalog: Catalog, name: str = "customers") -> pd.DataFrame:
    """Read a customer table written by :func:`save_customers` (04 writes customers_rfm, 05 customers)."""
    return catalog.read_parquet(name, stage="04 (customers_rfm) or 05 (customers)")
