"""``RunMetric``: metric conditions written the way the W&B SDK spells them.

Sugar only: every expression here ends in a plain condition from
:mod:`hookwise.conditions`, which is what filters hold and storages keep.
Kept apart from the conditions so that SDK spellings can grow here without
touching what is stored.
"""

from __future__ import annotations

import attrs

from hookwise.conditions import (
    Agg,
    ChangeKind,
    Direction,
    MetricChange,
    MetricThreshold,
    MetricZScore,
    Op,
    check_number,
)
from hookwise.errors import ValidationError

__all__ = ["RunMetric"]


@attrs.frozen(slots=True)
class _AggregateBuilder:
    """A metric's newest value, or an aggregate of its last values, waiting
    for a comparison: ``RunMetric("loss").avg(5) > 0.5``."""

    name: str
    agg: Agg | None
    window: int

    def _threshold(self, op: Op, value: float) -> MetricThreshold:
        return MetricThreshold(self.name, value, op=op, agg=self.agg, window=self.window)

    def __gt__(self, value: float) -> MetricThreshold:
        return self._threshold(Op.GT, value)

    def __ge__(self, value: float) -> MetricThreshold:
        return self._threshold(Op.GTE, value)

    def __lt__(self, value: float) -> MetricThreshold:
        return self._threshold(Op.LT, value)

    def __le__(self, value: float) -> MetricThreshold:
        return self._threshold(Op.LTE, value)

    def eq(self, value: float) -> MetricThreshold:
        return self._threshold(Op.EQ, value)

    def ne(self, value: float) -> MetricThreshold:
        return self._threshold(Op.NE, value)


@attrs.frozen(slots=True)
class _ZScoreBuilder:
    """A metric's z-score waiting for a bound: ``RunMetric("loss").zscore(30) >= 3``,
    ``<= -3`` for a drop, ``abs(...) >= 3`` for either way."""

    name: str
    window: int
    direction: Direction = Direction.INCREASE

    def __abs__(self) -> _ZScoreBuilder:
        return attrs.evolve(self, direction=Direction.ANY)

    def __ge__(self, threshold: float) -> MetricZScore:
        check_number("threshold", threshold)
        if self.direction is Direction.ANY or threshold >= 0:
            return MetricZScore(self.name, threshold, self.window, self.direction)
        raise ValidationError("event.condition.threshold", "use zscore(...) <= -t for a drop")

    def __le__(self, threshold: float) -> MetricZScore:
        check_number("threshold", threshold)
        if self.direction is Direction.ANY:
            raise ValidationError(
                "event.condition.threshold", "abs(zscore(...)) alerts on a large score: use >= t"
            )
        if threshold >= 0:
            raise ValidationError("event.condition.threshold", "use zscore(...) >= t for a rise")
        return MetricZScore(self.name, -threshold, self.window, Direction.DECREASE)


@attrs.frozen(slots=True)
class RunMetric(_AggregateBuilder):
    """Reads like the W&B SDK: ``RunMetric("loss").avg(5) > 0.5``,
    ``RunMetric("acc").changes_by(0.1, direction="DECREASE")``,
    ``RunMetric("loss").zscore(30) >= 3``, ``abs(RunMetric("loss").zscore()) >= 3``."""

    agg: Agg | None = None
    window: int = 1

    def max(self, window: int) -> _AggregateBuilder:
        return _AggregateBuilder(self.name, Agg.MAX, window)

    def min(self, window: int) -> _AggregateBuilder:
        return _AggregateBuilder(self.name, Agg.MIN, window)

    def avg(self, window: int) -> _AggregateBuilder:
        return _AggregateBuilder(self.name, Agg.AVERAGE, window)

    mean = avg

    def changes_by(
        self,
        amount: float,
        *,
        kind: ChangeKind | str = ChangeKind.ABSOLUTE,
        direction: Direction | str = Direction.ANY,
        current_window: int = 10,
        prior_window: int = 50,
    ) -> MetricChange:
        return MetricChange(
            self.name,
            amount,
            kind,
            direction,
            current_window,
            prior_window,
        )

    def zscore(self, window: int = 30) -> _ZScoreBuilder:
        return _ZScoreBuilder(self.name, window)
