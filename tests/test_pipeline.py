"""The worker's pipeline decided alone (hookwise.scheduler): fake clocks,
fake jobs, no I/O. Each test states one rule a broken scheduler would break."""

from __future__ import annotations

import itertools

import pytest

from hookwise.outcome import Transition
from hookwise.scheduler import (
    BREAKER_BASE,
    CLAIM_BATCH,
    LEASE_MARGIN,
    WRITE_BATCH,
    WRITE_LINGER,
    Job,
    Plan,
    Scheduler,
    Settled,
)
from hookwise.storage.protocol import Attempt, Claim, Delivery, DeliveryStatus
from hookwise.wire import OutgoingRequest

TIMEOUT = 10.0
LEASE = TIMEOUT + 60.0
_ids = itertools.count()


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 100.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def make(clocks: Clocks, *, concurrency: int = 4, per_webhook: int = 2, threshold: int = 3):
    return Scheduler(
        concurrency=concurrency,
        webhook_concurrency=per_webhook,
        breaker_threshold=threshold,
        timeout=TIMEOUT,
        poll_interval=1.0,
        clock=lambda: clocks.wall,
        unsent=lambda job: Settled(job, None),
        monotonic=lambda: clocks.mono,
    )


def job(
    clocks: Clocks,
    webhook: str = "a",
    *,
    team: str = "t",
    cap: int | None = None,
    rate: float | None = None,
    lease: float = LEASE,
    sendable: bool = True,
) -> Job:
    n = next(_ids)
    delivery = Delivery(
        id=f"d{n}",
        message_id=f"msg_{n}",
        team=team,
        webhook=webhook,
        automation="auto",
        event_type="ADD_ARTIFACT_ALIAS",
        event_id=f"e{n}",
        created_at=clocks.wall,
        display="{}",
        url="https://example.com/hook",
    )
    claim = Claim(delivery, b"sealed", f"lease{n}", clocks.wall + lease)
    request = OutgoingRequest("POST", delivery.url, {}, b"{}") if sendable else None
    return Job(claim, request, None if sendable else "refused", cap=cap, rate=rate)


def result(j: Job, healthy: bool | None) -> Settled:
    status = {True: DeliveryStatus.SUCCEEDED, False: DeliveryStatus.RETRYING}.get(
        healthy, DeliveryStatus.FAILED
    )
    attempt = Attempt(j.claim.delivery.id, 1, 0.0, 0.01, j.claim.delivery.url)
    return Settled(j, Transition(attempt, status, None, None, healthy=healthy))


def claim(s: Scheduler, jobs: list[Job], *, wait: float | None = None) -> Plan:
    plan = s.plan()
    assert plan.claim, "a claim was expected"
    s.claimed(plan, jobs, wait=wait)
    return plan


def take_all(s: Scheduler) -> list[Job]:
    taken = []
    while (j := s.take()) is not None:
        taken.append(j)
    return taken


# -- in flight -----------------------------------------------------------------------


def test_never_more_than_concurrency_nor_a_webhooks_cap_in_flight() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=4, per_webhook=2)
    claim(s, [job(clocks, "a") for _ in range(5)] + [job(clocks, "b") for _ in range(5)])
    taken = take_all(s)
    assert len(taken) == 4
    assert sorted(j.lane[1] for j in taken) == ["a", "a", "b", "b"]
    assert s.in_flight == 4


def test_a_webhooks_own_cap_wins_but_never_past_concurrency() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=3, per_webhook=1)
    claim(s, [job(clocks, "a", cap=10) for _ in range(5)])
    assert len(take_all(s)) == 3  # cap 10, bounded by concurrency


def test_endpoints_take_turns() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=1, per_webhook=1)
    claim(s, [job(clocks, "a") for _ in range(3)] + [job(clocks, "b") for _ in range(3)])
    order = []
    current = s.take()
    while current is not None:
        order.append(current.lane[1])
        current = s.done(result(current, True))
    assert order == ["a", "b", "a", "b", "a", "b"]


def test_done_hands_back_the_next_job_at_once() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=1, per_webhook=1)
    first, second = job(clocks), job(clocks)
    claim(s, [first, second])
    assert s.take() is first
    assert s.take() is None  # the one slot is taken
    assert s.done(result(first, True)) is second


# -- rate limits ---------------------------------------------------------------------


