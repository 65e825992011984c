"""Fairness and robustness end to end, on both shells (``make_dispatcher``):
real keep-alive HTTP/1.1 receivers on 127.0.0.1 that are slow, trickle,
fail or hang, beside a healthy one; the circuit breaker, auto-disable,
``on_attempt``, a storage that fails to record, and ``close()`` with a send
that does not end. Every wait is bounded; no timing is a performance claim."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import hookwise as hw
from hookwise.scheduler import BREAKER_BASE
from hookwise.storage.protocol import AttemptResult
from tests.conftest import LOCAL, PUBLIC, SIGNING, TEAM, TOKEN, alias_event, setup_team

FAST_RETRY = hw.RetryPolicy(max_attempts=1000, base_delay=0.01, factor=1.0, jitter=False)


class Server:
    """A threaded HTTP/1.1 (keep-alive) server on 127.0.0.1. ``answer(server,
    handler, n)`` answers the n-th request (from 0); it counts requests,
    answers, and how many were open at once."""

    def __init__(self, answer: Callable[[Server, BaseHTTPRequestHandler, int], None]) -> None:
        self.answer = answer
        self.lock = threading.Lock()
        self.count = 0  # requests that came in
        self.answered = 0  # answers written in full
        self.open = 0
        self.max_open = 0
        self.arrivals: list[float] = []  # monotonic
        self.stopping = threading.Event()  # ends every wait in a handler
        self.gate = threading.Event()  # for a receiver that hangs until let go
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30
            disable_nagle_algorithm = True  # headers and body go in two writes

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with server.lock:
                    n = server.count
                    server.count += 1
                    server.arrivals.append(time.monotonic())
                    server.open += 1
                    server.max_open = max(server.max_open, server.open)
                try:
                    server.answer(server, self, n)
                finally:
                    with server.lock:
                        server.open -= 1

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that hung up on a slow answer: expected here

        self.server = Quiet(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def reply(
        self, handler: BaseHTTPRequestHandler, status: int = 200, body: bytes = b"ok"
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        with self.lock:
            self.answered += 1

    def close(self) -> None:
        self.stopping.set()
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def ok(server: Server, handler: BaseHTTPRequestHandler, n: int) -> None:
    server.reply(handler)


def slow(seconds: float) -> Callable[[Server, BaseHTTPRequestHandler, int], None]:
    def answer(server: Server, handler: BaseHTTPRequestHandler, n: int) -> None:
        if not server.stopping.wait(seconds):
            server.reply(handler)

    return answer


def status(code: int) -> Callable[[Server, BaseHTTPRequestHandler, int], None]:
    def answer(server: Server, handler: BaseHTTPRequestHandler, n: int) -> None:
        server.reply(handler, code, b"no")

    return answer


def trickle(server: Server, handler: BaseHTTPRequestHandler, n: int) -> None:
    """The whole answer, status line first, one byte every 0.5 s."""
    handler.close_connection = True
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
        if server.stopping.wait(0.5):
            return
        try:
            handler.wfile.write(bytes([byte]))
        except OSError:  # the client gave up: what we want
            return


def hang_first(server: Server, handler: BaseHTTPRequestHandler, n: int) -> None:
    """The first request hangs until the gate opens; the others are answered."""
    if n == 0:
        handler.close_connection = True
        server.gate.wait(30)
        if server.stopping.is_set():
            return
    server.reply(handler)


Serve = Callable[[Callable[[Server, BaseHTTPRequestHandler, int], None]], Server]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Ask for it before ``make_dispatcher``: the servers then close after
    the dispatchers."""
    made: list[Server] = []

    def start(answer: Callable[[Server, BaseHTTPRequestHandler, int], None]) -> Server:
        made.append(Server(answer))
        return made[-1]

    yield start
    for server in made:
        server.close()


def hooks(store: hw.Storage, **urls: str) -> hw.Admin:
    """A webhook per name, each with an automation on the alias of its name."""
    admin = hw.Admin(store, network=LOCAL)
    for name, url in urls.items():
        admin.create_webhook(hw.Webhook(team=TEAM, name=name, url=url))
        admin.create_automation(
            hw.Automation(
                name=f"on-{name}",
                scope=hw.Scope.registry(TEAM, "model-registry"),
                event=hw.OnAddArtifactAlias(alias=f"^{name}$"),
                action=hw.SendWebhook(
                    webhook=name, payload={"version": "${artifact_version_string}"}
                ),
            )
        )
    return admin


