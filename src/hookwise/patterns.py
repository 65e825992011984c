"""Regexes from users, compiled once and refused when they could stall.

Python's ``re`` has no timeout, so a hostile filter such as ``(a+)+$`` could
hang ``handle()`` on the training hot path. We refuse the shapes that
backtrack exponentially (a quantified group that holds another quantifier or
an alternation, atomic and conditional groups included) and those that
backtrack polynomially (more than :data:`MAX_CHAIN` quantifiers in a row that
can trade characters, such as ``a*a*a*b`` or ``.*a.*a.*b``), and match
against at most :data:`MAX_SUBJECT` characters.
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

__all__ = ["MAX_CHAIN", "MAX_PATTERN", "MAX_SUBJECT", "compile_pattern", "matches", "search"]

MAX_PATTERN = 256
MAX_SUBJECT = 256
"""Characters of a subject a regex sees: the longest alias, tag or run name
an event carries (``events.MAX_LABEL``). Two quantifiers that trade
characters cost about ``MAX_SUBJECT ** 3`` steps at worst: milliseconds."""
MAX_CHAIN = 2
"""Most quantifiers in a row that may compete for the same characters."""

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
_POSSESSIVE = getattr(sre_constants, "POSSESSIVE_REPEAT", None)
if _POSSESSIVE is not None:  # 3.11+: possessive quantifiers never backtrack
    _REPEATS.add(_POSSESSIVE)


def compile_pattern(pattern: object, field: str) -> re.Pattern[str]:
    """Compile a user's regex or raise a ValidationError naming ``field``."""
    if not isinstance(pattern, str):
        raise ValidationError(field, f"must be a regex string, not {type(pattern).__name__}")
    pattern = str.__str__(pattern)  # a str subclass's own methods do not run past here
    if len(pattern) > MAX_PATTERN:
        raise ValidationError(field, f"regex is longer than {MAX_PATTERN} characters")
    try:
        compiled = re.compile(pattern)
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        raise ValidationError(field, f"invalid regex: {exc}") from None
    except (OverflowError, RecursionError) as exc:  # a{99999999999}: a count beyond re's
        raise ValidationError(field, f"invalid regex ({type(exc).__name__})") from None
    if _backtracks(list(tree.data), inside_repeat=False):
        raise ValidationError(
            field,
            "regex nests a quantifier or an alternation inside a quantified group, "
            "which can backtrack for ever; simplify it",
        )
    chain = _longest_chain(tree, ignorecase=bool(compiled.flags & re.IGNORECASE))
    if chain > MAX_CHAIN:
        raise ValidationError(
            field,
            f"regex has {chain} quantifiers in a row that can match the same characters "
            "(like a*a*a*b or .*a.*a.*b), which can backtrack for minutes; simplify it",
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
        elif op is sre_constants.GROUPREF_EXISTS:  # (?(1)yes|no) is an alternation
            if inside_repeat:
                return True
            if any(_backtracks(list(branch), inside_repeat=False) for branch in av[1:] if branch):
                return True
        elif op in _GROUPS and any(
            _backtracks(list(sub), inside_repeat=inside_repeat) for sub in _children(op, av)
        ):
            return True
    return False


# -- polynomial backtracking: quantifiers in a row that trade characters --------

_ATOMIC = getattr(sre_constants, "ATOMIC_GROUP", None)
_GROUPS = {sre_constants.SUBPATTERN, sre_constants.ASSERT, sre_constants.ASSERT_NOT}
if _ATOMIC is not None:  # 3.11+: (?>...) commits once matched, but backtracks inside
    _GROUPS.add(_ATOMIC)
_SINGLE = {sre_constants.LITERAL, sre_constants.NOT_LITERAL, sre_constants.ANY, sre_constants.IN}
_CATEGORIES = {
    sre_constants.CATEGORY_DIGIT: re.compile(r"\d"),
    sre_constants.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
    sre_constants.CATEGORY_SPACE: re.compile(r"\s"),
    sre_constants.CATEGORY_NOT_SPACE: re.compile(r"\S"),
    sre_constants.CATEGORY_WORD: re.compile(r"\w"),
    sre_constants.CATEGORY_NOT_WORD: re.compile(r"\W"),
}
# Characters tried when asking whether two classes overlap: Latin, a few of
# other scripts, digits and spaces beyond ASCII; each pattern adds its own.
_SAMPLE = frozenset(map(chr, range(0x250))) | frozenset(
    "\u0391\u03b1\u0416\u0436\u05d0\u0627\u0663\u0915\u0e01\u1680\u2028\u3000"
    "\u3042\u4e2d\uac00\uff10\uff41\U0001f600"
)

_State = tuple[int, frozenset[str]]  # quantifiers in the current chain, the characters they take
_START: _State = (0, frozenset())


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-patterns nested in one parsed item."""
    if op in _REPEATS:
        return [av[2]]
    if op is sre_constants.SUBPATTERN:
        return [av[-1]]
    if op is sre_constants.BRANCH:
        return list(av[1])
    if op is sre_constants.GROUPREF_EXISTS:
        return [branch for branch in av[1:] if branch]
    if op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
        return [av[1]]
    if op is _ATOMIC:
        return [av]
    return []


def _codes(items: Any) -> set[int]:
    """Every code point a pattern names (literals and range ends)."""
    codes: set[int] = set()
    for op, av in items:
        if op in (sre_constants.LITERAL, sre_constants.NOT_LITERAL):
            codes.add(av)
        elif op is sre_constants.IN:
            for sub_op, sub_av in av:
                if sub_op is sre_constants.LITERAL:
                    codes.add(sub_av)
                elif sub_op is sre_constants.RANGE:
                    codes.update(sub_av)
        for sub in _children(op, av):
            codes |= _codes(sub)
    return codes


def _accepts(op: Any, av: Any, char: str) -> bool:
    """Whether one single-character item matches ``char``."""
    code = ord(char)
    if op is sre_constants.LITERAL:
        return bool(code == av)
    if op is sre_constants.NOT_LITERAL:
        return bool(code != av)
    if op is sre_constants.ANY:
        return True
    negate = hit = False
    for sub_op, sub_av in av:
        if sub_op is sre_constants.NEGATE:
            negate = True
        elif sub_op is sre_constants.LITERAL:
            hit = hit or code == sub_av
        elif sub_op is sre_constants.RANGE:
            hit = hit or sub_av[0] <= code <= sub_av[1]
        elif sub_op is sre_constants.CATEGORY:
            category = _CATEGORIES.get(sub_av)
            hit = hit or category is None or category.match(char) is not None
    return hit != negate


class _Chains:
    """Walks a parsed pattern in order, counting quantifiers that follow one
    another with nothing between them that the earlier ones cannot take:
    ``a*a*a*b`` has three, ``\\d+\\.\\d+`` two chains of one (the dot splits them).
    Each such quantifier multiplies the ways a failing match is retried."""

    def __init__(self, universe: frozenset[str]) -> None:
        self.universe = universe
        self.longest = 0

    def chars(self, items: Any, ignorecase: bool) -> frozenset[str]:
        """The sample characters any single-character item in ``items`` can take."""
        found: set[str] = set()
        for op, av in items:
            if op is sre_constants.LITERAL and not ignorecase:
                found.add(chr(av))
            elif op in _SINGLE:
                for char in self.universe:
                    if char in found:
                        continue
                    variants = (char, char.lower(), char.upper()) if ignorecase else (char,)
                    if any(len(v) == 1 and _accepts(op, av, v) for v in variants):
                        found.add(char)
            elif op is sre_constants.GROUPREF:
                return self.universe
            else:
                for sub in _children(op, av):
                    found |= self.chars(sub, ignorecase)
        return frozenset(found)

    def run(self, items: Any, state: _State, ignorecase: bool) -> _State:
        for op, av in items:
            state = self.step(op, av, state, ignorecase)
        return state

    def step(self, op: Any, av: Any, state: _State, ignorecase: bool) -> _State:
        if op in _SINGLE:
            return self.boundary(self.chars([(op, av)], ignorecase), state)
        if op in _REPEATS:
            low, high, sub = av
            if op is _POSSESSIVE:  # gives nothing back: no split to search over
                self.run(sub, _START, ignorecase)
                return state
            if high <= 1:  # at most once: the item, or (when optional) nothing
                taken = self.run(sub, state, ignorecase)
                return _merge([taken, state]) if low == 0 else taken
            chars = self.chars(sub, ignorecase)
            if low >= 1:
                state = self.boundary(chars, state)
            return state if low == high else self.repeat(chars, state)
        if op is sre_constants.SUBPATTERN:
            _group, add, remove, sub = av
            if add & sre_constants.SRE_FLAG_IGNORECASE:
                ignorecase = True
            if remove & sre_constants.SRE_FLAG_IGNORECASE:
                ignorecase = False
            return self.run(sub, state, ignorecase)
        if op is sre_constants.BRANCH:
            return _merge([self.run(branch, state, ignorecase) for branch in av[1]])
        if op is sre_constants.GROUPREF_EXISTS:
            _group, yes, no = av
            return _merge([self.run(yes, state, ignorecase), self.run(no or [], state, ignorecase)])
        if op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            self.run(av[1], state, ignorecase)  # tried at every split of what came before
            return state
        if op is _ATOMIC:
            return self.run(av, state, ignorecase)
        return state  # anchors, back references: they take no free characters

    def boundary(self, chars: frozenset[str], state: _State) -> _State:
        """A character that must be there: if no earlier quantifier can take it,
        they must stop before it, and the chain is cut."""
        return state if chars & state[1] else _START

    def repeat(self, chars: frozenset[str], state: _State) -> _State:
        count, seen = state
        if count == 0 or chars & seen:
            count += 1
        self.longest = max(self.longest, count)
        return count, seen | chars


def _merge(states: list[_State]) -> _State:
    return max(count for count, _ in states), frozenset().union(*(seen for _, seen in states))


def _longest_chain(tree: Any, *, ignorecase: bool) -> int:
    universe = _SAMPLE | {chr(code) for code in _codes(tree)}
    chains = _Chains(frozenset(universe))
    chains.run(tree, _START, ignorecase)
    return chains.longest
