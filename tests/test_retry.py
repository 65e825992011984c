"""RetryPolicy and response classification: pure, given a random source."""

from __future__ import annotations

import email.utils
from typing import Any

import pytest

import hookwise as hw
from hookwise.retry import Outcome, classify, parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCESS),
        (201, Outcome.SUCCESS),
        (202, Outcome.SUCCESS),
        (204, Outcome.SUCCESS),
        (299, Outcome.SUCCESS),
        (100, Outcome.FAIL),
        (301, Outcome.FAIL),  # redirects are not followed
        (302, Outcome.FAIL),
        (304, Outcome.FAIL),
        (307, Outcome.FAIL),
        (308, Outcome.FAIL),
        (400, Outcome.FAIL),
        (401, Outcome.FAIL),
        (403, Outcome.FAIL),
        (404, Outcome.FAIL),
        (409, Outcome.FAIL),
        (413, Outcome.FAIL),
        (422, Outcome.FAIL),
        (499, Outcome.FAIL),
        (408, Outcome.RETRY),
        (425, Outcome.RETRY),
        (429, Outcome.RETRY),
        (410, Outcome.GONE),
        (500, Outcome.RETRY),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (504, Outcome.RETRY),
        (599, Outcome.RETRY),
        (None, Outcome.RETRY),  # no response: a connection error or a timeout
    ],
)
def test_classify(status: int | None, outcome: Outcome) -> None:
    assert classify(status) is outcome


# -- backoff ----------------------------------------------------------------------


def test_backoff_without_jitter_is_the_bound() -> None:
    policy = hw.RetryPolicy(base_delay=5.0, factor=6.0, max_delay=3600.0, jitter=False)
    assert [policy.backoff(n) for n in range(1, 7)] == [
        5.0,
        30.0,
        180.0,
        1080.0,
        3600.0,  # 6480 capped
        3600.0,
    ]


def test_default_schedule_spans_seconds_minutes_hours() -> None:
    policy = hw.RetryPolicy(jitter=False)
    delays = [policy.backoff(n) for n in range(1, policy.max_attempts)]
    assert delays[0] == 5.0
    assert delays == sorted(delays)
    assert delays[-1] == policy.max_delay == 10 * 3600.0
    assert policy.max_age == 3 * 24 * 3600.0


def test_full_jitter_draws_between_zero_and_the_bound() -> None:
    policy = hw.RetryPolicy(base_delay=5.0, factor=6.0, max_delay=3600.0)
    assert policy.jitter is True
    assert policy.backoff(2, rand=lambda: 0.0) == 0.0
    assert policy.backoff(2, rand=lambda: 0.5) == 15.0
    assert policy.backoff(2, rand=lambda: 0.999) == pytest.approx(29.97)
    assert policy.backoff(9, rand=lambda: 0.5) == 1800.0  # jitter under the cap
    for n in range(1, 12):
        bound = min(3600.0, 5.0 * 6.0 ** (n - 1))
        assert 0.0 <= policy.backoff(n) <= bound


def test_backoff_survives_attempt_counts_whose_power_overflows() -> None:
    policy = hw.RetryPolicy(max_attempts=10_000, max_delay=600.0, jitter=False)
    assert policy.backoff(5_000) == 600.0
    assert policy.next_attempt(attempts=5_000, age=0.0) == 600.0


# -- giving up ------------------------------------------------------------------


def test_max_attempts_gives_up() -> None:
    policy = hw.RetryPolicy(max_attempts=3, jitter=False)
    assert policy.next_attempt(attempts=1, age=0.0) == 5.0
    assert policy.next_attempt(attempts=2, age=0.0) == 30.0
    assert policy.next_attempt(attempts=3, age=0.0) is None
    assert policy.next_attempt(attempts=4, age=0.0) is None


def test_a_single_attempt_never_retries() -> None:
    assert hw.RetryPolicy(max_attempts=1).next_attempt(attempts=1, age=0.0) is None


def test_max_age_gives_up_when_the_next_try_would_be_too_late() -> None:
    policy = hw.RetryPolicy(max_age=100.0, jitter=False)
    assert policy.next_attempt(attempts=1, age=95.0) == 5.0  # at 100: still in time
    assert policy.next_attempt(attempts=1, age=95.5) is None
    assert policy.next_attempt(attempts=2, age=60.0) == 30.0
    assert policy.next_attempt(attempts=2, age=71.0) is None


def test_next_attempt_uses_the_random_source() -> None:
    policy = hw.RetryPolicy()
    assert policy.next_attempt(attempts=3, age=0.0, rand=lambda: 0.25) == 45.0


# -- Retry-After ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("  7 ", 7.0),
        (None, None),
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("²", None),  # str.isdigit says yes; HTTP says no
        ("٣", None),
        ("Wed, 32 Foo 2024 99:99:99 GMT", None),
    ],
)
def test_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_retry_after_http_date() -> None:
    later = email.utils.formatdate(NOW + 90, usegmt=True)
    assert parse_retry_after(later, NOW) == pytest.approx(90.0)
    earlier = email.utils.formatdate(NOW - 90, usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0.0  # in the past: now


def test_retry_after_is_honoured_within_bounds() -> None:
    policy = hw.RetryPolicy(max_retry_after=600.0, jitter=False)
    # longer than the backoff: wait as asked
    assert policy.next_attempt(attempts=1, age=0.0, retry_after=120.0) == 120.0
    # shorter than the backoff: the backoff still applies
    assert policy.next_attempt(attempts=3, age=0.0, retry_after=1.0) == 180.0
    # beyond the cap: capped
    assert policy.next_attempt(attempts=1, age=0.0, retry_after=86_400.0) == 600.0
    assert policy.next_attempt(attempts=1, age=0.0, retry_after=float("inf")) == 600.0


def test_retry_after_does_not_outlive_max_age_or_max_attempts() -> None:
    policy = hw.RetryPolicy(max_age=1000.0, max_retry_after=3600.0, jitter=False)
    assert policy.next_attempt(attempts=1, age=0.0, retry_after=999.0) == 999.0
    assert policy.next_attempt(attempts=1, age=0.0, retry_after=1001.0) is None
    few = hw.RetryPolicy(max_attempts=2)
    assert few.next_attempt(attempts=2, age=0.0, retry_after=1.0) is None


def test_a_huge_retry_after_number_is_capped() -> None:
    seconds = parse_retry_after("9" * 400, NOW)
    policy = hw.RetryPolicy(max_retry_after=60.0, jitter=False)
    assert policy.next_attempt(attempts=1, age=0.0, retry_after=seconds) == 60.0


# -- validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_attempts", 0),
        ("max_attempts", -1),
        ("max_attempts", 2.5),
        ("max_attempts", True),
        ("max_attempts", "3"),
        ("base_delay", 0),
        ("base_delay", -1.0),
        ("base_delay", float("nan")),
        ("base_delay", "5"),
        ("factor", 0.0),
        ("factor", True),
        ("max_delay", -10),
        ("max_age", 0),
        ("max_retry_after", -1),
        ("max_retry_after", None),
    ],
)
def test_invalid_policy_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises(hw.ValidationError) as info:
        hw.RetryPolicy(**{field: value})
    assert info.value.field == f"retry.{field}"


def test_policy_is_frozen() -> None:
    policy = hw.RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_attempts = 3  # type: ignore[misc]