def send(dispatcher: Any, name: str, count: int = 1) -> list[str]:
    ids = []
    for _ in range(count):
        [delivery] = dispatcher.handle(alias_event(name))
        ids.append(delivery.id)
    return ids


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def statuses(store: hw.Storage, ids: Sequence[str]) -> list[hw.DeliveryStatus]:
    found = [store.get_delivery(i) for i in ids]
    return [d.status for d in found if d is not None]


def all_succeeded(store: hw.Storage, ids: Sequence[str]) -> bool:
    return statuses(store, ids) == [hw.DeliveryStatus.SUCCEEDED] * len(ids)


# -- one slow endpoint, one fast ---------------------------------------------


def test_a_slow_endpoint_does_not_hold_back_a_fast_one(serve: Serve, make_dispatcher: Any) -> None:
    slow_server = serve(slow(1.5))
    fast_server = serve(ok)
    store = hw.MemoryStorage()
    hooks(store, slow=slow_server.url, fast=fast_server.url)
    dispatcher = make_dispatcher(store, concurrency=4, webhook_concurrency=2)

    send(dispatcher, "slow", 40)  # first: a batch loop would be stuck behind them
    started = time.monotonic()
    fast = send(dispatcher, "fast", 100)
    assert wait_until(lambda: all_succeeded(store, fast), timeout=8.0), statuses(store, fast)
    elapsed = time.monotonic() - started
    slow_answered = slow_server.answered

    assert fast_server.count == 100
    # the slow ones went at two at a time, 1.5 s each: few are done
    assert slow_answered <= (elapsed / 1.5 + 1) * 2
    assert slow_answered < 40
    assert slow_server.max_open <= 2  # webhook_concurrency, never more


# -- a receiver trickling its answer -----------------------------------------


def test_a_trickling_receiver_is_cut_at_the_deadline(serve: Serve, make_dispatcher: Any) -> None:
    trickling = serve(trickle)
    healthy = serve(ok)
    store = hw.MemoryStorage()
    hooks(store, trickle=trickling.url, healthy=healthy.url)
    dispatcher = make_dispatcher(store, timeout=1, retry=hw.RetryPolicy(max_attempts=1))

    [stuck] = send(dispatcher, "trickle")
    assert wait_until(lambda: trickling.count == 1, timeout=5.0)
    fine = send(dispatcher, "healthy", 10)
    assert wait_until(lambda: all_succeeded(store, fine), timeout=4.0), statuses(store, fine)

    assert wait_until(lambda: statuses(store, [stuck]) == [hw.DeliveryStatus.FAILED], 6.0)
    [attempt] = store.list_attempts(stuck)
    # 40 bytes at 2 a second would take 20 s: cut at the attempt's deadline
    assert attempt.elapsed < 1 + 1.0, attempt
    assert attempt.response_status is None
    assert attempt.error is not None
    assert "TimeoutError" in attempt.error, attempt.error
    assert "1 s" in attempt.error, attempt.error


# -- the circuit breaker -----------------------------------------------------


def test_the_breaker_pauses_a_failing_endpoint_only(serve: Serve, make_dispatcher: Any) -> None:
    failing = serve(status(503))
    healthy = serve(ok)
    store = hw.MemoryStorage()
    hooks(store, failing=failing.url, healthy=healthy.url)
    dispatcher = make_dispatcher(
        store, concurrency=4, webhook_concurrency=2, breaker_threshold=3, retry=FAST_RETRY
    )

    send(dispatcher, "failing", 20)
    assert wait_until(lambda: failing.answered >= 3, timeout=5.0)
    third = time.monotonic()

    # the healthy endpoint keeps delivering while the other is paused
    fine = send(dispatcher, "healthy", 10)
    assert wait_until(lambda: all_succeeded(store, fine), timeout=3.0), statuses(store, fine)

    # a 1.5 s window inside the 5 s pause: nothing new reaches the failing
    # receiver, only what was in flight when the third failure came in (at
    # most webhook_concurrency - 1). Retrying every 10 ms without the breaker,
    # 20 deliveries would have made hundreds of requests by now.
    time.sleep(max(0.0, third + 1.5 - time.monotonic()))
    assert failing.count <= 3 + 1, failing.count
    assert time.monotonic() - third < BREAKER_BASE  # still inside the pause


