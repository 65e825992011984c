"""OpenTelemetry for a dispatcher, in one call (extra ``hookwise[otel]``).

:func:`instrument` returns a :class:`Telemetry`: pass it as a dispatcher's
``on_attempt`` and every delivery attempt that sent a request becomes a span
and a few metric points; one that sent nothing (the webhook disabled or
deleted, a stored value that could not be used, a refusal) is only counted.
It runs where ``on_attempt`` runs, after the attempt is written, on the
worker's storage thread: nothing is added to ``handle()`` or to the send
path, and no span is held open across threads. Each span is emitted after
the fact, with the start and end times the attempt recorded.

What goes out is names, ids, numbers and the URL's ``scheme://host[:port]``
(read by :func:`hookwise.url.parse_url`, as the senders read it): never a
URL path or query (Slack and Discord URLs carry their token there),
a header, a payload, a response body or an error text.

The core never imports this module, and ``import hookwise`` works without
OpenTelemetry; this module imports without it too, and :func:`instrument`
says which extra to install.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from hookwise.errors import ValidationError
from hookwise.storage.protocol import Attempt, Delivery, DeliveryStatus, Outbox
from hookwise.url import parse_url

try:
    from opentelemetry import metrics, trace
    from opentelemetry.context import Context
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # the extra is not installed: instrument() says so
    _OTEL_MISSING = True
else:
    _OTEL_MISSING = False

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = [
    "ATTEMPT_DURATION",
    "DELIVERIES",
    "DURATION_BUCKETS",
    "OUTBOX_DEPTH",
    "SCOPE",
    "Telemetry",
    "instrument",
    "redact_url",
]

SCOPE = "hookwise"
"""The instrumentation scope (tracer and meter name)."""
DELIVERIES = "hookwise.deliveries"
"""Counter: one per attempt, by the ``outcome`` it left the delivery in."""
ATTEMPT_DURATION = "hookwise.attempt.duration"
"""Histogram of attempt latency, in seconds."""
OUTBOX_DEPTH = "hookwise.outbox.depth"
"""Observable gauge: deliveries not finished yet (due, waiting to retry, or
being sent), read from storage when the metrics are collected."""
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
"""The bucket boundaries semantic conventions advise for HTTP client durations."""

logger = logging.getLogger("hookwise")  # the one logger redaction covers (logs.py)

_OUTCOMES = {
    DeliveryStatus.SUCCEEDED: "succeeded",
    DeliveryStatus.FAILED: "failed",
}
_WEB_SCHEMES = frozenset({"http", "https"})  # the ones whose default port is known
# "ConnectTimeout: ..." (the history's "Type: text"): the type is low-cardinality
_ERROR_TYPE = re.compile(r"([A-Z][A-Za-z0-9_]{0,63}(?:Error|Exception|Timeout))(?::|$)")


def redact_url(url: str) -> tuple[str, str | None, int | None]:
    """``url`` as ``(scheme://host[:port], host, port)``: no user info, path,
    query or fragment. It is read by :func:`hookwise.url.parse_url`, the
    parser of the network policy and the senders, so the host and port are
    those hookwise connects to (the host IDNA-encoded; an IPv6 host is
    bracketed in the URL, bare as the host). The port is the explicit one, else the scheme's own
    (None when unknown); a default port written out is not shown in the URL.
    What does not parse is ``("", None, None)``."""
    try:
        parsed = parse_url(url)
    except ValueError:
        return "", None, None
    scheme, host = parsed.scheme, parsed.host
    if not scheme or not host:
        return "", None, None
    shown = f"[{host}]" if ":" in host else host
    origin = f"{scheme}://{shown}" if parsed.port is None else f"{scheme}://{shown}:{parsed.port}"
    return origin, host, parsed.effective_port if scheme in _WEB_SCHEMES else parsed.port


def _sent_nothing(attempt: Attempt) -> bool:
    """Whether ``attempt`` sent no request: its job could not be built (the
    webhook disabled or deleted, a stored value that could not be used, a
    refusal). The core records such an attempt with ``elapsed`` exactly 0.0
    and no answer; an attempt that sent a request has its length measured
    (``time.perf_counter``, whatever the dispatcher's ``clock=``), never 0."""
    return attempt.elapsed == 0.0 and attempt.response_status is None


def _histogram(meter: metrics.Meter) -> metrics.Histogram:
    """The attempt-duration histogram, with the semantic conventions' buckets
    where the API can advise them (opentelemetry-api 1.30 and later; before,
    the SDK's default buckets)."""
    description = "How long each delivery attempt took."
    try:
        return meter.create_histogram(
            ATTEMPT_DURATION,
            unit="s",
            description=description,
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
    except TypeError:
        return meter.create_histogram(ATTEMPT_DURATION, unit="s", description=description)


def _error_type(attempt: Attempt) -> str:
    """What ``error.type`` says of a failed attempt: the status code of an
    answer, the exception's type name, or ``_OTHER`` (never the error text,
    which may quote a URL)."""
    if attempt.response_status is not None:
        return str(attempt.response_status)
    match = _ERROR_TYPE.match(attempt.error or "")
    return match.group(1) if match else "_OTHER"


def _outcome(delivery: Delivery) -> str:
    return _OUTCOMES.get(delivery.status, "retrying")


class Telemetry:
    """An ``on_attempt`` callback that records each attempt with OpenTelemetry
    (see :func:`instrument`). Thread-safe. A failure of the telemetry itself
    is logged here and never reaches the dispatcher; what the user's own
    callback raises goes to the dispatcher, which logs it as ever."""

    __slots__ = (
        "_closed",
        "_deliveries",
        "_depth",
        "_duration",
        "_gauge",
        "_lock",
        "_then",
        "_tracer",
    )

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        depth: Callable[[], int] | None,
        then: Callable[[Delivery, Attempt], object] | None,
    ) -> None:
        from hookwise._version import __version__

        self._tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self._deliveries = meter.create_counter(
            DELIVERIES,
            unit="{attempt}",
            description="Delivery attempts, by the outcome they left the delivery in "
            "(succeeded, retrying, failed).",
        )
        self._duration = _histogram(meter)
        self._depth = depth
        self._then = then
        self._closed = False
        self._lock = threading.Lock()
        self._gauge = (
            None
            if depth is None
            else meter.create_observable_gauge(
                OUTBOX_DEPTH,
                callbacks=[self._observe_depth],
                unit="{delivery}",
                description="Deliveries not finished yet: due, waiting to retry, or being sent.",
            )
        )

    def __repr__(self) -> str:
        return f"Telemetry(depth={self._depth is not None}, then={self._then is not None})"

    def __call__(self, delivery: Delivery, attempt: Attempt) -> None:
        """Record ``attempt``, then call the user's own ``on_attempt``, if any
        (what that raises goes to the dispatcher, which logs it)."""
        try:
            self.record(delivery, attempt)
        except Exception:  # telemetry must never cost a delivery, nor the user's callback
            logger.exception("could not record delivery %s attempt with OpenTelemetry", delivery.id)
        if self._then is not None:
            self._then(delivery, attempt)

    def record(self, delivery: Delivery, attempt: Attempt) -> None:
        """The span and the metric points of one attempt, whose delivery is
        now ``delivery``; only the count for one that sent no request (its
        job could not be built): it is no HTTP call, and has no latency."""
        outcome = _outcome(delivery)
        self._deliveries.add(
            1,
            {
                "outcome": outcome,
                "hookwise.team": delivery.team,
                "hookwise.webhook": delivery.webhook,
            },
        )
        if _sent_nothing(attempt):
            return
        succeeded = delivery.status is DeliveryStatus.SUCCEEDED
        full, host, port = redact_url(attempt.url)
        http: dict[str, str | int] = {"http.request.method": "POST"}
        if host is not None:
            http["server.address"] = host
        if port is not None:
            http["server.port"] = port
        if attempt.response_status is not None:
            http["http.response.status_code"] = attempt.response_status
        if not succeeded:
            http["error.type"] = _error_type(attempt)

        start = int(attempt.started_at * 1e9)
        end = start + max(0, int(attempt.elapsed * 1e9))
        span_attributes: dict[str, str | int] = {
            **http,
            "hookwise.delivery.id": delivery.id,
            "hookwise.team": delivery.team,
            "hookwise.webhook": delivery.webhook,
            "hookwise.automation": delivery.automation,
            "hookwise.attempt": attempt.number,
            "hookwise.outcome": outcome,
        }
        if full:
            span_attributes["url.full"] = full
        # Context(): a root span, whatever context the storage thread inherited
        span = self._tracer.start_span(
            "POST",
            context=Context(),
            kind=SpanKind.CLIENT,
            attributes=span_attributes,
            start_time=start,
        )
        if not succeeded:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)

        self._duration.record(max(0.0, attempt.elapsed), {**http, "outcome": outcome})

    def _observe_depth(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            if self._closed or self._depth is None:
                return []
        try:
            depth = self._depth()
        except Exception:  # a closed or unreachable store: no point this time
            logger.warning("could not read the outbox depth for OpenTelemetry", exc_info=True)
            return []
        return [Observation(depth)]

    def close(self) -> None:
        """Stop reading the outbox depth (an observable gauge cannot be
        unregistered, so it reports nothing from now on). Call it when the
        store is closed; spans and counters need nothing."""
        with self._lock:
            self._closed = True


def instrument(
    *,
    outbox: Outbox | None = None,
    depth: Callable[[], int] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    on_attempt: Callable[[Delivery, Attempt], object] | None = None,
) -> Telemetry:
    """A :class:`Telemetry` to pass as a dispatcher's ``on_attempt``.

    ``outbox`` (usually the dispatcher's store) feeds the
    ``hookwise.outbox.depth`` gauge with ``outbox.outstanding()`` at each
    collection; or give ``depth``, a callable returning the number, for a
    store where counting is costly (a cached value, say). With neither there
    is no gauge. ``tracer_provider`` and ``meter_provider`` default to the
    global ones. ``on_attempt`` is the platform's own callback, called after
    the telemetry is recorded.
    """
    if _OTEL_MISSING:
        raise ValidationError(
            "hookwise.otel",
            "needs the otel extra (opentelemetry-api is not installed): "
            "pip install 'hookwise[otel]'",
        )
    if outbox is not None and depth is not None:
        raise ValidationError("depth", "give outbox or depth, not both")
    if outbox is not None:
        if not callable(getattr(outbox, "outstanding", None)):
            raise ValidationError("outbox", "must be a hookwise storage with outstanding()")
        depth = _outstanding(outbox)
    for name, value in (("depth", depth), ("on_attempt", on_attempt)):
        if value is not None and not callable(value):
            raise ValidationError(name, f"must be callable, not {type(value).__name__}")
    for name, provider, method in (
        ("tracer_provider", tracer_provider, "get_tracer"),
        ("meter_provider", meter_provider, "get_meter"),
    ):
        if provider is not None and not callable(getattr(provider, method, None)):
            raise ValidationError(name, f"must be an OpenTelemetry {name} with {method}()")
    return Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        depth=depth,
        then=on_attempt,
    )


def _outstanding(outbox: Outbox) -> Callable[[], int]:
    def depth() -> int:
        return outbox.outstanding()[0]

    return depth
