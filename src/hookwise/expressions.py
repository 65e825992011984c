"""Filter expressions over an event's alias, tag, run name and run user.

The W&B SDK writes an automation's optional conditions as expressions on a
few event fields, combined with ``&``, ``|`` and ``~``::

    ArtifactEvent.alias == "production"
    ArtifactEvent.alias.matches_regex(r"^prod") & ~ArtifactEvent.tag.in_(["wip"])
    RunEvent.name.contains("sweep")

and sends them as MongoDB-style JSON: ``{"alias": {"$eq": "production"}}``,
``{"$and": [...]}``, ``{"$or": [...]}``, ``{"$nor": [...]}``, ``{"$not": ...}``
with the field operators ``$eq $ne $regex $contains $in $nin $exists``.
This module builds the same expressions, tests them against an
:class:`~hookwise.events.Event`, and reads and writes that JSON
(:meth:`Expression.to_json`, :func:`expression_from_json`), so storage and
an importer of W&B exports share one form.

Semantics follow MongoDB, where an event without the field (an alias event
has no tag; ``""`` counts as absent) matches ``$ne``, ``$nin`` and
``$exists: false`` but never ``$eq``, ``$in``, ``$regex`` or ``$contains``.
A ``$regex`` is searched for (not anchored: write ``^prod$`` for an exact
match), compiled when the expression is built, and goes through the ReDoS
guard of :mod:`hookwise.patterns`; a bad one is a ``ValidationError``
naming the field.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from hookwise._values import describe
from hookwise.errors import ValidationError
from hookwise.events import MAX_LABEL, Event
from hookwise.patterns import compile_pattern, matches

__all__ = [
    "ARTIFACT_FIELDS",
    "RUN_FIELDS",
    "And",
    "ArtifactEvent",
    "Compare",
    "Expression",
    "FilterField",
    "Nor",
    "Not",
    "Operator",
    "Or",
    "RunEvent",
    "check_fields",
    "expression_from_json",
    "to_expression",
]

MAX_ITEMS = 256
"""Most values in an ``$in`` / ``$nin`` list, and operands of one ``$and``/``$or``."""
MAX_DEPTH = 16
"""Deepest nesting of ``$and``/``$or``/``$nor``/``$not`` a stored expression may have."""


class Operator(str, enum.Enum):
    """The field operators, named by their JSON keys."""

    EQ = "$eq"
    NE = "$ne"
    REGEX = "$regex"
    CONTAINS = "$contains"
    IN = "$in"
    NIN = "$nin"
    EXISTS = "$exists"


# JSON name -> how to read it from an event. "display_name" is what W&B
# filters a run's name on (RunEvent.name serialises to it); "name" reads too.
_READERS: dict[str, Callable[[Event], str]] = {
    "alias": lambda e: e.alias,
    "tag": lambda e: e.tag,
    "display_name": lambda e: e.run.name if e.run is not None else "",
    "user": lambda e: e.run.user if e.run is not None else "",
}
_SPELLINGS = {"name": "display_name", "run_name": "display_name", "username": "user"}
ARTIFACT_FIELDS = frozenset({"alias", "tag"})
RUN_FIELDS = frozenset({"display_name", "user"})


def _field_name(value: object, where: str) -> str:
    if isinstance(value, str):
        value = str.__str__(value)  # a str subclass's own methods do not run past here
        name = _SPELLINGS.get(value, value)
        if name in _READERS:
            return name
    known = ", ".join(sorted(_READERS))
    raise ValidationError(where, f"cannot filter on {describe(value)}: the fields are {known}")


class Expression:
    """A condition on an event. Combine with ``&`` (and), ``|`` (or), ``~`` (not)."""

    __slots__ = ()

    def evaluate(self, event: Event) -> bool:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """The MongoDB-style JSON W&B writes: ``{"alias": {"$regex": "^prod"}}``."""
        raise NotImplementedError

    def fields(self) -> frozenset[str]:
        """The event fields this expression reads (JSON names)."""
        raise NotImplementedError

    def __and__(self, other: object) -> Expression:
        if not isinstance(other, Expression):
            return NotImplemented
        return And((*_operands(self, And), *_operands(other, And)))

    def __or__(self, other: object) -> Expression:
        if not isinstance(other, Expression):
            return NotImplemented
        return Or((*_operands(self, Or), *_operands(other, Or)))

    def __invert__(self) -> Expression:
        return Not(self)


def _operands(expression: Expression, kind: type[And] | type[Or]) -> tuple[Expression, ...]:
    """Flatten ``(a & b) & c`` into one ``$and`` of three, as W&B does."""
    return expression.items if isinstance(expression, kind) else (expression,)


def _value(op: Operator, value: Any, where: str) -> Any:
    """Check an operand; lists become tuples so expressions stay hashable."""
    if op is Operator.EXISTS:
        if not isinstance(value, bool):
            raise ValidationError(where, f"{op.value} takes true or false, not {describe(value)}")
        return value
    if op in (Operator.IN, Operator.NIN):
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise ValidationError(
                where, f"{op.value} takes a list of strings, not {describe(value)}"
            )
        items = _read_items(value, where, limit=MAX_ITEMS)
        if len(items) > MAX_ITEMS:
            raise ValidationError(where, f"{op.value} takes at most {MAX_ITEMS} values")
        return tuple(_string(op, item, where) for item in items)
    value = _string(op, value, where)
    if op is Operator.REGEX:
        compile_pattern(value, where)
    return value


def _string(op: Operator, value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(where, f"{op.value} takes a string, not {describe(value)}")
    value = str.__str__(value)  # a str subclass's own methods do not run past here
    if len(value) > MAX_LABEL:
        raise ValidationError(where, f"{op.value} takes at most {MAX_LABEL} characters")
    return value


def _read_items(value: Iterable[Any], where: str, *, limit: int) -> list[Any]:
    """Up to ``limit + 1`` items of an iterable (the caller refuses more): an
    iterable that raises is a ValidationError, and an endless one is not read
    to its end."""
    try:
        return list(itertools.islice(value, limit + 1))
    except Exception as exc:
        raise ValidationError(where, f"could not be read ({type(exc).__name__})") from None


def _read_mapping(value: Mapping[Any, Any], where: str) -> list[tuple[Any, Any]]:
    """A mapping's items, read once: a mapping whose own methods raise is a
    ValidationError, never its exception."""
    try:
        return list(itertools.islice(value.items(), MAX_ITEMS + 1))
    except Exception as exc:
        raise ValidationError(where, f"could not be read ({type(exc).__name__})") from None


def _operator(value: object, where: str) -> Operator:
    if isinstance(value, Operator):
        return value
    if isinstance(value, str):  # every operator is text: nothing else is looked up (hashed)
        try:
            return Operator(str.__str__(value))
        except ValueError:
            pass
    known = " ".join(op.value for op in Operator)
    raise ValidationError(where, f"unknown operator {describe(value)} (known: {known})")


@attrs.frozen(slots=True)
class Compare(Expression):
    """One field against one operator: ``{"alias": {"$eq": "production"}}``."""

    field: str = attrs.field()
    op: Operator = attrs.field()
    value: Any = attrs.field()

    def __attrs_post_init__(self) -> None:
        field = _field_name(self.field, "event.filter")
        op = _operator(self.op, f"event.filter.{field}")
        object.__setattr__(self, "field", field)
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "value", _value(op, self.value, f"event.filter.{field}"))

    def evaluate(self, event: Event) -> bool:
        subject = _READERS[self.field](event)
        op, value = self.op, self.value
        if op is Operator.EQ:
            return bool(subject) and subject == value
        if op is Operator.NE:
            return not subject or subject != value
        if op is Operator.REGEX:
            return bool(subject) and matches(value, subject)
        if op is Operator.CONTAINS:
            return bool(subject) and value in subject
        if op is Operator.IN:
            return bool(subject) and subject in value
        if op is Operator.NIN:
            return not subject or subject not in value
        return bool(subject) is value  # EXISTS

    def to_json(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {self.field: {self.op.value: value}}

    def fields(self) -> frozenset[str]:
        return frozenset({self.field})

    def __invert__(self) -> Expression:
        # the complement W&B's own operators give (~Eq is Ne, ~In is NotIn);
        # equal under MongoDB's rules for absent fields, and reads better
        flipped = _FLIPS.get(self.op)
        if flipped is not None:
            return Compare(self.field, flipped, self.value)
        if self.op is Operator.EXISTS:
            return Compare(self.field, self.op, not self.value)
        return Not(self)


_FLIPS = {
    Operator.EQ: Operator.NE,
    Operator.NE: Operator.EQ,
    Operator.IN: Operator.NIN,
    Operator.NIN: Operator.IN,
}


def _items(value: Iterable[Expression]) -> tuple[Expression, ...]:
    items = tuple(_read_items(value, "event.filter", limit=MAX_ITEMS))
    for item in items:
        if not isinstance(item, Expression):
            raise ValidationError(
                "event.filter", f"expected a filter expression, not {describe(item)}"
            )
    if len(items) > MAX_ITEMS:
        raise ValidationError("event.filter", f"at most {MAX_ITEMS} operands")
    return items


@attrs.frozen(slots=True)
class And(Expression):
    """Every operand holds: ``{"$and": [...]}``; no operands: always true."""

    items: tuple[Expression, ...] = attrs.field(converter=_items)

    def evaluate(self, event: Event) -> bool:
        return all(item.evaluate(event) for item in self.items)

    def to_json(self) -> dict[str, Any]:
        return {"$and": [item.to_json() for item in self.items]}

    def fields(self) -> frozenset[str]:
        return frozenset(name for item in self.items for name in item.fields())


@attrs.frozen(slots=True)
class Or(Expression):
    """At least one operand holds: ``{"$or": [...]}``."""

    items: tuple[Expression, ...] = attrs.field(converter=_items)

    def evaluate(self, event: Event) -> bool:
        return any(item.evaluate(event) for item in self.items)

    def to_json(self) -> dict[str, Any]:
        return {"$or": [item.to_json() for item in self.items]}

    def fields(self) -> frozenset[str]:
        return frozenset(name for item in self.items for name in item.fields())

    def __invert__(self) -> Expression:
        return Nor(self.items)


@attrs.frozen(slots=True)
class Nor(Expression):
    """No operand holds: ``{"$nor": [...]}``."""

    items: tuple[Expression, ...] = attrs.field(converter=_items)

    def evaluate(self, event: Event) -> bool:
        return not any(item.evaluate(event) for item in self.items)

    def to_json(self) -> dict[str, Any]:
        return {"$nor": [item.to_json() for item in self.items]}

    def fields(self) -> frozenset[str]:
        return frozenset(name for item in self.items for name in item.fields())

    def __invert__(self) -> Expression:
        return Or(self.items)


def _one(value: object) -> Expression:
    if not isinstance(value, Expression):
        raise ValidationError(
            "event.filter", f"expected a filter expression, not {describe(value)}"
        )
    return value


@attrs.frozen(slots=True)
class Not(Expression):
    """The operand does not hold: ``{"$not": ...}``."""

    item: Expression = attrs.field(converter=_one)

    def evaluate(self, event: Event) -> bool:
        return not self.item.evaluate(event)

    def to_json(self) -> dict[str, Any]:
        return {"$not": self.item.to_json()}

    def fields(self) -> frozenset[str]:
        return self.item.fields()

    def __invert__(self) -> Expression:
        return self.item


class FilterField:
    """A field to build expressions on: ``ArtifactEvent.alias == "prod"``.

    Comparison operators build expressions (as in the W&B SDK, SQLAlchemy
    or polars), so a field is not hashable and ``==`` never returns a bool.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = _field_name(name, "field")

    def __repr__(self) -> str:
        return f"FilterField({self.name!r})"

    def _compare(self, op: Operator, value: object) -> Compare:
        return Compare(self.name, op, value)

    def eq(self, value: str, /) -> Compare:
        """Equal to ``value``: ``{"$eq": value}``."""
        return self._compare(Operator.EQ, value)

    def ne(self, value: str, /) -> Compare:
        """Absent, or not equal to ``value``: ``{"$ne": value}``."""
        return self._compare(Operator.NE, value)

    def matches_regex(self, pattern: str, /) -> Compare:
        """``pattern`` is found in the field (``re.search``): ``{"$regex": pattern}``."""
        return self._compare(Operator.REGEX, pattern)

    regex = matches_regex
    matches = matches_regex

    def contains(self, text: str, /) -> Compare:
        """``text`` is a substring of the field: ``{"$contains": text}``."""
        return self._compare(Operator.CONTAINS, text)

    def in_(self, values: Iterable[str], /) -> Compare:
        """Equal to one of ``values``: ``{"$in": [...]}``."""
        return self._compare(Operator.IN, values)

    def not_in(self, values: Iterable[str], /) -> Compare:
        """Absent, or equal to none of ``values``: ``{"$nin": [...]}``."""
        return self._compare(Operator.NIN, values)

    def exists(self, exists: bool = True, /) -> Compare:
        """The event has (or, with False, lacks) this field: ``{"$exists": exists}``."""
        return self._compare(Operator.EXISTS, exists)

    def __eq__(self, other: object) -> Compare:  # type: ignore[override]
        return self.eq(other)  # type: ignore[arg-type]  # Compare checks the type

    def __ne__(self, other: object) -> Compare:  # type: ignore[override]
        return self.ne(other)  # type: ignore[arg-type]

    __hash__ = None  # type: ignore[assignment]