# -- auto-disable ------------------------------------------------------------


def test_sustained_failure_disables_and_enabling_starts_the_streak_again(
    serve: Serve, make_dispatcher: Any, caplog: pytest.LogCaptureFixture
) -> None:
    failing = serve(status(500))
    store = hw.MemoryStorage()
    admin = hooks(store, failing=failing.url)
    caplog.set_level(logging.WARNING, logger="hookwise")
    # no breaker in the way: the failures come in steadily for half a second
    first = make_dispatcher(store, disable_after=0.5, breaker_threshold=1000, retry=FAST_RETRY)
    send(first, "failing")
    assert wait_until(lambda: not admin.get_webhook(TEAM, "failing").enabled, timeout=10.0)
    webhook = admin.get_webhook(TEAM, "failing")
    assert webhook.disabled_reason is not None
    assert "failing since" in webhook.disabled_reason
    assert any(
        "webhook ml-team/failing disabled: failing since" in r.getMessage()
        and r.levelno == logging.WARNING
        for r in caplog.records
    )
    first.close(timeout=1.0)
    assert failing.count >= 2

    admin.enable_webhook(TEAM, "failing")
    enabled_at = time.time()
    # The old streak began more than disable_after ago: if enabling did not
    # start it again, this one failure would disable the webhook at once.
    second = make_dispatcher(
        store, disable_after=0.5, breaker_threshold=1000, retry=hw.RetryPolicy(max_attempts=1)
    )
    [one] = send(second, "failing")
    assert second.flush(timeout=10)
    assert statuses(store, [one]) == [hw.DeliveryStatus.FAILED]
    assert store.list_attempts(one)[0].response_status == 500
    assert admin.get_webhook(TEAM, "failing").enabled is True
    # the stored streak is the new one (note_failure returns the streak's start)
    since = store.note_failure(TEAM, "failing", time.time() + 3600)
    assert enabled_at - 0.01 <= since <= time.time()


# -- on_attempt --------------------------------------------------------------


class Echo:
    """A MockTransport handler: 500, then 200s echoing the request's body
    (which holds the bearer token: the history must not)."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            fail = len(self.requests) <= self.failures
        if fail:
            return httpx.Response(500, content=request.content)
        return httpx.Response(200, content=request.content)


def test_on_attempt_is_told_of_every_attempt(make_dispatcher: Any) -> None:
    store = hw.MemoryStorage()
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    calls: list[tuple[hw.Delivery, hw.Attempt]] = []
    echo = Echo(failures=1)
    dispatcher = make_dispatcher(
        store,
        network=PUBLIC,
        handler=echo,
        retry=hw.RetryPolicy(max_attempts=3, base_delay=0.001, factor=1.0, jitter=False),
        on_attempt=lambda delivery, attempt: calls.append((delivery, attempt)),
    )
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)

    assert len(echo.requests) == 2
    assert TOKEN.encode() in echo.requests[0].content  # what the receiver echoes
    assert [(d.status, d.attempts, a.number) for d, a in calls] == [
        (hw.DeliveryStatus.RETRYING, 1, 1),
        (hw.DeliveryStatus.SUCCEEDED, 2, 2),
    ]
    for told, attempt in calls:
        assert told.id == attempt.delivery_id == delivery.id
        assert told.response_status == attempt.response_status
        for secret in (TOKEN, SIGNING):
            assert secret not in repr(told)
            assert secret not in repr(attempt)
            assert secret not in (attempt.response_body or "")
    assert calls[0][1].response_status == 500
    assert calls[1][1].response_status == 200


def test_an_on_attempt_that_raises_is_logged_and_deliveries_go_on(
    make_dispatcher: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = hw.MemoryStorage()
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    told = []

    def broken(delivery: hw.Delivery, attempt: hw.Attempt) -> None:
        told.append(attempt)
        raise RuntimeError("metrics backend down")

    caplog.set_level(logging.ERROR, logger="hookwise")
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=Echo(), on_attempt=broken)
    ids = [dispatcher.handle(alias_event())[0].id for _ in range(3)]
    assert dispatcher.flush(timeout=10)
    assert all_succeeded(store, ids)
    assert len(told) == 3
    raised = [r for r in caplog.records if "on_attempt raised" in r.getMessage()]
    assert len(raised) == 3
    assert all(r.exc_info is not None for r in raised)


# -- a storage that fails to record ------------------------------------------


class FlakyRecords(hw.MemoryStorage):
    """``record_attempts`` raises OSError the first ``failures`` times."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0
        self.guard = threading.Lock()

    def record_attempts(self, results: Sequence[AttemptResult]) -> list[bool]:
        with self.guard:
            self.calls += 1
            if self.failures > 0:
                self.failures -= 1
                raise OSError("database is locked")
        return super().record_attempts(results)


