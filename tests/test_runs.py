"""Run automations: each condition against hand-computed series, run state,
per-run windows, cooldowns across a restart, and the hot path's shape."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hookwise as hw
from hookwise.evaluators import evaluator_for
from hookwise.index import Index
from hookwise.storage import RunWindow
from hookwise.tracker import RunTracker
from tests.conftest import PUBLIC, TEAM

NAN, INF = math.nan, math.inf
T, C, Z = hw.MetricThreshold, hw.MetricChange, hw.MetricZScore


def crossings(condition: Any, series: list[float]) -> list[float | None]:
    evaluator = evaluator_for(condition)
    return [evaluator.push(float(v)) for v in series]


@pytest.mark.parametrize(
    ("condition", "series", "expected"),
    [
        # newest value, fires on each crossing, not while it stays true
        (T("loss", 0.5), [0.3, 0.6, 0.7, 0.4, 0.8], [None, 0.6, None, None, 0.8]),
        # average of the last 3: 2, 3, 7/3, 4/3, 0, 3, 6
        (
            T("loss", 2, agg="AVERAGE", window=3),
            [1, 2, 3, 4, 0, 0, 0, 9, 9],
            [None, None, None, 3.0, None, None, None, 3.0, None],
        ),
        (T("x", 5, op="gte", agg="MAX", window=2), [1, 5, 2, 2, 7], [None, 5, None, None, 7]),
        (
            T("x", 0.1, op="lt", agg="MIN", window=2),
            [0.5, 0.05, 0.2, 0.01, 0.02],
            [None, 0.05, None, None, None],
        ),
        (T("x", 2, op="lte"), [3, 2, 1], [None, 2, None]),
        (T("x", 1, op="eq"), [0, 1, 1, 0, 1], [None, 1, None, None, 1]),
        (T("x", 0, op="ne"), [0, 0, 3], [None, None, 3]),
        # the first evaluation counts as a crossing
        (T("x", 0.5), [0.9, 0.9], [0.9, None]),
    ],
)
def test_threshold(condition: Any, series: list[float], expected: list[float | None]) -> None:
    assert crossings(condition, series) == expected


@pytest.mark.parametrize(
    ("condition", "series", "expected"),
    [
        # prior [0,0,0] -> current [1,1]: +1; then prior [0,0,1] vs [1,1]: +2/3;
        # then prior [0,1,1] vs [1,5]: +7/3
        (
            C("m", 1, direction="INCREASE", current_window=2, prior_window=3),
            [0, 0, 0, 1, 1, 1, 5],
            [None, None, None, None, 1.0, None, 3.0],
        ),
        (
            C("m", 1, direction="DECREASE", current_window=2, prior_window=3),
            [0, 0, 0, 1, 1],
            [None] * 5,
        ),
        (C("m", 1, direction="ANY", current_window=1, prior_window=1), [5, 3], [None, 3.0]),
        # relative: (4 - 10) / 10 = -0.6; (6 - 10) / 10 = -0.4
        (
            C("m", 0.5, kind="RELATIVE", direction="DECREASE", current_window=1, prior_window=1),
            [10, 4],
            [None, 4.0],
        ),
        (
            C("m", 0.5, kind="RELATIVE", direction="DECREASE", current_window=1, prior_window=1),
            [10, 6],
            [None, None],
        ),
        # no relative change from a zero mean
        (C("m", 0.5, kind="RELATIVE", current_window=1, prior_window=1), [0, 5], [None, None]),
    ],
)
def test_change(condition: Any, series: list[float], expected: list[float | None]) -> None:
    assert crossings(condition, series) == expected


def test_change_default_windows_are_wandbs() -> None:
    condition = hw.RunMetric("acc").changes_by(1)  # W&B defaults: current 1, prior 1
    assert (condition.current_window, condition.prior_window) == (1, 1)
    assert condition.agg is None
    result = crossings(condition, [0.0, 0.0, 1.0])
    assert result == [None, None, 1.0]
    # longer windows, given explicitly, still need both windows full
    condition = hw.RunMetric("acc").changes_by(1, current_window=10, prior_window=50)
    result = crossings(condition, [0.0] * 50 + [1.0] * 10)
    assert result[:59] == [None] * 59
    assert result[59] == 1.0


@pytest.mark.parametrize(
    ("condition", "series", "expected"),
    [
        # window [1,2,3]: mean 2, sample std 1 -> 5 scores 3
        (Z("m", 2, window=3, direction="INCREASE"), [1, 2, 3, 5], [None, None, None, 5]),
        # then [2,3,5]: mean 10/3, std 1.53 -> 3 scores -0.22
        (Z("m", 2, window=3, direction="INCREASE"), [1, 2, 3, 5, 3], [None, None, None, 5, None]),
        (Z("m", 2, window=3, direction="DECREASE"), [1, 2, 3, -1], [None, None, None, -1]),
        (Z("m", 2, window=3, direction="INCREASE"), [1, 2, 3, -1], [None] * 4),
        (Z("m", 2, window=3, direction="ANY"), [1, 2, 3, -1], [None, None, None, -1]),
        # exactly at the threshold counts: 4 scores 2
        (Z("m", 2, window=3, direction="INCREASE"), [1, 2, 3, 4], [None, None, None, 4]),
        # a flat window has no z-score
        (Z("m", 2, window=3), [2, 2, 2, 9], [None] * 4),
    ],
)
def test_zscore(condition: Any, series: list[float], expected: list[float | None]) -> None:
    assert crossings(condition, series) == expected


def test_zscore_wandb_defaults() -> None:
    condition = abs(hw.RunMetric("loss").zscore()) >= 3  # window 30
    assert condition == Z("loss", 3.0, window=30, direction="ANY")
    base = [0.0, 1.0] * 15  # mean 0.5, sample std 0.5085
    assert crossings(condition, [*base, 2.0])[-1] is None  # z = 2.95
    assert crossings(condition, [*base, 2.1])[-1] == 2.1  # z = 3.15


def test_builder_reads_like_the_wandb_sdk() -> None:
    loss = hw.RunMetric("loss")
    assert (loss > 0.5) == T("loss", 0.5, op="gt")
    assert (loss.avg(5) >= 1) == T("loss", 1, op="gte", agg="AVERAGE", window=5)
    assert (loss.max(3) < 2) == T("loss", 2, op="lt", agg="MAX", window=3)
    assert (loss.min(3) <= 2) == T("loss", 2, op="lte", agg="MIN", window=3)
    assert (loss.zscore(10) >= 2) == Z("loss", 2, window=10, direction="INCREASE")
    assert (loss.zscore(10) <= -2) == Z("loss", 2, window=10, direction="DECREASE")
    change = loss.changes_by(0.2, kind="RELATIVE", direction="DECREASE", current_window=5)
    assert change == C("loss", 0.2, kind="RELATIVE", direction="DECREASE", current_window=5)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: T("loss", 1, window=0), "event.condition.window"),
        (lambda: T("loss", 1, agg="AVERAGE", window=0), "event.condition.window"),
        (lambda: T("loss", 1, agg="AVERAGE", window=1001), "event.condition.window"),
        (lambda: T("loss", NAN), "event.condition.threshold"),
        (lambda: T("loss", INF), "event.condition.threshold"),
        (lambda: C("loss", INF), "event.condition.amount"),
        (lambda: hw.RunMetric("loss").zscore(30) >= "3", "event.condition.threshold"),
        (lambda: hw.RunMetric("loss").zscore(30) <= None, "event.condition.threshold"),
        (lambda: T("loss", 1, op="bigger"), "event.condition.op"),
        (lambda: T("", 1), "event.condition.name"),
        (lambda: C("loss", -1), "event.condition.amount"),
        (lambda: C("loss", 1, direction="SIDEWAYS"), "event.condition.direction"),
        (lambda: Z("loss", 3, window=1), "event.condition.window"),
        (lambda: hw.OnRunMetric("loss > 1"), "event.condition"),
        (lambda: hw.OnRunMetric(T("loss", 1), run_name="(a+)+$"), "event.run_name"),
        (lambda: hw.OnRunMetric(T("loss", 1), cooldown=-1), "event.cooldown"),
        (lambda: hw.OnRunState(states=["EXPLODED"]), "event.states"),
        (lambda: hw.OnRunState(states=[]), "event.states"),
    ],
)
def test_bad_conditions_name_the_field(build: Any, field: str) -> None:
    with pytest.raises(hw.ValidationError) as caught:
        build()
    assert caught.value.field == field


def test_run_automations_need_a_project_scope() -> None:
    with pytest.raises(hw.ValidationError) as caught:
        hw.Automation(
            name="a",
            scope=hw.Scope.collection(TEAM, "reg", "churn"),
            event=hw.OnRunState(),
            action=hw.DoNothing(),
        )
    assert caught.value.field == "scope"


# -- through the index and the tracker ---------------------------------------------

RUN = hw.Run(entity=TEAM, project="training", id="run-1", name="sweep-3", user="alice")


def index_of(*filters: Any) -> Index:
    automations = [
        hw.Automation(
            name=f"a{i}", scope=hw.Scope.project(TEAM, "training"), event=f, action=hw.DoNothing()
        )
        for i, f in enumerate(filters)
    ]
    return Index.build(automations, {}, revision=1)


def fired(index: Index, tracker: RunTracker, event: hw.Event) -> list[tuple[str, str, str]]:
    return [
        (m.target.automation.name, m.event_type.value, m.values.get("metric_value", ""))
        for m in index.match(event, tracker)
    ]


def test_garbage_values_are_ignored_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    index, tracker = index_of(hw.OnRunMetric(T("loss", 2, agg="AVERAGE", window=2))), RunTracker()
    caplog.set_level("DEBUG", logger="hookwise")
    steps = [1.0, NAN, "x", INF, None, True, 10**400, -(10**400), Decimal("sNaN"), 3.0]
    results = [fired(index, tracker, hw.Event.run_metrics(RUN, {"loss": v})) for v in steps]
    # the window saw 1.0 and 3.0 only: mean 2.0 is not > 2; then 3.5
    assert results == [[]] * len(steps)
    assert fired(index, tracker, hw.Event.run_metrics(RUN, {"loss": 4})) == [
        ("a0", "RUN_METRIC", "3.5")
    ]
    assert "not a finite number" in caplog.text


def test_metrics_not_logged_every_step_and_runs_apart() -> None:
    index, tracker = index_of(hw.OnRunMetric(T("loss", 1, agg="AVERAGE", window=2))), RunTracker()
    other = hw.Run(entity=TEAM, project="training", id="run-2")
    steps = [
        (RUN, {"loss": 0.5}),
        (other, {"loss": 5.0}),  # another run: its own window
        (RUN, {"acc": 0.9}),  # loss not logged at this step
        (other, {"loss": 5.0}),
        (RUN, {"loss": 2.5, "acc": 0.8}),
    ]
    results = [fired(index, tracker, hw.Event.run_metrics(r, m)) for r, m in steps]
    assert results == [[], [], [], [("a0", "RUN_METRIC", "5.0")], [("a0", "RUN_METRIC", "1.5")]]


def test_run_filters() -> None:
    index = index_of(
        hw.OnRunMetric(T("loss", 1), run_name="^sweep-"),
        hw.OnRunMetric(T("loss", 1), user="bob"),
    )
    tracker = RunTracker()
    assert fired(index, tracker, hw.Event.run_metrics(RUN, {"loss": 2})) == [
        ("a0", "RUN_METRIC", "2.0")
    ]
    bobs = hw.Run(entity=TEAM, project="training", id="r9", name="baseline", user="bob")
    assert fired(index, tracker, hw.Event.run_metrics(bobs, {"loss": 2})) == [
        ("a1", "RUN_METRIC", "2.0")
    ]


def test_op_spellings() -> None:
    assert {T("x", 1, op=o).op for o in ("gt", "GT", ">", hw.Op.GT)} == {hw.Op.GT}
    assert T("x", 1, op="<=").op is hw.Op.LTE
    assert T("x", 1, op="!=").op is hw.Op.NE


def test_numbers_that_are_not_floats_count() -> None:
    from fractions import Fraction

    index, tracker = index_of(hw.OnRunMetric(T("loss", 1))), RunTracker()
    assert fired(index, tracker, hw.Event.run_metrics(RUN, {"loss": Fraction(3, 2)})) == [
        ("a0", "RUN_METRIC", "1.5")
    ]
    assert fired(index, tracker, hw.Event.run_metrics(RUN, {"loss": 0})) == []
    assert fired(index, tracker, hw.Event.run_metrics(RUN, {"loss": 7})) == [
        ("a0", "RUN_METRIC", "7.0")
    ]


def test_metric_value_reads_cleanly() -> None:
    # the mean of three 0.1s is 0.30000000000000004 in floats; the payload says 0.3
    index, tracker = index_of(hw.OnRunMetric(T("x", 0.2, agg="AVERAGE", window=3))), RunTracker()
    results = [fired(index, tracker, hw.Event.run_metrics(RUN, {"x": 0.1})) for _ in range(2)]
    results.append(fired(index, tracker, hw.Event.run_metrics(RUN, {"x": 0.7})))
    assert results == [[], [], [("a0", "RUN_METRIC", "0.3")]]


def test_run_state_fires_on_entering() -> None:
    index, tracker = index_of(hw.OnRunState(states={"FAILED", "FINISHED"})), RunTracker()
    states = ["RUNNING", "RUNNING", "CRASHED", "FAILED", "RUNNING", "FINISHED"]
    results = [fired(index, tracker, hw.Event.run_state(RUN, s)) for s in states]
    assert results == [[], [], [("a0", "RUN_STATE", "")], [], [], [("a0", "RUN_STATE", "")]]


def test_memory_stays_flat() -> None:
    index = index_of(
        hw.OnRunMetric(T("loss", 1e9, agg="AVERAGE", window=5)),
        hw.OnRunMetric(C("loss", 1e9, current_window=10, prior_window=50)),
        hw.OnRunMetric(Z("loss", 1e9, window=30)),
    )
    tracker = RunTracker(max_runs=10)
    for step in range(100_000):
        index.match(hw.Event.run_metrics(RUN, {"loss": float(step % 97)}, step=step), tracker)
    evaluators = tracker.evaluators(RUN)
    sizes = sorted(len(getattr(e, "values", ())) + len(getattr(e, "prior", ())) for e in evaluators)
    assert sizes == [5, 30, 50]
    for i in range(50):
        run = hw.Run(entity=TEAM, project="training", id=f"r{i}")
        index.match(hw.Event.run_metrics(run, {"loss": 1.0}), tracker)
    assert len(tracker) == 10
    # a run that ends is dropped
    last = hw.Run(entity=TEAM, project="training", id="r49")
    index.match(hw.Event.run_state(last, "FINISHED"), tracker)
    assert len(tracker) == 9


def test_unwatched_projects_leave_no_state() -> None:
    index, tracker = index_of(hw.OnRunMetric(T("loss", 1))), RunTracker()
    elsewhere = hw.Run(entity=TEAM, project="other-project", id="x")
    assert index.match(hw.Event.run_metrics(elsewhere, {"loss": 5.0}), tracker) == []
    assert len(tracker) == 0


# -- end to end: payload variables and cooldowns -----------------------------------


def run_setup(store: hw.Storage, event_filter: Any, payload: Any) -> hw.Admin:
    admin = hw.Admin(store, network=PUBLIC)
    admin.create_webhook(hw.Webhook(team=TEAM, name="alerts", url="https://hooks.example.com/a"))
    admin.create_automation(
        hw.Automation(
            name="watch",
            scope=hw.Scope.project(TEAM, "training"),
            event=event_filter,
            action=hw.SendWebhook(webhook="alerts", payload=payload),
        )
    )
    return admin


RUN_PAYLOAD = {
    "type": "${event_type}",
    "run": ["${run_id}", "${run_name}", "${run_user}", "${run_state}"],
    "metric": ["${metric_name}", "${metric_value}", "${step}"],
}


@pytest.mark.parametrize(
    ("condition", "series", "event_type", "value"),
    [
        (hw.RunMetric("loss") > 1, [0.5, 2.0], "RUN_METRIC", "2.0"),
        (
            hw.RunMetric("loss").changes_by(1, current_window=1, prior_window=1),
            [0.5, 2.0],
            "RUN_METRIC_CHANGE",
            "2.0",
        ),
        (hw.RunMetric("loss").zscore(2) >= 1, [0.0, 1.0, 9.0], "RUN_METRIC_ZSCORE", "9.0"),
    ],
)
def test_run_metric_payload(
    store: hw.Storage,
    make_dispatcher: Any,
    condition: Any,
    series: list[float],
    event_type: str,
    value: str,
) -> None:
    run_setup(store, hw.OnRunMetric(condition), RUN_PAYLOAD)
    requests: list[httpx.Request] = []
    dispatcher = make_dispatcher(
        store, network=PUBLIC, handler=lambda r: requests.append(r) or httpx.Response(200)
    )
    for step, v in enumerate(series):
        dispatcher.handle(hw.Event.run_metrics(RUN, {"loss": v, "acc": 0.5}, step=step))
    assert dispatcher.flush(timeout=10)
    [request] = requests
    assert json.loads(request.content) == {
        "type": event_type,
        "run": ["run-1", "sweep-3", "alice", ""],
        "metric": ["loss", value, str(len(series) - 1)],
    }


def test_run_state_payload(store: hw.Storage, make_dispatcher: Any) -> None:
    run_setup(store, hw.OnRunState(states=["FAILED"]), RUN_PAYLOAD)
    requests: list[httpx.Request] = []
    dispatcher = make_dispatcher(
        store, network=PUBLIC, handler=lambda r: requests.append(r) or httpx.Response(200)
    )
    dispatcher.handle(hw.Event.run_state(RUN, hw.RunState.RUNNING))
    dispatcher.handle(hw.Event.run_state(RUN, "CRASHED"))
    dispatcher.handle(hw.Event.run_state(RUN, "RUNNING"))  # resumed
    dispatcher.handle(hw.Event.run_state(RUN, "FAILED"))  # and failed again: cooling down
    assert dispatcher.flush(timeout=10)
    [request] = requests
    assert json.loads(request.content) == {
        "type": "RUN_STATE",
        "run": ["run-1", "sweep-3", "alice", "FAILED"],
        "metric": ["", "", ""],
    }


def test_cooldown_survives_a_restart(tmp_path: Path, make_dispatcher: Any) -> None:
    key, path = hw.SecretKey.generate(), tmp_path / "runs.db"
    store = hw.SQLiteStorage(path, key=key)
    run_setup(store, hw.OnRunMetric(hw.RunMetric("loss") > 1), None)
    first = make_dispatcher(store, network=PUBLIC, worker=False)
    assert len(first.handle(hw.Event.run_metrics(RUN, {"loss": 2.0}))) == 1
    assert first.handle(hw.Event.run_metrics(RUN, {"loss": 0.0})) == []
    assert (
        first.handle(hw.Event.run_metrics(RUN, {"loss": 3.0})) == []
    )  # a new crossing, cooling down
    first.close(timeout=0)
    store.close()

    reopened = hw.SQLiteStorage(path, key=key)
    second = make_dispatcher(reopened, network=PUBLIC, worker=False)
    # the run's window and its cooldown both carry over
    assert second.handle(hw.Event.run_metrics(RUN, {"loss": 5.0})) == []
    other = hw.Run(entity=TEAM, project="training", id="run-2")
    assert len(second.handle(hw.Event.run_metrics(other, {"loss": 5.0}))) == 1
    second.close(timeout=0)
    reopened.close()


def test_windows_survive_a_restart(tmp_path: Path, make_dispatcher: Any) -> None:
    key, path = hw.SecretKey.generate(), tmp_path / "runs.db"
    store = hw.SQLiteStorage(path, key=key)
    run_setup(store, hw.OnRunMetric(hw.RunMetric("loss").avg(3) > 5), None)
    first = make_dispatcher(store, network=PUBLIC, worker=False, refresh_interval=3600.0)
    for loss in (9.0, 9.0):
        assert first.handle(hw.Event.run_metrics(RUN, {"loss": loss})) == []
    first.close(timeout=0)  # saves what moved since the last refresh
    store.close()

    reopened = hw.SQLiteStorage(path, key=key)
    second = make_dispatcher(reopened, network=PUBLIC, worker=False)
    # the third value completes the window of three the first process began
    [fired] = second.handle(hw.Event.run_metrics(RUN, {"loss": 9.0}))
    assert fired.automation == "watch"
    assert reopened.load_windows("ml-team/training/run-1") != []
    second.handle(hw.Event.run_state(RUN, "FINISHED"))
    assert reopened.load_windows("ml-team/training/run-1") == []
    second.close(timeout=0)
    reopened.close()


def test_a_zero_cooldown_fires_on_every_crossing(store: hw.Storage, make_dispatcher: Any) -> None:
    run_setup(store, hw.OnRunMetric(hw.RunMetric("loss") > 1, cooldown=0), None)
    dispatcher = make_dispatcher(store, network=PUBLIC, worker=False)
    counts = [
        len(dispatcher.handle(hw.Event.run_metrics(RUN, {"loss": v}))) for v in [2, 0, 2, 2, 0, 2]
    ]
    assert counts == [1, 0, 1, 0, 0, 1]


def test_run_variables_validate_in_templates(store: hw.Storage) -> None:
    admin = run_setup(store, hw.OnRunState(), {"ok": "${metric_value} ${run_state}"})
    with pytest.raises(hw.TemplateError, match=r"\$\.bad"):
        admin.create_automation(
            hw.Automation(
                name="bad",
                scope=hw.Scope.project(TEAM, "training"),
                event=hw.OnRunState(),
                action=hw.SendWebhook(webhook="alerts", payload={"bad": "${NOPE}"}),
            )
        )
    assert [a.name for a in admin.list_automations(TEAM)] == ["watch"]


def test_each_state_has_its_own_cooldown(store: hw.Storage, make_dispatcher: Any) -> None:
    # per-state cooldowns are an option now; W&B's default (one per run) is
    # tested in tests/test_wandb_filters.py
    run_setup(store, hw.OnRunState(states=["RUNNING", "FINISHED"], per_state=True), None)
    dispatcher = make_dispatcher(store, network=PUBLIC, worker=False)
    counts = [
        len(dispatcher.handle(hw.Event.run_state(RUN, state)))
        for state in ["RUNNING", "FINISHED", "RUNNING", "FINISHED"]
    ]
    assert counts == [1, 1, 0, 0]


# -- the evaluators against a plain re-computation of every window ----------------


def goes(direction: hw.Direction, delta: float, amount: float) -> bool:
    """Whether a change (or score) goes ``amount`` far in ``direction``."""
    if direction is hw.Direction.INCREASE:
        return delta >= amount
    if direction is hw.Direction.DECREASE:
        return -delta >= amount
    return abs(delta) >= amount


AGGREGATE = {
    None: lambda w: w[-1],
    hw.Agg.AVERAGE: lambda w: sum(w) / len(w),
    hw.Agg.MAX: max,
    hw.Agg.MIN: min,
}


def reference(condition: Any, series: list[float]) -> list[float | None]:
    """What each condition means (as W&B's filters do), written the slow and
    obvious way: a window is ignored when there is no aggregate."""
    out: list[float | None] = []
    was_true = False
    for i in range(len(series)):
        seen = series[: i + 1]
        now_true: bool | None = None
        report = 0.0
        if isinstance(condition, hw.MetricThreshold):
            aggregate = AGGREGATE[condition.agg]
            n = 1 if condition.agg is None else condition.window
            if len(seen) >= n:
                report = aggregate(seen[-n:])
                now_true = condition.op.compare(report, condition.threshold)
        elif isinstance(condition, hw.MetricChange):
            aggregate = AGGREGATE[condition.agg]
            c, p = (
                (1, 1)
                if condition.agg is None
                else (condition.current_window, condition.prior_window)
            )
            if len(seen) >= c + p:
                report = aggregate(seen[-c:])
                before = aggregate(seen[-c - p : -c])
                delta = report - before
                if condition.kind is hw.ChangeKind.RELATIVE:
                    delta = delta / abs(before) if before else 0.0
                    now_true = before != 0 and goes(condition.direction, delta, condition.amount)
                else:
                    now_true = goes(condition.direction, delta, condition.amount)
        elif len(seen) > condition.window:
            window = seen[-condition.window - 1 : -1]
            mean = sum(window) / len(window)
            variance = sum((v - mean) ** 2 for v in window) / (len(window) - 1)
            report = seen[-1]
            if variance > 1e-9:
                score = (report - mean) / math.sqrt(variance)
                now_true = goes(condition.direction, score, condition.threshold)
            else:
                was_true = False
        if now_true is None:
            out.append(None)
            continue
        out.append(report if now_true and not was_true else None)
        was_true = now_true
    return out


aggs = st.sampled_from([None, *hw.Agg])
conditions = st.one_of(
    st.builds(
        T,
        name=st.just("m"),
        threshold=st.integers(-20, 20).map(lambda i: i + 0.5),
        op=st.sampled_from(list(hw.Op)),
        agg=aggs,
        window=st.integers(1, 6),
    ),
    st.builds(
        T, name=st.just("m"), threshold=st.integers(-20, 20), op=st.sampled_from(list(hw.Op))
    ),
    st.builds(
        C,
        name=st.just("m"),
        amount=st.sampled_from([0.5, 1.5, 3.25, 0.3, 2.0]),
        kind=st.sampled_from(list(hw.ChangeKind)),
        direction=st.sampled_from(list(hw.Direction)),
        current_window=st.integers(1, 5),
        prior_window=st.integers(1, 5),
        agg=aggs,
    ),
    st.builds(
        Z,
        name=st.just("m"),
        threshold=st.sampled_from([0.7320508, 1.4142135, 2.2360679]),
        window=st.integers(2, 6),
        direction=st.sampled_from(list(hw.Direction)),
    ),
)


@settings(max_examples=400, deadline=None)
@given(condition=conditions, series=st.lists(st.integers(-10, 10).map(float), max_size=40))
def test_evaluators_agree_with_a_plain_recomputation(condition: Any, series: list[float]) -> None:
    def rounded(values: list[float | None]) -> list[float | None]:
        return [None if v is None else round(v, 9) for v in values]

    assert rounded(crossings(condition, series)) == rounded(reference(condition, series))


@settings(max_examples=300, deadline=None)
@given(
    condition=conditions,
    series=st.lists(st.integers(-10, 10).map(float), max_size=40),
    cut=st.integers(0, 40),
)
def test_a_saved_window_goes_on_where_it_stopped(
    condition: Any, series: list[float], cut: int
) -> None:
    whole = evaluator_for(condition)
    expected = [whole.push(v) for v in series][cut:]
    before = evaluator_for(condition)
    for value in series[:cut]:
        before.push(value)
    after = evaluator_for(condition)
    after.load(before.save())
    assert [after.push(v) for v in series[cut:]] == expected


@pytest.mark.parametrize(
    "state",
    [
        "not json",
        "[]",
        '{"on": true}',
        '{"on": 1, "values": []}',
        '{"on": true, "values": [1e999]}',
    ],
)
def test_a_saved_window_that_does_not_parse_starts_afresh(
    state: str, caplog: pytest.LogCaptureFixture
) -> None:
    evaluator = evaluator_for(T("loss", 2, agg="AVERAGE", window=2))
    evaluator.load(state)
    assert "could not be read" in caplog.text
    assert [evaluator.push(v) for v in (3.0, 3.0)] == [None, 3.0]


def test_the_tracker_saves_what_moved_and_loads_it_back() -> None:
    index = index_of(hw.OnRunMetric(T("loss", 5, agg="AVERAGE", window=3)))
    tracker = RunTracker()
    for _ in range(2):
        assert fired(index, tracker, hw.Event.run_metrics(RUN, {"loss": 9.0})) == []
    saved = {(run, automation): state for run, automation, state in tracker.checkpoint().rows}
    assert tracker.checkpoint().rows == []  # nothing moved since

    def load(run: tuple[str, str, str]) -> dict[str, str]:
        return {automation: state for (r, automation), state in saved.items() if r == run}

    later = RunTracker(load=load)
    assert fired(index, later, hw.Event.run_metrics(RUN, {"loss": 9.0})) == [
        ("a0", "RUN_METRIC", "9.0")
    ]
    # a changed condition does not take the window kept for the old one
    changed = index_of(hw.OnRunMetric(T("loss", 4, agg="AVERAGE", window=3)))
    assert fired(changed, RunTracker(load=load), hw.Event.run_metrics(RUN, {"loss": 9.0})) == []


def test_evicted_runs_are_saved_and_ended_runs_are_not() -> None:
    index = index_of(hw.OnRunMetric(T("loss", 5)))
    tracker = RunTracker(max_runs=1)
    runs = [hw.Run(entity=TEAM, project="training", id=f"run-{i}") for i in range(3)]
    for run in runs:
        fired(index, tracker, hw.Event.run_metrics(run, {"loss": 1.0}))
    fired(index, tracker, hw.Event.run_state(runs[2], "FAILED"))
    assert len(tracker) == 0
    assert sorted(run[2] for run, _, _ in tracker.checkpoint().rows) == ["run-0", "run-1"]


def test_the_least_recently_logged_run_is_evicted_first() -> None:
    index = index_of(hw.OnRunMetric(T("loss", 5, agg="AVERAGE", window=2)))
    tracker = RunTracker(max_runs=2)
    a, b, c = (hw.Run(entity=TEAM, project="training", id=name) for name in "abc")
    for run in (a, b, a, a, c):  # a is used after b, so b is the one to go
        index.match(hw.Event.run_metrics(run, {"loss": 9.0}), tracker)
    assert tracker.evaluators(a)
    assert not tracker.evaluators(b)
    assert tracker.evaluators(c)


class PausingStorage(hw.MemoryStorage):
    """Holds the first ``save_windows`` until released, as a slow database would."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()
        self.pause = True

    def save_windows(self, windows: Sequence[RunWindow]) -> None:
        if self.pause:
            self.pause = False
            self.entered.set()
            assert self.release.wait(10)
        super().save_windows(windows)


def _windowed(store: hw.Storage) -> hw.Dispatcher:
    run_setup(store, hw.OnRunMetric(hw.RunMetric("loss").avg(3) > 5), None)
    return hw.Dispatcher(store, network=PUBLIC, worker=False, refresh_interval=3600.0)


class WatchedLock:
    """A lock that tells when another thread has to wait for it: it sets
    ``settled`` as a thread starts waiting while the lock is held."""

    def __init__(self, lock: Any, settled: threading.Event) -> None:
        self._lock, self.settled = lock, settled

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        self.settled.set()  # held by someone else: this thread waits behind it
        return blocking and self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _in_background(
    work: Callable[[], object], done: threading.Event | None = None
) -> threading.Thread:
    def run() -> None:
        try:
            work()
        finally:
            if done is not None:
                done.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _ordered(dispatcher: hw.Dispatcher) -> threading.Event:
    """Watch the lock that orders window saves and deletes. The event it
    returns is set once a competing save or delete waits behind the paused
    save, or (were there no ordering) has gone through without waiting."""
    windows = dispatcher._core.checkpoints
    settled = threading.Event()
    windows._saving = WatchedLock(windows._saving, settled)  # type: ignore[assignment]
    return settled


def test_a_save_under_way_does_not_bring_back_an_ended_run() -> None:
    store = PausingStorage()
    dispatcher = _windowed(store)
    settled = _ordered(dispatcher)
    dispatcher.handle(hw.Event.run_metrics(RUN, {"loss": 9.0}))
    saving = _in_background(dispatcher._core.checkpoints.save)  # the worker's refresh, say
    assert store.entered.wait(10)  # it holds a snapshot taken before the run ended
    ending = _in_background(
        lambda: dispatcher.handle(hw.Event.run_state(RUN, "FINISHED")), done=settled
    )
    assert settled.wait(10)  # the delete waits behind the save (unordered, it has landed)
    store.release.set()
    saving.join(10)
    ending.join(10)
    assert store.load_windows("ml-team/training/run-1") == []
    dispatcher.close()


def test_an_older_snapshot_never_lands_after_a_newer_one() -> None:
    store = PausingStorage()
    dispatcher = _windowed(store)
    settled = _ordered(dispatcher)
    dispatcher.handle(hw.Event.run_metrics(RUN, {"loss": 9.0}))
    first = _in_background(dispatcher._core.checkpoints.save)
    assert store.entered.wait(10)
    dispatcher.handle(hw.Event.run_metrics(RUN, {"loss": 9.0}))
    second = _in_background(dispatcher._core.checkpoints.save, done=settled)
    assert settled.wait(10)  # the newer save waits behind the older one (or has landed)
    store.release.set()
    first.join(10)
    second.join(10)
    [saved] = store.load_windows("ml-team/training/run-1")
    assert json.loads(saved.state)["values"] == [9.0, 9.0]
    dispatcher.close()


class FlakyWindows(hw.MemoryStorage):
    """Window writes fail while ``broken`` is set."""

    broken = True

    def save_windows(self, windows: Sequence[RunWindow]) -> None:
        if self.broken:
            raise OSError("database is locked")
        super().save_windows(windows)

    def delete_windows(self, run: str) -> None:
        if self.broken:
            raise OSError("database is locked")
        super().delete_windows(run)


def test_window_writes_that_fail_do_not_stop_training(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyWindows()
    run_setup(store, hw.OnRunState(states=["FAILED"]), None)
    admin = hw.Admin(store, network=PUBLIC)
    admin.create_automation(
        hw.Automation(
            name="avg",
            scope=hw.Scope.project(TEAM, "training"),
            event=hw.OnRunMetric(hw.RunMetric("loss").avg(3) > 5),
            action=hw.DoNothing(),
        )
    )
    dispatcher = hw.Dispatcher(store, network=PUBLIC, worker=False, refresh_interval=0.0)
    for _ in range(2):
        assert dispatcher.handle(hw.Event.run_metrics(RUN, {"loss": 9.0})) == []
    assert "could not save run windows" in caplog.text
    store.broken = False
    dispatcher._core.checkpoints.save()  # the next save carries what the failed ones held
    [saved] = store.load_windows("ml-team/training/run-1")
    assert json.loads(saved.state)["values"] == [9.0, 9.0]

    store.broken = True
    [alert] = dispatcher.handle(hw.Event.run_state(RUN, "FAILED"))  # the alert still goes out
    assert alert.automation == "watch"
    assert "could not delete the windows" in caplog.text
    dispatcher.close()


def test_an_evicted_run_takes_up_its_pending_windows() -> None:
    index = index_of(hw.OnRunMetric(T("loss", 5, agg="AVERAGE", window=2)))
    tracker = RunTracker(max_runs=1)  # nothing saved: only the pending state can carry over
    a, b = (hw.Run(entity=TEAM, project="training", id=name) for name in "ab")
    fired(index, tracker, hw.Event.run_metrics(a, {"loss": 9.0}))
    fired(index, tracker, hw.Event.run_metrics(b, {"loss": 9.0}))  # evicts a
    assert fired(index, tracker, hw.Event.run_metrics(a, {"loss": 9.0})) == [
        ("a0", "RUN_METRIC", "9.0")
    ]
    fired(index, tracker, hw.Event.run_metrics(b, {"loss": 1.0}))  # evicts a again
    fired(index, tracker, hw.Event.run_state(a, "FINISHED"))  # ended while evicted
    assert [run[2] for run, _, _ in tracker.checkpoint().rows] == ["b"]
