"""What one attempt's result means: the delivery's next state, the line the
history keeps, and whether the webhook must be turned off. Pure: the caller
passes the time and the retry policy, and writes what comes out."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from hookwise.history import charset, history_body, scrub
from hookwise.retry import Outcome, RetryPolicy, classify, parse_retry_after
from hookwise.storage.protocol import Attempt, Delivery, DeliveryStatus
from hookwise.wire import RawResponse

__all__ = ["GONE_REASON", "Transition", "settle"]

GONE_REASON = "the receiver answered 410 Gone"


@attrs.frozen(slots=True)
class Transition:
    """An attempt and where it leaves its delivery. ``disable`` is the reason
    to turn the webhook off, or None. ``healthy`` is what the attempt says of
    the endpoint (the circuit breaker and auto-disable count it): True for a
    2xx, False for no answer or an answer worth retrying (5xx, 429, ...),
    None when it says nothing (another 4xx, or our own refusal)."""

    attempt: Attempt
    status: DeliveryStatus
    next_attempt_at: float | None
    finished_at: float | None
    disable: str | None = None
    healthy: bool | None = None


def settle(
    delivery: Delivery,
    *,
    started: float,
    elapsed: float,
    now: float,
    retry: RetryPolicy,
    url: str,
    response: RawResponse | None = None,
    error: str | None = None,
    retryable: bool = True,
    secrets: Sequence[str] = (),
) -> Transition:
    """The transition after an attempt that got ``response``, or none and
    ``error`` (``retryable`` says whether a later try could do better)."""
    number = delivery.attempts + 1
    status_code = None if response is None else response.status_code
    if response is not None:
        outcome = classify(status_code)
    else:
        outcome = Outcome.RETRY if retryable else Outcome.FAIL
    status = DeliveryStatus.SUCCEEDED if outcome is Outcome.SUCCESS else DeliveryStatus.FAILED
    next_at: float | None = None
    if outcome is Outcome.RETRY:
        wait = retry.next_attempt(
            attempts=number,
            age=now - delivery.created_at,
            retry_after=parse_retry_after(
                None if response is None else response.header("retry-after"), now
            ),
        )
        if wait is not None:
            status, next_at = DeliveryStatus.RETRYING, now + wait
    if error is None and status_code is not None and outcome is not Outcome.SUCCESS:
        error = f"HTTP {status_code}"
    body = None
    if response is not None:
        body = history_body(response.body, charset(response.header("content-type")), secrets)
    attempt = Attempt(
        delivery_id=delivery.id,
        number=number,
        started_at=started,
        elapsed=elapsed,
        url=url,
        response_status=status_code,
        response_body=body,
        error=None if error is None else scrub(error, secrets),
    )
    return Transition(
        attempt,
        status,
        next_at,
        finished_at=None if next_at is not None else started + elapsed,
        disable=GONE_REASON if outcome is Outcome.GONE else None,
        healthy={Outcome.SUCCESS: True, Outcome.RETRY: False}.get(outcome),
    )
