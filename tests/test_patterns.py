"""User regexes: compiled once, refused when they could stall ``handle()``,
and run against a capped subject."""

from __future__ import annotations

import re

import pytest

import hookwise as hw
from hookwise import patterns
from hookwise.patterns import MAX_CHAIN, MAX_PATTERN, MAX_SUBJECT, compile_pattern, matches, search

SAFE = [
    "",
    "^production$",
    "prod",
    r"^v\d+\.\d+\.\d+$",  # the dots cut the digits apart: linear
    r"^release-\d+$",
    r"^(staging|production)$",
    r"(?i)^PROD$",
    r"^(?!tmp-).*$",
    r".*prod.*",  # two quantifiers that trade characters: allowed
    r"^model-.*-v\d+$",
    r"[a-z]+-[0-9]+",
    r"[^-]*-[^-]*-[^-]*$",
    r"a+b+c+d",
    r"\s*prod\s*",
    r"(a?){3}",  # a bounded repeat of an optional item
    r"(?:ab){2,5}",
    r"(?:ab)*cd",
    r"^[\w.-]+@[\w-]+\.\w+$",
    r"a*+a*+a*+b",  # possessive: never gives back
]

REFUSED = [
    "(a+)+$",  # the textbook catastrophe
    "(x|xx)*y",  # alternation under a quantifier
    "(a*)*b",
    "(?:a|ab)*c",
    "(a+){2,}$",
    "(?>(a+)+$)",  # an atomic group still backtracks inside
    "(a)?(?(1)(?:b+)+$|c)",  # so does a conditional group
    "(?=(a+)+$)",
    "a*a*a*b",  # polynomial: three quantifiers trade the same a's
    ".*a.*a.*b",
    "(?:a|b)*(?:a|c)*(?:a|d)*x",
    "(?i)A*a*A*b",
    r"\w*\d*[0-9]*x",
    ".*(?=.*a.*b)",
    "a{1,100}a{1,100}a{1,100}x",
]


@pytest.mark.parametrize("pattern", SAFE)
def test_safe_patterns_compile_to_the_same_regex(pattern: str) -> None:
    compiled = compile_pattern(pattern, "event.alias")
    assert compiled.pattern == pattern
    assert compiled.flags == re.compile(pattern).flags


@pytest.mark.parametrize("pattern", REFUSED)
def test_backtracking_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(hw.ValidationError) as info:
        compile_pattern(pattern, "event.tag")
    assert info.value.field == "event.tag"
    assert "backtrack" in info.value.message


def test_the_chain_limit_is_what_the_message_says() -> None:
    assert MAX_CHAIN == 2
    compile_pattern("a*" * MAX_CHAIN + "b", "f")
    with pytest.raises(hw.ValidationError, match=f"{MAX_CHAIN + 1} quantifiers"):
        compile_pattern("a*" * (MAX_CHAIN + 1) + "b", "f")


@pytest.mark.parametrize("pattern", ["[", "(", "a{2,1}", "(?P<n>a)(?P=m)", "*a"])
def test_invalid_regexes_are_refused_with_the_reason(pattern: str) -> None:
    with pytest.raises(hw.ValidationError) as info:
        compile_pattern(pattern, "event.alias")
    assert info.value.field == "event.alias"
    assert "invalid regex" in info.value.message


@pytest.mark.parametrize("pattern", [None, 3, b"^prod$", ["^prod$"]])
def test_a_pattern_must_be_text(pattern: object) -> None:
    with pytest.raises(hw.ValidationError) as info:
        compile_pattern(pattern, "event.alias")
    assert info.value.field == "event.alias"


def test_pattern_length_is_capped() -> None:
    compile_pattern("a" * MAX_PATTERN, "f")
    with pytest.raises(hw.ValidationError, match="longer"):
        compile_pattern("a" * (MAX_PATTERN + 1), "f")


def test_matches_searches_and_none_means_anything() -> None:
    assert matches(None, "")
    assert matches(None, "whatever")
    assert matches("prod", "pre-production")
    assert not matches("^prod$", "pre-production")
    assert matches(r"^v\d+$", "v12")
    assert not matches(r"^v\d+$", "v12a")


def test_matches_refuses_a_hostile_pattern_too() -> None:
    with pytest.raises(hw.ValidationError):
        matches("(a+)+$", "a" * 30 + "!")


class Recorder:
    """A stand-in compiled pattern that records what it was asked to search."""

    def __init__(self) -> None:
        self.subjects: list[str] = []

    def search(self, subject: str) -> None:
        self.subjects.append(subject)


def test_only_the_first_max_subject_characters_are_read() -> None:
    recorder = Recorder()
    hostile = "a" * (1024 * 1024)
    assert search(recorder, hostile) is False  # type: ignore[arg-type]
    assert recorder.subjects == [hostile[:MAX_SUBJECT]]


def test_a_one_megabyte_subject_is_matched_on_its_head() -> None:
    megabyte = 1024 * 1024
    # The cap is at least every label an event can carry.
    assert MAX_SUBJECT >= 256
    assert matches(r"^a+$", "a" * megabyte)  # the head is all a's
    assert matches(r"^x", "x" + "a" * megabyte)
    assert not matches("x", "a" * megabyte + "x")  # beyond the cap: never read
    assert not matches(r"\w+\w+!", "a" * megabyte)  # worst case for an allowed shape
    assert not matches(r"^[^-]*-[^-]*-[^-]*$", "-" * megabyte)


def test_compiled_patterns_are_shared() -> None:
    pattern = r"^shared-\d+$"
    assert matches(pattern, "shared-1")
    first = patterns._COMPILED[pattern]
    assert matches(pattern, "shared-2")
    assert patterns._COMPILED[pattern] is first


def test_filters_use_the_same_rules() -> None:
    with pytest.raises(hw.ValidationError) as info:
        hw.OnAddArtifactAlias(alias="a*a*a*b")
    assert info.value.field == "event.alias"
    assert hw.OnAddArtifactAlias(alias=r"^v\d+\.\d+$").alias == r"^v\d+\.\d+$"
