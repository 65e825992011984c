"""The sans-I/O core alone: a fake clock, a MemoryStorage, and the test in
the sender's seat, calling ``core.finish(job, started, result)`` with a
RawResponse, an exception, or None for a job that could not be built."""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import hookwise as hw
from hookwise.core import Core, Job, Started
from hookwise.errors import BlockedAddressError, HookwiseError
from hookwise.outcome import GONE_REASON, settle
from hookwise.retry import RetryPolicy
from hookwise.scheduler import Hold
from hookwise.settings import Settings
from hookwise.signing import ID_HEADER
from hookwise.storage import MemoryStorage
from hookwise.storage.protocol import Attempt, Delivery, DeliveryStatus, SecretRecord
from hookwise.vault import Keyring, Vault
from hookwise.wire import RawResponse
from tests.conftest import PUBLIC, SIGNING, TEAM, TOKEN, alias_event, setup_team

S = DeliveryStatus
NOW = 1_700_000_000.0
URL = "https://hooks.example.com/x"
HOOK = "github-dispatch"
ELAPSED = 0.25  # how long each attempt "took" (on the real monotonic clock)
NO_JITTER = RetryPolicy(jitter=False)  # backoff after attempt n: 5 * 6 ** (n - 1)
HTTP_OK = attrs.evolve(PUBLIC, allow_http=True)  # for Admin, to store a plain http URL


@attrs.define
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def memory() -> MemoryStorage:
    return MemoryStorage()


def make_core(store: hw.Storage, clock: Clock, **options: Any) -> Core:
    options.setdefault("network", PUBLIC)
    options.setdefault("retry", NO_JITTER)
    options.setdefault("refresh_interval", 0.0)
    return Core(store, Settings(clock=clock, **options))


def queued(core: Core, url: str = URL) -> Delivery:
    """A team set up and one alias event handled: one PENDING delivery."""
    setup_team(core.storage, url, network=HTTP_OK)
    [delivery] = core.handle(alias_event())
    return delivery


