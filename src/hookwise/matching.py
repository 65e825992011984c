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

import json
import logging
import math
import numbers
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

import attrs

from hookwise.events import Event, EventType, Run, RunState
from hookwise.model import ArtifactFilter, Automation, DoNothing, SendWebhook, Webhook
from hookwise.runs import (
    Agg,
    ChangeKind,
    Direction,
    MetricChange,
    MetricCondition,
    MetricThreshold,
    MetricZScore,
    OnRunMetric,
    OnRunState,
)
from hookwise.template import Template

__all__ = ["Checkpoint", "Evaluator", "Index", "Match", "RunTracker", "Target", "evaluator_for"]

logger = logging.getLogger("hookwise")

_NO_VALUES: Mapping[str, str] = MappingProxyType({})
_RUN_METRIC = EventType.RUN_METRIC  # a global is quicker to reach than an enum member
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
    report when the condition turns true with this value, else None.

    Written for the hot path: running sums instead of re-adding windows
    (re-added from scratch every few thousand values so float drift stays
    tiny), and locals instead of repeated attribute lookups.
    """

    __slots__ = ("countdown", "was_true")

    def __init__(self) -> None:
        self.was_true = False
        self.countdown = _RESUM_EVERY

    def push(self, value: float) -> float | None:
        raise NotImplementedError

    def kept(self) -> list[float]:
        """The values kept, oldest first: what a restart needs to go on."""
        return []

    def refill(self, values: list[float]) -> None:
        """Take back what :meth:`kept` gave, into an empty evaluator."""

    def save(self) -> str:
        return json.dumps({"on": self.was_true, "values": self.kept()})

    def load(self, state: str) -> None:
        """Go on from a saved state; one that does not parse is dropped, and
        the window fills again as if new."""
        try:
            document = json.loads(state)
            on, values = document["on"], [float(v) for v in document["values"]]
            if not isinstance(on, bool) or not all(math.isfinite(v) for v in values):
                raise ValueError("not a saved window")
        except (ValueError, TypeError, KeyError):
            logger.warning("a saved metric window could not be read; starting it afresh")
            return
        self.was_true = on
        self.refill(values)


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


class _Average(Evaluator):
    __slots__ = ("compare", "threshold", "total", "values", "window")

    def __init__(self, condition: MetricThreshold) -> None:
        super().__init__()
        self.window = condition.window
        self.values: deque[float] = deque(maxlen=condition.window)
        self.total = 0.0
        self.compare = condition.op.compare
        self.threshold = condition.threshold

    def kept(self) -> list[float]:
        return list(self.values)

    def refill(self, values: list[float]) -> None:
        self.values.extend(values)
        self.total = math.fsum(self.values)

    def push(self, value: float) -> float | None:
        values = self.values
        full = len(values) == self.window
        total = self.total - values[0] if full else self.total
        values.append(value)
        total += value
        self.countdown -= 1
        if not self.countdown:
            self.countdown, total = _RESUM_EVERY, math.fsum(values)
        self.total = total
        if not full and len(values) < self.window:
            return None
        current = total / self.window
        now_true = self.compare(current, self.threshold)
        if now_true is self.was_true:
            return None
        self.was_true = now_true
        return current if now_true else None


class _Extreme(Evaluator):
    """MAX or MIN of the window, kept up to date: a full rescan only when the
    value that leaves the window was the extreme."""

    __slots__ = ("best", "compare", "pick", "threshold", "values", "window")

    def __init__(self, condition: MetricThreshold) -> None:
        super().__init__()
        self.window = condition.window
        self.values: deque[float] = deque(maxlen=condition.window)
        self.pick = max if condition.agg is Agg.MAX else min
        self.best = math.nan
        self.compare = condition.op.compare
        self.threshold = condition.threshold

    def kept(self) -> list[float]:
        return list(self.values)

    def refill(self, values: list[float]) -> None:
        self.values.extend(values)
        self.best = self.pick(self.values) if self.values else math.nan

    def push(self, value: float) -> float | None:
        values = self.values
        full = len(values) == self.window
        leaving = values[0] if full else math.nan
        values.append(value)
        best = self.best
        if best != best or self.pick(value, best) == value:  # first value, or a new extreme
            best = value
        elif leaving == best:
            best = self.pick(values)
        self.best = best
        if not full and len(values) < self.window:
            return None
        now_true = self.compare(best, self.threshold)
        if now_true is self.was_true:
            return None
        self.was_true = now_true
        return best if now_true else None


class _Change(Evaluator):
    __slots__ = (
        "current",
        "current_n",
        "current_sum",
        "prior",
        "prior_n",
        "prior_sum",
        "reached",
        "relative",
    )

    def __init__(self, condition: MetricChange) -> None:
        super().__init__()
        self.current_n, self.prior_n = condition.current_window, condition.prior_window
        self.current: deque[float] = deque(maxlen=self.current_n)
        self.prior: deque[float] = deque(maxlen=self.prior_n)
        self.current_sum = 0.0
        self.prior_sum = 0.0
        self.reached = _reached(condition.direction, condition.amount)
        self.relative = condition.kind is ChangeKind.RELATIVE

    def kept(self) -> list[float]:
        return [*self.prior, *self.current]

    def refill(self, values: list[float]) -> None:
        # the current window fills first; older values have moved to the prior one
        split = max(len(values) - self.current_n, 0)
        self.prior.extend(values[:split])
        self.current.extend(values[split:])
        self.prior_sum, self.current_sum = math.fsum(self.prior), math.fsum(self.current)

    def push(self, value: float) -> float | None:
        current, prior = self.current, self.prior
        if len(current) == self.current_n:
            moved = current[0]  # leaves the current window, joins the prior one
            self.current_sum -= moved
            if len(prior) == self.prior_n:
                self.prior_sum -= prior[0]
            prior.append(moved)
            self.prior_sum += moved
        current.append(value)
        self.current_sum += value
        self.countdown -= 1
        if not self.countdown:
            self.countdown = _RESUM_EVERY
            self.current_sum, self.prior_sum = math.fsum(current), math.fsum(prior)
        if len(prior) < self.prior_n:
            return None
        now = self.current_sum / self.current_n
        before = self.prior_sum / self.prior_n
        delta = now - before
        if self.relative:
            # no relative change from zero
            delta = delta / abs(before) if before else 0.0
        now_true = self.reached(delta)
        if now_true is self.was_true:
            return None
        self.was_true = now_true
        return now if now_true else None


class _ZScore(Evaluator):
    __slots__ = ("reached", "squares", "total", "values", "window")

    def __init__(self, condition: MetricZScore) -> None:
        super().__init__()
        self.window = condition.window
        self.values: deque[float] = deque(maxlen=condition.window)
        self.total = 0.0
        self.squares = 0.0
        self.reached = _reached(condition.direction, condition.threshold)

    def kept(self) -> list[float]:
        return list(self.values)

    def refill(self, values: list[float]) -> None:
        self.values.extend(values)
        self.total = math.fsum(self.values)
        self.squares = math.fsum(v * v for v in self.values)

    def push(self, value: float) -> float | None:
        values = self.values
        n = self.window
        crossed: float | None = None
        total, squares = self.total, self.squares
        if len(values) == n:
            mean = total / n
            variance = (squares - total * mean) / (n - 1)
            if variance > 1e-12 * (mean * mean if mean * mean > 1.0 else 1.0):
                now_true = self.reached((value - mean) / math.sqrt(variance))
                if now_true is not self.was_true:
                    self.was_true = now_true
                    crossed = value if now_true else None
            else:
                self.was_true = False  # a flat window has no z-score
            old = values[0]
            total -= old
            squares -= old * old
        values.append(value)
        total += value
        squares += value * value
        self.countdown -= 1
        if not self.countdown:
            self.countdown = _RESUM_EVERY
            total, squares = math.fsum(values), math.fsum(v * v for v in values)
        self.total, self.squares = total, squares
        return crossed


def _reached(direction: Direction, amount: float) -> Callable[[float], bool]:
    """Whether a signed change (or score) goes ``amount`` far in ``direction``."""
    if direction is Direction.INCREASE:
        return lambda delta: delta >= amount
    if direction is Direction.DECREASE:
        return lambda delta: -delta >= amount
    return lambda delta: abs(delta) >= amount


def evaluator_for(condition: MetricCondition) -> Evaluator:
    if isinstance(condition, MetricThreshold):
        if condition.agg is None:
            return _Latest(condition)
        return _Average(condition) if condition.agg is Agg.AVERAGE else _Extreme(condition)
    if isinstance(condition, MetricChange):
        return _Change(condition)
    return _ZScore(condition)


def as_number(value: object) -> float | None:
    """A metric value as a float for the windows, or None to ignore it: NaN,
    inf, bools, text. NumPy scalars are numbers too."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):  # an int beyond float range, an odd Real
        return None
    return number if math.isfinite(number) else None


