"""Reading values a user passed without running their own code.

Validators format and normalise input through these: a value's ``__repr__``,
``__str__``, ``__hash__`` or comparisons may raise or lie, so an error
message shows only what is safe to show (the repr of a plain, short value;
otherwise its type's name), and a kept ``str``, ``int`` or ``float``
subclass becomes the plain value its base type holds.
"""

from __future__ import annotations

from typing import Any

__all__ = ["describe", "plain_int", "plain_number", "plain_optional_str", "plain_str"]

_SHOWN_CHARS = 40
_SHOWN_INT = 10**18


def describe(value: object) -> str:
    """How an error message shows ``value``: the repr of None, a bool, a float,
    a plain int or a plain (shortened) str; the type's name for anything else."""
    kind = type(value)
    if value is None or kind is bool or kind is float:
        return repr(value)
    if kind is int and isinstance(value, int):
        return repr(value) if -_SHOWN_INT < value < _SHOWN_INT else "a very large int"
    if kind is str and isinstance(value, str):
        short = value if len(value) <= _SHOWN_CHARS else value[: _SHOWN_CHARS - 3] + "..."
        return repr(short)
    return kind.__name__


# Typed as the fields they convert, so that the constructors' signatures keep
# their types for type checkers; at run time any value passes through.


def plain_str(value: str) -> str:
    """A str subclass as a plain str (its own methods never run later); else as given."""
    return _plain_str(value)  # type: ignore[no-any-return]


def plain_optional_str(value: str | None) -> str | None:
    """:func:`plain_str` for a field that may be None."""
    return _plain_str(value)  # type: ignore[no-any-return]


def plain_int(value: int) -> int:
    """An int subclass (bool apart) as a plain int; else as given."""
    any_value: Any = value
    if type(any_value) is int or not isinstance(any_value, int) or isinstance(any_value, bool):
        return any_value
    return int.__int__(any_value)


def plain_number(value: float) -> float:
    """An int or float subclass (bool apart) as a plain int or float; else as given."""
    any_value: Any = value
    kind = type(any_value)
    if kind is int or kind is float or isinstance(any_value, bool):
        return any_value  # type: ignore[no-any-return]
    if isinstance(any_value, int):
        return int.__int__(any_value)
    if isinstance(any_value, float):
        return float.__float__(any_value)
    return any_value  # type: ignore[no-any-return]


def _plain_str(value: Any) -> Any:
    return str.__str__(value) if isinstance(value, str) and type(value) is not str else value
