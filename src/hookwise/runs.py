"""Run automations: metric conditions, run-state filters, and a builder.

The classes say *what* to watch; :mod:`hookwise.matching` keeps the windows
and says *when* it fires. A condition fires on a crossing: when it turns
true for a run (its first evaluation counts), not on every step it stays true.
"""

from __future__ import annotations

import datetime
import enum
import math
import operator
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar

import attrs

from hookwise.errors import ValidationError
from hookwise.events import Event, EventType, RunState, check_label
from hookwise.model import Filter, ScopeKind
from hookwise.patterns import compile_pattern, matches

__all__ = [
    "DEFAULT_COOLDOWN",
    "MAX_WINDOW",
    "Agg",
    "ChangeKind",
    "Direction",
    "MetricChange",
    "MetricCondition",
    "MetricThreshold",
    "MetricZScore",
    "OnRunMetric",
    "OnRunState",
    "Op",
    "RunFilter",
    "RunMetric",
]

DEFAULT_COOLDOWN = 24 * 3600.0
MAX_WINDOW = 1000  # values kept per run and condition: memory stays flat


class Agg(str, enum.Enum):
    MAX = "MAX"
    MIN = "MIN"
    AVERAGE = "AVERAGE"


class Op(str, enum.Enum):
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EQ = "eq"
    NE = "ne"

    @property
    def compare(self) -> Callable[[float, float], bool]:
        return _OPS[self]


_OPS: dict[Op, Callable[[float, float], bool]] = {
    Op.GT: operator.gt,
    Op.GTE: operator.ge,
    Op.LT: operator.lt,
    Op.LTE: operator.le,
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
}


class ChangeKind(str, enum.Enum):
    ABSOLUTE = "ABSOLUTE"
    RELATIVE = "RELATIVE"  # the change divided by the prior window's mean


class Direction(str, enum.Enum):
    INCREASE = "INCREASE"
    DECREASE = "DECREASE"
    ANY = "ANY"

    def reached(self, delta: float, amount: float) -> bool:
        if self is Direction.INCREASE:
            return delta >= amount
        if self is Direction.DECREASE:
            return -delta >= amount
        return abs(delta) >= amount


def _metric_name(_i: object, _a: object, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError("event.condition.name", "must be a non-empty metric name")
    check_label("event.condition.name", value)


def _window(field: str) -> Callable[[object, object, Any], None]:
    def check(_i: object, _a: object, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_WINDOW:
            raise ValidationError(
                f"event.condition.{field}", f"must be an int from 1 to {MAX_WINDOW}"
            )

    return check


def _number(field: str) -> Callable[[object, object, Any], None]:
    def check(_i: object, _a: object, value: Any) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value))
        ):
            raise ValidationError(f"event.condition.{field}", "must be a finite number")

    return check


def _positive(field: str) -> Callable[[object, object, Any], None]:
    number = _number(field)

    def check(_i: object, _a: object, value: Any) -> None:
        number(_i, _a, value)
        if not value > 0:
            raise ValidationError(f"event.condition.{field}", "must be positive")

    return check


_E = TypeVar("_E", bound=enum.Enum)


def _parse(cls: type[_E], field: str, value: Any) -> _E:
    try:
        return cls(value.upper() if isinstance(value, str) and cls is not Op else value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in cls)
        raise ValidationError(f"event.condition.{field}", f"must be one of {choices}") from None


_SYMBOLS = {">": Op.GT, ">=": Op.GTE, "<": Op.LT, "<=": Op.LTE, "==": Op.EQ, "!=": Op.NE}


def _op(value: Op | str) -> Op:
    if isinstance(value, str) and not isinstance(value, Op):
        value = _SYMBOLS.get(value.strip(), value.lower())
    return _parse(Op, "op", value)


def _agg(value: Agg | str | None) -> Agg | None:
    return None if value is None else _parse(Agg, "agg", value)


def _kind(value: ChangeKind | str) -> ChangeKind:
    return _parse(ChangeKind, "kind", value)


def _direction(value: Direction | str) -> Direction:
    return _parse(Direction, "direction", value)


@attrs.frozen(slots=True)
class MetricThreshold:
    """The aggregate of the last ``window`` values (or the newest, with no
    ``agg``) compares with ``threshold`` by ``op``. The window must be full."""

    event_type: ClassVar[EventType] = EventType.RUN_METRIC

    name: str = attrs.field(validator=_metric_name)
    threshold: float = attrs.field(validator=_number("threshold"))
    op: Op = attrs.field(default=Op.GT, converter=_op)
    agg: Agg | None = attrs.field(default=None, converter=_agg)
    window: int = attrs.field(default=1, validator=_window("window"))

    def __attrs_post_init__(self) -> None:
        if self.agg is None and self.window != 1:
            raise ValidationError(
                "event.condition.agg", "a window over 1 needs an agg: MAX, MIN or AVERAGE"
            )


@attrs.frozen(slots=True)
class MetricChange:
    """The mean of the last ``current_window`` values moved by at least
    ``amount`` against the mean of the ``prior_window`` values before them."""

    event_type: ClassVar[EventType] = EventType.RUN_METRIC_CHANGE

    name: str = attrs.field(validator=_metric_name)
    amount: float = attrs.field(validator=_positive("amount"))
    kind: ChangeKind = attrs.field(default=ChangeKind.ABSOLUTE, converter=_kind)
    direction: Direction = attrs.field(default=Direction.ANY, converter=_direction)
    current_window: int = attrs.field(default=10, validator=_window("current_window"))
    prior_window: int = attrs.field(default=50, validator=_window("prior_window"))