def _report(value: float) -> str:
    """``${metric_value}``: 15 significant digits, so a mean of 0.1s reads 0.1."""
    return repr(float(f"{value:.15g}"))


# -- per-run state ------------------------------------------------------------

_RunKey = tuple[str, str, str]  # entity, project, run id
_Plan = tuple[tuple[str, Callable[[float], "float | None"], Target], ...]


class _RunState:
    """One run's evaluators (kept by automation key across index rebuilds),
    and the plan built from them for the index in use: for each evaluator
    watching this run, the metric it reads and its ``push``. ``saved`` holds
    the windows a storage kept from before a restart, until an evaluator
    takes its own; ``dirty`` says the windows moved since the last save."""

    __slots__ = ("dirty", "evaluators", "plan", "planned_for", "saved")

    def __init__(self, saved: Mapping[str, str]) -> None:
        self.evaluators: dict[str, Evaluator | None] = {}
        self.plan: _Plan = ()
        self.planned_for: object = None
        self.saved = dict(saved)
        self.dirty = False

    def replan(self, watched: Mapping[str, tuple[Target, ...]], event: Event) -> None:
        plan = []
        for name, targets in watched.items():
            for target in targets:
                evaluator = self.evaluators.get(target.key, _MISSING)
                if evaluator is _MISSING:
                    evaluator = self.evaluators[target.key] = _evaluator(target, event)
                    saved = self.saved.pop(target.key, None)
                    if evaluator is not None and saved is not None:
                        evaluator.load(saved)
                if evaluator is not None:
                    plan.append((name, evaluator.push, target))
        self.plan, self.planned_for = tuple(plan), watched


