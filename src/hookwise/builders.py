"""``RunMetric``: metric conditions written the way the W&B SDK spells them.

Sugar only: every expression here ends in a plain condition from
:mod:`hookwise.conditions`, which is what filters hold and storages keep.
Kept apart from the conditions so that SDK spellings can grow here without
touching what is stored.

The spellings and their defaults follow the W&B SDK's ``wandb.automations``
(``RunEvent.metric(name)``, ``MetricVal``, ``MetricAgg``, the z-score operand):
``.gt/.gte/.lt/.lte`` and ``> >= < <=`` on a metric or an aggregate,
``changes_by/increases_by/decreases_by(diff=|frac=)`` over windows of 1 (or
the aggregate's window), ``zscore(w) > 3``, ``< -3`` and ``.abs() > 3``.
"""

from __future__ import annotations

import attrs

from hookwise._values import plain_number
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


def _amount(
    amount: float | None, diff: float | None, frac: float | None
) -> tuple[float, ChangeKind | None]:
    """The amount of a change, from hookwise's positional ``amount`` or W&B's
    ``diff=`` / ``frac=``, and the kind that ``diff=`` (ABSOLUTE) or ``frac=``
    (RELATIVE) implies (None for ``amount``: ``kind=`` decides)."""
    given = [
        (field, value)
        for field, value in (("amount", amount), ("diff", diff), ("frac", frac))
        if value is not None
    ]
    if len(given) != 1:
        field = "frac" if frac is not None else "diff"
        raise ValidationError(
            f"event.condition.{field}",
            "give exactly one of diff= (an absolute change) or frac= (a relative one)",
        )
    field, value = given[0]
    check_number(field, value)
    value = plain_number(value)  # a number subclass's own comparisons never run
    if not value > 0:
        raise ValidationError(f"event.condition.{field}", "must be positive")
    if field == "amount":
        return value, None
    return value, ChangeKind.ABSOLUTE if field == "diff" else ChangeKind.RELATIVE


@attrs.frozen(slots=True)
class _AggregateBuilder:
    """A metric's newest value, or an aggregate of its last values, waiting
    for a comparison (``RunMetric("loss").avg(5) > 0.5``, ``.gt(0.5)``) or a
    change (``RunMetric("loss").max(5).changes_by(diff=1)``)."""

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

    def gt(self, value: float, /) -> MetricThreshold:
        return self._threshold(Op.GT, value)

    def gte(self, value: float, /) -> MetricThreshold:
        return self._threshold(Op.GTE, value)

    def lt(self, value: float, /) -> MetricThreshold:
        return self._threshold(Op.LT, value)

    def lte(self, value: float, /) -> MetricThreshold:
        return self._threshold(Op.LTE, value)

    def eq(self, value: float, /) -> MetricThreshold:
        return self._threshold(Op.EQ, value)

    def ne(self, value: float, /) -> MetricThreshold:
        return self._threshold(Op.NE, value)

    def changes_by(
        self,
        amount: float | None = None,
        *,
        diff: float | None = None,
        frac: float | None = None,
        kind: ChangeKind | str | None = None,
        direction: Direction | str = Direction.ANY,
        current_window: int | None = None,
        prior_window: int | None = None,
    ) -> MetricChange:
        """A change either way: ``changes_by(diff=1)`` (ABSOLUTE) or
        ``changes_by(frac=0.25)`` (RELATIVE: 25 % of the prior value).

        As in W&B, the windows are 1 (the aggregate's window on ``.max(w)``,
        ``.min(w)``, ``.avg(w)``) and the prior window is the current one's
        size. ``changes_by(0.25)`` is hookwise's older spelling of
        ``diff=0.25`` (``kind="RELATIVE"`` makes it a fraction); ``direction=``,
        ``current_window=`` and ``prior_window=`` are hookwise's own.
        """
        value, implied = _amount(amount, diff, frac)
        stated = kind if kind is not None else implied or ChangeKind.ABSOLUTE
        current = self.window if current_window is None else current_window
        prior = current if prior_window is None else prior_window
        if self.agg is None:
            # single values over windows of 1; longer windows mean their averages
            condition = MetricChange(self.name, value, stated, direction, current, prior)
        else:
            condition = MetricChange(self.name, value, stated, direction, current, prior, self.agg)
        if implied is not None and condition.kind is not implied:
            raise ValidationError(
                "event.condition.kind",
                f"{'diff' if diff is not None else 'frac'}= is a {implied.value} change; "
                "drop kind=",
            )
        return condition

    def increases_by(
        self,
        amount: float | None = None,
        *,
        diff: float | None = None,
        frac: float | None = None,
        kind: ChangeKind | str | None = None,
        current_window: int | None = None,
        prior_window: int | None = None,
    ) -> MetricChange:
        """``changes_by`` upwards only (``direction="INCREASE"``)."""
        return self.changes_by(
            amount,
            diff=diff,
            frac=frac,
            kind=kind,
            direction=Direction.INCREASE,
            current_window=current_window,
            prior_window=prior_window,
        )

    def decreases_by(
        self,
        amount: float | None = None,
        *,
        diff: float | None = None,
        frac: float | None = None,
        kind: ChangeKind | str | None = None,
        current_window: int | None = None,
        prior_window: int | None = None,
    ) -> MetricChange:
        """``changes_by`` downwards only (``direction="DECREASE"``)."""
        return self.changes_by(
            amount,
            diff=diff,
            frac=frac,
            kind=kind,
            direction=Direction.DECREASE,
            current_window=current_window,
            prior_window=prior_window,
        )