def test_a_token_bucket_paces_one_webhook() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=10, per_webhook=10)
    claim(s, [job(clocks, "a", rate=2.0, cap=10) for _ in range(10)])
    first = take_all(s)
    assert len(first) == 2  # the burst: a second's worth
    for j in first:
        assert s.done(result(j, True)) is None  # no token yet
    assert s.take() is None
    clocks.advance(WRITE_LINGER)
    assert len(s.plan().write) == 2  # (the results out of the way)
    s.written(ok=True)
    assert s.take() is None
    assert s.next_wake() == pytest.approx(0.5 - WRITE_LINGER)
    clocks.advance(0.5 - WRITE_LINGER)
    assert len(take_all(s)) == 1
    clocks.advance(1.0)
    assert len(take_all(s)) == 2


def test_a_rate_limited_webhook_does_not_slow_the_others() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=4, per_webhook=4)
    claim(s, [job(clocks, "slow", rate=0.1) for _ in range(3)] + [job(clocks, "b")])
    taken = take_all(s)
    assert sorted(j.lane[1] for j in taken) == ["b", "slow"]


# -- claims --------------------------------------------------------------------------


def test_claims_ask_for_a_batch_and_one_at_a_time() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=4, per_webhook=4)
    plan = s.plan()
    assert plan.claim == max(2 * 4, CLAIM_BATCH)
    assert s.plan().claim == 0  # one claim under way at a time
    s.claimed(plan, [job(clocks, "a") for _ in range(plan.claim)])
    assert s.plan().claim == 0  # a full round could start: nothing more to claim
    take_all(s)
    plan = s.plan()  # 28 wait, none could start now: claim others, passing these over
    assert plan.claim == CLAIM_BATCH
    assert plan.exclude == (("t", "a"),)


def test_jobs_behind_a_full_endpoint_do_not_hold_claims_back() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=4, per_webhook=2)
    claim(s, [job(clocks, "slow") for _ in range(CLAIM_BATCH)])
    assert len(take_all(s)) == 2  # its cap
    plan = s.plan()
    assert plan.claim > 0  # 30 wait, but none of them could start
    assert ("t", "slow") in plan.exclude  # and the claim passes them over


def test_a_short_claim_idles_until_poked_or_due() -> None:
    clocks = Clocks()
    s = make(clocks)
    claim(s, [], wait=0.3)
    assert not s.plan()
    assert s.next_wake() == pytest.approx(0.3)
    s.poke()
    assert s.plan().claim > 0


def test_room_again_on_a_passed_over_endpoint_ends_the_idle() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=2, per_webhook=1)
    claim(s, [job(clocks, "a"), job(clocks, "a")])  # short: idle
    [first] = take_all(s)
    s.poke()
    plan = s.plan()
    assert plan.exclude == (("t", "a"),)
    s.claimed(plan, [])  # nothing else due: idle
    assert not s.plan()
    second = s.done(result(first, True))  # takes the last waiting one: room again
    assert second is not None
    assert s.plan().claim > 0


def test_a_paused_endpoint_is_passed_over_and_same_name_elsewhere_is_not() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=4, per_webhook=4, threshold=1)
    claim(s, [job(clocks, "a"), job(clocks, "a", team="other")])
    taken = take_all(s)
    mine = next(j for j in taken if j.lane == ("t", "a"))
    s.done(result(mine, False))  # threshold 1: paused
    for j in taken:
        if j is not mine:
            s.done(result(j, True))
    s.poke()
    plan = s.plan()
    assert ("t", "a") in plan.exclude
    assert ("other", "a") not in plan.exclude


# -- results -------------------------------------------------------------------------


def test_results_wait_for_a_batch_or_the_linger() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=1, per_webhook=1)
    claim(s, [job(clocks)])
    j = s.take()
    assert j is not None
    s.done(result(j, True))
    assert s.plan().write == ()
    assert s.next_wake() == pytest.approx(WRITE_LINGER)
    clocks.advance(WRITE_LINGER)
    write = s.plan().write
    assert [item.job for item in write] == [j]
    assert s.plan().write == ()  # one write at a time, and it took them all
    s.written(ok=True)
    assert not s.busy()


def test_a_full_batch_is_written_at_once() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=WRITE_BATCH, per_webhook=WRITE_BATCH)
    claim(s, [job(clocks) for _ in range(WRITE_BATCH)])
    for j in take_all(s):
        s.done(result(j, True))
    assert len(s.plan().write) == WRITE_BATCH


