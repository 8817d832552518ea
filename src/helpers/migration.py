"""How customers moved between segments since the last report, counted by the segment map's states.

Stage 08 compares this run's export with the published earlier report's
(:func:`helpers.history.previous_run`): :func:`migration` gives the transition
matrix and the flows, :func:`migration_summary` the customers slipping away and
won back. It goes by the states the segment map gives its segments (``state:``,
one of :data:`helpers.names.SEGMENT_STATES`), never by segment names, so a
custom ``rfm.segment_map`` is counted as well as the default one. The ordered
scales (value tiers, A/B/C classes) are counted as moves up and down
(:func:`ladder_moves`, worded by :func:`ladder_text`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from helpers.names import crosstab

#: Segment states a customer slips away into, the states they slip away from, and the states they are won back into.
GONE_STATES = ("slipping", "lost")
STAYING_STATES = ("new", "active", "cooling")
WON_BACK_STATES = ("active",)
#: The "segment before" of a customer new since the earlier report.
NEW = "(new)"


def migration(before: pd.DataFrame, after: pd.DataFrame, column: str = "rfm_segment") -> tuple[pd.DataFrame, pd.DataFrame]:
    """How customers moved between segments from one run to the next.

    Returns the transition matrix (rows: segment before, columns: after; a
    customer new since the earlier run is "(new)") and the flows between
    different segments, largest first.

    >>> b = pd.DataFrame({"customer_key": ["x", "y"], "rfm_segment": ["loyal", "loyal"]})
    >>> a = pd.DataFrame({"customer_key": ["x", "y", "z"], "rfm_segment": ["loyal", "at risk", "new"]})
    >>> migration(b, a)[1].values.tolist()
    [['(new)', 'new', 1], ['loyal', 'at risk', 1]]
    """
    joined = after[["customer_key", column]].merge(before[["customer_key", column]], on="customer_key", how="left",
                                                   suffixes=("_after", "_before"))
    joined[f"{column}_before"] = joined[f"{column}_before"].fillna(NEW)
    matrix = crosstab(joined[f"{column}_before"], joined[f"{column}_after"]).rename_axis(index="before", columns="after")
    flows = (joined[joined[f"{column}_before"] != joined[f"{column}_after"]]
             .groupby([f"{column}_before", f"{column}_after"]).size().rename("customers").reset_index()
             .rename(columns={f"{column}_before": "from", f"{column}_after": "to"})
             .sort_values(["customers", "from", "to"], ascending=[False, True, True]).reset_index(drop=True))
    return matrix, flows


def migration_summary(flows: pd.DataFrame, states: dict[str, str] | None,
                      t: Callable[[str], str] = lambda s: s) -> dict[str, Any]:
    """Customers slipping away and won back, from :func:`migration`'s ``flows`` and the map's segment states.

    Slipping away: from a new, active or cooling segment into a slipping or lost
    one; won back: from a slipping or lost segment into an active one. Customers
    new since the earlier report ("(new)") and segments the map gives no state
    (a segment added without one, or an earlier report made with another map)
    are counted in neither; ``unplaced``
    says how many moved from or to such segments. Without states (``None``: the
    map has no ``state`` entries) both counts are ``None`` and ``text`` says so. ``t`` translates
    the templates of ``text`` (and the segment names in it).

    >>> flows = pd.DataFrame({"from": ["loyal", "at risk", "(new)", "loyal"],
    ...                       "to": ["at risk", "loyal", "lost", "champions"], "customers": [5, 2, 3, 4]})
    >>> states = {"loyal": "active", "champions": "active", "at risk": "slipping", "lost": "lost"}
    >>> s = migration_summary(flows, states); s["slipping_away"], s["won_back"], s["unplaced"]
    (5, 2, 0)
    >>> migration_summary(flows, None)["won_back"] is None
    True
    """
    if not states:
        return {"has_states": False, "slipping_away": None, "won_back": None, "unplaced": None,
                "text": t("The segment map gives its segments no state (new, active, cooling, slipping, lost), so "
                          "this report cannot tell customers slipping away from customers won back; give each segment "
                          "a `state` in the segment map (rfm.segment_map) to count them.")}
    before = flows["from"].map(states)
    after = flows["to"].map(states)
    n = flows["customers"].astype(int)
    slipping = int(n[before.isin(STAYING_STATES) & after.isin(GONE_STATES)].sum())
    won = int(n[before.isin(GONE_STATES) & after.isin(WON_BACK_STATES)].sum())
    stateless = sorted((set(flows.loc[before.isna(), "from"]) - {NEW}) | set(flows.loc[after.isna(), "to"]))
    unplaced = int(n[flows["from"].isin(stateless) | flows["to"].isin(stateless)].sum())
    names = lambda wanted: t(", ").join(t(k) for k, v in states.items() if v in wanted) or t("none in this map")  # noqa: E731
    text = t("Slipping away: {slipping:,} customers moved from a new, active or cooling segment into a slipping or "
             "lost one ({gone}); won back: {won:,} moved from there into an active one ({active}).").format(
        slipping=slipping, gone=names(GONE_STATES), won=won, active=names(WON_BACK_STATES))
    if unplaced:
        text += " " + t("{n:,} customers moved from or to segments the segment map gives no state ({names}) and are "
                        "counted in neither.").format(n=unplaced, names=t(", ").join(t(x) for x in stateless))
    return {"has_states": True, "slipping_away": slipping, "won_back": won, "unplaced": unplaced, "text": text}


def changed_text(previous: str, flows: pd.DataFrame, t: Callable[[str], str] = lambda s: s) -> str:
    """The line above the migration matrix: which report this run is compared with, and how many moved.

    >>> changed_text("1998-03-31", pd.DataFrame({"customers": [1200, 34]}))
    'compared with the report of 1998-03-31: 1,234 customers changed segment'
    """
    return t("compared with the report of {previous}: {n:,} customers changed segment").format(
        previous=previous, n=int(flows["customers"].sum()))


@dataclass
class LadderMoves:
    """Moves on an ordered scale (value tiers, A/B/C classes) between two reports, top of the scale first."""

    column: str  # the export's column: value_tier or abc_class
    matrix: pd.DataFrame  # rows: before (and "(new)"), columns: after, both in the scale's order
    both: int  # customers in both reports with a place on the scale in each
    up: int  # of them, moved up the scale (to a better tier or class)
    down: int  # moved down
    fell: tuple[str, str, int] | None  # the biggest fall: from, to, customers (None when nobody fell)
    rose: tuple[str, str, int] | None  # the biggest rise
    new: int = 0  # customers new since the earlier report
    new_top: int = 0  # of them, placed straight into the scale's top two steps
    top: tuple[str, ...] = ()  # those two steps


def ladder_moves(before: pd.DataFrame, after: pd.DataFrame, column: str, order: tuple[str, ...]) -> LadderMoves | None:
    """How customers moved up and down an ordered scale (``order``: best first) since the earlier report.

    ``None`` when either report has no such column or no customer placed on it (a run without a forecast has
    no value tiers). Customers new since the earlier report are a row of the matrix, counted in no move.

    >>> b = pd.DataFrame({"customer_key": list("wxyz"), "value_tier": ["gold", "gold", "iron", "lead"]})
    >>> a = pd.DataFrame({"customer_key": list("wxyzv"), "value_tier": ["iron", "iron", "gold", "lead", "lead"]})
    >>> m = ladder_moves(b, a, "value_tier", ("platinum", "gold", "iron", "lead"))
    >>> m.both, m.up, m.down, m.fell, m.rose
    (4, 1, 2, ('gold', 'iron', 2), ('iron', 'gold', 1))
    >>> m.matrix.loc["gold"].tolist(), m.matrix.index[-1]
    ([0, 0, 2, 0], '(new)')
    """
    if column not in before or column not in after or before[column].isna().all() or after[column].isna().all():
        return None
    matrix, flows = migration(before, after, column)
    matrix = matrix.reindex(index=[*order, NEW], columns=list(order), fill_value=0).fillna(0).astype(int)
    rank = {name: i for i, name in enumerate(order)}
    placed = flows[flows["from"].isin(rank) & flows["to"].isin(rank)]
    step = placed["to"].map(rank) - placed["from"].map(rank)  # > 0: down the scale
    biggest = lambda rows: tuple(rows.iloc[0][["from", "to", "customers"]]) if len(rows) else None  # noqa: E731
    fell, rose = biggest(placed[step > 0]), biggest(placed[step < 0])
    return LadderMoves(column, matrix, int(matrix.loc[list(order)].to_numpy().sum()),
                       int(placed.loc[step < 0, "customers"].sum()), int(placed.loc[step > 0, "customers"].sum()),
                       None if fell is None else (fell[0], fell[1], int(fell[2])),
                       None if rose is None else (rose[0], rose[1], int(rose[2])), int(matrix.loc[NEW].sum()),
                       int(matrix.loc[NEW, list(order[:2])].sum()), tuple(order[:2]))


@dataclass
class GridMoves:
    """Moves on the value pyramid's 2 x 2 grid (current value x growth potential) between two reports."""

    column: str
    matrix: pd.DataFrame  # rows: before (and "(new)"), columns: after, in the tiers' order
    both: int  # customers in both reports with a tier in each
    gained: dict[str, int]  # per axis: customers who moved onto its high side
    lost: dict[str, int]  # ... off it
    biggest: tuple[str, str, int] | None  # the largest flow between two different tiers
    new: int = 0
    new_top: int = 0  # new customers who started with high growth potential
    top: tuple[str, ...] = ()  # the tiers of high growth potential


