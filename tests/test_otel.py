"""hookwise.otel: spans and metrics for each delivery attempt, checked with
the SDK's in-memory exporter and reader on real deliveries to a receiver on
127.0.0.1 whose URL path holds a token (as Slack and Discord URLs do)."""

from __future__ import annotations

import importlib
import logging
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import hookwise as hw
import hookwise.otel
from hookwise.otel import instrument, redact_url
from tests.conftest import SIGNING, TEAM, TOKEN, Receiver, alias_event, setup_team

PATH_TOKEN = "SECRETTOKEN"
HOOK_PATH = f"/hooks/T000/B000/{PATH_TOKEN}"
FAST = hw.RetryPolicy(max_attempts=3, base_delay=0.001, factor=1.0, jitter=False)
ONCE = hw.RetryPolicy(max_attempts=1)
# never in an attribute: the URL's path and its token, the webhook's secrets
FORBIDDEN = (PATH_TOKEN, "/hooks/", "T000", TOKEN, SIGNING)


@attrs.define
class Otel:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        return sorted(self.exporter.get_finished_spans(), key=lambda s: s.start_time or 0)

    def points(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def instrument(self, **options: Any) -> hookwise.otel.Telemetry:
        return instrument(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options
        )


@pytest.fixture
def otel() -> Iterator[Otel]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Otel(exporter, reader, tracer_provider, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def token_url(receiver: Receiver) -> str:
    return receiver.url.replace("/hook", HOOK_PATH)


def assert_clean(attributes: Any) -> None:
    for name, value in dict(attributes or {}).items():
        for forbidden in FORBIDDEN:
            assert forbidden not in str(value), (name, value)


def test_a_delivery_is_one_client_span_with_http_conventions(
    receiver: Receiver, otel: Otel, make_dispatcher: Any
) -> None:
    store = hw.MemoryStorage()
    setup_team(store, token_url(receiver))
    dispatcher = make_dispatcher(store, on_attempt=otel.instrument(outbox=store))
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    assert [r.path for r in receiver.requests] == [HOOK_PATH]  # the token went where it must

    [span] = otel.spans()
    host, port = receiver.server.server_address[:2]
    assert span.name == "POST"
    assert span.kind is SpanKind.CLIENT
    assert span.parent is None
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "http.request.method": "POST",
        "url.full": f"http://{host}:{port}",
        "server.address": host,
        "server.port": port,
        "http.response.status_code": 200,
        "hookwise.delivery.id": delivery.id,
        "hookwise.team": TEAM,
        "hookwise.webhook": "github-dispatch",
        "hookwise.automation": "deploy-on-production",
        "hookwise.attempt": 1,
        "hookwise.outcome": "succeeded",
    }
    # the times the attempt recorded, not those of the callback
    [attempt] = store.list_attempts(delivery.id)
    assert span.start_time == int(attempt.started_at * 1e9)
    assert span.end_time == span.start_time + int(attempt.elapsed * 1e9)
    assert_clean(span.attributes)


def test_a_retry_is_two_spans_and_two_counts(
    receiver: Receiver, otel: Otel, make_dispatcher: Any
) -> None:
    store = hw.MemoryStorage()
    setup_team(store, token_url(receiver))
    receiver.script.append((500, {}, f"down {TOKEN} {PATH_TOKEN}".encode()))
    dispatcher = make_dispatcher(store, retry=FAST, on_attempt=otel.instrument(outbox=store))
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    assert len(receiver.requests) == 2

    first, second = otel.spans()
    assert [s.attributes["hookwise.attempt"] for s in (first, second)] == [1, 2]  # type: ignore[index]
    assert first.attributes["http.response.status_code"] == 500  # type: ignore[index]
    assert first.attributes["error.type"] == "500"  # type: ignore[index]
    assert first.attributes["hookwise.outcome"] == "retrying"  # type: ignore[index]
    assert first.status.status_code is StatusCode.ERROR
    assert second.attributes["http.response.status_code"] == 200  # type: ignore[index]
    assert "error.type" not in (second.attributes or {})
    assert second.status.status_code is StatusCode.UNSET
    assert {s.attributes["hookwise.delivery.id"] for s in (first, second)} == {delivery.id}  # type: ignore[index]
    for span in (first, second):
        assert_clean(span.attributes)

    points = otel.points()
    counts = {p.attributes["outcome"]: p.value for p in points["hookwise.deliveries"]}
    assert counts == {"retrying": 1, "succeeded": 1}
    for point in points["hookwise.deliveries"]:
        assert point.attributes["hookwise.team"] == TEAM
        assert point.attributes["hookwise.webhook"] == "github-dispatch"
    durations = {
        p.attributes["http.response.status_code"]: p for p in points[hookwise.otel.ATTEMPT_DURATION]
    }
    assert {code: p.count for code, p in durations.items()} == {500: 1, 200: 1}
    assert durations[500].attributes["error.type"] == "500"
    assert list(durations[200].explicit_bounds) == list(hookwise.otel.DURATION_BUCKETS)
    attempts = store.list_attempts(delivery.id)
    assert sum(p.sum for p in durations.values()) == pytest.approx(sum(a.elapsed for a in attempts))
    assert [p.value for p in points[hookwise.otel.OUTBOX_DEPTH]] == [0]  # all delivered
    for values in points.values():
        for point in values:
            assert_clean(point.attributes)


def test_a_failure_sets_error_status(receiver: Receiver, otel: Otel, make_dispatcher: Any) -> None:
    store = hw.MemoryStorage()
    setup_team(store, token_url(receiver))
    receiver.script.append((400, {}, b"bad request"))
    dispatcher = make_dispatcher(store, retry=FAST, on_attempt=otel.instrument())
    dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)

    [span] = otel.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "400"  # type: ignore[index]
    assert span.attributes["hookwise.outcome"] == "failed"  # type: ignore[index]
    points = otel.points()
    assert [(p.attributes["outcome"], p.value) for p in points["hookwise.deliveries"]] == [
        ("failed", 1)
    ]
    assert hookwise.otel.OUTBOX_DEPTH not in points  # no outbox given, no gauge


