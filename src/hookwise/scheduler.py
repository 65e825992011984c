"""The worker's pipeline, decided once for both shells and without I/O.

A worker keeps up to ``concurrency`` requests in flight at all times: it
claims ahead in batches, starts the next job the moment a slot frees, and
writes finished attempts in batches. Between endpoints it is fair: each
webhook is a :class:`Lane` with its own cap on requests in flight, its own
token bucket, and a circuit breaker that pauses it after consecutive
failures, so a slow or broken receiver never holds back the others.

The shells ask :meth:`Scheduler.plan` what storage work to do, do it, and
report back; they take jobs with :meth:`Scheduler.take` and return results
with :meth:`Scheduler.done`. Everything here is behind one lock, so the
sync shell's sender threads and its coordinator can share it.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections import deque
from collections.abc import Callable

import attrs

from hookwise.outcome import Transition
from hookwise.storage.protocol import Claim
from hookwise.wire import OutgoingRequest

__all__ = ["BREAKER_BASE", "BREAKER_MAX", "Hold", "Job", "Lane", "Plan", "Scheduler", "Settled"]

BREAKER_BASE = 5.0
"""Seconds a webhook is paused the first time its breaker opens; doubled each
time it opens again without a success in between."""
BREAKER_MAX = 600.0
"""The longest pause, in seconds."""
LEASE_MARGIN = 5.0
"""A claimed job is sent only while its lease has ``timeout`` plus this left,
so a lease always outlives the request (the request's deadline is ``timeout``)."""
WRITE_BATCH, WRITE_LINGER = 32, 0.02
"""Results are written once this many are in, or the oldest has waited this
many seconds: fewer, larger transactions, at the cost of a few milliseconds
before the history shows an attempt."""
WRITE_BACKOFF = (0.05, 5.0)
"""First and longest wait before writing results again after a storage error."""
CLAIM_BATCH = 32
"""The fewest deliveries a claim asks for: each claim is a storage round
trip, so a small ``concurrency`` still claims in batches. Each endpoint's
share stays bounded by its quota (see :meth:`Lane.quota`)."""
MAX_WAITING_BATCHES = 8
"""At most this many claim batches wait in a worker, whatever their endpoints."""
MAX_EXCLUDED = 200
"""The most endpoints one claim passes over."""

_Key = tuple[str, str]


class Hold(enum.Enum):
    """Why a job waits instead of being attempted: this process's
    configuration is wrong, not the delivery, so it stays queued (no attempt
    counted) until someone fixes the configuration."""

    KEY = "key"  # no key it has opens the delivery's secrets or body
    NETWORK = "network"  # its NetworkPolicy refuses a URL that Admin accepted


@attrs.frozen(slots=True)
class Job:
    """A claimed delivery, ready to send (``request``) or already doomed
    (``error``), with its webhook's ``cap`` and ``rate`` (None: defaults)."""

    claim: Claim
    request: OutgoingRequest | None
    error: str | None = None
    secrets: tuple[str, ...] = attrs.field(default=(), repr=False)
    url: str = ""  # what the history shows: never a Slack URL, which is a credential
    held: Hold | None = None  # not an attempt: the delivery waits for the configuration
    cap: int | None = None
    rate: float | None = None

    @property
    def shown_url(self) -> str:
        return self.url or self.claim.delivery.url

    @property
    def lane(self) -> _Key:
        return self.claim.delivery.team, self.claim.delivery.webhook


@attrs.frozen(slots=True)
class Settled:
    """A job and what its attempt means (None: nothing was attempted, as for
    a job held by a :class:`Hold`)."""

    job: Job
    transition: Transition | None


@attrs.define(slots=True)
class Lane:
    """One webhook's share of the worker: what waits, what is in flight, its
    token bucket and its breaker."""

    cap: int
    rate: float | None
    waiting: deque[Job] = attrs.Factory(deque)
    in_flight: int = 0
    tokens: float = 0.0
    refilled: float = 0.0
    failures: int = 0  # consecutive
    opens: int = 0  # times the breaker opened since the last success
    paused_until: float = 0.0  # monotonic

    @property
    def quota(self) -> int:
        """How many jobs may wait here: enough to refill its slots, or about a
        second's worth at its rate, so nothing waits long enough to lose its lease."""
        if self.rate is None:
            return self.cap
        return max(1, min(self.cap, math.ceil(self.rate)))

    @property
    def limit(self) -> int:
        """Requests it may have in flight now: one probe while half open."""
        return 1 if self.opens else self.cap

    def refill(self, now: float) -> None:
        if self.rate is not None:
            burst = max(1.0, self.rate)
            self.tokens = min(burst, self.tokens + (now - self.refilled) * self.rate)
            self.refilled = now

    def full(self, now: float) -> bool:
        """Whether its bucket is full again: only then may the lane be
        forgotten, or a new one would start with a full burst too soon."""
        if self.rate is None:
            return True
        self.refill(now)
        return self.tokens >= max(1.0, self.rate)

    def ready_in(self, now: float) -> float | None:
        """Seconds until this lane may start a job (0: now), None while its
        slots are full (a finishing request frees one)."""
        if self.paused_until > now:
            return self.paused_until - now
        if self.in_flight >= self.limit:
            return None
        if self.rate is not None:
            self.refill(now)
            if self.tokens < 1.0:
                return (1.0 - self.tokens) / self.rate
        return 0.0


@attrs.frozen(slots=True)
class Plan:
    """The storage work a worker should do now: give back ``release`` (each
    list with the wall time its claims are due again), write ``write``, and
    claim ``claim`` more, passing over ``exclude``."""

    release: tuple[tuple[tuple[Claim, ...], float], ...] = ()
    write: tuple[Settled, ...] = ()
    claim: int = 0
    exclude: tuple[_Key, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.release or self.write or self.claim)


class Scheduler:
    """Which claimed delivery goes next, and when to claim, write and release."""

    def __init__(
        self,
        *,
        concurrency: int,
        webhook_concurrency: int,
        breaker_threshold: int,
        timeout: float,
        poll_interval: float,
        clock: Callable[[], float],
        unsent: Callable[[Job], Settled],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.concurrency = concurrency
        self._per_webhook = webhook_concurrency
        self._threshold = breaker_threshold
        self._timeout = timeout
        self._poll = poll_interval
        self._clock = clock  # the store's: leases and due times
        self._unsent = unsent  # what a job with nothing to send means (the core's settle)
        self._monotonic = monotonic  # pacing: rates and pauses
        self._lock = threading.Lock()
        self._lanes: dict[_Key, Lane] = {}
        self._waiting = 0
        self._in_flight = 0
        self._results: deque[Settled] = deque()
        self._results_since = 0.0  # monotonic: when the oldest unwritten result came in
        self._release: list[tuple[tuple[Claim, ...], float]] = []
        self._claiming = False
        self._writing = False
        self._releasing = False
        self._idle_until = 0.0  # monotonic: nothing more was due when last claimed
        self._excluded: frozenset[_Key] = frozenset()
        self._write_after = 0.0
        self._write_backoff = 0.0
        self._stopped = False

    # -- what the shells ask -------------------------------------------------

    def plan(self) -> Plan:
        """The storage work to do now, marked as under way until reported."""
        with self._lock:
            now = self._monotonic()
            release: tuple[tuple[tuple[Claim, ...], float], ...] = ()
            if self._release and not self._releasing:
                release, self._release, self._releasing = tuple(self._release), [], True
            write: tuple[Settled, ...] = ()
            if self._results and not self._writing and now >= self._write_due():
                write, self._writing = tuple(self._results), True
                self._results.clear()
            claim, exclude = 0, tuple[_Key, ...]()
            # claim when fewer than a full round could start soon (jobs
            # waiting behind a full or paused endpoint do not count)
            batch = max(2 * self.concurrency, CLAIM_BATCH)
            startable = self._startable(now)
            if (
                not self._claiming
                and not self._stopped
                and now >= self._idle_until
                and startable < self.concurrency
                and self._waiting < MAX_WAITING_BATCHES * batch
            ):
                claim = batch - startable
                exclude = self._exclusions(now)
                self._claiming = True
            return Plan(release, write, claim, exclude)

    def _add_result(self, settled: Settled) -> None:
        if not self._results:
            self._results_since = self._monotonic()
        self._results.append(settled)

    def _startable(self, now: float) -> int:
        """How many waiting jobs their endpoints have room for."""
        count = 0
        for lane in self._lanes.values():
            if lane.waiting and lane.paused_until <= now:
                room = lane.limit - lane.in_flight
                count += min(len(lane.waiting), max(0, room))
        return count

    def _write_due(self) -> float:
        """When the results that are in should be written."""
        if len(self._results) >= WRITE_BATCH or self._stopped:
            return self._write_after
        return max(self._write_after, self._results_since + WRITE_LINGER)

    def _exclusions(self, now: float) -> tuple[_Key, ...]:
        """Endpoints with enough waiting, or paused: a claim passes over them,
        so one endpoint's backlog never fills the worker."""
        full = [
            (key, len(lane.waiting))
            for key, lane in self._lanes.items()
            if len(lane.waiting) >= lane.quota or lane.paused_until > now
        ]
        full.sort(key=lambda item: -item[1])
        return tuple(key for key, _ in full[:MAX_EXCLUDED])

    def claimed(self, plan: Plan, jobs: list[Job], *, wait: float | None = None) -> None:
        """A claim came back. Fewer than asked means nothing more is due: look
        again after ``wait`` seconds (the store's next due time), sooner if
        poked, or when an endpoint passed over has room again."""
        with self._lock:
            self._claiming = False
            if self._stopped:  # it came back too late: give it all back, due now
                if jobs:
                    self._release.append((tuple(job.claim for job in jobs), self._clock()))
                return
            self._excluded = frozenset(plan.exclude)
            for job in jobs:
                if job.request is None:  # doomed or held: nothing to send, only to write
                    self._add_result(self._unsent(job))
                    continue
                cap = min(job.cap or self._per_webhook, self.concurrency)
                lane = self._lanes.get(job.lane)
                if lane is None:
                    lane = self._lanes[job.lane] = Lane(cap, job.rate)
                    lane.tokens, lane.refilled = max(1.0, job.rate or 1.0), self._monotonic()
                lane.cap, lane.rate = cap, job.rate  # the webhook's latest settings
                lane.waiting.append(job)
                self._waiting += 1
            if len(jobs) < plan.claim:
                pause = self._poll if wait is None else min(self._poll, wait)
                self._idle_until = self._monotonic() + pause

    def claim_failed(self) -> None:
        with self._lock:
            self._claiming = False
            self._idle_until = self._monotonic() + self._poll

    def written(self, *, ok: bool, batch: tuple[Settled, ...] = ()) -> None:
        """Results were written, or not: then they are kept and written again
        later (never sent again), waiting longer after each failure."""
        with self._lock:
            self._writing = False
            if ok:
                self._write_backoff = 0.0
                return
            self._results.extendleft(reversed(batch))
            first, most = WRITE_BACKOFF
            self._write_backoff = min(most, max(first, self._write_backoff * 2))
            self._write_after = self._monotonic() + self._write_backoff

    def released(self) -> None:
        """A release was made, or failed: then the leases run out by
        themselves, and nothing is lost."""
        with self._lock:
            self._releasing = False

    def poke(self) -> None:
        """Something new may be due (an event, a redelivery): claim at once."""
        with self._lock:
            self._idle_until = 0.0

    def take(self) -> Job | None:
        """The next job to send, taking turns between endpoints, or None."""
        with self._lock:
            return self._take()

    def _take(self) -> Job | None:
        if self._in_flight >= self.concurrency or self._stopped:
            return None
        now, wall = self._monotonic(), self._clock()
        for key in list(self._lanes):
            lane = self._lanes[key]
            job = None
            while lane.waiting and lane.ready_in(now) == 0.0:
                job = lane.waiting.popleft()
                self._waiting -= 1
                if job.claim.lease_until - wall >= self._timeout + LEASE_MARGIN:
                    break
                # waited too long: give it back rather than risk a second sender
                self._release.append(((job.claim,), wall))
                job = None
            if job is None:
                continue
            # taking turns: this lane goes to the back of the line
            self._lanes[key] = self._lanes.pop(key)
            lane.in_flight += 1
            self._in_flight += 1
            if lane.rate is not None:
                lane.tokens -= 1.0
            if key in self._excluded and len(lane.waiting) < lane.quota:
                self._idle_until = 0.0  # room again: claim what it passed over
            return job
        return None

    def done(self, settled: Settled) -> Job | None:
        """A send finished: count it for its endpoint, queue its result for
        the next write, and hand back the next job to send, if any."""
        with self._lock:
            job = settled.job
            key = job.lane
            lane = self._lanes[key]
            lane.in_flight -= 1
            self._in_flight -= 1
            self._add_result(settled)
            healthy = None if settled.transition is None else settled.transition.healthy
            if healthy is True:
                lane.failures = lane.opens = 0
                lane.paused_until = 0.0
            elif healthy is False and lane.paused_until <= self._monotonic():
                lane.failures += 1
                if lane.opens or lane.failures >= self._threshold:
                    self._open(lane)
            if not (lane.waiting or lane.in_flight or lane.opens or lane.failures) and lane.full(
                self._monotonic()
            ):
                del self._lanes[key]  # forget endpoints with nothing going on
            return self._take()

    def _open(self, lane: Lane) -> None:
        """Pause an endpoint: its waiting jobs go back to the store, due when
        the pause ends; then one probe decides."""
        pause = min(BREAKER_MAX, BREAKER_BASE * 2**lane.opens)
        lane.opens += 1
        lane.failures = 0
        lane.paused_until = self._monotonic() + pause
        if lane.waiting:
            claims = tuple(job.claim for job in lane.waiting)
            self._release.append((claims, self._clock() + pause))
            self._waiting -= len(lane.waiting)
            lane.waiting.clear()

    # -- waiting and stopping ------------------------------------------------

    def busy(self) -> bool:
        """Whether anything is claimed, in flight, or not yet written."""
        with self._lock:
            return bool(
                self._waiting
                or self._in_flight
                or self._results
                or self._release
                or self._claiming
                or self._writing
                or self._releasing
            )

    def next_wake(self) -> float:
        """How long a coordinator may sleep before time alone changes what to
        do (anything else that changes it wakes the coordinator itself)."""
        with self._lock:
            now = self._monotonic()
            waits = [self._poll]
            if self._idle_until > now:
                waits.append(self._idle_until - now)
            if self._results and not self._writing:
                waits.append(max(0.0, self._write_due() - now))
            if self._release and not self._releasing:
                waits.append(0.0)
            if self._in_flight < self.concurrency:
                for lane in self._lanes.values():
                    if lane.waiting and (ready := lane.ready_in(now)) is not None:
                        waits.append(ready)
            return min(waits)

    def stop(self) -> None:
        """Start nothing more; every job still waiting goes back to the store,
        due now, for the next worker."""
        with self._lock:
            self._stopped = True
            claims = tuple(job.claim for lane in self._lanes.values() for job in lane.waiting)
            for lane in self._lanes.values():
                lane.waiting.clear()
            self._waiting = 0
            if claims:
                self._release.append((claims, self._clock()))

    def abandon(self, jobs: list[Job]) -> None:
        """Sends that did not end in time: give their leases back, due now
        (their receivers may have the request: at least once, not at most)."""
        with self._lock:
            if jobs:
                self._release.append((tuple(job.claim for job in jobs), self._clock()))

    @property
    def in_flight(self) -> int:
        return self._in_flight
