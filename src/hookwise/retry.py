"""RetryPolicy: after a failed attempt, when to try again, or whether to stop.

Pure: it is given the attempt's outcome and a random source and returns a
delay. Exponential backoff with full jitter spreads a burst of failures so a
receiver coming back up is not hit by every retry at once.
"""

from __future__ import annotations

import email.utils
import enum
import random
from collections.abc import Callable

import attrs

from hookwise._values import plain_number
from hookwise.errors import ValidationError

__all__ = ["Outcome", "RetryPolicy", "classify", "parse_retry_after"]

RETRYABLE_STATUS = frozenset({408, 425, 429})
MAX_SECONDS = 10 * 365 * 24 * 3600.0
"""The largest delay, age or factor a RetryPolicy takes (ten years): NaN and
``inf`` are refused, so a delay is always a time that comes."""


class Outcome(str, enum.Enum):
    """What an attempt's result means for the delivery."""

    SUCCESS = "success"
    RETRY = "retry"  # transient: try again later
    FAIL = "fail"  # permanent: do not try again
    GONE = "gone"  # 410: fail, and disable the webhook

    def __str__(self) -> str:
        return self.value


def classify(status: int | None) -> Outcome:
    """``None`` means no response: a connection error or a timeout."""
    if status is None or status in RETRYABLE_STATUS or 500 <= status <= 599:
        return Outcome.RETRY
    if 200 <= status <= 299:
        return Outcome.SUCCESS
    if status == 410:
        return Outcome.GONE
    return Outcome.FAIL  # other 4xx, 3xx (redirects are not followed), 1xx


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():  # ASCII only: "²" and "٣" are digits to str.isdigit, not to HTTP
        return float(value) if value.isascii() else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    """A positive, finite number (``inf`` would mean a retry that never comes)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < plain_number(value) <= MAX_SECONDS
    ):
        raise ValidationError(
            f"retry.{attribute.name}", f"must be a positive number, at most {MAX_SECONDS:g}"
        )


def _is_bool(_instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(
            f"retry.{attribute.name}", f"must be True or False, not {type(value).__name__}"
        )


@attrs.frozen(slots=True)
class RetryPolicy:
    """When to retry, in the spirit of Svix (seconds, then minutes, then hours):
    the n-th retry waits up to ``base_delay * factor**(n-1)`` seconds
    (5 s, 30 s, 3 min, 18 min, 1.8 h, 10 h, 10 h), drawn uniformly from zero
    to that bound (full jitter). Seven retries take at most about 22 hours;
    ``max_age`` (3 days) also bounds redeliveries and raised ``max_attempts``.
    """

    max_attempts: int = attrs.field(default=8, converter=plain_number)
    base_delay: float = attrs.field(default=5.0, converter=plain_number, validator=_positive)
    factor: float = attrs.field(default=6.0, converter=plain_number, validator=_positive)
    max_delay: float = attrs.field(default=10 * 3600.0, converter=plain_number, validator=_positive)
    max_age: float = attrs.field(
        default=3 * 24 * 3600.0, converter=plain_number, validator=_positive
    )
    max_retry_after: float = attrs.field(
        default=3600.0, converter=plain_number, validator=_positive
    )
    jitter: bool = attrs.field(default=True, validator=_is_bool)

    @max_attempts.validator
    def _check_attempts(self, _attribute: object, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or int.__int__(value) < 1:
            raise ValidationError("retry.max_attempts", "must be an int >= 1")

    def backoff(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        """The delay before the next try, after ``attempts`` failed ones."""
        try:
            bound = min(self.max_delay, self.base_delay * self.factor ** (attempts - 1))
        except OverflowError:  # factor ** 400 and up: far past any max_delay
            bound = self.max_delay
        return bound * rand() if self.jitter else bound

    def next_attempt(
        self,
        *,
        attempts: int,
        age: float,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """Seconds until the next try after ``attempts`` transient failures of a
        delivery ``age`` seconds old, or ``None`` to give up. A receiver's
        ``Retry-After`` is honoured up to ``max_retry_after``."""
        if attempts >= self.max_attempts:
            return None
        delay = self.backoff(attempts, rand)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        if age + delay > self.max_age:
            return None
        return delay