@attrs.frozen(slots=True)
class _ZScoreBuilder:
    """A metric's z-score waiting for a bound, as in W&B:
    ``RunMetric("loss").zscore(30) > 3`` for a jump up, ``< -3`` for a drop,
    ``.abs() > 3`` (or ``abs(...)``) for either way.

    As in W&B, ``>`` and ``>=`` mean the same (and ``<``, ``<=``): the score
    is compared inclusively, so a score of exactly 3 counts.
    """

    name: str
    window: int
    direction: Direction = Direction.INCREASE

    def abs(self) -> _ZScoreBuilder:
        return attrs.evolve(self, direction=Direction.ANY)

    __abs__ = abs

    def gt(self, threshold: float, /) -> MetricZScore:
        check_number("threshold", threshold)
        threshold = plain_number(threshold)  # a number subclass's own comparisons never run
        if self.direction is Direction.ANY or threshold >= 0:
            return MetricZScore(self.name, threshold, self.window, self.direction)
        raise ValidationError("event.condition.threshold", "use zscore(...) < -t for a drop")

    def lt(self, threshold: float, /) -> MetricZScore:
        check_number("threshold", threshold)
        threshold = plain_number(threshold)  # a number subclass's own comparisons never run
        if self.direction is Direction.ANY:
            raise ValidationError(
                "event.condition.threshold", "abs(zscore(...)) alerts on a large score: use > t"
            )
        if threshold >= 0:
            raise ValidationError("event.condition.threshold", "use zscore(...) > t for a rise")
        return MetricZScore(self.name, -threshold, self.window, Direction.DECREASE)

    gte = gt
    lte = lt

    def __gt__(self, threshold: float) -> MetricZScore:
        return self.gt(threshold)

    def __ge__(self, threshold: float) -> MetricZScore:
        return self.gt(threshold)

    def __lt__(self, threshold: float) -> MetricZScore:
        return self.lt(threshold)

    def __le__(self, threshold: float) -> MetricZScore:
        return self.lt(threshold)


@attrs.frozen(slots=True)
class RunMetric(_AggregateBuilder):
    """Reads like the W&B SDK's ``RunEvent.metric(name)``:
    ``RunMetric("loss").avg(5) > 0.5``, ``RunMetric("loss").gt(0.5)``,
    ``RunMetric("acc").decreases_by(frac=0.1)``,
    ``RunMetric("loss").max(5).changes_by(diff=1)``,
    ``RunMetric("loss").zscore(30) > 3``, ``RunMetric("loss").zscore(30).abs() > 3``."""

    agg: Agg | None = None
    window: int = 1

    def max(self, window: int) -> _AggregateBuilder:
        return _AggregateBuilder(self.name, Agg.MAX, window)

    def min(self, window: int) -> _AggregateBuilder:
        return _AggregateBuilder(self.name, Agg.MIN, window)

    def avg(self, window: int) -> _AggregateBuilder:
        return _AggregateBuilder(self.name, Agg.AVERAGE, window)

    mean = avg
    average = avg

    def zscore(self, window: int = 30) -> _ZScoreBuilder:
        return _ZScoreBuilder(self.name, window)
