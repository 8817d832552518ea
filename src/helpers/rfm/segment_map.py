"""The segment map: the R x F grid, the one-time buyers' segments, each segment's meaning, action and state, and the ABC names.

A map is data (``params/segment_maps/*.yaml``, chosen by ``rfm.segment_map``);
:func:`load_segment_map` reads and checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from helpers import names, paths
from helpers.errors import ConfigError

ABC = names.ABC


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
        cells = pd.MultiIndex.from_tuples(list(lookup))  # R and F of different lengths: from_arrays' ValueError
        where = cells.get_indexer(pd.MultiIndex.from_arrays([r.to_numpy(), f.to_numpy()]))
        if (where < 0).any():
            missing = int(np.argmax(where < 0))
            raise KeyError((r.iloc[missing], f.iloc[missing]))
        out = pd.Series(np.array(list(lookup.values()), dtype=object)[where], index=r.index, dtype=object)
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