def test_no_answer_gives_the_exception_type_and_no_status_code(
    otel: Otel, make_dispatcher: Any
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = hw.MemoryStorage()
    setup_team(store, f"http://127.0.0.1:{port}{HOOK_PATH}?token={PATH_TOKEN}")
    dispatcher = make_dispatcher(store, retry=ONCE, on_attempt=otel.instrument())
    dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)

    [span] = otel.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert "http.response.status_code" not in (span.attributes or {})
    assert span.attributes["error.type"] == "ConnectError"  # type: ignore[index]
    assert span.attributes["url.full"] == f"http://127.0.0.1:{port}"  # type: ignore[index]
    assert_clean(span.attributes)


def test_an_attempt_that_sent_nothing_is_counted_with_no_span_and_no_duration(
    receiver: Receiver, otel: Otel
) -> None:
    """A disabled webhook's delivery: the core records an attempt (elapsed
    0.0, no answer) that fails it, but no request went out."""
    store = hw.MemoryStorage()
    setup_team(store, token_url(receiver))
    with hw.Dispatcher(
        store,
        network=hw.NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True),
        worker=False,
        on_attempt=otel.instrument(outbox=store),
    ) as dispatcher:
        [delivery] = dispatcher.handle(alias_event())
        assert store.disable_webhook(TEAM, "github-dispatch", "paused by hand")
        assert dispatcher.deliver_due() == 1
    assert receiver.requests == []
    [attempt] = store.list_attempts(delivery.id)
    assert (attempt.elapsed, attempt.response_status) == (0.0, None)
    assert store.get_delivery(delivery.id).status is hw.DeliveryStatus.FAILED  # type: ignore[union-attr]

    assert otel.spans() == []
    points = otel.points()
    assert hookwise.otel.ATTEMPT_DURATION not in points
    assert [(p.attributes["outcome"], p.value) for p in points["hookwise.deliveries"]] == [
        ("failed", 1)
    ]
    assert [p.value for p in points[hookwise.otel.OUTBOX_DEPTH]] == [0]


def test_only_an_attempt_with_no_time_and_no_answer_counts_as_unsent(otel: Otel) -> None:
    telemetry = otel.instrument()
    failed = {"status": hw.DeliveryStatus.FAILED, "response_status": None}
    delivery, attempt = sample(**failed)
    telemetry(delivery, attrs.evolve(attempt, elapsed=0.0, response_status=None, error="x"))
    assert otel.spans() == []
    telemetry(delivery, attrs.evolve(attempt, elapsed=0.0))  # an answer: it was sent
    telemetry(delivery, attrs.evolve(attempt, elapsed=0.01, response_status=None))  # no answer
    assert len(otel.spans()) == 2
    points = otel.points()
    assert sum(p.count for p in points[hookwise.otel.ATTEMPT_DURATION]) == 2
    assert [p.value for p in points["hookwise.deliveries"]] == [3]


