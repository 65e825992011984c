"""The automation index, and the run-metric evaluators behind it.

Built once per storage revision. ``handle()`` never scans every automation:
an artifact or run-state event costs one dict lookup by (event type, entity,
project); a run-metrics event one lookup by (entity, project) and one per
logged metric name. Only the automations found that way are tested.

Run windows live in a :class:`RunTracker` that outlives index rebuilds, is
bounded per run (each window keeps at most its own size) and in runs (least
recently seen runs are forgotten first; a run that ends is dropped).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, defaultdict, deque
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from hookwise.events import Event, EventType, RunState, is_number
from hookwise.model import ArtifactFilter, Automation, DoNothing, SendWebhook, Webhook
from hookwise.runs import (
    Agg,
    ChangeKind,
    MetricChange,
    MetricCondition,
    MetricThreshold,
    MetricZScore,
    OnRunMetric,
    OnRunState,
)
from hookwise.template import Template

__all__ = ["Evaluator", "Index", "Match", "RunTracker", "Target", "evaluator_for"]

logger = logging.getLogger("hookwise")

_NO_VALUES: Mapping[str, str] = MappingProxyType({})
_RESUM_EVERY = 4096  # re-add running sums from scratch this often: float drift stays tiny


@attrs.frozen(slots=True)
class Target:
    """An automation with the webhook and template it sends (both None: no-op)."""

    automation: Automation
    webhook: Webhook | None = None
    template: Template | None = None
    key: str = attrs.field(default="", eq=False)  # names its run windows across rebuilds

    def __attrs_post_init__(self) -> None:
        a = self.automation
        object.__setattr__(self, "key", f"{a.team}\x00{a.name}\x00{a.event!r}")


@attrs.frozen(slots=True)
class Match:
    """An automation that fires for an event, the event type it renders, and
    the run variables of the firing (``metric_name``, ``metric_value``)."""

    target: Target
    event_type: EventType
    values: Mapping[str, str] = _NO_VALUES


# -- evaluators: one per (automation, run); push a value, get a crossing ----


class Evaluator:
    """Keeps a condition's window for one run. ``push`` returns the value to
    report when the condition turns true with this value, else None."""

    __slots__ = ("pushes", "was_true")

    def __init__(self) -> None:
        self.was_true = False
        self.pushes = 0

    def push(self, value: float) -> float | None:
        raise NotImplementedError

    def _edge(self, now_true: bool, report: float) -> float | None:
        crossed = now_true and not self.was_true
        self.was_true = now_true
        return report if crossed else None


class _Latest(Evaluator):
    """A threshold on the newest value: no window to keep."""

    __slots__ = ("compare", "threshold")

    def __init__(self, condition: MetricThreshold) -> None:
        super().__init__()
        self.compare = condition.op.compare
        self.threshold = condition.threshold

    def push(self, value: float) -> float | None:
        now_true = self.compare(value, self.threshold)
        if now_true is self.was_true:
            return None
        self.was_true = now_true
        return value if now_true else None


class _Threshold(Evaluator):
    __slots__ = ("agg", "compare", "threshold", "total", "values", "window")

    def __init__(self, condition: MetricThreshold) -> None:
        super().__init__()
        self.window = condition.window
        self.values: deque[float] = deque(maxlen=condition.window)
        self.total = 0.0
        self.agg = condition.agg
        self.compare = condition.op.compare
        self.threshold = condition.threshold

    def push(self, value: float) -> float | None:
        values = self.values
        if len(values) == self.window:
            self.total -= values[0]
        values.append(value)
        self.total += value
        self.pushes += 1
        if self.pushes % _RESUM_EVERY == 0:
            self.total = math.fsum(values)
        if len(values) < self.window:
            return None
        agg = self.agg
        if agg is None:
            current = value
        elif agg is Agg.AVERAGE:
            current = self.total / self.window
        elif agg is Agg.MAX:
            current = max(values)
        else:
            current = min(values)
        return self._edge(self.compare(current, self.threshold), current)


class _Change(Evaluator):
    __slots__ = ("condition", "current", "current_sum", "prior", "prior_sum")

    def __init__(self, condition: MetricChange) -> None:
        super().__init__()
        self.condition = condition
        self.current: deque[float] = deque(maxlen=condition.current_window)
        self.prior: deque[float] = deque(maxlen=condition.prior_window)
        self.current_sum = 0.0
        self.prior_sum = 0.0

    def push(self, value: float) -> float | None:
        c = self.condition
        current, prior = self.current, self.prior
        if len(current) == c.current_window:
            moved = current[0]  # leaves the current window, joins the prior one
            self.current_sum -= moved
            if len(prior) == c.prior_window:
                self.prior_sum -= prior[0]
            prior.append(moved)
            self.prior_sum += moved
        current.append(value)
        self.current_sum += value
        self.pushes += 1
        if self.pushes % _RESUM_EVERY == 0:
            self.current_sum, self.prior_sum = math.fsum(current), math.fsum(prior)
        if len(prior) < c.prior_window:
            return None
        now = self.current_sum / c.current_window
        before = self.prior_sum / c.prior_window
        delta = now - before
        if c.kind is ChangeKind.RELATIVE:
            if before == 0:
                return self._edge(False, now)  # no relative change from zero
            delta /= abs(before)
        return self._edge(c.direction.reached(delta, c.amount), now)


class _ZScore(Evaluator):
    __slots__ = ("condition", "squares", "total", "values")

    def __init__(self, condition: MetricZScore) -> None:
        super().__init__()
        self.condition = condition
        self.values: deque[float] = deque(maxlen=condition.window)
        self.total = 0.0
        self.squares = 0.0

    def push(self, value: float) -> float | None:
        c = self.condition
        values = self.values
        n = c.window
        crossed: float | None = None
        if len(values) == n:
            mean = self.total / n
            variance = max(0.0, (self.squares - self.total * mean) / (n - 1))
            if variance > 1e-12 * max(1.0, mean * mean):
                score = (value - mean) / math.sqrt(variance)
                crossed = self._edge(c.direction.reached(score, c.threshold), value)
            else:
                self.was_true = False  # a flat window has no z-score
            old = values[0]
            self.total -= old
            self.squares -= old * old
        values.append(value)
        self.total += value
        self.squares += value * value
        self.pushes += 1
        if self.pushes % _RESUM_EVERY == 0:
            self.total = math.fsum(values)
            self.squares = math.fsum(v * v for v in values)
        return crossed


def evaluator_for(condition: MetricCondition) -> Evaluator:
    if isinstance(condition, MetricThreshold):
        return _Latest(condition) if condition.window == 1 else _Threshold(condition)
    if isinstance(condition, MetricChange):
        return _Change(condition)
    return _ZScore(condition)


# -- per-run state ------------------------------------------------------------

_RunKey = tuple[str, str, str]  # entity, project, run id


class RunTracker:
    """Windows and last states of the runs seen lately, at most ``max_runs``."""

    __slots__ = ("_runs", "_states", "max_runs")

    def __init__(self, max_runs: int = 10_000) -> None:
        self.max_runs = max_runs
        # per run: the evaluator of each automation watching it (None: the
        # automation's run filters exclude this run)
        self._runs: OrderedDict[_RunKey, dict[str, Evaluator | None]] = OrderedDict()
        self._states: OrderedDict[_RunKey, RunState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._runs)

    def on_metrics(self, event: Event, watched: Mapping[str, tuple[Target, ...]]) -> list[Match]:
        run = event.run
        assert run is not None
        key = (run.entity, run.project, run.id)
        runs = self._runs
        evaluators = runs.get(key)
        if evaluators is None:
            evaluators = runs[key] = {}
            if len(runs) > self.max_runs:
                runs.popitem(last=False)
        else:
            runs.move_to_end(key)
        matches: list[Match] = []
        for name, value in event.metrics.items():
            targets = watched.get(name)
            if targets is None:
                continue
            # inf - inf and nan - nan are nan: a float passes only when finite
            if not (type(value) is float and value - value == 0.0) and not is_number(value):
                logger.debug(
                    "run %s: metric %r value %r ignored (not a finite number)", run.id, name, value
                )
                continue
            number = float(value)
            for target in targets:
                evaluator = evaluators.get(target.key, _MISSING)
                if evaluator is _MISSING:
                    evaluator = evaluators[target.key] = self._evaluator(target, event)
                if evaluator is None:
                    continue
                reported = evaluator.push(number)
                if reported is not None:
                    condition = target.automation.event.condition  # type: ignore[attr-defined]
                    values = {"metric_name": name, "metric_value": repr(reported)}
                    matches.append(Match(target, condition.event_type, MappingProxyType(values)))
        return matches

    @staticmethod
    def _evaluator(target: Target, event: Event) -> Evaluator | None:
        run_filter = target.automation.event
        assert isinstance(run_filter, OnRunMetric)
        return evaluator_for(run_filter.condition) if run_filter.covers_run(event) else None

    def on_state(self, event: Event) -> bool:
        """Note a run's state; True when it changed (a first report counts).
        A run that finished or failed has its windows dropped."""
        run, state = event.run, event.state
        assert run is not None
        assert state is not None
        key = (run.entity, run.project, run.id)
        previous = self._states.pop(key, None)
        self._states[key] = state
        if len(self._states) > self.max_runs:
            self._states.popitem(last=False)
        if state is not RunState.RUNNING:
            self._runs.pop(key, None)
        return previous is not state


_MISSING = Evaluator()  # a sentinel no real lookup returns


# -- the index ------------------------------------------------------------------

_Key = tuple[EventType, str, str]


class Index:
    """Enabled automations grouped by what they listen to."""

    __slots__ = ("_by_key", "_metrics", "revision", "size")

    def __init__(self, targets: Iterable[Target], revision: int) -> None:
        by_key: defaultdict[_Key, list[Target]] = defaultdict(list)
        metrics: defaultdict[tuple[str, str], defaultdict[str, list[Target]]] = defaultdict(
            lambda: defaultdict(list)
        )
        size = 0
        for target in targets:
            automation = target.automation
            if not automation.enabled:
                continue
            scope, listens = automation.scope, automation.event
            if isinstance(listens, OnRunMetric):
                metrics[(scope.entity, scope.project_name)][listens.condition.name].append(target)
            else:
                by_key[(listens.event_type, scope.entity, scope.project_name)].append(target)
            size += 1
        self._by_key: dict[_Key, tuple[Target, ...]] = {k: tuple(v) for k, v in by_key.items()}
        self._metrics: dict[tuple[str, str], dict[str, tuple[Target, ...]]] = {
            project: {name: tuple(ts) for name, ts in names.items()}
            for project, names in metrics.items()
        }
        self.revision = revision
        self.size = size

    @classmethod
    def build(
        cls,
        automations: Iterable[Automation],
        webhooks: dict[tuple[str, str], Webhook],
        revision: int,
    ) -> Index:
        """Pair each automation with its webhook; one whose webhook is gone is left out."""
        targets = []
        for automation in automations:
            action = automation.action
            if isinstance(action, DoNothing):
                targets.append(Target(automation))
            elif isinstance(action, SendWebhook):
                webhook = webhooks.get((automation.team, action.webhook))
                if webhook is not None:
                    targets.append(Target(automation, webhook, action.payload))
        return cls(targets, revision)

    def match(self, event: Event, tracker: RunTracker) -> list[Match]:
        kind = event.type
        if kind is EventType.RUN_METRIC:
            watched = self._metrics.get((event.entity, event.project))
            return tracker.on_metrics(event, watched) if watched else []
        if kind is EventType.RUN_STATE:
            changed = tracker.on_state(event)
            candidates = self._by_key.get((kind, event.entity, event.project))
            if not changed or not candidates:
                return []
            return [
                Match(t, kind)
                for t in candidates
                if isinstance(f := t.automation.event, OnRunState)
                and event.state in f.states
                and f.covers_run(event)
            ]
        candidates = self._by_key.get((kind, event.entity, event.project))
        if not candidates:
            return []
        return [
            Match(t, kind)
            for t in candidates
            if isinstance(f := t.automation.event, ArtifactFilter)
            and t.automation.scope.covers(event)
            and f.matches(event)
        ]