def response(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> RawResponse:
    return RawResponse(status, headers or {}, body)


def started(core: Core) -> Started:
    return Started(core.clock(), perf=time.perf_counter() - ELAPSED)


def attempt_once(core: Core, result: RawResponse | Exception | None) -> Delivery | None:
    """Claim the one due delivery and finish it with ``result``."""
    [job] = core.claim(10)
    return core.finish(job, started(core), result)


def stored(core: Core, delivery_id: str) -> Delivery:
    delivery = core.storage.get_delivery(delivery_id)
    assert delivery is not None
    return delivery


def attempts(core: Core, delivery_id: str) -> list[Attempt]:
    return core.storage.list_attempts(delivery_id)


def assert_final(core: Core, delivery: Delivery, status: DeliveryStatus) -> Attempt:
    """The delivery is finished at its last attempt's end and due never again."""
    after = stored(core, delivery.id)
    last = attempts(core, delivery.id)[-1]
    assert after.status is status
    assert after.next_attempt_at is None
    assert after.finished_at == last.started_at + last.elapsed
    assert after.attempts == last.number
    assert (after.response_status, after.response_body, after.error) == (
        last.response_status,
        last.response_body,
        last.error,
    )
    return last


# -- 2xx -----------------------------------------------------------------------------------


def test_2xx_succeeds(memory: MemoryStorage, clock: Clock) -> None:
    core = make_core(memory, clock)
    delivery = queued(core)
    clock.advance(3)
    returned = attempt_once(core, response(201, b"created"))
    assert returned == stored(core, delivery.id)
    last = assert_final(core, delivery, S.SUCCEEDED)
    assert last == Attempt(
        delivery_id=delivery.id,
        number=1,
        started_at=NOW + 3,
        elapsed=last.elapsed,
        url=URL,
        response_status=201,
        response_body="created",
        error=None,
    )
    assert ELAPSED <= last.elapsed < ELAPSED + 5
    assert stored(core, delivery.id).message_id == delivery.message_id


def test_the_attempt_goes_to_the_webhooks_current_url(memory: MemoryStorage, clock: Clock) -> None:
    core = make_core(memory, clock)
    delivery = queued(core)
    moved = "https://hooks.example.com/moved"
    webhook = memory.get_webhook(TEAM, HOOK)
    assert webhook is not None
    hw.Admin(memory, network=PUBLIC).update_webhook(attrs.evolve(webhook, url=moved))
    attempt_once(core, response(200))
    assert attempts(core, delivery.id)[0].url == moved
    assert stored(core, delivery.id).url == moved


# -- retries -------------------------------------------------------------------------------

RETRYABLE: list[tuple[RawResponse | Exception, str, int | None]] = [
    (response(500, b"oops"), "HTTP 500", 500),
    (response(503), "HTTP 503", 503),
    (response(429), "HTTP 429", 429),
    (response(408), "HTTP 408", 408),
    (
        ConnectionRefusedError("connection refused"),
        "ConnectionRefusedError: connection refused",
        None,
    ),
    (OSError(), "OSError", None),
    (httpx.ReadTimeout("read timed out"), "ReadTimeout: read timed out", None),
    (ValueError("surprise"), "ValueError: surprise", None),
]


@pytest.mark.parametrize(("result", "error", "status"), RETRYABLE)
def test_transient_failures_retry_after_the_backoff(
    memory: MemoryStorage,
    clock: Clock,
    result: RawResponse | Exception,
    error: str,
    status: int | None,
) -> None:
    core = make_core(memory, clock)
    delivery = queued(core)
    clock.advance(10)
    attempt_once(core, result)
    after = stored(core, delivery.id)
    assert after.status is S.RETRYING
    assert after.next_attempt_at == NOW + 10 + 5.0
    assert after.finished_at is None
    assert (after.attempts, after.error, after.response_status) == (1, error, status)
    [row] = attempts(core, delivery.id)
    assert (row.number, row.error, row.response_status, row.url) == (1, error, status, URL)
    assert row.response_body == (None if status is None else after.response_body)
    assert core.claim(10) == []  # not due before its time


def test_backoff_grows_until_max_attempts_then_fails(memory: MemoryStorage, clock: Clock) -> None:
    core = make_core(memory, clock, retry=RetryPolicy(jitter=False, max_attempts=3))
    delivery = queued(core)
    for delay in (5.0, 30.0):
        attempt_once(core, response(500))
        after = stored(core, delivery.id)
        assert (after.status, after.next_attempt_at) == (S.RETRYING, clock.now + delay)
        clock.advance(delay)
    attempt_once(core, response(502))
    last = assert_final(core, delivery, S.FAILED)
    assert (last.number, last.error) == (3, "HTTP 502")
    assert [a.number for a in attempts(core, delivery.id)] == [1, 2, 3]
    assert core.claim(10) == []


def test_max_age_exceeded_fails(memory: MemoryStorage, clock: Clock) -> None:
    core = make_core(memory, clock, retry=RetryPolicy(jitter=False, max_age=60))
    delivery = queued(core)
    clock.advance(56)  # 56 + the 5 s backoff > 60
    attempt_once(core, OSError("down"))
    last = assert_final(core, delivery, S.FAILED)
    assert (last.number, last.error) == (1, "OSError: down")


def http_date(at: float) -> str:
    return email.utils.formatdate(at, usegmt=True)


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (503, "120", 120.0),
        (429, " 45 ", 45.0),
        (429, "99999", 600.0),  # capped at max_retry_after
        (503, "1", 5.0),  # never sooner than the backoff
        (429, http_date(NOW + 300), 300.0),
        (503, http_date(NOW + 86400), 600.0),
        (503, http_date(NOW - 300), 5.0),  # a date in the past: the backoff
        (503, "soon", 5.0),  # unparsable: the backoff
    ],
)
def test_retry_after_is_honoured_up_to_the_cap(
    memory: MemoryStorage, clock: Clock, status: int, retry_after: str, wait: float
) -> None:
    core = make_core(memory, clock, retry=RetryPolicy(jitter=False, max_retry_after=600))
    delivery = queued(core)
    attempt_once(core, response(status, headers={"Retry-After": retry_after}))
    after = stored(core, delivery.id)
    assert (after.status, after.next_attempt_at) == (S.RETRYING, NOW + wait)
    assert after.error == f"HTTP {status}"


