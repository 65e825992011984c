"""The RunMetric builder and the metric conditions with the W&B SDK's spellings,
meanings and defaults (``wandb.automations``: ``RunEvent.metric``, ``MetricVal``,
``MetricAgg``, ``MetricThresholdFilter``, ``MetricChangeFilter``,
``MetricZScoreFilter``), checked on hand-computed series and against a plain
recomputation of every window."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hookwise as hw
from hookwise.conditions import ChangeDir, ChangeType
from hookwise.evaluators import evaluator_for
from hookwise.storage.codec import automation_from_json, automation_to_json

T, C, Z = hw.MetricThreshold, hw.MetricChange, hw.MetricZScore
m = hw.RunMetric("m")


def crossings(condition: Any, series: list[float]) -> list[float | None]:
    evaluator = evaluator_for(condition)
    return [evaluator.push(float(v)) for v in series]


# -- spellings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        # comparisons on a metric and on an aggregate: methods and operators alike
        (m.gt(1), T("m", 1, op="gt")),
        (m.gte(1), T("m", 1, op="gte")),
        (m.lt(1), T("m", 1, op="lt")),
        (m.lte(1), T("m", 1, op="lte")),
        (m > 1, T("m", 1, op="gt")),
        (m >= 1, T("m", 1, op="gte")),
        (m < 1, T("m", 1, op="lt")),
        (m <= 1, T("m", 1, op="lte")),
        (m.eq(1), T("m", 1, op="eq")),
        (m.ne(1), T("m", 1, op="ne")),
        (m.avg(5).gt(1), T("m", 1, op="gt", agg="AVERAGE", window=5)),
        (m.mean(5).gte(1), T("m", 1, op="gte", agg="AVERAGE", window=5)),
        (m.average(5) < 1, T("m", 1, op="lt", agg="AVERAGE", window=5)),
        (m.max(3).lt(2), T("m", 2, op="lt", agg="MAX", window=3)),
        (m.max(3) >= 2, T("m", 2, op="gte", agg="MAX", window=3)),
        (m.min(3).lte(2), T("m", 2, op="lte", agg="MIN", window=3)),
        (m.min(3) > 2, T("m", 2, op="gt", agg="MIN", window=3)),
        # changes: diff= is ABSOLUTE, frac= is RELATIVE, windows 1 and 1 on a metric
        (m.changes_by(diff=2), C("m", 2, kind="ABSOLUTE", direction="ANY")),
        (m.changes_by(frac=0.25), C("m", 0.25, kind="RELATIVE", direction="ANY")),
        (m.increases_by(diff=2), C("m", 2, direction="INCREASE")),
        (m.increases_by(frac=0.1), C("m", 0.1, kind="RELATIVE", direction="INCREASE")),
        (m.decreases_by(diff=2), C("m", 2, direction="DECREASE")),
        (m.decreases_by(frac=0.1), C("m", 0.1, kind="RELATIVE", direction="DECREASE")),
        # on an aggregate: the aggregate's window, current and prior
        (m.max(5).changes_by(diff=1), C("m", 1, current_window=5, prior_window=5, agg="MAX")),
        (m.min(4).decreases_by(diff=1), C("m", 1, "ABSOLUTE", "DECREASE", 4, 4, "MIN")),
        (m.avg(3).increases_by(frac=0.5), C("m", 0.5, "RELATIVE", "INCREASE", 3, 3, "AVERAGE")),
        # hookwise's older spelling: a positional amount is diff=
        (m.changes_by(0.25), C("m", 0.25, kind="ABSOLUTE", current_window=1, prior_window=1)),
        (m.changes_by(0.25, kind="RELATIVE"), C("m", 0.25, kind="RELATIVE")),
        (m.changes_by(diff=1, direction="INCREASE"), C("m", 1, direction="INCREASE")),
        (m.changes_by(diff=1, kind="ABS"), C("m", 1)),
        (m.changes_by(diff=1, current_window=4), C("m", 1, current_window=4, prior_window=4)),
        (m.max(5).changes_by(diff=1, prior_window=2), C("m", 1, "ABSOLUTE", "ANY", 5, 2, "MAX")),
        # z-scores: > and >= alike, < and <= alike, .abs() and abs()
        (m.zscore(30) > 3, Z("m", 3, window=30, direction="INCREASE")),
        (m.zscore(30) >= 3, Z("m", 3, window=30, direction="INCREASE")),
        (m.zscore(30).gt(3), Z("m", 3, window=30, direction="INCREASE")),
        (m.zscore(30) < -3, Z("m", 3, window=30, direction="DECREASE")),
        (m.zscore(30) <= -3, Z("m", 3, window=30, direction="DECREASE")),
        (m.zscore(30).lt(-3), Z("m", 3, window=30, direction="DECREASE")),
        (m.zscore(30).abs() > 3, Z("m", 3, window=30, direction="ANY")),
        (abs(m.zscore(30)) > 3, Z("m", 3, window=30, direction="ANY")),
        (m.zscore(10).abs() >= 2.5, Z("m", 2.5, window=10, direction="ANY")),
    ],
)
def test_each_spelling_builds_the_condition(built: Any, expected: Any) -> None:
    assert built == expected


def test_wandb_defaults() -> None:
    change = m.changes_by(frac=0.25)
    assert (change.current_window, change.prior_window, change.agg) == (1, 1, None)
    assert change.kind is hw.ChangeKind.RELATIVE
    assert change.direction is hw.Direction.ANY
    # the class: windows of 1, the prior window the current one's size
    assert (C("m", 1).current_window, C("m", 1).prior_window, C("m", 1).agg) == (1, 1, None)
    assert C("m", 1, current_window=7).prior_window == 7
    assert C("m", 1, current_window=7).agg is hw.Agg.AVERAGE  # hookwise's meaning, kept
    assert C("m", 1, current_window=7, agg=None).agg is None  # W&B's: windows ignored
    threshold = m > 1
    assert (threshold.agg, threshold.window) == (None, 1)
    assert Z("m") == Z("m", 3.0, window=30, direction="ANY")  # MetricZScoreFilter's
    assert m.zscore() == m.zscore(30)


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("$gt", hw.Op.GT),
        ("$gte", hw.Op.GTE),
        ("$lt", hw.Op.LT),
        ("$lte", hw.Op.LTE),
        ("$eq", hw.Op.EQ),
        ("$ne", hw.Op.NE),
        (" $GTE ", hw.Op.GTE),
        (">", hw.Op.GT),
        (">=", hw.Op.GTE),
        ("<", hw.Op.LT),
        ("<=", hw.Op.LTE),
        ("gte", hw.Op.GTE),
        (hw.Op.LT, hw.Op.LT),
    ],
)
def test_op_takes_wandbs_keys(op: Any, expected: hw.Op) -> None:
    assert T("m", 1, op=op).op is expected


def test_wandbs_short_enum_names() -> None:
    assert hw.Agg.AVG is hw.Agg.AVERAGE
    assert T("m", 1, agg="avg", window=2).agg is hw.Agg.AVERAGE
    assert C("m", 1, kind="REL").kind is hw.ChangeKind.RELATIVE
    assert C("m", 1, kind="abs").kind is hw.ChangeKind.ABSOLUTE
    assert C("m", 1, direction="inc").direction is hw.Direction.INCREASE
    assert Z("m", direction="DEC").direction is hw.Direction.DECREASE
    assert ChangeType is hw.ChangeKind
    assert ChangeDir is hw.Direction
    assert ChangeDir.INC is hw.Direction.INCREASE
    assert ChangeType.REL is hw.ChangeKind.RELATIVE
    assert list(hw.Agg) == [hw.Agg.MAX, hw.Agg.MIN, hw.Agg.AVERAGE]  # aliases are not members


# -- what fires: hand-computed series ------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "series", "expected"),
    [
        # W&B's changes_by(frac=0.25): windows 1/1, (5 - 4) / 4 = 0.25 reaches it
        (m.changes_by(frac=0.25), [4, 5], [None, 5.0]),
        (m.changes_by(frac=0.25), [4, 3], [None, 3.0]),
        (m.changes_by(frac=0.25), [4, 4.9], [None, None]),
        (m.increases_by(frac=0.25), [4, 3], [None, None]),
        (m.decreases_by(frac=0.25), [4, 3], [None, 3.0]),
        # diff=: 3 -> 5 is +2; then 5 -> 6 is +1 (false), 6 -> 9 is +3 (fires again)
        (m.changes_by(diff=2), [3, 5, 6, 9], [None, 5.0, None, 9.0]),
        (m.decreases_by(diff=2), [3, 5, 3], [None, None, 3.0]),
        # hookwise's old spelling, now with W&B's windows: fires at the second value
        (m.changes_by(0.25), [1, 1.25], [None, 1.25]),
        # max(5): prior max 3, current max 3 -> 0; then prior [2,3,2,1,1] max 3
        # against [2,3,2,1,4] max 4: +1 fires (the means, 1.8 and 2.4, would not)
        (
            m.max(5).changes_by(diff=1),
            [1, 2, 3, 2, 1, 1, 2, 3, 2, 1, 4],
            [None] * 10 + [4.0],
        ),
        # min(3): prior min 4 vs [5,3,7] min 3: -1; then [4,6,5] min 4 vs [3,7,1]
        # min 1: -3 fires (the means, 5 and 11/3, move by 4/3 only)
        (m.min(3).decreases_by(diff=2), [5, 4, 6, 5, 3, 7, 1], [None] * 6 + [1.0]),
        # avg(2): prior mean 2, current mean 3: +50 %
        (m.avg(2).increases_by(frac=0.5), [2, 2, 3, 3], [None, None, None, 3.0]),
        (m.avg(2).increases_by(frac=0.5), [2, 2, 3, 2.9], [None, None, None, None]),
        # max(3) over a prior window of 1: [5] against [1,2,3]: -2
        (m.max(3).changes_by(diff=2, prior_window=1), [5, 1, 2, 3], [None] * 3 + [3.0]),
    ],
)
def test_changes_fire_as_wandb_means(
    condition: Any, series: list[float], expected: list[float | None]
) -> None:
    assert crossings(condition, series) == expected


@pytest.mark.parametrize(
    ("condition", "series", "expected"),
    [
        # window [1,2,3]: mean 2, sample std 1: 4 scores exactly 2; W&B compares inclusively
        (m.zscore(3) > 2, [1, 2, 3, 4], [None, None, None, 4.0]),
        (m.zscore(3) >= 2, [1, 2, 3, 4], [None, None, None, 4.0]),
        (m.zscore(3) > 2, [1, 2, 3, 0], [None] * 4),
        (m.zscore(3) < -2, [1, 2, 3, 0], [None, None, None, 0.0]),
        (m.zscore(3) <= -2, [1, 2, 3, 0], [None, None, None, 0.0]),
        (m.zscore(3).abs() > 2, [1, 2, 3, 0], [None, None, None, 0.0]),
        (m.zscore(3).abs() > 2, [1, 2, 3, 4], [None, None, None, 4.0]),
        (m.zscore(3).abs() > 2, [1, 2, 3, 3.5], [None] * 4),
    ],
)
def test_zscores_fire_as_wandb_means(
    condition: Any, series: list[float], expected: list[float | None]
) -> None:
    assert crossings(condition, series) == expected


def test_a_window_without_an_agg_is_ignored_as_in_wandb() -> None:
    # MetricThresholdFilter / MetricChangeFilter: "window ... ignored if agg is None"
    threshold = T("m", 2, window=3)
    assert crossings(threshold, [3, 1, 3]) == [3.0, None, 3.0]
    assert crossings(threshold, [3, 1, 3]) == crossings(T("m", 2), [3, 1, 3])
    change = C("m", 1, current_window=3, prior_window=2, agg=None)
    assert crossings(change, [0, 1, 1, 3]) == [None, 1.0, None, 3.0]


def test_thresholds_on_aggregates() -> None:
    assert crossings(m.avg(2).gt(2), [1, 2, 3, 4]) == [None, None, 2.5, None]
    assert crossings(m.max(2).lte(2), [3, 1, 2, 2]) == [None, None, 2.0, None]  # 3, 2, 2
    assert crossings(m.min(2).lt(1), [3, 0, 2, 0]) == [None, 0.0, None, None]


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: m.changes_by(), "event.condition.diff"),
        (lambda: m.changes_by(diff=1, frac=0.5), "event.condition.frac"),
        (lambda: m.changes_by(1, diff=1), "event.condition.diff"),
        (lambda: m.changes_by(1, frac=0.1), "event.condition.frac"),
        (lambda: m.increases_by(), "event.condition.diff"),
        (lambda: m.decreases_by(diff=1, frac=1), "event.condition.frac"),
        (lambda: m.changes_by(diff=0), "event.condition.diff"),
        (lambda: m.changes_by(diff=-1), "event.condition.diff"),
        (lambda: m.changes_by(frac=0), "event.condition.frac"),
        (lambda: m.changes_by(frac=float("nan")), "event.condition.frac"),
        (lambda: m.changes_by(diff="1"), "event.condition.diff"),
        (lambda: m.changes_by(0), "event.condition.amount"),
        (lambda: m.changes_by(diff=1, kind="RELATIVE"), "event.condition.kind"),
        (lambda: m.changes_by(frac=0.1, kind="ABSOLUTE"), "event.condition.kind"),
        (lambda: m.changes_by(diff=1, current_window=0), "event.condition.current_window"),
        (lambda: m.max(0).changes_by(diff=1), "event.condition.current_window"),
        (lambda: m.avg(0) > 1, "event.condition.window"),
        (lambda: m.gt("1"), "event.condition.threshold"),
        (lambda: m.zscore(30) > -3, "event.condition.threshold"),
        (lambda: m.zscore(30) > 0, "event.condition.threshold"),
        (lambda: m.zscore(30) < 3, "event.condition.threshold"),
        (lambda: m.zscore(30).abs() < 3, "event.condition.threshold"),
        (lambda: m.zscore(1) > 3, "event.condition.window"),
        (lambda: T("m", 1, op="$in"), "event.condition.op"),
        (lambda: C("m", 1, agg="MEDIAN"), "event.condition.agg"),
    ],
)
def test_bad_spellings_name_the_field(build: Any, field: str) -> None:
    with pytest.raises(hw.ValidationError) as caught:
        build()
    assert caught.value.field == field


# -- storage ---------------------------------------------------------------------------


def automation(condition: Any) -> hw.Automation:
    return hw.Automation(
        name="watch",
        scope=hw.Scope.project("ml-team", "training"),
        event=hw.OnRunMetric(condition),
        action=hw.DoNothing(),
    )


@pytest.mark.parametrize(
    "condition",
    [
        m.max(5).changes_by(diff=1),
        m.min(3).decreases_by(frac=0.2),
        m.avg(4).increases_by(diff=2),
        m.changes_by(frac=0.25),
        C("m", 1, current_window=5, prior_window=2, agg=None),
        C("m", 1, current_window=5),
        T("m", 1, op="$lte", window=4),
        m.zscore(20).abs() > 2,
    ],
)
def test_new_conditions_round_trip(condition: Any) -> None:
    text = automation_to_json(automation(condition))
    again = automation_from_json(text)
    assert again == automation(condition)
    assert repr(again.event) == repr(automation(condition).event)  # names its saved windows


def stored_without_agg(condition: hw.MetricChange) -> str:
    """A document as hookwise wrote it before MetricChange had an ``agg``."""
    document = json.loads(automation_to_json(automation(condition)))
    stored = document["event"]["condition"]
    assert stored["type"] == "MetricChange"
    del stored["agg"]
    return json.dumps(document)


def test_documents_written_before_agg_keep_their_meaning() -> None:
    # before: always the means of the two windows, both always written out
    old = C("acc", 1, direction="INCREASE", current_window=2, prior_window=3, agg="AVERAGE")
    loaded = automation_from_json(stored_without_agg(old)).event
    assert isinstance(loaded, hw.OnRunMetric)
    assert loaded.condition == old
    assert loaded.condition.agg is hw.Agg.AVERAGE
    series = [0, 0, 0, 1, 1, 1, 5]
    assert crossings(loaded.condition, series) == [None, None, None, None, 1.0, None, 3.0]
    # windows of 1: the mean of one value is the value
    single = automation_from_json(stored_without_agg(C("acc", 1))).event
    assert isinstance(single, hw.OnRunMetric)
    assert single.condition == C("acc", 1) == hw.RunMetric("acc").changes_by(diff=1)


def test_the_repr_that_names_saved_windows_is_unchanged_for_old_conditions() -> None:
    # the index keys saved run windows by the condition's repr
    old = C("acc", 0.1, kind="RELATIVE", direction="DECREASE", current_window=10, prior_window=50)
    assert repr(old) == (
        "MetricChange(name='acc', amount=0.1, kind=<ChangeKind.RELATIVE: 'RELATIVE'>, "
        "direction=<Direction.DECREASE: 'DECREASE'>, current_window=10, prior_window=50)"
    )
    assert "agg=<Agg.MAX" in repr(C("acc", 1, current_window=10, agg="MAX"))
    assert "agg=None" in repr(C("acc", 1, current_window=10, agg=None))
    assert "agg" not in repr(C("acc", 1))


# -- the evaluators against a plain recomputation -------------------------------------


# The evaluators against a plain recomputation, aggregates on changes and
# unaggregated windows included: tests/test_runs.py, with the other conditions.


@settings(max_examples=200, deadline=None)
@given(
    agg=st.sampled_from([hw.Agg.MAX, hw.Agg.MIN]),
    windows=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    series=st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=200),
)
def test_the_kept_extremes_match_a_rescan(
    agg: hw.Agg, windows: tuple[int, int], series: list[float]
) -> None:
    # many repeated values: the extreme leaving a window is often tied with another
    evaluator: Any = evaluator_for(
        C("m", 1, current_window=windows[0], prior_window=windows[1], agg=agg)
    )
    pick = max if agg is hw.Agg.MAX else min
    for value in series:
        evaluator.push(value)
        assert evaluator.current_best == pick(evaluator.current)
        if evaluator.prior:
            assert evaluator.prior_best == pick(evaluator.prior)