def grid_moves(before: pd.DataFrame, after: pd.DataFrame, column: str = "value_tier") -> GridMoves | None:
    """How customers moved on the value pyramid's two axes since the earlier report (``None`` without tiers).

    >>> b = pd.DataFrame({"customer_key": list("wxyz"), "value_tier": ["gold", "gold", "iron", "lead"]})
    >>> a = pd.DataFrame({"customer_key": list("wxyzv"), "value_tier": ["iron", "iron", "gold", "lead", "iron"]})
    >>> m = grid_moves(b, a)
    >>> m.both, m.gained, m.lost, m.biggest, m.new, m.new_top
    (4, {'current value': 1, 'growth potential': 2}, {'current value': 2, 'growth potential': 1}, ('gold', 'iron', 2), 1, 1)
    """
    from helpers.tiers import AXES, TIER_AXES

    order = tuple(TIER_AXES)
    if column not in before or column not in after or before[column].isna().all() or after[column].isna().all():
        return None
    matrix, flows = migration(before, after, column)
    matrix = matrix.reindex(index=[*order, NEW], columns=list(order), fill_value=0).fillna(0).astype(int)
    placed = flows[flows["from"].isin(order) & flows["to"].isin(order)]
    gained, lost = {}, {}
    for i, axis in enumerate(AXES):
        was, now = (placed[side].map(lambda tier: TIER_AXES[tier][i]).astype(bool) for side in ("from", "to"))
        gained[axis], lost[axis] = int(placed.loc[~was & now, "customers"].sum()), int(placed.loc[was & ~now, "customers"].sum())
    biggest = tuple(placed.iloc[0][["from", "to", "customers"]]) if len(placed) else None
    top = tuple(tier for tier, (_, potential) in TIER_AXES.items() if potential)
    return GridMoves(column, matrix, int(matrix.loc[list(order)].to_numpy().sum()), gained, lost,
                     None if biggest is None else (biggest[0], biggest[1], int(biggest[2])),
                     int(matrix.loc[NEW].sum()), int(matrix.loc[NEW, list(top)].sum()), top)


