"""helpers.names.pick and joined_labels: the labels of np.select and of joined scores, one object per label."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.lifecycle import lifecycle_stage
from helpers.names import joined_labels, pick
from helpers.rfm.scores import rfm_scores
from helpers.tiers import value_tiers

scores = st.lists(st.tuples(st.integers(1, 12), st.integers(1, 5), st.integers(0, 3)), min_size=0, max_size=60)


@settings(max_examples=60, deadline=None)
@given(rows=scores)
def test_joined_labels_are_the_scores_written_one_after_the_other(rows: list[tuple[int, int, int]]) -> None:
    frame = pd.DataFrame(rows, columns=["r", "f", "m"], dtype="int64")
    expected = frame["r"].astype(str) + frame["f"].astype(str) + frame["m"].astype(str)
    out = joined_labels(frame["r"], frame["f"], frame["m"])
    assert out.dtype == object and out.tolist() == expected.tolist()
    assert len({id(v) for v in out}) == len(set(out.tolist()))  # one string object per distinct label


@settings(max_examples=60, deadline=None)
@given(flags=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=40))
def test_pick_is_np_select_with_one_object_per_label(flags: list[tuple[bool, bool]]) -> None:
    a, b = (np.array(c) for c in zip(*flags, strict=True))
    out = pick([a, b], ["first", "second"], "neither")
    assert out.tolist() == np.select([a, b], ["first", "second"], default="neither").tolist()
    assert len({id(v) for v in out}) == len(set(out.tolist()))


def test_tiers_stages_and_cells_share_their_label_objects() -> None:
    rng = np.random.default_rng(7)
    n = 5_000
    tiers = value_tiers(pd.Series(rng.gamma(2, 50, n)), pd.Series(rng.gamma(2, 50, n)))
    halves = pd.DataFrame({"repeat_first_half": rng.integers(0, 4, n), "repeat_second_half": rng.integers(0, 4, n)})
    stages = lifecycle_stage(pd.Series(rng.integers(0, 700, n)), pd.Series(rng.uniform(0, 1, n)), halves,
                             acquisition_days=90, decline_p_alive=0.5, termination_p_alive=0.2)
    customers = pd.DataFrame({"recency_days": rng.integers(0, 700, n), "frequency": rng.integers(1, 9, n),
                              "monetary_total": rng.gamma(2, 50, n)})
    cells = rfm_scores(customers)["rfm_cell"]
    for column in (tiers, stages, cells):
        assert column.dtype == object
        assert len({id(v) for v in column}) == column.nunique()  # 8 bytes a row, not a string each
    assert set(tiers) == {"platinum", "gold", "iron", "lead"}
    assert cells.str.fullmatch(r"[1-5]{3}").all()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["lost", "champions", "b", "A"]), st.sampled_from(["A", "B", "C"]),
                          st.integers(0, 3)), min_size=1, max_size=40),
       st.sampled_from([(False, False), (True, False), (False, "index")]))
def test_the_label_crosstab_is_pandas_crosstab(rows: list[tuple[str, str, int]], how: tuple[bool, bool | str]) -> None:
    from helpers.names import crosstab

    frame = pd.DataFrame(rows, columns=["segment", "abc", "cluster"])
    margins, normalize = how
    for a, b in (("segment", "abc"), ("cluster", "segment")):
        pd.testing.assert_frame_equal(crosstab(frame[a], frame[b], margins=margins, normalize=normalize),
                                      pd.crosstab(frame[a], frame[b], margins=margins, normalize=normalize))