@attrs.frozen(slots=True)
class MetricZScore:
    """The newest value's z-score against the ``window`` values before it
    reaches ``threshold`` (a constant window has no z-score: never fires)."""

    event_type: ClassVar[EventType] = EventType.RUN_METRIC_ZSCORE

    name: str = attrs.field(validator=_metric_name)
    threshold: float = attrs.field(default=3.0, validator=_positive("threshold"))
    window: int = attrs.field(default=30, validator=_window("window"))
    direction: Direction = attrs.field(default=Direction.ANY, converter=_direction)

    def __attrs_post_init__(self) -> None:
        if self.window < 2:
            raise ValidationError(
                "event.condition.window", "a z-score needs a window of at least 2"
            )


MetricCondition = MetricThreshold | MetricChange | MetricZScore


def _cooldown(value: Any) -> float:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValidationError(
            "event.cooldown", "must be a non-negative number of seconds or a timedelta"
        )
    return float(value)


def _optional_regex(field: str) -> Callable[[object, object, Any], None]:
    def check(_i: object, _a: object, value: Any) -> None:
        if value is not None:
            compile_pattern(value, field)

    return check


def _optional_label(_i: object, _a: object, value: Any) -> None:
    if value is not None:
        check_label("event.user", value)


class RunFilter(Filter):
    """A filter on run events: optional run-name regex and user, and a cooldown
    (an automation fires at most once per run per cooldown)."""

    __slots__ = ()
    scopes: ClassVar[frozenset[ScopeKind]] = frozenset({ScopeKind.PROJECT})
    run_name: str | None
    user: str | None
    cooldown: float

    def covers_run(self, event: Event) -> bool:
        run = event.run
        if run is None:
            return False
        if self.user is not None and run.user != self.user:
            return False
        return matches(self.run_name, run.name)


def _condition(_i: object, _a: object, value: Any) -> None:
    if not isinstance(value, (MetricThreshold, MetricChange, MetricZScore)):
        raise ValidationError(
            "event.condition",
            f"must be MetricThreshold, MetricChange or MetricZScore, not {type(value).__name__}",
        )


@attrs.frozen(slots=True)
class OnRunMetric(RunFilter):
    """A metric condition, evaluated on each new value of the metric, per run."""

    condition: MetricCondition = attrs.field(validator=_condition)
    run_name: str | None = attrs.field(default=None, validator=_optional_regex("event.run_name"))
    user: str | None = attrs.field(default=None, validator=_optional_label)
    cooldown: float = attrs.field(default=DEFAULT_COOLDOWN, converter=_cooldown)

    @property  # per instance: the condition decides the event type it renders
    def event_type(self) -> EventType:  # type: ignore[override]
        return self.condition.event_type


def _states(value: Iterable[RunState | str] | RunState | str) -> frozenset[RunState]:
    if isinstance(value, (str, RunState)):
        value = (value,)
    try:
        states = frozenset(RunState(s) for s in value)
    except (TypeError, ValueError):
        raise ValidationError(
            "event.states", "must be RUNNING, FINISHED, FAILED (or CRASHED)"
        ) from None
    if not states:
        raise ValidationError("event.states", "must name at least one state")
    return states


@attrs.frozen(slots=True)
class OnRunState(RunFilter):
    """The run enters one of ``states`` (CRASHED counts as FAILED)."""

    event_type: ClassVar[EventType] = EventType.RUN_STATE

    states: frozenset[RunState] = attrs.field(
        default=frozenset({RunState.FAILED}), converter=_states
    )
    run_name: str | None = attrs.field(default=None, validator=_optional_regex("event.run_name"))
    user: str | None = attrs.field(default=None, validator=_optional_label)
    cooldown: float = attrs.field(default=DEFAULT_COOLDOWN, converter=_cooldown)


# -- the builder ------------------------------------------------------------


@attrs.frozen(slots=True)
class _Aggregate:
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
class _ZScore:
    name: str
    window: int
    direction: Direction = Direction.INCREASE

    def __abs__(self) -> _ZScore:
        return attrs.evolve(self, direction=Direction.ANY)

    def __ge__(self, threshold: float) -> MetricZScore:
        _number("threshold")(self, None, threshold)
        if self.direction is Direction.ANY or threshold >= 0:
            return MetricZScore(self.name, threshold, self.window, self.direction)
        raise ValidationError("event.condition.threshold", "use zscore(...) <= -t for a drop")

    def __le__(self, threshold: float) -> MetricZScore:
        _number("threshold")(self, None, threshold)
        if self.direction is Direction.ANY:
            raise ValidationError(
                "event.condition.threshold", "abs(zscore(...)) alerts on a large score: use >= t"
            )
        if threshold >= 0:
            raise ValidationError("event.condition.threshold", "use zscore(...) >= t for a rise")
        return MetricZScore(self.name, -threshold, self.window, Direction.DECREASE)


@attrs.frozen(slots=True)
class RunMetric(_Aggregate):
    """Reads like the W&B SDK: ``RunMetric("loss").avg(5) > 0.5``,
    ``RunMetric("acc").changes_by(0.1, direction="DECREASE")``,
    ``RunMetric("loss").zscore(30) >= 3``, ``abs(RunMetric("loss").zscore()) >= 3``."""

    agg: Agg | None = None
    window: int = 1

    def max(self, window: int) -> _Aggregate:
        return _Aggregate(self.name, Agg.MAX, window)

    def min(self, window: int) -> _Aggregate:
        return _Aggregate(self.name, Agg.MIN, window)

    def avg(self, window: int) -> _Aggregate:
        return _Aggregate(self.name, Agg.AVERAGE, window)

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

    def zscore(self, window: int = 30) -> _ZScore:
        return _ZScore(self.name, window)
