"""The options both dispatchers take, written once: the keywords users pass
(:class:`Options`, for type checkers) and the checked values (:class:`Settings`)."""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from typing import Any

import attrs
from typing_extensions import TypedDict

from hookwise._values import plain_number
from hookwise.crypto import SecretKey
from hookwise.errors import ValidationError
from hookwise.network import NetworkPolicy
from hookwise.retry import RetryPolicy
from hookwise.storage.protocol import Attempt, Delivery

__all__ = ["DISABLE_AFTER", "MAX_CONCURRENCY", "MAX_SECONDS", "Options", "Settings"]

MAX_SECONDS = 24 * 3600.0
"""The longest ``timeout``, ``poll_interval`` and ``refresh_interval`` (a day)."""
MAX_CONCURRENCY = 10_000
"""The most requests a dispatcher has in flight."""
DISABLE_AFTER = 5 * 24 * 3600.0
"""Failing this long, a webhook is turned off (5 days, as Svix)."""


class Options(TypedDict, total=False):
    """Keyword arguments of :class:`~hookwise.Dispatcher` and
    :class:`~hookwise.AsyncDispatcher`; see :class:`Settings`."""

    network: NetworkPolicy | None
    retry: RetryPolicy | None
    key: SecretKey | None
    timeout: float
    concurrency: int
    poll_interval: float
    refresh_interval: float
    clock: Callable[[], float]
    worker: bool
    webhook_concurrency: int | None
    breaker_threshold: int
    disable_after: float | None
    on_attempt: Callable[[Delivery, Attempt], object] | None


def _between(
    least: float, most: float, *, integer: bool = False
) -> Callable[[Any, Any, Any], None]:
    """A number from ``least`` to ``most``: never NaN or infinite (a timeout of
    ``inf`` would hang a worker for good), never an int too large for a float."""
    kinds = (int,) if integer else (int, float)
    kind = "an int" if integer else "a number"

    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, kinds)
            or not least <= plain_number(value) <= most
        ):
            raise ValidationError(attribute.name, f"must be {kind} from {least:g} to {most:g}")

    return check


def _instance(cls: type, field: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if not isinstance(value, cls):
            raise ValidationError(field, f"must be a hookwise.{cls.__name__}")

    return check


def _clock(_instance: object, _attribute: object, value: object) -> None:
    """Callable, and read once here: a clock that returns no number (``print``,
    ``object``) would otherwise break the dispatcher later, far from its cause."""
    if not callable(value):
        raise ValidationError("clock", "must be callable, returning the time in seconds")
    try:
        now = value()
        ok = (
            isinstance(now, numbers.Real)
            and not isinstance(now, bool)
            and math.isfinite(float(now))
        )
    except Exception as exc:
        raise ValidationError("clock", f"raised {type(exc).__name__} when read") from None
    if not ok:
        raise ValidationError(
            "clock", f"must return the time in seconds as a number, not {type(now).__name__}"
        )


def _callable(field: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if not callable(value):
            raise ValidationError(field, f"must be callable, not {type(value).__name__}")

    return check


def _bool(field: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if not isinstance(value, bool):
            raise ValidationError(field, f"must be True or False, not {type(value).__name__}")

    return check


def _network(value: NetworkPolicy | None) -> NetworkPolicy:
    return NetworkPolicy() if value is None else value


def _retry(value: RetryPolicy | None) -> RetryPolicy:
    return RetryPolicy() if value is None else value


@attrs.frozen(slots=True)
class Settings:
    """What a dispatcher runs with.

    ``network`` is checked before each request; ``key`` seals and opens
    secrets and bodies (default: the store's own, else ``HOOKWISE_SECRET_KEY``);
    ``timeout`` bounds each request; ``concurrency`` is how many go at once;
    the worker looks for due deliveries every ``poll_interval`` seconds at
    least, and for changed configuration every ``refresh_interval``. With
    ``worker=False`` nothing is sent from this dispatcher: another process
    (``hookwise worker``) drains the outbox, or call ``deliver_due()``.

    Fairness: at most ``webhook_concurrency`` requests go to one webhook at
    once (default: half of ``concurrency``; ``Webhook.max_in_flight`` and
    ``Webhook.rate_limit`` set a webhook's own), and after
    ``breaker_threshold`` consecutive failures a webhook is paused, 5 s the
    first time and twice as long each time after, up to 10 minutes. A webhook
    failing for ``disable_after`` seconds (None: never) is turned off, with
    the reason kept on it. ``on_attempt(delivery, attempt)`` is called after
    each attempt is written, on the worker's storage thread, never on the
    send path; what it raises is logged and ignored.
    """

    network: NetworkPolicy = attrs.field(
        default=None, converter=_network, validator=_instance(NetworkPolicy, "network")
    )
    retry: RetryPolicy = attrs.field(
        default=None, converter=_retry, validator=_instance(RetryPolicy, "retry")
    )
    key: SecretKey | None = attrs.field(
        default=None, validator=attrs.validators.optional(_instance(SecretKey, "key"))
    )
    timeout: float = attrs.field(default=10.0, validator=_between(0.001, MAX_SECONDS))
    concurrency: int = attrs.field(default=4, validator=_between(1, MAX_CONCURRENCY, integer=True))
    poll_interval: float = attrs.field(default=1.0, validator=_between(0.0, MAX_SECONDS))
    refresh_interval: float = attrs.field(default=1.0, validator=_between(0.0, MAX_SECONDS))
    clock: Callable[[], float] = attrs.field(default=time.time, validator=_clock)
    worker: bool = attrs.field(default=True, validator=_bool("worker"))
    webhook_concurrency: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(_between(1, MAX_CONCURRENCY, integer=True)),
    )
    breaker_threshold: int = attrs.field(default=5, validator=_between(1, 1_000, integer=True))
    disable_after: float | None = attrs.field(
        default=DISABLE_AFTER,
        validator=attrs.validators.optional(_between(0.0, 10 * 365 * 24 * 3600.0)),  # type: ignore[arg-type]
    )
    on_attempt: Callable[[Delivery, Attempt], object] | None = attrs.field(
        default=None, validator=attrs.validators.optional(_callable("on_attempt"))
    )

    @classmethod
    def of(cls, options: Options, *, owner: str) -> Settings:
        """Settings from a constructor's keyword arguments; an unknown one is
        a ValidationError naming it (rather than a TypeError about us)."""
        unknown = sorted(set(options) - set(Options.__annotations__))
        if unknown:
            known = ", ".join(Options.__annotations__)
            raise ValidationError(unknown[0], f"is not an option of {owner}; options: {known}")
        return cls(**options)

    @property
    def per_webhook(self) -> int:
        """Requests in flight to one webhook at most, unless the webhook says:
        half the worker, so a slow endpoint always leaves room for the others."""
        if self.webhook_concurrency is not None:
            return self.webhook_concurrency
        return max(1, self.concurrency // 2)

    @property
    def lease(self) -> float:
        """How long a claimed delivery is ours: a lease outlives a slow request."""
        return self.timeout + 60.0