# -- permanent failures --------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 301, 302, 307, 308])
def test_other_4xx_and_3xx_fail_at_once(memory: MemoryStorage, clock: Clock, status: int) -> None:
    core = make_core(memory, clock)
    delivery = queued(core)
    attempt_once(core, response(status, b"nope", {"Location": "https://elsewhere.example/"}))
    last = assert_final(core, delivery, S.FAILED)
    assert (last.number, last.response_status, last.response_body) == (1, status, "nope")
    assert last.error == f"HTTP {status}"
    webhook = memory.get_webhook(TEAM, HOOK)
    assert webhook is not None
    assert webhook.enabled  # only 410 turns it off


def gone_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "disabled:" in r.getMessage()]


def test_410_fails_and_disables_the_webhook_once(
    memory: MemoryStorage, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    core = make_core(memory, clock)
    first = queued(core)
    [second] = core.handle(alias_event())
    jobs = core.claim(10)  # both in flight when the first 410 comes back
    assert len(jobs) == 2
    with caplog.at_level(logging.WARNING, logger="hookwise"):
        for job in jobs:
            core.finish(job, started(core), response(410, b"gone"))
    for delivery in (first, second):
        last = assert_final(core, delivery, S.FAILED)
        assert (last.response_status, last.error) == (410, "HTTP 410")
    webhook = memory.get_webhook(TEAM, HOOK)
    assert webhook is not None
    assert (webhook.enabled, webhook.disabled_reason) == (False, GONE_REASON)
    assert gone_logs(caplog) == [f"webhook {TEAM}/{HOOK} disabled: {GONE_REASON}"]

    [third] = core.handle(alias_event())  # what comes next fails without being sent
    [job] = core.claim(10)
    assert (job.request, job.error) == (None, f"webhook {HOOK!r} is disabled")
    core.finish(job, started(core), None)
    assert stored(core, third.id).error == f"webhook {HOOK!r} is disabled"


def test_410_keeps_the_reason_of_a_webhook_already_off(
    memory: MemoryStorage, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    core = make_core(memory, clock)
    delivery = queued(core)
    [job] = core.claim(10)
    hw.Admin(memory, network=PUBLIC).disable_webhook(TEAM, HOOK, "maintenance")
    with caplog.at_level(logging.WARNING, logger="hookwise"):
        core.finish(job, started(core), response(410))
    assert stored(core, delivery.id).status is S.FAILED
    webhook = memory.get_webhook(TEAM, HOOK)
    assert webhook is not None
    assert (webhook.enabled, webhook.disabled_reason) == (False, "maintenance")
    assert gone_logs(caplog) == []


def test_a_hookwise_refusal_fails_at_once_with_its_own_text(
    memory: MemoryStorage, clock: Clock
) -> None:
    refusal = HookwiseError("could not build the request: KeyError")
    core = make_core(memory, clock)
    delivery = queued(core)
    attempt_once(core, refusal)
    last = assert_final(core, delivery, S.FAILED)
    assert last.error == str(refusal)  # no "BlockedAddressError: " in front
    assert (last.number, last.url, last.response_status) == (1, URL, None)
    assert last.elapsed >= ELAPSED  # it was tried


# -- jobs that could not be built ----------------------------------------------------------


def delete_webhook(store: hw.Storage) -> None:
    store.delete_webhook(TEAM, HOOK)  # behind Admin's back: its automation still names it


def disable_webhook(store: hw.Storage) -> None:
    hw.Admin(store, network=PUBLIC).disable_webhook(TEAM, HOOK, "maintenance")


def newline_token(store: hw.Storage) -> None:
    assert isinstance(store, MemoryStorage)
    sealed = Vault(store.key).seal_secret(TEAM, "GITHUB_TOKEN", TOKEN + "\n")
    store.update_secret(SecretRecord(TEAM, "GITHUB_TOKEN", sealed, NOW, NOW))


@pytest.mark.parametrize(
    ("url", "spoil", "error"),
    [
        (URL, delete_webhook, f"webhook {HOOK!r} no longer exists"),
        (URL, disable_webhook, f"webhook {HOOK!r} is disabled"),
        (URL, newline_token, "access_token: secret 'GITHUB_TOKEN' must be visible ASCII"),
    ],
)
def test_a_job_that_cannot_be_built_fails_without_a_request(
    memory: MemoryStorage, clock: Clock, url: str, spoil: Any, error: str
) -> None:
    core = make_core(memory, clock)  # PUBLIC: no plain http
    delivery = queued(core, url)
    if spoil is not None:
        spoil(memory)
    clock.advance(7)
    [job] = core.claim(10)
    assert job.request is None
    assert job.error is not None
    assert job.error.startswith(error)
    assert TOKEN not in job.error
    core.finish(job, core.start(), None)
    last = assert_final(core, delivery, S.FAILED)
    assert last == Attempt(delivery.id, 1, NOW + 7, 0.0, url, None, None, job.error)
    assert stored(core, delivery.id).finished_at == NOW + 7


def test_a_url_this_policy_refuses_is_held_however_old(memory: MemoryStorage, clock: Clock) -> None:
    """This process's policy refuses what Admin accepted: configuration, so
    nothing is recorded, even for a backlog older than ``max_age``."""
    core = make_core(memory, clock)  # PUBLIC: no plain http
    delivery = queued(core, "http://hooks.example.com/x")
    for _ in range(2):
        [job] = core.claim(10)
        assert job.held is Hold.NETWORK
        held = core.finish(job, started(core), None)
        assert held is not None
        assert (held.id, held.attempts, held.error) == (delivery.id, 0, None)
        assert attempts(core, delivery.id) == []
        assert stored(core, delivery.id).status is S.PENDING
        clock.advance(core.settings.retry.max_age + core.settings.lease + 1)


def test_an_address_refused_after_dns_is_retried_with_its_reason(
    memory: MemoryStorage, clock: Clock
) -> None:
    core = make_core(memory, clock)
    queued(core)
    refusal = BlockedAddressError("'hooks.example.com' resolves to 10.0.0.7, a private address")
    after = attempt_once(core, refusal)
    assert after is not None
    assert (after.status, after.attempts) == (S.RETRYING, 1)
    assert after.error == str(refusal)


# -- leases and redelivery -----------------------------------------------------------------


def test_a_lost_lease_changes_nothing(memory: MemoryStorage, clock: Clock) -> None:
    core = make_core(memory, clock)
    other = make_core(memory, clock)  # another worker on the same store
    delivery = queued(core)
    [mine] = core.claim(10)
    clock.advance(core.settings.lease + 1)
    [theirs] = other.claim(10)
    assert theirs.claim.lease_token != mine.claim.lease_token
    before = stored(core, delivery.id)
    assert core.finish(mine, started(core), response(200)) is None
    assert stored(core, delivery.id) == before
    assert (before.status, before.attempts) == (S.PENDING, 0)
    assert attempts(core, delivery.id) == []

    other.finish(theirs, started(other), response(200))
    assert_final(other, delivery, S.SUCCEEDED)
    assert len(attempts(core, delivery.id)) == 1


def test_redeliver_after_success(memory: MemoryStorage, clock: Clock) -> None:
    core = make_core(memory, clock)
    delivery = queued(core)
    attempt_once(core, response(200))
    clock.advance(3600)
    again = core.redeliver(delivery.id)
    assert again == stored(core, delivery.id)
    assert (again.status, again.next_attempt_at, again.finished_at) == (S.PENDING, clock.now, None)
    assert again.message_id == delivery.message_id
    [job] = core.claim(10)
    assert job.request is not None
    assert job.request.headers[ID_HEADER] == delivery.message_id
    core.finish(job, started(core), response(204))
    last = assert_final(core, delivery, S.SUCCEEDED)
    assert last.number == 2


def test_redeliver_breaks_the_lease_of_an_attempt_in_flight(
    memory: MemoryStorage, clock: Clock
) -> None:
    core = make_core(memory, clock)
    delivery = queued(core)
    [job] = core.claim(10)
    core.redeliver(delivery.id)
    assert core.finish(job, started(core), response(500)) is None
    after = stored(core, delivery.id)
    assert (after.status, after.attempts, after.next_attempt_at) == (S.PENDING, 0, NOW)
    assert [j.claim.delivery.id for j in core.claim(10)] == [delivery.id]


# -- secrets -------------------------------------------------------------------------------


def test_echoed_secrets_are_scrubbed(memory: MemoryStorage, clock: Clock) -> None:
    core = make_core(memory, clock)
    delivery = queued(core)
    [job] = core.claim(10)
    assert job.request is not None
    assert job.request.headers["Authorization"] == f"Bearer {TOKEN}"
    echo = json.dumps({"auth": f"Bearer {TOKEN}", "key": SIGNING}).encode()
    core.finish(job, started(core), response(500, echo, {"Content-Type": "application/json"}))
    body = stored(core, delivery.id).response_body
    assert body == json.dumps({"auth": "Bearer [REDACTED]", "key": "[REDACTED]"})
    assert attempts(core, delivery.id)[0].response_body == body

    clock.advance(5)
    attempt_once(core, OSError(f"proxy said no to 'Authorization: Bearer {TOKEN}'"))
    expected = "OSError: proxy said no to 'Authorization: Bearer [REDACTED]'"
    assert stored(core, delivery.id).error == expected
    assert attempts(core, delivery.id)[1].error == expected


# -- record and intake ---------------------------------------------------------------------


class FlakyEnqueue(MemoryStorage):
    """Its enqueue fails ``failures`` times, then works."""

    failures = 0

    def enqueue(self, entries: Any) -> list[Delivery]:
        if self.failures:
            self.failures -= 1
            raise OSError("database is locked")
        return super().enqueue(entries)


RUN = hw.Run(entity=TEAM, project="training", id="run-1")


def test_a_failed_enqueue_does_not_spend_the_cooldown(clock: Clock) -> None:
    store = FlakyEnqueue()
    hw.Admin(store, network=PUBLIC).create_webhook(hw.Webhook(team=TEAM, name="alerts", url=URL))
    hw.Admin(store, network=PUBLIC).create_automation(
        hw.Automation(
            name="on-failure",
            scope=hw.Scope.project(TEAM, "training"),
            event=hw.OnRunState(states=["FAILED"], cooldown=3600),
            action=hw.SendWebhook(webhook="alerts"),
        )
    )
    core = make_core(store, clock)

    def fire() -> int:
        assert core.handle(hw.Event.run_state(RUN, "RUNNING")) == []
        return len(core.handle(hw.Event.run_state(RUN, "FAILED")))

    store.failures = 1
    with pytest.raises(OSError, match="database is locked"):
        fire()
    assert store.list_deliveries() == []
    clock.advance(60)
    assert fire() == 1  # the failed write spent nothing
    clock.advance(60)
    assert fire() == 0  # inside the cooldown
    clock.advance(3600)
    assert fire() == 1
    assert len(store.list_deliveries()) == 2


def test_a_render_failure_is_a_failed_delivery_and_the_rest_go_out(
    memory: MemoryStorage, clock: Clock
) -> None:
    admin = setup_team(memory, URL, network=PUBLIC)
    admin.create_webhook(hw.Webhook(team=TEAM, name="plain", url=URL))
    admin.create_automation(
        hw.Automation(
            name="notify-on-production",
            scope=hw.Scope.registry(TEAM, "model-registry"),
            event=hw.OnAddArtifactAlias(alias="^production$"),
            action=hw.SendWebhook(webhook="plain", payload={"v": "${artifact_version}"}),
        )
    )
    memory.delete_secret(TEAM, "GITHUB_TOKEN")  # behind Admin's back
    core = make_core(memory, clock)
    deliveries = {d.automation: d for d in core.handle(alias_event())}
    failed, sent = deliveries["deploy-on-production"], deliveries["notify-on-production"]
    assert failed == stored(core, failed.id)
    assert (failed.status, failed.next_attempt_at, failed.finished_at) == (S.FAILED, None, NOW)
    assert (
        failed.error == f"could not render the payload: secret '{TEAM}/GITHUB_TOKEN' does not exist"
    )
    assert (failed.attempts, attempts(core, failed.id)) == (0, [])
    assert (sent.status, sent.next_attempt_at) == (S.PENDING, NOW)

    [job] = core.claim(10)
    assert job.claim.delivery.id == sent.id
    assert job.request is not None
    assert json.loads(job.request.body) == {"v": "v12"}
    core.finish(job, started(core), response(200))
    assert_final(core, sent, S.SUCCEEDED)


# -- waiting -------------------------------------------------------------------------------


def test_seconds_until_due(memory: MemoryStorage, clock: Clock) -> None:
    core = make_core(memory, clock, poll_interval=2.0)
    assert core.seconds_until_due() == 2.0  # nothing at all
    delivery = queued(core)
    assert core.seconds_until_due() == 0.0  # due now
    clock.advance(30)
    assert core.seconds_until_due() == 0.0  # overdue
    attempt_once(core, response(500))  # due again in 5 s
    assert core.seconds_until_due() == 2.0  # later than the poll interval
    clock.advance(4.5)
    assert core.seconds_until_due() == pytest.approx(0.5)
    assert stored(core, delivery.id).next_attempt_at == pytest.approx(clock.now + 0.5)


def _idle() -> bool:
    return False


def _sending() -> bool:
    return True


def test_waiter(memory: MemoryStorage, clock: Clock) -> None:
    core = make_core(memory, clock)
    assert core.waiter(None).done(busy=_idle, working=False) is True  # drained
    assert core.waiter(None).done(busy=_sending, working=True) is None  # a send in flight
    queued(core)
    assert core.waiter(None).done(busy=_idle, working=False) is False  # nobody here sends
    assert core.waiter(None).done(busy=_idle, working=True) is None
    assert core.waiter(60).done(busy=_idle, working=True) is None
    assert core.waiter(0).done(busy=_idle, working=True) is False  # its deadline passed
    attempt_once(core, response(500))  # due again in 5 s
    assert core.waiter(None).done(busy=_idle, working=True) is True  # nothing due now
    assert core.waiter(1).done(busy=_idle, working=True) is True  # nor within a second
    assert core.waiter(10).done(busy=_idle, working=True) is None  # but within ten


def test_close_counts_what_is_left(
    memory: MemoryStorage, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    core = make_core(memory, clock)
    assert core.close() == 0
    queued(core)
    with caplog.at_level(logging.WARNING, logger="hookwise"):
        assert core.close() == 1
    assert "dispatcher closed with 1 deliveries left in the outbox" in caplog.messages


def test_pass_failed_logs_and_waits_a_poll_interval(
    memory: MemoryStorage, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    core = make_core(memory, clock, poll_interval=0.5)
    error = OSError("database is locked")
    with caplog.at_level(logging.ERROR, logger="hookwise"):
        try:
            raise error
        except OSError:
            wait = core.pass_failed()
    assert wait == 0.5
    [record] = [r for r in caplog.records if r.getMessage() == "hookwise worker pass failed"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[1] is error


class FlakyClaim(MemoryStorage):
    """Its claim raises ``failures`` times, then works."""

    failures = 0
    raised = 0

    def claim(self, now: float, *, limit: int, lease: float, exclude: Any = ()) -> Any:
        if self.failures:
            self.failures -= 1
            self.raised += 1
            raise OSError("database is locked")
        return super().claim(now, limit=limit, lease=lease, exclude=exclude)


def test_a_failing_pass_does_not_kill_the_sync_worker(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyClaim()
    setup_team(store, URL, network=PUBLIC)
    store.failures = 1
    sent: list[httpx.Request] = []
    lock = threading.Lock()

    def answer(request: httpx.Request) -> httpx.Response:
        with lock:
            sent.append(request)
        return httpx.Response(200, text="ok")

    with (
        caplog.at_level(logging.ERROR, logger="hookwise"),
        hw.Dispatcher(
            store,
            network=PUBLIC,
            transport=httpx.MockTransport(answer),
            poll_interval=0.01,
            refresh_interval=0.0,
        ) as dispatcher,
    ):
        [delivery] = dispatcher.handle(alias_event())
        assert dispatcher.flush(timeout=10)
    assert store.raised == 1
    assert "hookwise worker pass failed" in caplog.messages
    assert stored_in(store, delivery.id).status is S.SUCCEEDED
    assert len(sent) == 1


def stored_in(store: hw.Storage, delivery_id: str) -> Delivery:
    delivery = store.get_delivery(delivery_id)
    assert delivery is not None
    return delivery


# -- settle, for any status ----------------------------------------------------------------

BASE = Delivery(
    id="d1",
    message_id="msg_1",
    team=TEAM,
    webhook=HOOK,
    automation="a",
    event_type="ADD_ARTIFACT_ALIAS",
    event_id="e1",
    created_at=NOW,
    display="{}",
    url=URL,
)


@given(status=st.integers(100, 599), number=st.integers(1, 10))
def test_settle_for_any_status(status: int, number: int) -> None:
    delivery = attrs.evolve(BASE, attempts=number - 1)
    t = settle(
        delivery,
        started=NOW + 1,
        elapsed=0.5,
        now=NOW + 1.5,
        retry=NO_JITTER,
        url=URL,
        response=response(status),
    )
    assert t.attempt.number == number
    assert (t.status is S.SUCCEEDED) == (200 <= status <= 299)
    assert t.status is not S.PENDING
    assert (t.next_attempt_at is not None) == (t.status is S.RETRYING)
    assert (t.finished_at is not None) == t.status.finished
    if t.finished_at is not None:
        assert t.finished_at == NOW + 1.5
    assert (t.disable is not None) == (status == 410)
    assert (t.attempt.error is None) == (t.status is S.SUCCEEDED)


def test_job_and_started_are_plain_values(memory: MemoryStorage, clock: Clock) -> None:
    core = make_core(memory, clock)
    queued(core)
    [job] = core.claim(10)
    assert isinstance(job, Job)
    assert TOKEN not in repr(job)  # the request's headers and the secrets stay out of reprs
    assert core.start().at == clock.now


# -- options, keys and the secret cache ------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"key": "not-a-key"}, "key"),
        ({"network": "https only"}, "network"),
        ({"retry": 3}, "retry"),
        ({"timout": 5.0}, "timout"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_dispatcher_options_are_checked_and_named(options: dict[str, Any], field: str) -> None:
    with pytest.raises(hw.ValidationError) as info:
        hw.Dispatcher(hw.MemoryStorage(), **options)
    assert info.value.field == field


def test_admin_checks_its_key_and_network() -> None:
    with pytest.raises(hw.ValidationError, match="key"):
        hw.Admin(hw.MemoryStorage(), key="hunter2")  # type: ignore[arg-type]
    with pytest.raises(hw.ValidationError, match="network"):
        hw.Admin(hw.MemoryStorage(), network=["127.0.0.0/8"])  # type: ignore[arg-type]


def test_the_key_given_seals_not_the_stores() -> None:
    store = hw.MemoryStorage()  # keeps a random key of its own
    key = hw.SecretKey.generate()
    hw.Admin(store, key=key).create_secret(hw.Secret(team=TEAM, name="T", value="v"))
    record = store.get_secret(TEAM, "T")
    assert record is not None
    assert Vault(key).open_secret(record) == "v"
    with pytest.raises(hw.SecretKeyError):
        Vault(store.key).open_secret(record)


class RotatingStore(hw.MemoryStorage):
    """Rotates a secret while a reader is between reading and caching it."""

    rotate: Callable[[], None] | None = None

    def get_secret(self, team: str, name: str) -> SecretRecord | None:
        record = super().get_secret(team, name)
        if self.rotate is not None:
            rotate, self.rotate = self.rotate, None
            rotate()
        return record


def test_a_secret_read_before_a_rotation_is_not_kept_after_it() -> None:
    store = RotatingStore()
    admin = hw.Admin(store)
    admin.create_secret(hw.Secret(team=TEAM, name="T", value="old"))
    keyring = Keyring(store, Vault(store.key))

    def rotation() -> None:
        admin.update_secret(hw.Secret(team=TEAM, name="T", value="new"))
        keyring.clear()  # what a refresh does when the revision moves

    store.rotate = rotation
    assert keyring.secret(TEAM, "T") == "old"  # read before the rotation landed
    assert keyring.secret(TEAM, "T") == "new"  # but not cached past it
