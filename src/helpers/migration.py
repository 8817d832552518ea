"""How customers moved between segments since the last report, counted by the segment map's states.

Stage 08 compares this run's export with the published earlier report's
(:func:`helpers.history.previous_run`): :func:`migration` gives the transition
matrix and the flows, :func:`migration_summary` the customers slipping away and
won back. It goes by the states the segment map gives its segments (``state:``,
one of :data:`helpers.names.SEGMENT_STATES`), never by segment names, so a
custom ``rfm.segment_map`` is counted as well as the default one.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

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
    matrix = pd.crosstab(joined[f"{column}_before"], joined[f"{column}_after"]).rename_axis(index="before", columns="after")
    flows = (joined[joined[f"{column}_before"] != joined[f"{column}_after"]]
             .groupby([f"{column}_before", f"{column}_after"]).size().rename("customers").reset_index()
             .rename(columns={f"{column}_before": "from", f"{column}_after": "to"})
             .sort_values(["customers", "from", "to"], ascending=[False, True, True]).reset_index(drop=True))
    return matrix, flows


def migration_summary(flows: pd.DataFrame, states: dict[str, str] | None) -> dict[str, Any]:
    """Customers slipping away and won back, from :func:`migration`'s ``flows`` and the map's segment states.

    Slipping away: from a new, active or cooling segment into a slipping or lost
    one; won back: from a slipping or lost segment into an active one. Customers
    new since the earlier report ("(new)") and segments the map gives no state
    (a segment added without one, or an earlier report made with another map)
    are counted in neither; ``unplaced``
    says how many moved from or to such segments. Without states (``None``: the
    map has no ``state`` entries) both counts are ``None`` and ``text`` says so.

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
                "text": "The segment map gives its segments no state (new, active, cooling, slipping, lost), so this "
                        "report cannot tell customers slipping away from customers won back; give each segment a "
                        "`state` in the segment map (rfm.segment_map) to count them."}
    before = flows["from"].map(states)
    after = flows["to"].map(states)
    n = flows["customers"].astype(int)
    slipping = int(n[before.isin(STAYING_STATES) & after.isin(GONE_STATES)].sum())
    won = int(n[before.isin(GONE_STATES) & after.isin(WON_BACK_STATES)].sum())
    stateless = sorted((set(flows.loc[before.isna(), "from"]) - {NEW}) | set(flows.loc[after.isna(), "to"]))
    unplaced = int(n[flows["from"].isin(stateless) | flows["to"].isin(stateless)].sum())
    names = lambda wanted: ", ".join(k for k, v in states.items() if v in wanted) or "none in this map"  # noqa: E731
    text = (f"Slipping away: {slipping:,} customers moved from a new, active or cooling segment into a slipping or lost "
            f"one ({names(GONE_STATES)}); won back: {won:,} moved from there into an active one ({names(WON_BACK_STATES)}).")
    if unplaced:
        text += (f" {unplaced:,} customers moved from or to segments the segment map gives no state "
                 f"({', '.join(stateless)}) and are counted in neither.")
    return {"has_states": True, "slipping_away": slipping, "won_back": won, "unplaced": unplaced, "text": text}


def changed_text(previous: str, flows: pd.DataFrame) -> str:
    """The line above the migration matrix: which report this run is compared with, and how many moved.

    >>> changed_text("1998-03-31", pd.DataFrame({"customers": [1200, 34]}))
    'compared with the report of 1998-03-31: 1,234 customers changed segment'
    """
    return f"compared with the report of {previous}: {int(flows['customers'].sum()):,} customers changed segment"
