"""The options both dispatchers take, written once: the keywords users pass
(:class:`Options`, for type checkers) and the checked values (:class:`Settings`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs
from typing_extensions import TypedDict

from hookwise.crypto import SecretKey
from hookwise.errors import ValidationError
from hookwise.network import NetworkPolicy
from hookwise.retry import RetryPolicy

__all__ = ["Options", "Settings"]


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


def _at_least(least: float, *, integer: bool = False) -> Callable[[Any, Any, Any], None]:
    kinds = (int,) if integer else (int, float)
    kind = "an int" if integer else "a number"

    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, kinds) or not value >= least:
            raise ValidationError(attribute.name, f"must be {kind} >= {least:g}")

    return check


def _instance(cls: type, field: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if not isinstance(value, cls):
            raise ValidationError(field, f"must be a hookwise.{cls.__name__}")

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
    timeout: float = attrs.field(default=10.0, validator=_at_least(0.001))
    concurrency: int = attrs.field(default=4, validator=_at_least(1, integer=True))
    poll_interval: float = attrs.field(default=1.0, validator=_at_least(0.0))
    refresh_interval: float = attrs.field(default=1.0, validator=_at_least(0.0))
    clock: Callable[[], float] = time.time
    worker: bool = True

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
    def lease(self) -> float:
        """How long a claimed delivery is ours: a lease outlives a slow request."""
        return self.timeout + 60.0