def test_a_result_that_cannot_be_recorded_is_kept_not_sent_again(
    make_dispatcher: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyRecords(failures=2)
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    echo = Echo()
    caplog.set_level(logging.ERROR, logger="hookwise")
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=echo)
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)

    assert len(echo.requests) == 1  # sent once, whatever the storage did
    assert store.calls == 3
    done = store.get_delivery(delivery.id)
    assert done is not None
    assert done.status is hw.DeliveryStatus.SUCCEEDED
    assert done.attempts == 1
    assert len(store.list_attempts(delivery.id)) == 1
    kept = [r for r in caplog.records if "kept, and written again" in r.getMessage()]
    assert len(kept) == 2
    assert all(r.levelno == logging.ERROR for r in kept)
    assert "not sent again" in kept[0].getMessage()


# -- close() with a send that does not end -----------------------------------


def test_close_gives_back_a_hanging_send(serve: Serve, make_dispatcher: Any) -> None:
    server = serve(hang_first)
    store = hw.MemoryStorage()
    hooks(store, hangs=server.url)
    dispatcher = make_dispatcher(store, timeout=5)
    [delivery_id] = send(dispatcher, "hangs")
    assert wait_until(lambda: server.count == 1, timeout=5.0)

    started = time.monotonic()
    left = dispatcher.close(timeout=1)
    took = time.monotonic() - started
    assert took < 3.0, took
    assert left == 1
    count, earliest = store.outstanding()
    assert count == 1  # still unfinished in the outbox
    assert earliest is not None
    assert earliest <= time.time()  # due again now, not when its lease would end
    found = store.get_delivery(delivery_id)
    assert found is not None
    assert found.status is hw.DeliveryStatus.PENDING
    assert found.attempts == 0

    server.gate.set()  # the receiver works again
    again = make_dispatcher(store)
    assert again.flush(timeout=10)
    done = store.get_delivery(delivery_id)
    assert done is not None
    assert done.status is hw.DeliveryStatus.SUCCEEDED
    assert done.attempts == 1  # the given-back send was never recorded
    assert server.count == 2  # at least once: the receiver saw it twice


class SlowClaims(hw.MemoryStorage):
    """``claim`` takes ``delay`` seconds once ``slow`` is set."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.slow = threading.Event()
        self.claiming = threading.Event()

    def claim(self, now: float, **kwargs: Any) -> list[Any]:
        if self.slow.is_set():
            self.claiming.set()
            time.sleep(self.delay)
        return super().claim(now, **kwargs)


def test_close_during_a_claim_gives_back_what_it_claimed(make_dispatcher: Any) -> None:
    store = SlowClaims(delay=1.0)
    setup_team(store, "https://hooks.example.com/x", network=PUBLIC)
    echo = Echo()
    dispatcher = make_dispatcher(store, network=PUBLIC, handler=echo)
    dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=5)
    store.slow.set()
    [late] = dispatcher.handle(alias_event())
    assert store.claiming.wait(5)
    dispatcher.close(timeout=0.1)  # while the claim is under way
    sent_by_close = len(echo.requests)
    time.sleep(0.5)
    assert len(echo.requests) == sent_by_close  # nothing goes out after close()
    done = store.get_delivery(late.id)
    assert done is not None
    if not done.status.finished:  # not sent before the worker stopped: given back, due now
        count, earliest = store.outstanding()
        assert count == 1
        assert earliest is not None
        assert earliest <= time.time(), earliest - time.time()