def test_a_failed_write_is_kept_first_backed_off_and_never_sent_again() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=2, per_webhook=2)
    a, b = job(clocks), job(clocks)
    claim(s, [a, b])
    s.done(result(s.take() or a, True))
    clocks.advance(WRITE_LINGER)
    batch = s.plan().write
    s.done(result(s.take() or b, True))  # arrives while the write is under way
    s.written(ok=False, batch=batch)
    assert s.plan().write == ()  # backing off
    clocks.advance(0.05)
    retried = s.plan().write
    assert [item.job for item in retried] == [a, b]  # the failed batch first
    s.written(ok=False, batch=retried)
    clocks.advance(0.05)
    assert s.plan().write == ()  # the second wait is longer
    clocks.advance(0.05)
    assert s.plan().write
    assert s.take() is None  # nothing came back to be sent


# -- the breaker ---------------------------------------------------------------------


def test_the_breaker_pauses_gives_back_probes_and_closes() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=1, per_webhook=3, threshold=3)
    claim(s, [job(clocks, "a") for _ in range(8)])
    current = s.take()
    for _ in range(3):
        assert current is not None
        current = s.done(result(current, False))
    # paused: nothing taken, the 5 waiting go back, due when the pause ends
    assert current is None
    assert s.take() is None
    plan = s.plan()
    [(claims, due)] = plan.release
    assert len(claims) == 5
    assert due == pytest.approx(clocks.wall + BREAKER_BASE)
    s.released()


def test_after_the_pause_one_probe_decides() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=3, per_webhook=3, threshold=3)
    claim(s, [job(clocks, "b") for _ in range(3)])
    for j in take_all(s):
        assert s.done(result(j, False)) is None  # the third opens the breaker
    clocks.advance(BREAKER_BASE)
    s.poke()
    claim(s, [job(clocks, "b") for _ in range(3)])
    probe = s.take()
    assert probe is not None
    assert s.take() is None  # half open: one probe at a time
    assert s.done(result(probe, True)) is not None  # closed: the full cap again
    assert s.take() is not None


def test_a_failing_probe_pauses_twice_as_long() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=1, per_webhook=1, threshold=1)
    claim(s, [job(clocks, "a")])
    s.done(result(s.take() or job(clocks), False))  # open: 5 s
    clocks.advance(BREAKER_BASE)
    claim(s, [job(clocks, "a"), job(clocks, "a")])
    probe = s.take()
    assert probe is not None
    s.done(result(probe, False))
    [(_, due)] = s.plan().release
    assert due == pytest.approx(clocks.wall + 2 * BREAKER_BASE)


def test_answers_that_say_nothing_neither_count_nor_reset() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=1, per_webhook=1, threshold=2)
    claim(s, [job(clocks, "a") for _ in range(4)])
    current = s.take()
    for healthy in (False, None):  # a 5xx, then a 404
        assert current is not None
        current = s.done(result(current, healthy))
    assert current is not None
    assert s.done(result(current, False)) is None  # the second failure in a row: paused


# -- leases and stopping -------------------------------------------------------------


def test_a_job_whose_lease_is_too_short_is_given_back_not_sent() -> None:
    clocks = Clocks()
    s = make(clocks)
    short = job(clocks, lease=TIMEOUT + LEASE_MARGIN - 1)
    fine = job(clocks)
    claim(s, [short, fine])
    assert take_all(s) == [fine]
    [(claims, due)] = s.plan().release
    assert claims == (short.claim,)
    assert due == clocks.wall


def test_doomed_jobs_go_straight_to_the_writer() -> None:
    clocks = Clocks()
    s = make(clocks)
    doomed = job(clocks, sendable=False)
    claim(s, [doomed])
    assert s.take() is None
    clocks.advance(WRITE_LINGER)
    assert [item.job for item in s.plan().write] == [doomed]


def test_stop_gives_everything_back_and_busy_tells_the_truth() -> None:
    clocks = Clocks()
    s = make(clocks, concurrency=1, per_webhook=1)
    assert not s.busy()
    waiting, flying = job(clocks), job(clocks)
    claim(s, [flying, waiting])
    assert s.take() is flying
    assert s.busy()
    s.stop()
    s.abandon([flying])
    assert s.take() is None
    plan = s.plan()
    assert plan.claim == 0
    given_back = [c for claims, _ in plan.release for c in claims]
    assert given_back == [waiting.claim, flying.claim]
    assert all(due == clocks.wall for _, due in plan.release)
    s.released()
    s.done(result(flying, True))  # its answer still comes, and is still written
    assert s.busy()
    write = s.plan().write  # stopping: no linger
    assert len(write) == 1
    s.written(ok=True)
    assert not s.busy()