def grid_text(moves: GridMoves, scale: str, label: Callable[[str], str],
              t: Callable[[str], str] = lambda s: s) -> str:
    """One sentence on ``moves``: who gained or lost high current value and high growth potential.

    >>> b = pd.DataFrame({"customer_key": list("xyz"), "value_tier": ["gold", "gold", "iron"]})
    >>> grid_text(grid_moves(b, b.assign(value_tier=["iron", "iron", "iron"])), "Value tiers", str)
    'Value tiers: of 3 customers in both reports, 0 rose into high current value and 2 fell out of it; 2 gained high growth potential and 0 lost it. The largest move: 2 customers from gold to iron.'
    """
    if not any(moves.gained.values()) and not any(moves.lost.values()):
        text = t("{scale}: none of the {both:,} customers in both reports changed place.").format(
            scale=scale, both=moves.both)
    else:
        from helpers.tiers import AXES

        current, potential = AXES
        gained, lost = moves.gained, moves.lost
        text = t("{scale}: of {both:,} customers in both reports, {cur_up:,} rose into high current value and "
                 "{cur_down:,} fell out of it; {pot_up:,} gained high growth potential and {pot_down:,} lost "
                 "it.").format(scale=scale, both=moves.both, cur_up=gained[current], cur_down=lost[current],
                               pot_up=gained[potential], pot_down=lost[potential])
        if moves.biggest:
            text += " " + t("The largest move: {n:,} customers from {before} to {after}.").format(
                n=moves.biggest[2], before=label(moves.biggest[0]), after=label(moves.biggest[1]))
    return text + _newcomers(moves, label, t)