def test_outbox_depth_is_read_at_collection_time(
    store: hw.Storage, receiver: Receiver, otel: Otel
) -> None:
    setup_team(store, token_url(receiver))
    telemetry = otel.instrument(outbox=store)
    with hw.Dispatcher(
        store,
        network=hw.NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True),
        worker=False,
        on_attempt=telemetry,
    ) as dispatcher:
        for _ in range(3):
            dispatcher.handle(alias_event())
        assert [p.value for p in otel.points()[hookwise.otel.OUTBOX_DEPTH]] == [3]
        assert otel.spans() == []  # nothing is emitted by handle()
        assert dispatcher.deliver_due() == 3
        assert [p.value for p in otel.points()[hookwise.otel.OUTBOX_DEPTH]] == [0]
        assert len(otel.spans()) == 3
    telemetry.close()
    assert hookwise.otel.OUTBOX_DEPTH not in otel.points()


def test_spans_are_roots_even_inside_a_callers_span(receiver: Receiver, otel: Otel) -> None:
    store = hw.MemoryStorage()
    setup_team(store, token_url(receiver))
    tracer = otel.tracer_provider.get_tracer("platform")
    with hw.Dispatcher(
        store,
        network=hw.NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True),
        worker=False,
        on_attempt=otel.instrument(),
    ) as dispatcher:
        dispatcher.handle(alias_event())
        with tracer.start_as_current_span("platform-job"):
            assert dispatcher.deliver_due() == 1
    [attempt] = [s for s in otel.spans() if s.name == "POST"]
    assert attempt.parent is None


def test_the_users_on_attempt_runs_after_and_telemetry_never_breaks_it(
    otel: Otel, caplog: pytest.LogCaptureFixture
) -> None:
    told: list[tuple[hw.Delivery, hw.Attempt]] = []
    telemetry = otel.instrument(on_attempt=lambda d, a: told.append((d, a)))
    delivery, attempt = sample()
    telemetry(delivery, attempt)
    assert told == [(delivery, attempt)]
    assert len(otel.spans()) == 1

    class Broken:  # a provider whose tracer fails when used
        def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
            return self

        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("exporter down")

    broken = instrument(
        tracer_provider=Broken(),  # type: ignore[arg-type]
        meter_provider=otel.meter_provider,
        on_attempt=lambda d, a: told.append((d, a)),
    )
    caplog.set_level(logging.ERROR, logger="hookwise")
    broken(delivery, attempt)
    assert len(told) == 2
    assert any("OpenTelemetry" in r.getMessage() for r in caplog.records)

    def raising(d: hw.Delivery, a: hw.Attempt) -> None:
        raise ValueError("user bug")

    with pytest.raises(ValueError, match="user bug"):  # the dispatcher logs it, as ever
        otel.instrument(on_attempt=raising)(delivery, attempt)
    assert len(otel.spans()) == 2  # recorded before the user's callback ran


def test_an_api_without_bucket_advice_still_gets_the_histogram(otel: Otel) -> None:
    """opentelemetry-api before 1.30 has no explicit_bucket_boundaries_advisory."""
    made: list[str] = []

    class OldMeter:
        def __init__(self, meter: Any) -> None:
            self.meter = meter

        def create_histogram(self, name: str, unit: str = "", description: str = "") -> Any:
            made.append(name)
            return self.meter.create_histogram(name, unit=unit, description=description)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.meter, name)

    class OldProvider:
        def get_meter(self, *args: Any, **kwargs: Any) -> Any:
            return OldMeter(otel.meter_provider.get_meter(*args, **kwargs))

    telemetry = instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=OldProvider(),  # type: ignore[arg-type]
    )
    telemetry(*sample())
    assert made == [hookwise.otel.ATTEMPT_DURATION]
    [point] = otel.points()[hookwise.otel.ATTEMPT_DURATION]
    assert point.count == 1
    assert point.sum == pytest.approx(0.25)


