"""What ``hookwise.otel`` adds to each delivery attempt.

The dispatcher calls ``on_attempt(delivery, attempt)`` once per attempt,
after the attempt is written, on the worker's storage thread (never in
``handle()`` or on the send path). This bench calls, in the same run and on
the same realistic Delivery/Attempt pairs (a Slack-style URL with its token
in the path; succeeded, retrying and failed attempts in turn):

- baseline: an empty ``on_attempt``;
- ``api only``: ``hookwise.otel.instrument()`` with OpenTelemetry's default
  (no-op) providers, as when a platform installs the extra but no SDK;
- ``sdk``: an SDK ``TracerProvider`` whose ``SimpleSpanProcessor`` hands each
  span to an exporter that drops it (so the whole synchronous path of a span
  is paid, but no I/O), and an SDK ``MeterProvider`` with an in-memory reader.

Each side runs ``N`` calls, best of 3 rounds, sides taking turns. Printed:
microseconds per attempt, the cost over the baseline (never below 0: a
difference under the noise prints as 0.00), and the ratio over the baseline.

Run: ``python bench/otel.py`` (20,000 calls per side; ``--quick``: 2,000).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import hookwise as hw
from hookwise.otel import instrument

QUICK = "--quick" in sys.argv
N = 2_000 if QUICK else 20_000
ROUNDS = 3
URL = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"

Callback = Callable[[hw.Delivery, hw.Attempt], object]


class Drop(SpanExporter):
    """Takes every span and keeps none."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def pairs() -> list[tuple[hw.Delivery, hw.Attempt]]:
    """Three attempts as a worker reports them: succeeded, retrying, failed."""
    made = []
    for i, (status, code, error) in enumerate(
        [
            (hw.DeliveryStatus.SUCCEEDED, 200, None),
            (hw.DeliveryStatus.RETRYING, 503, "HTTP 503"),
            (hw.DeliveryStatus.FAILED, None, "ConnectTimeout: timed out"),
        ]
    ):
        delivery = hw.Delivery(
            id=f"dlv_{i:024d}",
            message_id=f"msg_{i:024d}",
            team="ml-team",
            webhook="slack-alerts",
            automation="notify-on-failure",
            event_type="RUN_STATE",
            event_id=f"evt_{i}",
            created_at=1.7e9,
            display='{"text": "run failed"}',
            url=URL,
            status=status,
            attempts=1,
            response_status=code,
            error=error,
        )
        attempt = hw.Attempt(
            delivery_id=delivery.id,
            number=1,
            started_at=1.7e9 + i,
            elapsed=0.042,
            url=URL,
            response_status=code,
            error=error,
        )
        made.append((delivery, attempt))
    return made


def run(callback: Callback, work: list[tuple[hw.Delivery, hw.Attempt]]) -> float:
    """Seconds for ``N`` calls of ``callback``."""
    count = len(work)
    start = time.perf_counter()
    for i in range(N):
        delivery, attempt = work[i % count]
        callback(delivery, attempt)
    return time.perf_counter() - start


def main() -> None:
    work = pairs()

    def empty(delivery: hw.Delivery, attempt: hw.Attempt) -> None:
        pass

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Drop()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    sides: dict[str, Callback] = {
        "baseline (empty on_attempt)": empty,
        "api only (no-op providers)": instrument(),
        "sdk (spans dropped, metrics in memory)": instrument(
            tracer_provider=tracer_provider, meter_provider=meter_provider
        ),
    }
    best = dict.fromkeys(sides, float("inf"))
    for _ in range(ROUNDS):
        for name, callback in sides.items():
            best[name] = min(best[name], run(callback, work))
    tracer_provider.shutdown()
    meter_provider.shutdown()

    baseline = best["baseline (empty on_attempt)"]
    print(f"{N:,} on_attempt calls per side, best of {ROUNDS}")
    print(f"{'side':40} {'us/attempt':>10} {'cost over baseline':>19} {'ratio':>8}")
    for name, seconds in best.items():
        per = seconds / N * 1e6
        cost = max(0.0, (seconds - baseline) / N * 1e6)
        ratio = seconds / baseline if baseline > 0 else float("nan")
        print(f"{name:40} {per:10.2f} {cost:16.2f} us {ratio:7.1f}x")


if __name__ == "__main__":
    main()
