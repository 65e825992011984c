"""The run tracker: the metric windows and last states of the runs seen lately.

Kept apart from the index because it outlives index rebuilds (a run's evaluators
are found again by their automation's key). It is bounded per run (each
window keeps at most its own size) and in runs (least recently seen runs are
forgotten first; a run that ends is dropped); :meth:`RunTracker.checkpoint`
hands out what changed, for a storage to keep across restarts.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import attrs

from hookwise.evaluators import Evaluator, as_number, evaluator_for, format_value
from hookwise.events import Event, Run, RunState
from hookwise.filters import OnRunMetric
from hookwise.index import Match, Target

__all__ = ["Checkpoint", "RunTracker"]

logger = logging.getLogger("hookwise")

_RunKey = tuple[str, str, str]  # entity, project, run id
_Plan = tuple[tuple[str, Callable[[float], "float | None"], Target], ...]


class _RunWindows:
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

    taken: Mapping[_RunKey, _RunWindows]
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
        self._runs: OrderedDict[_RunKey, _RunWindows] = OrderedDict()
        self._states: OrderedDict[_RunKey, RunState] = OrderedDict()
        self._dirty: dict[_RunKey, _RunWindows] = {}  # windows moved since the last checkpoint
        self._newest: _RunKey | None = None  # the key moved to the end of _runs last

    def checkpoint(self) -> Checkpoint:
        """The windows that moved since the last checkpoint, of live and
        evicted runs; not those of runs that ended."""
        taken, self._dirty = self._dirty, {}
        rows = []
        for key, windows in taken.items():
            windows.dirty = False
            for automation, evaluator in windows.evaluators.items():
                if evaluator is not None:
                    rows.append((key, automation, evaluator.save()))
        return Checkpoint(taken, rows)

    def retry_later(self, checkpoint: Checkpoint) -> None:
        """The checkpoint could not be saved: keep its runs pending, unless
        they moved again (pending already) or ended since."""
        for key, windows in checkpoint.taken.items():
            ended = self._states.get(key, RunState.RUNNING) is not RunState.RUNNING
            if not windows.dirty and not ended and self._runs.get(key) in (None, windows):
                windows.dirty = True
                self._dirty[key] = windows

    def __len__(self) -> int:
        return len(self._runs)

    def knows(self, key: _RunKey) -> bool:
        """Whether ``key``'s windows are in memory: if not, the next metrics
        of that run load them from storage first."""
        return key in self._runs or key in self._dirty

    def adopt(self, key: _RunKey, saved: Mapping[str, str]) -> None:
        """Take a run's saved windows, loaded ahead by the caller (outside
        any lock), so its next metrics read no storage."""
        if not self.knows(key):
            self._runs[key] = _RunWindows(saved)
            if len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)

    def on_metrics(
        self, event: Event, watched: Mapping[str, tuple[Target, ...]]
    ) -> Sequence[Match]:
        run = event.run
        assert run is not None
        key = run.key
        runs = self._runs
        windows = runs.get(key)
        if windows is None:
            windows = self._dirty.get(key)  # evicted before its windows were saved
            if windows is None:
                windows = _RunWindows(self._load(key))
            runs[key] = windows
            if len(runs) > self.max_runs:
                runs.popitem(last=False)  # if dirty, still saved at the next checkpoint
        elif key is not self._newest:  # a training loop logs one run: already the newest
            runs.move_to_end(key)
        self._newest = key
        if not windows.dirty:
            windows.dirty = True
            self._dirty[key] = windows
        if windows.planned_for is not watched:
            windows.replan(watched, event)
        matches: list[Match] | None = None
        get = event.metrics.get
        for name, push, target in windows.plan:
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
                values = {"metric_name": name, "metric_value": format_value(reported)}
                if matches is None:
                    matches = []
                matches.append(Match(target, condition.event_type, MappingProxyType(values)))
        return matches if matches is not None else ()

    def evaluators(self, run: Run) -> list[Evaluator]:
        """The live evaluators of a run (for tests and introspection)."""
        windows = self._runs.get(run.key)
        return [] if windows is None else [e for e in windows.evaluators.values() if e is not None]

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