def sample(**changes: Any) -> tuple[hw.Delivery, hw.Attempt]:
    url = f"https://user:pw@hooks.slack.com/services/T000/B000/{PATH_TOKEN}?x={PATH_TOKEN}"
    delivery = hw.Delivery(
        id="d1",
        message_id="m1",
        team=TEAM,
        webhook="slack",
        automation="alerts",
        event_type="RUN_STATE",
        event_id="e1",
        created_at=1e9,
        display="{}",
        url=url,
        status=hw.DeliveryStatus.SUCCEEDED,
        attempts=1,
        response_status=200,
    )
    attempt = hw.Attempt(
        delivery_id="d1", number=1, started_at=1e9, elapsed=0.25, url=url, response_status=200
    )
    return attrs.evolve(delivery, **changes), attempt


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://user:pw@hooks.slack.com/services/T/B/SECRET?x=1#f",
            ("https://hooks.slack.com", "hooks.slack.com", 443),
        ),
        ("http://127.0.0.1:8080/a/b", ("http://127.0.0.1:8080", "127.0.0.1", 8080)),
        ("HTTPS://[::1]:9443/x", ("https://[::1]:9443", "::1", 9443)),
        ("ftp://example.com/x", ("ftp://example.com", "example.com", None)),
        ("not a url", ("", None, None)),
        ("http://host:notaport/x", ("", None, None)),
        # read as the policy and the senders read them (httpx), not as urlsplit does
        ("https://hooks.example:\uff18\uff10/x", ("https://hooks.example:80", "hooks.example", 80)),
        ("https://hooks.example:+443/x", ("https://hooks.example", "hooks.example", 443)),
        ("https://hooks.example:443/x", ("https://hooks.example", "hooks.example", 443)),
        (
            "https://[2001:db8::1]:8443/x?token=SECRET",
            ("https://[2001:db8::1]:8443", "2001:db8::1", 8443),
        ),
        (
            "http://user:SECRET@hooks.example:8080/T/B/SECRET?token=SECRET#SECRET",
            ("http://hooks.example:8080", "hooks.example", 8080),
        ),
        (
            "https://b\u00fccher.example/x",
            ("https://xn--bcher-kva.example", "xn--bcher-kva.example", 443),
        ),
        ("slack:ALERTS_URL", ("", None, None)),
        ("https:///x", ("", None, None)),
    ],
)
def test_redact_url_keeps_scheme_host_and_port_only(url: str, expected: tuple[Any, ...]) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "full", "host", "port"),
    [
        ("https://hooks.example:\uff18\uff10/x", "https://hooks.example:80", "hooks.example", 80),
        ("https://hooks.example:+443/x", "https://hooks.example", "hooks.example", 443),
        ("https://[2001:db8::1]:8443/x", "https://[2001:db8::1]:8443", "2001:db8::1", 8443),
    ],
)
def test_the_span_shows_the_origin_hookwise_connects_to(
    otel: Otel, url: str, full: str, host: str, port: int
) -> None:
    from hookwise.url import parse_url

    parsed = parse_url(url)  # what the policy checks and the senders connect to
    assert (parsed.host, parsed.effective_port) == (host, port)
    delivery, attempt = sample(url=url)
    otel.instrument()(delivery, attrs.evolve(attempt, url=url))
    [span] = otel.spans()
    attributes = dict(span.attributes or {})
    assert (attributes["url.full"], attributes["server.address"], attributes["server.port"]) == (
        full,
        host,
        port,
    )
    assert "url.scheme" not in attributes  # opt-in in the conventions; url.full has it


def test_user_info_and_path_never_reach_a_span(otel: Otel) -> None:
    delivery, attempt = sample()
    otel.instrument()(delivery, attempt)
    [span] = otel.spans()
    assert span.attributes["url.full"] == "https://hooks.slack.com"  # type: ignore[index]
    assert span.attributes["server.port"] == 443  # type: ignore[index]
    for value in dict(span.attributes or {}).values():
        assert PATH_TOKEN not in str(value)
        assert "pw" not in str(value)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"outbox": object()}, "outbox"),
        ({"outbox": hw.MemoryStorage(), "depth": lambda: 0}, "depth"),
        ({"depth": 3}, "depth"),
        ({"on_attempt": "print"}, "on_attempt"),
        ({"tracer_provider": object()}, "tracer_provider"),
        ({"meter_provider": object()}, "meter_provider"),
    ],
)
def test_bad_options_are_validation_errors_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(hw.ValidationError) as info:
        instrument(**options)
    assert info.value.field == field


def test_without_opentelemetry_instrument_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # type: ignore[arg-type]
    original = hookwise.otel
    monkeypatch.setattr(hw, "otel", original)  # put back after the reimport below
    monkeypatch.delitem(sys.modules, "hookwise.otel")
    fresh = importlib.import_module("hookwise.otel")
    assert fresh is not original
    with pytest.raises(hw.ValidationError, match=r"pip install 'hookwise\[otel\]'"):
        fresh.instrument()


def test_import_hookwise_never_imports_opentelemetry() -> None:
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        sys.modules["opentelemetry"] = None  # as if not installed
        import hookwise
        for info in pkgutil.walk_packages(hookwise.__path__, "hookwise."):
            importlib.import_module(info.name)
        assert "hookwise.otel" in sys.modules
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry.")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
