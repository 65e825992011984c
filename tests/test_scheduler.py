"""The sans-I/O pipeline (:class:`hookwise.scheduler.Scheduler`) alone: fake
clocks, fake jobs, no storage and no sockets. Each test drives the scheduler
the way a shell does (plan, claimed, take, done, written, released) and
checks what it decides."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from hookwise.outcome import Transition
from hookwise.scheduler import (
    BREAKER_BASE,
    BREAKER_MAX,
    CLAIM_BATCH,
    LEASE_MARGIN,
    MAX_WAITING_BATCHES,
    WRITE_BACKOFF,
    WRITE_BATCH,
    WRITE_LINGER,
    Job,
    Plan,
    Scheduler,
    Settled,
)
from hookwise.storage.protocol import Attempt, Claim, Delivery, DeliveryStatus
from hookwise.wire import OutgoingRequest

TEAM = "team"
TIMEOUT = 10.0
REQUEST = OutgoingRequest("POST", "https://hooks.example.com/x", {}, b"{}")


class Clocks:
    """A wall clock (the store's: leases, due times) and a monotonic one
    (pacing: rates, pauses, lingering), moved by hand. They start far apart
    and far from zero, so a mix-up between them, or a default of 0, shows."""

    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 500.0

    def clock(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


_ids = itertools.count()


def make_job(
    clocks: Clocks,
    webhook: str = "a",
    *,
    lease: float = 100.0,
    cap: int | None = None,
    rate: float | None = None,
    request: OutgoingRequest | None = REQUEST,
    error: str | None = None,
) -> Job:
    n = next(_ids)
    delivery = Delivery(
        id=f"d{n}",
        message_id=f"msg_{n}",
        team=TEAM,
        webhook=webhook,
        automation="auto",
        event_type="ADD_ARTIFACT_ALIAS",
        event_id=f"e{n}",
        created_at=clocks.wall,
        display="{}",
        url="https://hooks.example.com/x",
    )
    claim = Claim(delivery, b"sealed", f"lease-{n}", clocks.wall + lease)
    return Job(claim, request, error, cap=cap, rate=rate)


def jobs(clocks: Clocks, webhook: str, count: int, **kwargs: object) -> list[Job]:
    return [make_job(clocks, webhook, **kwargs) for _ in range(count)]  # type: ignore[arg-type]


def result(job: Job, healthy: bool | None) -> Settled:
    """What an attempt says of its endpoint: True (2xx), False (5xx, no
    answer), None (another 4xx, a refusal)."""
    status = {
        True: DeliveryStatus.SUCCEEDED,
        False: DeliveryStatus.RETRYING,
        None: DeliveryStatus.FAILED,
    }[healthy]
    attempt = Attempt(
        delivery_id=job.claim.delivery.id, number=1, started_at=0.0, elapsed=0.0, url="u"
    )
    return Settled(job, Transition(attempt, status, None, None, healthy=healthy))


def make(
    clocks: Clocks,
    *,
    concurrency: int = 4,
    webhook_concurrency: int = 2,
    breaker_threshold: int = 3,
    poll_interval: float = 30.0,
    unsent: object = None,
) -> Scheduler:
    return Scheduler(
        concurrency=concurrency,
        webhook_concurrency=webhook_concurrency,
        breaker_threshold=breaker_threshold,
        timeout=TIMEOUT,
        poll_interval=poll_interval,
        clock=clocks.clock,
        unsent=unsent if unsent is not None else (lambda job: Settled(job, None)),  # type: ignore[arg-type]
        monotonic=clocks.monotonic,
    )


def feed(scheduler: Scheduler, batch: list[Job]) -> None:
    """A claim that brought exactly what it asked for (so not a short one)."""
    scheduler.claimed(Plan(claim=len(batch)), batch)


def take_all(scheduler: Scheduler) -> list[Job]:
    taken = []
    while (job := scheduler.take()) is not None:
        taken.append(job)
    return taken


def settle_storage_work(scheduler: Scheduler) -> Plan:
    """Plan, and report every part done as the shells do: releases made,
    writes written, a claim that found nothing due (so it idles)."""
    plan = scheduler.plan()
    if plan.release:
        scheduler.released()
    if plan.write:
        scheduler.written(ok=True)
    if plan.claim:
        scheduler.claimed(plan, [], wait=None)
    return plan


def lanes_of(taken: list[Job]) -> list[str]:
    return [job.claim.delivery.webhook for job in taken]


def claims_of(batch: list[Job]) -> tuple[Claim, ...]:
    return tuple(job.claim for job in batch)


# -- caps and turns ------------------------------------------------------------


def test_never_more_than_concurrency_in_flight() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=4, webhook_concurrency=4)
    every = jobs(clocks, "a", 6) + jobs(clocks, "b", 6) + jobs(clocks, "c", 6)
    feed(scheduler, every)
    flying = take_all(scheduler)
    assert len(flying) == 4
    assert scheduler.in_flight == 4
    assert scheduler.take() is None

    # finish them in a random order: the pipeline stays full and within bounds
    rng = random.Random(7)
    sent: list[Job] = list(flying)
    while flying:
        job = flying.pop(rng.randrange(len(flying)))
        following = scheduler.done(result(job, True))
        more = ([] if following is None else [following]) + take_all(scheduler)
        flying += more
        sent += more
        assert len(flying) == scheduler.in_flight <= 4
        assert max(Counter(lanes_of(flying)).values(), default=0) <= 4
        if len(sent) < len(every):  # a free slot is used at once while jobs wait
            assert len(flying) == 4
    tokens = sorted(j.claim.lease_token for j in sent)
    assert tokens == sorted(j.claim.lease_token for j in every)  # each sent, once


def test_a_lane_never_exceeds_its_cap() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=8, webhook_concurrency=2)
    feed(scheduler, jobs(clocks, "default", 5))
    taken = take_all(scheduler)
    assert lanes_of(taken) == ["default", "default"]  # webhook_concurrency, not concurrency
    assert scheduler.in_flight == 2

    feed(scheduler, jobs(clocks, "own", 5, cap=3))  # Webhook.max_in_flight
    taken += take_all(scheduler)
    assert Counter(lanes_of(taken)) == {"default": 2, "own": 3}

    feed(scheduler, jobs(clocks, "huge", 10, cap=50))  # never more than the worker's slots
    taken += take_all(scheduler)
    assert Counter(lanes_of(taken)) == {"default": 2, "own": 3, "huge": 3}
    assert scheduler.in_flight == 8

    # a freed slot of a full lane goes to that lane's next job, within its cap
    first_default = next(j for j in taken if j.claim.delivery.webhook == "default")
    following = scheduler.done(result(first_default, True))
    assert following is not None
    flying = Counter(lanes_of(taken)) - Counter(["default"]) + Counter(lanes_of([following]))
    assert flying["default"] <= 2
    assert flying["own"] <= 3
    assert scheduler.in_flight == 8


def test_takes_alternate_between_lanes() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=30, webhook_concurrency=30)
    feed(scheduler, jobs(clocks, "a", 10) + jobs(clocks, "b", 10))
    assert lanes_of(take_all(scheduler)) == ["a", "b"] * 10


def test_a_freed_slot_goes_to_the_other_lane_in_turn() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=1, webhook_concurrency=1)
    feed(scheduler, jobs(clocks, "a", 5) + jobs(clocks, "b", 5) + jobs(clocks, "c", 5))
    job = scheduler.take()
    order = []
    while job is not None:
        order.append(job.claim.delivery.webhook)
        assert scheduler.take() is None  # one slot
        job = scheduler.done(result(job, True))
    assert order == ["a", "b", "c"] * 5


def test_a_lane_first_in_line_does_not_starve_a_later_one() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=2, webhook_concurrency=2)
    feed(scheduler, jobs(clocks, "busy", 50))
    flying = take_all(scheduler)
    feed(scheduler, jobs(clocks, "late", 1))
    # a new lane joins the back of the line: it has one of the next two slots
    following = [scheduler.done(result(job, True)) for job in flying]
    assert [j.claim.delivery.webhook for j in following if j is not None].count("late") == 1


# -- the token bucket ----------------------------------------------------------


def test_a_rate_allows_the_burst_then_the_rate() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=100, webhook_concurrency=100)
    feed(scheduler, jobs(clocks, "a", 60, rate=2.0, cap=100))
    assert len(take_all(scheduler)) == 2  # the burst: max(1, rate)
    assert scheduler.next_wake() == pytest.approx(0.5)  # one token at 2/s
    clocks.advance(0.25)
    assert scheduler.take() is None
    assert scheduler.next_wake() == pytest.approx(0.25)
    clocks.advance(0.25)
    assert scheduler.take() is not None
    assert scheduler.take() is None

    taken, elapsed = 3, 0.5
    while elapsed < 10.0:
        clocks.advance(0.125)
        elapsed += 0.125
        taken += len(take_all(scheduler))
        assert taken <= 2 + 2 * elapsed + 1e-9  # at most the burst, then 2 a second
        assert taken >= 2 * elapsed - 1e-9  # and it keeps going at the rate
    assert taken == 22


def test_an_idle_bucket_fills_up_to_the_burst_only() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=100, webhook_concurrency=100)
    feed(scheduler, jobs(clocks, "a", 20, rate=3.0, cap=100, lease=1000.0))
    assert len(take_all(scheduler)) == 3
    clocks.advance(60.0)
    assert len(take_all(scheduler)) == 3  # not 180: the burst is max(1, rate)


def test_a_rate_below_one_a_second() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=10, webhook_concurrency=10)
    feed(scheduler, jobs(clocks, "a", 5, rate=0.5))
    assert len(take_all(scheduler)) == 1  # a burst of one
    assert scheduler.next_wake() == pytest.approx(2.0)
    clocks.advance(1.875)
    assert scheduler.take() is None
    clocks.advance(0.125)
    assert scheduler.take() is not None


def test_the_rate_holds_when_a_lane_empties_between_claims() -> None:
    # A webhook with rate_limit=1 whose requests finish quickly, its
    # deliveries coming in one per claim (events spread out in time): the
    # lane empties after each send. A token spent must stay spent.
    clocks = Clocks()
    scheduler = make(clocks, concurrency=4, webhook_concurrency=4)
    feed(scheduler, [make_job(clocks, "a", rate=1.0)])
    first = scheduler.take()
    assert first is not None
    clocks.advance(0.125)
    assert scheduler.done(result(first, True)) is None
    clocks.advance(0.125)
    feed(scheduler, [make_job(clocks, "a", rate=1.0)])
    assert scheduler.take() is None, "a second request 0.25 s after the first at 1/s"
    clocks.advance(0.75)
    assert scheduler.take() is not None


# -- claiming ahead ------------------------------------------------------------


@pytest.mark.parametrize(("concurrency", "batch"), [(1, CLAIM_BATCH), (4, CLAIM_BATCH), (40, 80)])
def test_a_claim_asks_for_a_batch(concurrency: int, batch: int) -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=concurrency)
    plan = scheduler.plan()
    assert plan.claim == batch == max(2 * concurrency, CLAIM_BATCH)
    assert plan.exclude == ()
    assert plan.release == ()
    assert plan.write == ()


def test_a_claim_asks_for_the_batch_less_what_can_start() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=4, webhook_concurrency=2)
    feed(scheduler, jobs(clocks, "a", 1))
    assert scheduler.plan().claim == CLAIM_BATCH - 1
    scheduler.claimed(Plan(claim=1), jobs(clocks, "b", 1))
    assert scheduler.plan().claim == CLAIM_BATCH - 2
    scheduler.claimed(Plan(claim=1), jobs(clocks, "c", 1))
    assert scheduler.plan().claim == CLAIM_BATCH - 3
    scheduler.claimed(Plan(claim=1), jobs(clocks, "d", 1))
    # four could start now: no claim until fewer than `concurrency` can
    assert scheduler.plan().claim == 0
    take_all(scheduler)
    assert scheduler.plan().claim == CLAIM_BATCH


def test_jobs_behind_a_full_lane_do_not_count_as_startable() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=4, webhook_concurrency=2)
    feed(scheduler, jobs(clocks, "slow", 6))
    take_all(scheduler)  # its two slots are busy; four wait behind them
    plan = scheduler.plan()
    assert plan.claim == CLAIM_BATCH  # none of the four can start
    assert plan.exclude == ((TEAM, "slow"),)


def test_one_claim_at_a_time() -> None:
    clocks = Clocks()
    scheduler = make(clocks)
    first = scheduler.plan()
    assert first.claim > 0
    assert scheduler.plan().claim == 0  # under way
    clocks.advance(100.0)
    assert scheduler.plan().claim == 0  # however long it takes
    scheduler.claimed(first, jobs(clocks, "a", first.claim))  # a full claim
    take_all(scheduler)
    assert scheduler.plan().claim > 0

    second = scheduler.plan()
    assert second.claim == 0
    scheduler.claim_failed()  # a failed claim ends it too, and waits a poll interval
    assert scheduler.plan().claim == 0
    clocks.advance(30.0)
    assert scheduler.plan().claim > 0


def test_claims_pass_over_lanes_with_enough_waiting() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=8, webhook_concurrency=2)
    feed(scheduler, jobs(clocks, "a", 3) + jobs(clocks, "b", 1) + jobs(clocks, "c", 2))
    feed(scheduler, jobs(clocks, "limited", 1, rate=1.0))  # a quota of about a second's worth
    plan = scheduler.plan()
    assert plan.claim > 0
    assert set(plan.exclude) == {(TEAM, "a"), (TEAM, "c"), (TEAM, "limited")}
    assert plan.exclude[0] == (TEAM, "a")  # the longest backlog first


def test_claims_pass_over_a_paused_lane() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=8, webhook_concurrency=2, breaker_threshold=1)
    feed(scheduler, jobs(clocks, "broken", 1))
    [job] = take_all(scheduler)
    scheduler.done(result(job, False))  # nothing waits there, but it is paused
    plan = scheduler.plan()
    assert plan.claim > 0
    assert plan.exclude == ((TEAM, "broken"),)
    scheduler.claimed(plan, [], wait=None)
    clocks.advance(BREAKER_BASE)
    scheduler.poke()
    assert scheduler.plan().exclude == ()  # the pause is over: its probe may be claimed


def test_a_short_claim_idles_until_the_wait_passes() -> None:
    clocks = Clocks()
    scheduler = make(clocks, poll_interval=1.0)
    plan = scheduler.plan()
    scheduler.claimed(plan, [], wait=0.25)  # the store's next due time
    assert scheduler.plan().claim == 0
    assert scheduler.next_wake() == pytest.approx(0.25)
    clocks.advance(0.125)
    assert scheduler.plan().claim == 0
    clocks.advance(0.125)
    plan = scheduler.plan()
    assert plan.claim > 0

    scheduler.claimed(plan, [], wait=None)  # nothing due at all: the poll interval
    clocks.advance(0.875)
    assert scheduler.plan().claim == 0
    clocks.advance(0.125)
    plan = scheduler.plan()
    assert plan.claim > 0

    scheduler.claimed(plan, [], wait=500.0)  # never longer than the poll interval
    clocks.advance(1.0)
    assert scheduler.plan().claim > 0


def test_a_poke_ends_the_idling() -> None:
    clocks = Clocks()
    scheduler = make(clocks, poll_interval=10.0)
    plan = scheduler.plan()
    scheduler.claimed(plan, jobs(clocks, "a", 1), wait=None)  # fewer than asked
    take_all(scheduler)
    assert scheduler.plan().claim == 0
    scheduler.poke()
    assert scheduler.plan().claim > 0


def test_taking_from_a_passed_over_lane_below_its_quota_claims_again() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=4, webhook_concurrency=2, poll_interval=30.0)
    scheduler.claimed(Plan(claim=1), [make_job(clocks, "b")])
    feed(scheduler, jobs(clocks, "a", 2))
    plan = scheduler.plan()
    assert plan.exclude == ((TEAM, "a"),)  # "a" has its quota (2) waiting
    scheduler.claimed(plan, [], wait=None)  # short: idle for the poll interval
    assert scheduler.plan().claim == 0

    first = scheduler.take()
    assert first is not None
    assert first.claim.delivery.webhook == "b"
    assert scheduler.plan().claim == 0  # "b" was not passed over: still idle

    second = scheduler.take()
    assert second is not None
    assert second.claim.delivery.webhook == "a"
    plan = scheduler.plan()  # "a" fell below its quota: what was passed over may be due
    assert plan.claim > 0
    assert plan.exclude == ()


def test_no_claim_while_many_batches_wait() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=4, webhook_concurrency=2)
    most = MAX_WAITING_BATCHES * CLAIM_BATCH
    feed(scheduler, jobs(clocks, "a", most + 2))
    take_all(scheduler)  # `most` wait, none can start
    assert scheduler.plan().claim == 0


# -- writing results -----------------------------------------------------------


def test_a_result_is_written_once_the_oldest_lingered() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=8, webhook_concurrency=8)
    feed(scheduler, jobs(clocks, "a", 3))
    a, b, c = take_all(scheduler)
    start = clocks.mono
    scheduler.done(result(a, True))
    assert scheduler.plan().write == ()
    assert scheduler.next_wake() == pytest.approx(WRITE_LINGER)
    clocks.mono = start + WRITE_LINGER / 2
    scheduler.done(result(b, True))
    assert scheduler.plan().write == ()
    clocks.mono = start + WRITE_LINGER  # the oldest's linger counts, not the newest's
    plan = scheduler.plan()
    assert [s.job for s in plan.write] == [a, b]
    scheduler.written(ok=True)
    scheduler.done(result(c, True))
    assert scheduler.plan().write == ()  # a new batch lingers afresh


def test_a_full_batch_is_written_at_once() -> None:
    clocks = Clocks()
    n = WRITE_BATCH
    scheduler = make(clocks, concurrency=n, webhook_concurrency=n)
    feed(scheduler, jobs(clocks, "a", n))
    flying = take_all(scheduler)
    for job in flying[:-1]:
        scheduler.done(result(job, True))
    assert scheduler.plan().write == ()
    scheduler.done(result(flying[-1], True))
    plan = scheduler.plan()  # no time passed
    assert [s.job for s in plan.write] == flying


def test_never_two_writes_at_once() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=8, webhook_concurrency=8)
    feed(scheduler, jobs(clocks, "a", 3))
    a, b, c = take_all(scheduler)
    scheduler.done(result(a, True))
    clocks.advance(1.0)
    first = scheduler.plan()
    assert [s.job for s in first.write] == [a]
    scheduler.done(result(b, True))
    scheduler.done(result(c, True))
    clocks.advance(1.0)
    assert scheduler.plan().write == ()  # the first is under way
    assert scheduler.next_wake() > 0  # and nothing to wake for until it is reported
    scheduler.written(ok=True)
    assert [s.job for s in scheduler.plan().write] == [b, c]


def test_a_failed_write_is_kept_and_written_again_with_backoff() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=8, webhook_concurrency=8, poll_interval=1000.0)
    settle_storage_work(scheduler)  # nothing due: no claims get in the way below
    feed(scheduler, jobs(clocks, "a", 3))
    a, b, c = take_all(scheduler)
    scheduler.done(result(a, True))
    scheduler.done(result(b, True))
    clocks.advance(1.0)
    plan = scheduler.plan()
    assert [s.job for s in plan.write] == [a, b]
    scheduler.done(result(c, True))  # finished while the write was under way

    first, most = WRITE_BACKOFF
    waits = []
    wait = first
    for _ in range(12):
        scheduler.written(ok=False, batch=plan.write)
        assert scheduler.take() is None  # nothing goes back to be sent
        assert scheduler.in_flight == 0
        assert scheduler.busy()
        clocks.mono += wait * 0.99
        assert scheduler.plan().write == (), wait
        clocks.mono += wait * 0.01 + 1e-9
        plan = scheduler.plan()
        # the failed batch first, then what came in meanwhile, each once
        assert [s.job for s in plan.write] == [a, b, c]
        waits.append(wait)
        wait = min(most, wait * 2)
    assert waits[:4] == pytest.approx([first, first * 2, first * 4, first * 8])
    assert max(waits) == most  # bounded

    scheduler.written(ok=True)  # a success resets the backoff
    assert not scheduler.busy()
    feed(scheduler, jobs(clocks, "a", 1))
    [e] = take_all(scheduler)
    scheduler.done(result(e, True))
    clocks.advance(1.0)
    plan = scheduler.plan()
    scheduler.written(ok=False, batch=plan.write)
    clocks.mono += first + 1e-9
    assert [s.job for s in scheduler.plan().write] == [e]


def test_a_job_with_nothing_to_send_goes_straight_to_the_write() -> None:
    clocks = Clocks()
    seen: list[Job] = []

    def unsent(job: Job) -> Settled:
        seen.append(job)
        return result(job, None)

    scheduler = make(clocks, unsent=unsent)
    doomed = make_job(clocks, "a", request=None, error="webhook 'a' is disabled")
    feed(scheduler, [doomed, *jobs(clocks, "a", 1)])
    assert seen == [doomed]
    taken = take_all(scheduler)
    assert doomed not in taken
    assert len(taken) == 1
    clocks.advance(1.0)
    assert [s.job for s in scheduler.plan().write] == [doomed]


# -- the circuit breaker -------------------------------------------------------


def open_breaker(clocks: Clocks, scheduler: Scheduler) -> tuple[list[Job], list[Job]]:
    """Three failures in a row on lane "a" (cap 2, threshold 3), with jobs
    waiting behind them: (still in flight, still waiting when it opened)."""
    batch = jobs(clocks, "a", 8)
    feed(scheduler, batch)
    x, y = take_all(scheduler)
    z = scheduler.done(result(x, False))
    assert z is not None
    w = scheduler.done(result(y, False))
    assert w is not None
    assert scheduler.done(result(z, False)) is None  # the third: open, nothing more taken
    return [w], batch[4:]


def test_the_breaker_opens_after_consecutive_failures() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=8, webhook_concurrency=2, breaker_threshold=3)
    flying, waited = open_breaker(clocks, scheduler)
    opened_at = clocks.wall
    assert scheduler.take() is None
    plan = scheduler.plan()
    # what waited goes back to the store, due when the pause ends
    assert plan.release == ((claims_of(waited), opened_at + BREAKER_BASE),)
    assert (TEAM, "a") in plan.exclude
    scheduler.released()
    scheduler.claimed(plan, [], wait=None)

    # another endpoint is not held back
    feed(scheduler, jobs(clocks, "b", 2))
    assert lanes_of(take_all(scheduler)) == ["b", "b"]

    # a job for the paused lane (a claim that crossed the opening) waits
    feed(scheduler, jobs(clocks, "a", 2))
    assert scheduler.take() is None
    # the request still in flight when it opened ends: it does not count
    assert scheduler.done(result(flying[0], False)) is None
    clocks.advance(BREAKER_BASE - 0.125)
    assert scheduler.take() is None
    settle_storage_work(scheduler)  # the results are written
    assert scheduler.next_wake() == pytest.approx(0.125)  # the pause's end
    clocks.advance(0.125)
    assert scheduler.take() is not None  # a probe


def test_half_open_allows_one_probe_and_a_success_closes() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=8, webhook_concurrency=2, breaker_threshold=3)
    flying, _ = open_breaker(clocks, scheduler)
    scheduler.done(result(flying[0], False))
    feed(scheduler, jobs(clocks, "a", 5))
    clocks.advance(BREAKER_BASE)
    probe = scheduler.take()
    assert probe is not None
    assert scheduler.take() is None  # one probe at a time
    assert scheduler.plan().claim > 0  # only one of the waiting can start
    following = scheduler.done(result(probe, True))
    assert following is not None
    assert len(take_all(scheduler)) == 1  # the full cap (2) again
    assert scheduler.in_flight == 2


def test_a_failed_probe_reopens_for_twice_as_long() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=8, webhook_concurrency=2, breaker_threshold=3)
    flying, _ = open_breaker(clocks, scheduler)
    scheduler.done(result(flying[0], False))
    plan = scheduler.plan()
    scheduler.released()
    scheduler.claimed(plan, [], wait=None)

    pause = BREAKER_BASE
    for _ in range(10):
        clocks.advance(pause - 0.125)
        feed(scheduler, jobs(clocks, "a", 3, lease=10_000.0))
        assert scheduler.take() is None, pause  # still paused
        clocks.advance(0.125)
        probe = scheduler.take()
        assert probe is not None  # the probe, as the pause ends
        assert scheduler.take() is None  # and only one
        assert scheduler.done(result(probe, False)) is None  # one failure reopens
        pause = min(BREAKER_MAX, pause * 2)
        plan = scheduler.plan()
        [(claims, due)] = plan.release
        assert len(claims) == 2
        assert due == clocks.wall + pause  # twice as long as the last time
        scheduler.released()
        if plan.claim:
            scheduler.claimed(plan, [], wait=None)
    assert pause == BREAKER_MAX


def test_results_that_say_nothing_neither_count_nor_reset() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=1, webhook_concurrency=1, breaker_threshold=3)
    feed(scheduler, jobs(clocks, "a", 20))
    job = scheduler.take()
    assert job is not None
    for healthy in (False, False, None, None, None, None):
        job = scheduler.done(result(job, healthy))
        assert job is not None  # not open: None did not count
    assert scheduler.done(result(job, False)) is None  # None did not reset: third failure


def test_a_success_resets_the_count() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=1, webhook_concurrency=1, breaker_threshold=3)
    feed(scheduler, jobs(clocks, "a", 20))
    job = scheduler.take()
    assert job is not None
    for healthy in (False, False, True, False, False, True, False, False):
        job = scheduler.done(result(job, healthy))
        assert job is not None
    assert scheduler.done(result(job, False)) is None


def test_a_result_without_a_transition_says_nothing() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=1, webhook_concurrency=1, breaker_threshold=1)
    feed(scheduler, jobs(clocks, "a", 3))
    job = scheduler.take()
    assert job is not None
    job = scheduler.done(Settled(job, None))  # held for a key problem
    assert job is not None


# -- leases --------------------------------------------------------------------


def test_a_job_whose_lease_is_running_out_is_released_not_sent() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=8, webhook_concurrency=8)
    short = make_job(clocks, "a", lease=TIMEOUT + LEASE_MARGIN - 0.5)
    enough = make_job(clocks, "a", lease=TIMEOUT + LEASE_MARGIN)
    feed(scheduler, [short, enough])
    assert take_all(scheduler) == [enough]
    plan = scheduler.plan()
    assert plan.release == (((short.claim,), clocks.wall),)  # due now, for whoever claims it


def test_a_job_that_waited_too_long_is_released() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=1, webhook_concurrency=1)
    first, late, later = jobs(clocks, "a", 3, lease=100.0)
    feed(scheduler, [first, late, later])
    assert scheduler.take() is first
    clocks.advance(100.0 - TIMEOUT - LEASE_MARGIN + 1.0)  # a slow first request
    assert scheduler.done(result(first, True)) is None
    plan = scheduler.plan()
    assert plan.release == (((late.claim,), clocks.wall), ((later.claim,), clocks.wall))
    assert scheduler.in_flight == 0


# -- stopping ------------------------------------------------------------------


def test_stop_takes_and_claims_nothing_more_and_gives_back_what_waits() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=2, webhook_concurrency=1)
    a = jobs(clocks, "a", 3)
    b = jobs(clocks, "b", 3)
    feed(scheduler, a + b)
    flying = take_all(scheduler)
    assert len(flying) == 2
    scheduler.stop()
    assert scheduler.take() is None
    plan = scheduler.plan()
    assert plan.claim == 0
    [(claims, due)] = plan.release
    assert set(claims) == {j.claim for j in a[1:] + b[1:]}
    assert due == clocks.wall
    scheduler.released()
    # a send that ends now is recorded, and nothing else is taken
    assert scheduler.done(result(flying[0], True)) is None
    plan = scheduler.plan()  # stopping: written without lingering
    assert [s.job for s in plan.write] == [flying[0]]
    scheduler.written(ok=True)
    clocks.advance(1000.0)
    assert scheduler.plan().claim == 0


def test_abandon_gives_back_what_is_still_being_sent() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=4, webhook_concurrency=4)
    feed(scheduler, jobs(clocks, "a", 3))
    flying = take_all(scheduler)
    scheduler.stop()
    clocks.advance(2.0)
    scheduler.abandon(flying)
    plan = scheduler.plan()
    assert plan.release == ((claims_of(flying), clocks.wall),)
    scheduler.abandon([])
    scheduler.released()
    assert scheduler.plan().release == ()


def test_a_claim_that_comes_back_after_stop_is_given_back() -> None:
    # The async shell stops the pipeline while a claim may still run in a
    # thread; what it brings must go back to the store, not wait for good.
    clocks = Clocks()
    scheduler = make(clocks)
    plan = scheduler.plan()
    assert plan.claim > 0
    scheduler.stop()
    late = jobs(clocks, "a", 2)
    scheduler.claimed(plan, late)
    assert scheduler.take() is None
    release = scheduler.plan().release
    assert [c for claims, _ in release for c in claims] == [j.claim for j in late]
    assert all(due == clocks.wall for _, due in release)
    scheduler.released()
    assert not scheduler.busy()


def test_busy_while_anything_is_under_way() -> None:
    clocks = Clocks()
    scheduler = make(clocks, concurrency=4, webhook_concurrency=4)
    assert not scheduler.busy()

    plan = scheduler.plan()  # a claim under way
    assert scheduler.busy()
    scheduler.claimed(plan, [], wait=None)
    assert not scheduler.busy()

    feed(scheduler, jobs(clocks, "a", 2))  # waiting
    assert scheduler.busy()
    x, y = take_all(scheduler)  # in flight
    assert scheduler.busy()
    scheduler.done(result(x, True))
    scheduler.done(result(y, True))  # unwritten
    assert scheduler.busy()
    clocks.advance(1.0)
    plan = scheduler.plan()  # writing
    assert plan.write
    assert scheduler.busy()
    scheduler.written(ok=False, batch=plan.write)  # kept
    assert scheduler.busy()
    clocks.advance(WRITE_BACKOFF[1])
    plan = scheduler.plan()
    assert plan.write
    scheduler.written(ok=True)
    assert not scheduler.busy()

    feed(scheduler, [make_job(clocks, "a", lease=1.0)])
    assert scheduler.take() is None  # to be released
    assert scheduler.busy()
    plan = scheduler.plan()  # releasing
    assert plan.release
    assert scheduler.busy()
    scheduler.released()
    if plan.claim:
        scheduler.claimed(plan, [], wait=None)
    assert not scheduler.busy()


def test_a_claim_that_comes_back_after_stop_is_never_sent() -> None:
    clocks = Clocks()
    scheduler = make(clocks)
    feed(scheduler, jobs(clocks, "a", 1))
    plan = scheduler.plan()
    assert plan.claim > 0
    scheduler.stop()
    scheduler.claimed(plan, jobs(clocks, "a", 2))
    assert scheduler.take() is None
    clocks.advance(60.0)
    assert scheduler.take() is None
    assert scheduler.plan().claim == 0
