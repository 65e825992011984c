"""Metric conditions: what to watch in a run's logged values.

Plain validated values, apart from the windows that evaluate them
(:mod:`hookwise.evaluators`) and the filters that carry them
(:class:`~hookwise.filters.OnRunMetric`), so that storing or comparing a
condition needs none of the evaluation machinery. A condition fires on a
crossing: when it turns true for a run (its first evaluation counts), not on
every step it stays true.
"""

from __future__ import annotations

import enum
import math
import operator
import sys
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import attrs

from hookwise._values import plain_int, plain_number, plain_str
from hookwise.errors import ValidationError
from hookwise.events import EventType, check_label

__all__ = [
    "MAX_WINDOW",
    "Agg",
    "ChangeDir",
    "ChangeKind",
    "ChangeType",
    "Direction",
    "MetricChange",
    "MetricCondition",
    "MetricThreshold",
    "MetricZScore",
    "Op",
    "check_number",
]

MAX_WINDOW = 1000  # values kept per run and condition: memory stays flat


class Agg(str, enum.Enum):
    MAX = "MAX"
    MIN = "MIN"
    AVERAGE = "AVERAGE"
    AVG = "AVERAGE"  # noqa: PIE796  (W&B's short name: an alias, Agg.AVG is Agg.AVERAGE)


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
    RELATIVE = "RELATIVE"  # the change divided by the prior window's aggregate
    ABS = "ABSOLUTE"  # noqa: PIE796  (W&B's short names: aliases)
    REL = "RELATIVE"  # noqa: PIE796


class Direction(str, enum.Enum):
    INCREASE = "INCREASE"
    DECREASE = "DECREASE"
    ANY = "ANY"
    INC = "INCREASE"  # noqa: PIE796  (W&B's short names: aliases)
    DEC = "DECREASE"  # noqa: PIE796

    def predicate(self, amount: float) -> Callable[[float], bool]:
        """Whether a signed change (or score) goes ``amount`` far this way.

        The direction is decided here, once per condition; the function
        returned is what an evaluator calls on each value.
        """
        if self is Direction.INCREASE:
            return lambda delta: delta >= amount
        if self is Direction.DECREASE:
            return lambda delta: -delta >= amount
        return lambda delta: abs(delta) >= amount


ChangeType = ChangeKind
"""The W&B SDK's name for :class:`ChangeKind`."""

ChangeDir = Direction
"""The W&B SDK's name for :class:`Direction`."""


# -- validators and converters --------------------------------------------------


_FLOAT_MAX = int(sys.float_info.max)