def _evaluator(target: Target, event: Event) -> Evaluator | None:
    """None when the automation's run filters leave this run out."""
    run_filter = target.automation.event
    assert isinstance(run_filter, OnRunMetric)
    return evaluator_for(run_filter.condition) if run_filter.covers_run(event) else None


def _nothing_saved(run: _RunKey) -> Mapping[str, str]:
    return {}


@attrs.frozen(slots=True)
class Checkpoint:
    """What :meth:`RunTracker.checkpoint` took: the runs, and the rows to
    save for them as (run, automation key, state)."""

    taken: Mapping[_RunKey, _RunState]
    rows: list[tuple[_RunKey, str, str]]


class RunTracker:
    """Windows and last states of the runs seen lately, at most ``max_runs``.

    ``load`` gives the windows saved for a run (automation key -> state) the
    first time the run is seen; :meth:`checkpoint` gives back what changed
    since, for the caller to save. A run whose windows moved stays pending
    until then, even if evicted: seen again, it takes up its pending state
    rather than the older one in storage.
    """

    __slots__ = ("_dirty", "_load", "_newest", "_runs", "_states", "max_runs")

    def __init__(
        self,
        max_runs: int = 10_000,
        *,
        load: Callable[[_RunKey], Mapping[str, str]] = _nothing_saved,
    ) -> None:
        self.max_runs = max_runs
        self._load = load
        self._runs: OrderedDict[_RunKey, _RunState] = OrderedDict()
        self._states: OrderedDict[_RunKey, RunState] = OrderedDict()
        self._dirty: dict[_RunKey, _RunState] = {}  # windows moved since the last checkpoint
        self._newest: _RunKey | None = None  # the key moved to the end of _runs last

    def checkpoint(self) -> Checkpoint:
        """The windows that moved since the last checkpoint, of live and
        evicted runs; not those of runs that ended."""
        taken, self._dirty = self._dirty, {}
        rows = []
        for key, state in taken.items():
            state.dirty = False
            for automation, evaluator in state.evaluators.items():
                if evaluator is not None:
                    rows.append((key, automation, evaluator.save()))
        return Checkpoint(taken, rows)

    def retry_later(self, checkpoint: Checkpoint) -> None:
        """The checkpoint could not be saved: keep its runs pending, unless
        they moved again (pending already) or ended since."""
        for key, state in checkpoint.taken.items():
            ended = self._states.get(key, RunState.RUNNING) is not RunState.RUNNING
            if not state.dirty and not ended and self._runs.get(key) in (None, state):
                state.dirty = True
                self._dirty[key] = state

    def __len__(self) -> int:
        return len(self._runs)

    def on_metrics(
        self, event: Event, watched: Mapping[str, tuple[Target, ...]]
    ) -> Sequence[Match]:
        run = event.run
        assert run is not None
        key = run.key
        runs = self._runs
        state = runs.get(key)
        if state is None:
            state = self._dirty.get(key)  # evicted before its windows were saved
            if state is None:
                state = _RunState(self._load(key))
            runs[key] = state
            if len(runs) > self.max_runs:
                runs.popitem(last=False)  # if dirty, still saved at the next checkpoint
        elif key is not self._newest:  # a training loop logs one run: already the newest
            runs.move_to_end(key)
        self._newest = key
        if not state.dirty:
            state.dirty = True
            self._dirty[key] = state
        if state.planned_for is not watched:
            state.replan(watched, event)
        matches: list[Match] | None = None
        get = event.metrics.get
        for name, push, target in state.plan:
            value = get(name)
            # inf - inf and nan - nan are nan: a float passes only when finite
            if type(value) is not float or value - value != 0.0:
                if value is None:
                    continue  # not logged at this step
                number = as_number(value)
                if number is None:
                    logger.debug(
                        "run %s: metric %r value %r ignored (not a finite number)",
                        run.id,
                        name,
                        value,
                    )
                    continue
                value = number
            reported = push(value)
            if reported is not None:
                condition = target.automation.event.condition  # type: ignore[attr-defined]
                values = {"metric_name": name, "metric_value": _report(reported)}
                if matches is None:
                    matches = []
                matches.append(Match(target, condition.event_type, MappingProxyType(values)))
        return matches if matches is not None else ()

    def evaluators(self, run: Run) -> list[Evaluator]:
        """The live evaluators of a run (for tests and introspection)."""
        state = self._runs.get(run.key)
        return [] if state is None else [e for e in state.evaluators.values() if e is not None]

    def on_state(self, event: Event) -> bool:
        """Note a run's state; True when it changed (a first report counts).
        A run that finished or failed has its windows dropped."""
        run, state = event.run, event.state
        assert run is not None
        assert state is not None
        key = run.key
        previous = self._states.pop(key, None)
        self._states[key] = state
        if len(self._states) > self.max_runs:
            self._states.popitem(last=False)
        if state is not RunState.RUNNING:
            self._runs.pop(key, None)
            self._dirty.pop(key, None)
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

    def match(self, event: Event, tracker: RunTracker) -> Sequence[Match]:
        kind = event.type
        if kind is _RUN_METRIC:
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
