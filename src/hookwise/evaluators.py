"""Evaluators: one metric condition's window for one run.

An evaluator takes each new value of its metric and says when the condition
turns true. This is what a training loop pays for on every logged step, so it
lives apart from the conditions (what to watch) and the tracker (which runs
have which evaluators), and is written for speed first.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
from collections import deque

from hookwise.conditions import (
    Agg,
    ChangeKind,
    MetricChange,
    MetricCondition,
    MetricThreshold,
    MetricZScore,
)

__all__ = ["Evaluator", "as_number", "evaluator_for", "format_value"]

logger = logging.getLogger("hookwise")

_RESUM_EVERY = 4096  # re-add running sums from scratch this often: float drift stays tiny


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


class _ChangeBase(Evaluator):
    """Two consecutive, non-overlapping windows: with each value the oldest
    current value moves into the prior window. Nothing is judged until both
    are full."""

    __slots__ = ("current", "current_n", "prior", "prior_n", "reached", "relative")

    def __init__(self, condition: MetricChange, current_n: int, prior_n: int) -> None:
        super().__init__()
        self.current_n, self.prior_n = current_n, prior_n
        self.current: deque[float] = deque(maxlen=current_n)
        self.prior: deque[float] = deque(maxlen=prior_n)
        self.reached = condition.direction.predicate(condition.amount)
        self.relative = condition.kind is ChangeKind.RELATIVE

    def kept(self) -> list[float]:
        return [*self.prior, *self.current]

    def refill(self, values: list[float]) -> None:
        # the current window fills first; older values have moved to the prior one
        split = max(len(values) - self.current_n, 0)
        self.prior.extend(values[:split])
        self.current.extend(values[split:])
        self.recount()

    def recount(self) -> None:
        """Recompute what is kept about the windows from their values."""

    def judge(self, now: float, before: float) -> float | None:
        """The crossing rule on the current (``now``) and prior aggregates."""
        delta = now - before
        if self.relative:
            # no relative change from zero
            delta = delta / abs(before) if before else 0.0
        now_true = self.reached(delta)
        if now_true is self.was_true:
            return None
        self.was_true = now_true
        return now if now_true else None


class _Change(_ChangeBase):
    """Means of the two windows (single values: windows of 1), kept as running sums."""

    __slots__ = ("current_sum", "prior_sum")

    def __init__(self, condition: MetricChange, current_n: int, prior_n: int) -> None:
        super().__init__(condition, current_n, prior_n)
        self.current_sum = 0.0
        self.prior_sum = 0.0

    def recount(self) -> None:
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
        return self.judge(self.current_sum / self.current_n, self.prior_sum / self.prior_n)


class _ChangeExtreme(_ChangeBase):
    """MAX or MIN of each window, kept up to date like :class:`_Extreme`: a
    window is rescanned only when the value leaving it was its extreme."""

    __slots__ = ("current_best", "pick", "prior_best")

    def __init__(self, condition: MetricChange, current_n: int, prior_n: int) -> None:
        super().__init__(condition, current_n, prior_n)
        self.pick = max if condition.agg is Agg.MAX else min
        self.current_best = math.nan
        self.prior_best = math.nan

    def recount(self) -> None:
        self.prior_best = self.pick(self.prior) if self.prior else math.nan
        self.current_best = self.pick(self.current) if self.current else math.nan

    def push(self, value: float) -> float | None:
        current, prior, pick = self.current, self.prior, self.pick
        moved = math.nan
        if len(current) == self.current_n:
            moved = current[0]  # leaves the current window, joins the prior one
            leaving = prior[0] if len(prior) == self.prior_n else math.nan
            prior.append(moved)
            best = self.prior_best
            if best != best or pick(moved, best) == moved:  # first value, or a new extreme
                best = moved
            elif leaving == best:
                best = pick(prior)
            self.prior_best = best
        current.append(value)
        best = self.current_best
        if best != best or pick(value, best) == value:
            best = value
        elif moved == best:
            best = pick(current)
        self.current_best = best
        if len(prior) < self.prior_n:
            return None
        return self.judge(best, self.prior_best)


class _ZScore(Evaluator):
    __slots__ = ("reached", "squares", "total", "values", "window")

    def __init__(self, condition: MetricZScore) -> None:
        super().__init__()
        self.window = condition.window
        self.values: deque[float] = deque(maxlen=condition.window)
        self.total = 0.0
        self.squares = 0.0
        self.reached = condition.direction.predicate(condition.threshold)

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


def evaluator_for(condition: MetricCondition) -> Evaluator:
    """A new evaluator for ``condition``, its window empty."""
    if isinstance(condition, MetricThreshold):
        if condition.agg is None:  # as in W&B, the window is ignored without an agg
            return _Latest(condition)
        return _Average(condition) if condition.agg is Agg.AVERAGE else _Extreme(condition)
    if isinstance(condition, MetricChange):
        if condition.agg is None:  # single values: the windows are ignored, as in W&B
            return _Change(condition, 1, 1)
        windows = condition.current_window, condition.prior_window
        if condition.agg is Agg.AVERAGE:
            return _Change(condition, *windows)
        return _ChangeExtreme(condition, *windows)
    return _ZScore(condition)


def as_number(value: object) -> float | None:
    """A metric value as a float for the windows, or None to ignore it: NaN,
    inf, bools, text. NumPy scalars are numbers too."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except Exception:  # an int beyond float range, a Real whose __float__ raises
        return None
    return number if math.isfinite(number) else None


def format_value(value: float) -> str:
    """``${metric_value}``: 15 significant digits, so a mean of 0.1s reads 0.1."""
    return repr(float(f"{value:.15g}"))