class ArtifactEvent:
    """The artifact event fields an automation can filter on (W&B's names)."""

    alias = FilterField("alias")
    tag = FilterField("tag")


class RunEvent:
    """The run fields a run automation can filter on. ``name`` is W&B's
    ``RunEvent.name`` (stored as ``display_name``, as W&B does); ``user``
    is hookwise's."""

    name = FilterField("display_name")
    user = FilterField("user")


# -- JSON ----------------------------------------------------------------------


_LOGICAL = {"$and": And, "$or": Or, "$nor": Nor}


def expression_from_json(document: object, *, where: str = "event.filter") -> Expression:
    """Read the MongoDB-style JSON W&B writes (and :meth:`Expression.to_json`).

    Accepts what the W&B SDK sends: the wrapping ``{"$or": [{"$and": [...]}]}``
    of artifact event filters, a field with several operators (all must
    hold), a plain value (``{"alias": "prod"}`` is ``$eq``), and a field-level
    ``$not`` (``{"alias": {"$not": {"$regex": "^tmp"}}}``). Anything else, an
    unknown field or operator, or a bad regex, is a ``ValidationError``.
    """
    return _simplify(_parse(document, where, 0))


def _parse(document: object, where: str, depth: int) -> Expression:
    if depth > MAX_DEPTH:
        raise ValidationError(where, f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(document, Mapping):
        raise ValidationError(where, f"expected a JSON object, not {describe(document)}")
    entries = _read_mapping(document, where)
    if not entries:
        return And(())  # MongoDB's {} matches everything
    if len(entries) > MAX_ITEMS:
        raise ValidationError(where, f"at most {MAX_ITEMS} keys")
    parts: list[Expression] = []
    for key, value in entries:
        if not isinstance(key, str):  # no key but text is looked up (hashed) or compared
            parts.append(_parse_field(_field_name(key, where), value, where, depth))
            continue
        key = str.__str__(key)  # a str subclass's own methods do not run past here
        if key in _LOGICAL:
            if not isinstance(value, list):
                raise ValidationError(where, f"{key} takes a list, not {describe(value)}")
            operands = _read_items(value, where, limit=MAX_ITEMS)
            if len(operands) > MAX_ITEMS:
                raise ValidationError(where, f"{key} takes at most {MAX_ITEMS} operands")
            parts.append(_LOGICAL[key](_parse(item, where, depth + 1) for item in operands))
        elif key == "$not":
            parts.append(Not(_parse(value, where, depth + 1)))
        elif key.startswith("$"):
            raise ValidationError(where, f"unknown operator {describe(key)}")
        else:
            parts.append(_parse_field(_field_name(key, where), value, where, depth))
    return parts[0] if len(parts) == 1 else And(parts)


def _parse_field(field: str, value: object, where: str, depth: int) -> Expression:
    at = f"{where}.{field}"
    if depth > MAX_DEPTH:
        raise ValidationError(at, f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(value, Mapping):
        return Compare(field, Operator.EQ, value)  # MongoDB's shorthand for $eq
    entries = _read_mapping(value, at)
    if not entries:
        raise ValidationError(at, "expected at least one operator")
    if len(entries) > MAX_ITEMS:
        raise ValidationError(at, f"at most {MAX_ITEMS} operators")
    parts: list[Expression] = []
    for key, operand in entries:
        if isinstance(key, str) and str.__str__(key) == "$not":
            parts.append(Not(_parse_field(field, operand, where, depth + 1)))
        else:
            parts.append(Compare(field, _operator(key, at), operand))
    return parts[0] if len(parts) == 1 else And(parts)


def _simplify(expression: Expression) -> Expression:
    """Unwrap what W&B's SDK wraps: one-operand ``$and``/``$or``, nested
    ``$and`` in ``$and``, ``$not`` of ``$not``."""
    if isinstance(expression, (And, Or)):
        items = tuple(_simplify(item) for item in expression.items)
        if len(items) == 1:
            return items[0]
        kind = type(expression)
        flat: list[Expression] = []
        for item in items:
            flat.extend(item.items if isinstance(item, kind) else (item,))
        return kind(flat)
    if isinstance(expression, Nor):
        return Nor(_simplify(item) for item in expression.items)
    if isinstance(expression, Not):
        inner = _simplify(expression.item)
        return inner.item if isinstance(inner, Not) else Not(inner)
    return expression


def to_expression(value: object) -> Expression | None:
    """An attrs converter for a filter's ``filter=``: an expression, its JSON
    (a mapping), or None. An empty ``$and`` (W&B's "no filter") is None."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = expression_from_json(value)
    if not isinstance(value, Expression):
        raise ValidationError(
            "event.filter",
            "must be a filter expression such as ArtifactEvent.alias == 'production', "
            f"or its JSON; not {type(value).__name__}",
        )
    expression = _simplify(value)
    if isinstance(expression, And) and not expression.items:
        return None
    return expression


def check_fields(expression: Expression | None, allowed: frozenset[str], what: str) -> None:
    """Refuse an expression that reads a field this kind of event lacks
    (a run name on an artifact event would never match)."""
    if expression is None:
        return
    wrong = sorted(expression.fields() - allowed)
    if wrong:
        raise ValidationError(
            "event.filter",
            f"{what} filters can test {', '.join(sorted(allowed))}, not {', '.join(wrong)}",
        )