def ladder_text(moves: LadderMoves, scale: str, label: Callable[[str], str],
                t: Callable[[str], str] = lambda s: s) -> str:
    """One sentence on ``moves``: how many moved up and down, the biggest fall and the biggest rise.

    ``scale`` names the scale (in the report's language), ``label`` gives a step's name in it, and ``t``
    translates the sentence templates (filled afterwards, never looked up finished).

    >>> b = pd.DataFrame({"customer_key": list("xyz"), "value_tier": ["gold", "gold", "iron"]})
    >>> a = b.assign(value_tier=["iron", "iron", "iron"])
    >>> ladder_text(ladder_moves(b, a, "value_tier", ("gold", "iron")), "Value tiers", str)
    'Value tiers: of 3 customers in both reports, 0 moved up and 2 moved down. The biggest fall: 2 customers fell from gold to iron.'
    """
    if not moves.up and not moves.down:
        return t("{scale}: none of the {both:,} customers in both reports changed place.").format(
            scale=scale, both=moves.both) + _newcomers(moves, label, t)
    text = t("{scale}: of {both:,} customers in both reports, {up:,} moved up and {down:,} moved down.").format(
        scale=scale, both=moves.both, up=moves.up, down=moves.down)
    if moves.fell:
        text += " " + t("The biggest fall: {n:,} customers fell from {before} to {after}.").format(
            n=moves.fell[2], before=label(moves.fell[0]), after=label(moves.fell[1]))
    if moves.rose:
        text += " " + t("The biggest rise: {n:,} customers rose from {before} to {after}.").format(
            n=moves.rose[2], before=label(moves.rose[0]), after=label(moves.rose[1]))
    return text + _newcomers(moves, label, t)


def _newcomers(moves: LadderMoves | GridMoves, label: Callable[[str], str], t: Callable[[str], str]) -> str:
    """How many customers are new since the earlier report, and how many of them start at the top."""
    if not moves.new:
        return ""
    return " " + t("{n:,} customers are new since the earlier report; {top:,} of them started as {first} or "
                   "{second}.").format(n=moves.new, top=moves.new_top, first=label(moves.top[0]),
                                       second=label(moves.top[-1]))
