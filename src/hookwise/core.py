"""What both dispatchers do, once: the decisions in the modules below,
composed over a Storage. No sockets, no sleeping and no HTTP library here:
requests go out as :class:`~hookwise.wire.OutgoingRequest` and results come
back as :class:`~hookwise.wire.RawResponse` or an exception, through a
sender the shell owns. Storage calls block: the async shell runs them in a
thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from time import monotonic

import attrs

from hookwise.checkpoints import Checkpointer
from hookwise.errors import (
    BlockedAddressError,
    HookwiseError,
    NotFoundError,
    SecretKeyError,
    UnsafeURLError,
    ValidationError,
)
from hookwise.events import Event, EventType
from hookwise.health import Health
from hookwise.history import describe, scrub
from hookwise.index import Index, Match
from hookwise.intake import event_values, outbox_entries
from hookwise.model import Webhook, slack_secret
from hookwise.outcome import settle
from hookwise.outgoing import build_request, build_slack_request
from hookwise.probe import WebhookTestPlan
from hookwise.scheduler import Hold, Job, Plan, Scheduler, Settled
from hookwise.settings import Settings
from hookwise.signing import new_message_id
from hookwise.storage.protocol import (
    Attempt,
    AttemptResult,
    Claim,
    Delivery,
    DeliveryStatus,
    Storage,
)
from hookwise.template import Template, compile_template
from hookwise.vault import Keyring, Vault, key_for
from hookwise.wire import RawResponse

__all__ = ["Core", "Job", "Settled", "Started"]

logger = logging.getLogger("hookwise")

LOUD_INTERVAL = 60.0
"""Seconds between the loud log lines of one cause (see ``_LOUD``)."""

_POLICY_REFUSALS = (UnsafeURLError, BlockedAddressError)
"""What this process's NetworkPolicy raises when it checks a stored URL
before sending: for a URL Admin accepted, the policy here is not the admin
side's (a worker started without its ``--allow``), which is configuration,
not the delivery: it is held."""

_LOUD = {
    "key": "They are not failed: they stay queued and go out within ~{lease:.0f}s of the fix. "
    "Fix: set HOOKWISE_SECRET_KEY (or key=) to the key(s) the store was written with "
    "(during a rotation: new,old) and restart the dispatcher.",
    "network": "They are not failed: they stay queued and go out within ~{lease:.0f}s of the "
    "fix. Fix: give this dispatcher the NetworkPolicy the admin side uses (`hookwise worker "
    "--allow NETWORK [--allow-http]`, or Dispatcher(network=NetworkPolicy(allow=[...], "
    "allow_http=True))) and restart it, or correct the webhook's URL.",
    "address": "They are retried with backoff, as any failure is, and fail once the retry "
    "policy gives up. If the address is your own service, allow its network on this "
    "dispatcher (`hookwise worker --allow NETWORK`, or NetworkPolicy(allow=[...])); if it is "
    "not, the name resolves somewhere it must not (DNS rebinding, a stale record).",
}
"""The loud line's second half, by cause: a delivery held for the key or
for the URL check, or an address refused at connect time (after DNS, which
Admin never saw: configuration or an attack, so not held)."""

_RUN_STATE = EventType.RUN_STATE  # a global is quicker to reach than an enum member
_RUN_METRIC = EventType.RUN_METRIC


@attrs.frozen(slots=True)
class Started:
    """When an attempt began: wall time for the history, a monotonic clock for
    its length. :meth:`stop` fixes the length where the answer came, before
    any hop to a storage thread."""

    at: float
    perf: float = attrs.field(factory=time.perf_counter)
    end: float | None = None

    def stop(self) -> Started:
        return attrs.evolve(self, end=time.perf_counter())

    def elapsed(self) -> float:
        return (time.perf_counter() if self.end is None else self.end) - self.perf


class Core:
    """Everything a dispatcher decides, for any Storage."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self.settings = settings
        self.clock = settings.clock
        self.vault = Vault(key_for(storage, settings.key))
        self.keyring = Keyring(storage, self.vault)
        self.checkpoints = Checkpointer(storage, self.clock)
        self._tracker, self._tracker_lock = self.checkpoints.tracker, self.checkpoints.lock
        self._index: Index | None = None
        self._next_check = 0.0
        self._warned: dict[str, float] = {}  # by cause: when it was last said loudly
        self._held: dict[str, int] = {}  # by cause: how many since
        self._loud_lock = threading.Lock()
        self._health = Health(storage, settings.disable_after)

    # -- configuration -----------------------------------------------------

    def needs_refresh(self) -> bool:
        return self._index is None or monotonic() >= self._next_check

    def refresh(self) -> Index:
        """Rebuild the index if the storage's revision moved since the last
        build, and save the run windows that moved since the last refresh."""
        revision = self.storage.revision()
        self._next_check = monotonic() + self.settings.refresh_interval
        if self._index is None or self._index.revision != revision:
            webhooks: dict[tuple[str, str], Webhook] = {}
            automations = self.storage.list_automations()
            for team in {a.team for a in automations}:
                webhooks.update(((w.team, w.name), w) for w in self.storage.list_webhooks(team))
            self._index = Index.build(automations, webhooks, revision)
            self.keyring.clear()
        self.checkpoints.save()
        return self._index

    # -- event -> outbox ---------------------------------------------------

    def match(self, event: Event) -> Sequence[Match]:
        """The automations ``event`` fires; no I/O once the index is fresh."""
        index = self._index if self._index is not None else self.refresh()
        with self._tracker_lock:
            return index.match(event, self._tracker)

    def must_load(self, event: Event) -> bool:
        """Whether :meth:`match` would read storage: the first watched
        metrics of a run load its saved windows (see :meth:`preload`)."""
        run, index = event.run, self._index
        return (
            event.type is _RUN_METRIC
            and run is not None
            and index is not None
            and index.watches_metrics(event.entity, event.project)
            and not self._tracker.knows(run.key)
        )

    def preload(self, event: Event) -> None:
        """Load a new run's saved windows without holding the tracker's lock,
        so matching other events never waits on storage."""
        assert event.run is not None
        saved = self.checkpoints.load(event.run.key)
        with self._tracker_lock:
            self._tracker.adopt(event.run.key, saved)

    def must_record(self, event: Event, matches: Sequence[Match]) -> bool:
        """Whether :meth:`record` has anything to write for this event."""
        return bool(matches) or (event.type is _RUN_STATE and self.checkpoints.ends_run(event))

    def record(self, event: Event, matches: Sequence[Match]) -> list[Delivery]:
        """Store the deliveries ``matches`` make, with their cooldowns, in one
        write; forget the windows of a run that ended."""
        deliveries: list[Delivery] = []
        if matches:
            entries = outbox_entries(
                event,
                matches,
                now=self.clock(),
                secrets=self.keyring.for_webhook,
                seal=self.vault.seal_body,
            )
            if entries:
                deliveries = self.storage.enqueue(entries)
            for delivery in deliveries:
                if delivery.status is DeliveryStatus.FAILED:  # it could not render
                    logger.warning("automation %r: %s", delivery.automation, delivery.error)
        if event.type is _RUN_STATE and self.checkpoints.ends_run(event):
            self.checkpoints.forget(event)
        return deliveries

    def handle(self, event: Event) -> list[Delivery]:
        """The training hot path: when nothing fires this is a clock read, a
        lock and the index's lookups, nothing else (so :meth:`match` is
        written out here, with the tracker and its lock at hand)."""
        index = self._index
        if index is None or monotonic() >= self._next_check:
            index = self.refresh()
        with self._tracker_lock:
            matches = index.match(event, self._tracker)
        if matches or event.type is _RUN_STATE:
            return self.record(event, matches)
        return []

    # -- outbox -> requests -> results -------------------------------------

    def claim(self, limit: int, exclude: Sequence[tuple[str, str]] = ()) -> list[Job]:
        if self.needs_refresh():  # a worker that sees no events still sees rotated secrets
            self.refresh()
        claims = self.storage.claim(
            self.clock(), limit=limit, lease=self.settings.lease, exclude=exclude
        )
        webhooks: dict[tuple[str, str], Webhook | None] = {}  # one read per webhook per claim
        return [self.prepare(claim, webhooks) for claim in claims]

    def prepare(
        self, claim: Claim, webhooks: dict[tuple[str, str], Webhook | None] | None = None
    ) -> Job:
        """Build the request for a claimed delivery, or the reason it cannot go."""
        delivery = claim.delivery
        slack = slack_secret(delivery.webhook)
        webhook = None
        if slack is None:
            key = delivery.team, delivery.webhook
            webhooks = {} if webhooks is None else webhooks
            if key not in webhooks:
                webhooks[key] = self.storage.get_webhook(*key)
            webhook = webhooks[key]
            if webhook is None:
                return Job(claim, None, f"webhook {delivery.webhook!r} no longer exists")
            if not webhook.enabled:
                return Job(claim, None, f"webhook {delivery.webhook!r} is disabled")
        secrets: dict[str, str] = {}
        try:
            body = self.vault.open_body(delivery.id, claim.sealed_body)
            if webhook is None:
                assert slack is not None
                secrets = {slack: self.keyring.secret(delivery.team, slack)}
                request = build_slack_request(secrets[slack], body, network=self.settings.network)
                shown = delivery.url
            else:
                secrets = self.keyring.for_webhook(webhook)
                request = build_request(
                    webhook,
                    body,
                    message_id=delivery.message_id,
                    secrets=secrets,
                    timestamp=int(self.clock()),
                    network=self.settings.network,
                )
                shown = request.url
        except SecretKeyError as exc:  # configuration, not the delivery: it waits for the key
            return Job(claim, None, str(exc), held=Hold.KEY)
        except _POLICY_REFUSALS as exc:  # this policy is not the admin side's: it waits
            return Job(claim, None, scrub(str(exc), list(secrets.values())), held=Hold.NETWORK)
        except HookwiseError as exc:
            return Job(claim, None, scrub(str(exc), list(secrets.values())))
        except Exception as exc:  # one bad row must not stall the rest of the batch
            logger.error(
                "delivery %s: could not build the request (%s)", delivery.id, type(exc).__name__
            )
            return Job(claim, None, f"could not build the request: {type(exc).__name__}")
        cap, rate = (None, None) if webhook is None else (webhook.max_in_flight, webhook.rate_limit)
        return Job(claim, request, None, tuple(set(secrets.values())), shown, cap=cap, rate=rate)

    def start(self) -> Started:
        return Started(self.clock())

    def scheduler(self) -> Scheduler:
        """A pipeline for one worker, with these settings."""
        settings = self.settings
        return Scheduler(
            concurrency=settings.concurrency,
            webhook_concurrency=settings.per_webhook,
            breaker_threshold=settings.breaker_threshold,
            timeout=settings.timeout,
            poll_interval=settings.poll_interval,
            clock=self.clock,
            unsent=self.unsent,
        )

    def unsent(self, job: Job) -> Settled:
        """What a job that sends nothing means: a refusal recorded, or (held
        for a key problem) nothing at all."""
        return self.settle(job, self.start(), None)

    def settle(self, job: Job, started: Started, result: RawResponse | Exception | None) -> Settled:
        """What an attempt's result means, decided where it came in (no I/O)."""
        if job.held is not None:
            return Settled(job, None)
        delivery = job.claim.delivery
        after_dns = isinstance(result, BlockedAddressError)  # refused at connect time
        if after_dns:
            self._loud("address", delivery, scrub(str(result), list(job.secrets)))
        response = result if isinstance(result, RawResponse) else None
        error = job.error
        if isinstance(result, HookwiseError):  # our own refusal: its text says it all
            error = str(result)
        elif isinstance(result, Exception):
            error = describe(result)
        transition = settle(
            delivery,
            started=started.at,
            elapsed=started.elapsed() if job.request is not None else 0.0,
            now=self.clock(),
            retry=self.settings.retry,
            url=job.shown_url,
            response=response,
            error=error,
            # our own refusal (a bad stored value) will not change by itself; an
            # address refused after DNS may (a fixed worker, a fixed record)
            retryable=job.request is not None
            and (after_dns or not isinstance(result, HookwiseError)),
            secrets=job.secrets,
        )
        return Settled(job, transition)

    def finish(
        self, job: Job, started: Started, result: RawResponse | Exception | None
    ) -> Delivery | None:
        """Record one attempt and move the delivery on: :meth:`write` for one.
        Returns the new state, or None if the lease was lost (another worker
        owns it now).

        A job held for a key problem records nothing: no attempt is counted
        and the delivery is not failed; it is due again when its lease ends
        (``settings.lease``, about a minute), so once the dispatcher runs with
        the right key it goes out."""
        return self.write([self.settle(job, started, result)])[0]

    def write(self, batch: Sequence[Settled]) -> list[Delivery | None]:
        """Record a batch of attempts in one storage call, then act on them:
        log, turn off webhooks that must go, tell ``on_attempt``. Returns each
        delivery's new state (None where the lease was lost). A storage error
        raises before anything else is done, so the batch can be written again."""
        results = [
            AttemptResult(item.job.claim, t.attempt, t.status, t.next_attempt_at, t.finished_at)
            for item in batch
            if (t := item.transition) is not None
        ]
        recorded = iter(self.storage.record_attempts(results) if results else ())
        states: list[Delivery | None] = []
        for item in batch:
            job, transition = item.job, item.transition
            delivery = job.claim.delivery
            if transition is None:
                self._waits(job)
                states.append(delivery)
                continue
            if not next(recorded):
                logger.warning("delivery %s: lease lost; another worker has it", delivery.id)
                states.append(None)
                continue
            attempt = transition.attempt
            state = attrs.evolve(
                delivery,
                status=transition.status,
                attempts=attempt.number,
                next_attempt_at=transition.next_attempt_at,
                url=attempt.url,
                response_status=attempt.response_status,
                response_body=attempt.response_body,
                error=attempt.error,
                finished_at=transition.finished_at,
            )
            states.append(state)
            logger.log(
                logging.INFO if transition.healthy else logging.WARNING,
                "delivery %s (%s via %s) attempt %d: %s",
                delivery.id,
                delivery.automation,
                delivery.webhook,
                attempt.number,
                attempt.error or attempt.response_status,
            )
            reason = transition.disable or self._health.after(job, transition)
            if reason is not None and self.storage.disable_webhook(
                delivery.team, delivery.webhook, reason
            ):
                logger.warning(
                    "webhook %s/%s disabled: %s", delivery.team, delivery.webhook, reason
                )
            if self.settings.on_attempt is not None:
                self._tell(state, attempt)
        return states

    def _tell(self, delivery: Delivery, attempt: Attempt) -> None:
        assert self.settings.on_attempt is not None
        try:
            self.settings.on_attempt(delivery, attempt)
        except Exception:  # a platform's metrics hook must not stop deliveries
            logger.exception("on_attempt raised for delivery %s", delivery.id)

    def release(self, batch: Sequence[tuple[Sequence[Claim], float]]) -> None:
        """Give back leases a worker will not use (see :class:`Scheduler`)."""
        for claims, due in batch:
            self.storage.release(claims, due)

    def carry_out(self, plan: Plan, pipeline: Scheduler) -> None:
        """The storage work of one plan (blocking I/O: the async shell runs it
        in a thread), each part reported back to ``pipeline``. A failed write
        keeps its results for the next plan; a failed release leaves the
        leases to run out; a failed claim raises after reporting."""
        if plan.release:
            try:
                self.release(plan.release)
            finally:
                pipeline.released()
        if plan.write:
            try:
                self.write(plan.write)
            except Exception:
                pipeline.written(ok=False, batch=plan.write)
                logger.exception(
                    "could not record %d finished attempt(s); kept, and written again "
                    "shortly (they are not sent again)",
                    len(plan.write),
                )
            else:
                pipeline.written(ok=True)
        if plan.claim:
            try:
                jobs = self.claim(plan.claim, plan.exclude)
                # fewer than asked: nothing more is due until the store's next due time
                # (with endpoints passed over, it may be due now: the pipeline decides)
                short = len(jobs) < plan.claim and not plan.exclude
                wait = self.seconds_until_due() if short else None
            except Exception:
                pipeline.claim_failed()
                raise
            pipeline.claimed(plan, jobs, wait=wait)

    def _waits(self, job: Job) -> None:
        assert job.held is not None
        self._loud(job.held.value, job.claim.delivery, job.error or "")

    def _loud(self, cause: str, delivery: Delivery, error: str) -> None:
        """Say loudly, about once a minute per cause, that deliveries cannot
        go out because of how this process is configured."""
        with self._loud_lock:  # settle() runs where each result comes in: many threads
            self._held[cause] = self._held.get(cause, 0) + 1
            now = monotonic()
            if now - self._warned.get(cause, -LOUD_INTERVAL) < LOUD_INTERVAL:
                logger.debug("delivery %s cannot be sent: %s", delivery.id, error)
                return
            self._warned[cause], count, self._held[cause] = now, self._held[cause], 0
        logger.error(
            "CONFIGURATION ERROR: %d delivery(ies) (e.g. %s via webhook %s/%s) cannot be sent: "
            "%s. %s",
            count,
            delivery.id,
            delivery.team,
            delivery.webhook,
            error,
            _LOUD[cause].format(lease=self.settings.lease),
        )

    def redeliver(self, delivery_id: str) -> Delivery:
        return self.storage.requeue(delivery_id, self.clock())

    # -- waiting -----------------------------------------------------------

    def seconds_until_due(self) -> float:
        """How long a worker may sleep before something is due (at most the poll interval)."""
        default = self.settings.poll_interval
        count, earliest = self.storage.outstanding()
        if count == 0 or earliest is None:
            return default
        return max(0.0, min(default, earliest - self.clock()))

    def pass_failed(self) -> float:
        """A worker pass raised: log it, and wait a poll interval before the next."""
        logger.exception("hookwise worker pass failed")
        return self.settings.poll_interval

    def waiter(self, timeout: float | None) -> Waiter:
        return Waiter(self, timeout)

    def close(self) -> int:
        """Save the run windows; how many deliveries are still unfinished."""
        self.checkpoints.save()
        left = self.storage.outstanding()[0]
        if left:
            logger.warning("dispatcher closed with %d deliveries left in the outbox", left)
        return left

    # -- the Test button ---------------------------------------------------

    def test_plan(self, team: str, name: str, payload: object = None) -> WebhookTestPlan:
        """What ``test_webhook`` sends. Bad input raises; a URL the policy
        refuses becomes the test's error, as the Test button shows."""
        webhook = self.storage.get_webhook(team, name)
        if webhook is None:
            raise NotFoundError("webhook", f"{team}/{name}")
        template = payload if isinstance(payload, Template) else compile_template(payload)  # type: ignore[arg-type]
        template.validate(allowed_secrets=webhook.template_secrets)
        event = Event.artifact_alias_added(
            entity=team,
            project="hookwise-test",
            collection="test-collection",
            version="v0",
            alias="test",
            author="hookwise",
        )
        values = event_values(event, event.type)
        secrets = self.keyring.for_webhook(webhook)
        display = template.render_display(values)
        scrubbed = tuple(set(secrets.values()))
        body = template.render(values, secrets=secrets)
        try:
            request = build_request(
                webhook,
                body,
                message_id=new_message_id(),
                secrets=secrets,
                timestamp=int(self.clock()),
                network=self.settings.network,
            )
        except (UnsafeURLError, ValidationError) as exc:
            return WebhookTestPlan(None, display, scrubbed, exc)
        return WebhookTestPlan(request, display, scrubbed)


class Waiter:
    """``flush()``: wait until every delivery is finished or waits for a retry
    due after ``timeout`` seconds from now (without one, what is due now)."""

    def __init__(self, core: Core, timeout: float | None) -> None:
        self._core = core
        self._deadline = None if timeout is None else monotonic() + timeout
        self._until = core.clock() + (timeout or 0.0)

    def done(self, *, busy: Callable[[], bool], working: bool) -> bool | None:
        """True when drained, False to give up (time is out, or nothing here
        sends), None to look again shortly. Reads the storage, then asks
        ``busy``: a pass that claimed before the read shows as busy after it
        (its lease would look like a retry due later)."""
        count, earliest = self._core.storage.outstanding()
        if (count == 0 or earliest is None or earliest > self._until) and not busy():
            return True
        if not working:
            return False  # a worker elsewhere sends
        if self._deadline is not None and monotonic() >= self._deadline:
            return False
        return None
