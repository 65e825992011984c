"""Regexes from users, compiled once and refused when they could stall.

Python's ``re`` has no timeout, so a hostile filter such as ``(a+)+$`` could
hang ``handle()`` on the training hot path. We refuse the shapes that
backtrack exponentially (a quantified group that holds another quantifier or
an alternation) and match against at most :data:`MAX_SUBJECT` characters.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from hookwise.errors import ValidationError

with warnings.catch_warnings():  # sre_parse is deprecated as a name, not as a parser
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants
    import sre_parse

__all__ = ["MAX_PATTERN", "MAX_SUBJECT", "compile_pattern", "matches", "search"]

MAX_PATTERN = 256
MAX_SUBJECT = 1024

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
_POSSESSIVE = getattr(sre_constants, "POSSESSIVE_REPEAT", None)
if _POSSESSIVE is not None:  # 3.11+: possessive quantifiers never backtrack
    _REPEATS.add(_POSSESSIVE)


def compile_pattern(pattern: object, field: str) -> re.Pattern[str]:
    """Compile a user's regex or raise a ValidationError naming ``field``."""
    if not isinstance(pattern, str):
        raise ValidationError(field, f"must be a regex string, not {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN:
        raise ValidationError(field, f"regex is longer than {MAX_PATTERN} characters")
    try:
        compiled = re.compile(pattern)
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        raise ValidationError(field, f"invalid regex: {exc}") from None
    if _backtracks(list(tree.data), inside_repeat=False):
        raise ValidationError(
            field,
            "regex nests a quantifier or an alternation inside a quantified group, "
            "which can backtrack for ever; simplify it",
        )
    return compiled


def search(pattern: re.Pattern[str], subject: str) -> bool:
    return pattern.search(subject[:MAX_SUBJECT]) is not None


_COMPILED: dict[str, re.Pattern[str]] = {}


def matches(pattern: str | None, subject: str) -> bool:
    """Whether a filter's pattern (None: anything) is found in ``subject``.

    Filters are frozen and slotted and keep their pattern as text; the
    compiled form is shared here.
    """
    if pattern is None:
        return True
    compiled = _COMPILED.get(pattern)
    if compiled is None:
        compiled = _COMPILED[pattern] = compile_pattern(pattern, "event")
    return search(compiled, subject)


def _backtracks(items: list[tuple[Any, Any]], *, inside_repeat: bool) -> bool:
    for op, av in items:
        if op in _REPEATS:
            _min, high, sub = av
            repeats = high > 1 and op is not _POSSESSIVE
            if repeats and inside_repeat:
                return True
            if _backtracks(list(sub), inside_repeat=inside_repeat or repeats):
                return True
        elif op is sre_constants.BRANCH:
            if inside_repeat:
                return True
            if any(_backtracks(list(branch), inside_repeat=False) for branch in av[1]):
                return True
        elif op is sre_constants.SUBPATTERN:
            if _backtracks(list(av[-1]), inside_repeat=inside_repeat):
                return True
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT) and _backtracks(
            list(av[1]), inside_repeat=inside_repeat
        ):
            return True
    return False