def check_number(field: str, value: object) -> None:
    """Refuse anything but a finite int or float (bools included) for ``field``.

    An int beyond the float range counts as infinite: metric values are
    floats, and such an int cannot be stored as text (Python refuses ints of
    over 4300 digits)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
        or (isinstance(value, int) and not -_FLOAT_MAX <= int.__int__(value) <= _FLOAT_MAX)
    ):
        raise ValidationError(f"event.condition.{field}", "must be a finite number")


def _metric_name(_i: object, _a: object, value: Any) -> None:
    if isinstance(value, str):
        value = str.__str__(value)  # a str subclass's own methods do not run past here
    if not isinstance(value, str) or not value:
        raise ValidationError("event.condition.name", "must be a non-empty metric name")
    check_label("event.condition.name", value)


def _window(field: str) -> Callable[[object, object, Any], None]:
    def check(_i: object, _a: object, value: Any) -> None:
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 1 <= int.__int__(value) <= MAX_WINDOW  # never the value's own comparisons
        ):
            raise ValidationError(
                f"event.condition.{field}", f"must be an int from 1 to {MAX_WINDOW}"
            )

    return check


def _number(field: str) -> Callable[[object, object, Any], None]:
    def check(_i: object, _a: object, value: Any) -> None:
        check_number(field, value)

    return check


def _positive(field: str) -> Callable[[object, object, Any], None]:
    def check(_i: object, _a: object, value: Any) -> None:
        check_number(field, value)
        if not plain_number(value) > 0:
            raise ValidationError(f"event.condition.{field}", "must be positive")

    return check


_E = TypeVar("_E", bound=enum.Enum)


def _parse(cls: type[_E], field: str, value: Any) -> _E:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):  # every member is text: nothing else is looked up (hashed)
        text = str.__str__(value)  # a str subclass's own methods do not run past here
        if cls is not Op:
            text = text.strip().upper()
            member = cls.__members__.get(text)  # W&B's short names: AVG, ABS, REL, INC, DEC
            if member is not None:
                return member
        try:
            return cls(text)
        except ValueError:
            pass
    choices = ", ".join(str(m.value) for m in cls)
    raise ValidationError(f"event.condition.{field}", f"must be one of {choices}")


_SYMBOLS = {
    ">": Op.GT,
    ">=": Op.GTE,
    "<": Op.LT,
    "<=": Op.LTE,
    "==": Op.EQ,
    "!=": Op.NE,
    # the W&B SDK's (MongoDB) comparison keys, as its serialised filters carry them
    "$gt": Op.GT,
    "$gte": Op.GTE,
    "$lt": Op.LT,
    "$lte": Op.LTE,
    "$eq": Op.EQ,
    "$ne": Op.NE,
}


def _op(value: Op | str) -> Op:
    if isinstance(value, str) and not isinstance(value, Op):
        key = str.__str__(value).strip().lower()
        value = _SYMBOLS.get(key, key)
    return _parse(Op, "op", value)


def _agg(value: Agg | str | None) -> Agg | None:
    return None if value is None else _parse(Agg, "agg", value)


def _kind(value: ChangeKind | str) -> ChangeKind:
    return _parse(ChangeKind, "kind", value)


def _direction(value: Direction | str) -> Direction:
    return _parse(Direction, "direction", value)


# -- the conditions ---------------------------------------------------------------


@attrs.frozen(slots=True)
class MetricThreshold:
    """The aggregate of the last ``window`` values (or the newest, with no
    ``agg``) compares with ``threshold`` by ``op``. The window must be full.

    As in the W&B SDK (``MetricThresholdFilter``), ``window`` is ignored when
    ``agg`` is None: the newest value is compared.
    """

    event_type: ClassVar[EventType] = EventType.RUN_METRIC

    name: str = attrs.field(converter=plain_str, validator=_metric_name)
    threshold: float = attrs.field(converter=plain_number, validator=_number("threshold"))
    op: Op = attrs.field(default=Op.GT, converter=_op)
    agg: Agg | None = attrs.field(default=None, converter=_agg)
    window: int = attrs.field(default=1, converter=plain_int, validator=_window("window"))


def _prior_default(condition: MetricChange) -> int:
    return condition.current_window  # W&B: the prior window defaults to the current one's size


def _change_agg_default(condition: MetricChange) -> Agg | None:
    # Omitted: single values over windows of 1 (W&B's default), the mean over
    # longer windows (what every MetricChange meant before ``agg`` existed, so a
    # stored one without the field keeps its meaning).
    # exact ints only: this runs before the windows are validated
    current, prior = condition.current_window, condition.prior_window
    if type(current) is int and type(prior) is int and current == 1 and prior == 1:
        return None
    return Agg.AVERAGE


@attrs.frozen(slots=True, repr=False)
class MetricChange:
    """The aggregate (``agg``: MAX, MIN, AVERAGE) of the last ``current_window``
    values moved by at least ``amount`` against the same aggregate of the
    ``prior_window`` values just before them (consecutive, non-overlapping).

    With ``agg=None`` the windows are ignored, as in the W&B SDK
    (``MetricChangeFilter``): the newest value is compared with the one before.
    ``prior_window`` defaults to ``current_window``; ``agg``, when omitted, is
    None for windows of 1 and AVERAGE otherwise.
    """

    event_type: ClassVar[EventType] = EventType.RUN_METRIC_CHANGE

    name: str = attrs.field(converter=plain_str, validator=_metric_name)
    amount: float = attrs.field(converter=plain_number, validator=_positive("amount"))
    kind: ChangeKind = attrs.field(default=ChangeKind.ABSOLUTE, converter=_kind)
    direction: Direction = attrs.field(default=Direction.ANY, converter=_direction)
    current_window: int = attrs.field(
        default=1, converter=plain_int, validator=_window("current_window")
    )
    prior_window: int = attrs.field(
        default=attrs.Factory(_prior_default, takes_self=True),
        converter=plain_int,
        validator=_window("prior_window"),
    )
    agg: Agg | None = attrs.field(
        default=attrs.Factory(_change_agg_default, takes_self=True), converter=_agg
    )

    def __repr__(self) -> str:
        # The repr names a condition's saved run windows (see hookwise.index):
        # ``agg`` shows only where it differs from its default, so conditions
        # written before it existed keep their name and their saved windows.
        shown = [
            f"{field.name}={getattr(self, field.name)!r}"
            for field in attrs.fields(MetricChange)
            if field.name != "agg"
        ]
        if self.agg is not _change_agg_default(self):
            shown.append(f"agg={self.agg!r}")
        return f"MetricChange({', '.join(shown)})"


@attrs.frozen(slots=True)
class MetricZScore:
    """The newest value's z-score against the ``window`` values before it
    reaches ``threshold`` (a constant window has no z-score: never fires)."""

    event_type: ClassVar[EventType] = EventType.RUN_METRIC_ZSCORE

    name: str = attrs.field(converter=plain_str, validator=_metric_name)
    threshold: float = attrs.field(
        default=3.0, converter=plain_number, validator=_positive("threshold")
    )
    window: int = attrs.field(default=30, converter=plain_int, validator=_window("window"))
    direction: Direction = attrs.field(default=Direction.ANY, converter=_direction)

    def __attrs_post_init__(self) -> None:
        if self.window < 2:
            raise ValidationError(
                "event.condition.window", "a z-score needs a window of at least 2"
            )


MetricCondition = MetricThreshold | MetricChange | MetricZScore
