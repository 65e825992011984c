"""The dispatcher's logic, shared by :class:`Dispatcher` and
:class:`AsyncDispatcher`: event -> deliveries in the outbox; claimed
delivery -> request; response -> next state.

No sockets and no sleeping here: the shells do the sending and the waiting,
this module decides. It does call the storage, which both shells share (the
async shell calls it from a thread).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence

import attrs
import httpx

from hookwise._version import __version__
from hookwise.errors import (
    BlockedAddressError,
    HookwiseError,
    NotFoundError,
    UnsafeURLError,
    ValidationError,
)
from hookwise.events import Event, EventType, RunState
from hookwise.matching import Index, Match, RunTracker
from hookwise.model import Webhook
from hookwise.network import NetworkPolicy
from hookwise.retry import Outcome, RetryPolicy, classify, parse_retry_after
from hookwise.runs import RunFilter
from hookwise.signing import new_message_id, sign
from hookwise.storage.protocol import (
    Attempt,
    Claim,
    Delivery,
    DeliveryStatus,
    RunWindow,
    SecretRecord,
    Storage,
)
from hookwise.template import ACCESS_TOKEN, Template, compile_template

__all__ = [
    "Core",
    "Job",
    "TestPlan",
    "TestResult",
    "describe",
    "event_values",
    "history_body",
    "scrub",
]

logger = logging.getLogger("hookwise")

USER_AGENT = f"hookwise/{__version__}"
RESPONSE_CAP = 8192  # characters of a response body kept in the history
RESPONSE_BYTES = 4 * RESPONSE_CAP  # what we read of a body before we stop
REDACTED = "[REDACTED]"


def event_values(event: Event, event_type: EventType) -> dict[str, str]:
    """The built-in payload variables of an event (metadata is passed apart)."""
    run = event.run
    values = {
        "project_name": event.project,
        "entity_name": event.entity,
        "event_type": event_type.value,
        "event_author": event.author,
        "alias": event.alias,
        "tag": event.tag,
        "artifact_collection_name": event.collection,
        "artifact_version": event.version,
        "artifact_version_string": event.version_string,
    }
    if run is not None:
        values["run_id"] = run.id
        values["run_name"] = run.name
        values["run_user"] = run.user
        if event.state is not None:
            values["run_state"] = event.state.value
        if event.step is not None:
            values["step"] = str(event.step)
    return values


def history_body(data: bytes, encoding: str | None, secrets: Sequence[str]) -> str:
    """A response body as the history keeps it: text, scrubbed, then capped
    (a cap first could keep half a secret)."""
    try:
        text = data.decode(encoding or "utf-8", errors="replace")
    except LookupError:  # the receiver named a charset Python does not know
        text = data.decode("utf-8", errors="replace")
    return scrub(text, secrets)[:RESPONSE_CAP]


def describe(exc: BaseException) -> str:
    """An error for the history: its type, and its text when it has one."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_monotonic = time.monotonic
_RUN_STATE = EventType.RUN_STATE  # a global is quicker to reach than an enum member


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Remove secret values from text we keep: a receiver may echo them back,
    as they are or escaped in JSON (the body it got is JSON), and an error may
    quote one escaped as Python does (``repr`` of a str or of its bytes)."""
    for value in secrets:
        forms = {
            value,
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            repr(value)[1:-1],
            repr(value.encode("utf-8", "replace"))[2:-1],
        }
        for form in sorted(forms, key=len, reverse=True):  # longest first: one may hold another
            if form and form in text:
                text = text.replace(form, REDACTED)
    return text


def _stored_run(key: tuple[str, str, str]) -> str:
    """How storage names a run: ``entity/project/run id`` (none holds a ``/``)."""
    return "/".join(key)


def check_access_token(name: str, token: str) -> None:
    """Refuse a token that cannot go in an ``Authorization: Bearer`` header.

    Checked before a request is built, never quoting the value: the HTTP
    layer would refuse the header with an error that quotes the token.
    """
    if not token.isascii() or not token.isprintable() or " " in token:
        raise ValidationError(
            "access_token",
            f"secret {name!r} must be visible ASCII characters with no spaces or line"
            " breaks (a value read from a file often ends with a newline)",
        )


def unseal_secret(storage: Storage, record: SecretRecord) -> str:
    return storage.key.decrypt(
        record.ciphertext, context=secret_context(record.team, record.name)
    ).decode()


@attrs.frozen(slots=True)
class Job:
    """A claimed delivery, ready to send (``request``) or already doomed (``error``)."""

    claim: Claim
    request: httpx.Request | None
    error: str | None
    secrets: tuple[str, ...] = attrs.field(default=(), repr=False)
    retryable: bool = False


@attrs.frozen(slots=True)
class TestResult:
    """What ``test_webhook`` got back. ``ok`` means a 2xx answer."""

    __test__ = False  # not a pytest test class, despite the name

    ok: bool
    status_code: int | None
    headers: Mapping[str, str]
    body: str
    elapsed: float
    error: str | None
    request_body: str  # what was sent, secrets shown as placeholders


class Core:
    """Everything a dispatcher decides, for any Storage."""

    def __init__(
        self,
        storage: Storage,
        *,
        network: NetworkPolicy | None = None,
        retry: RetryPolicy | None = None,
        refresh_interval: float = 1.0,
        lease: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.network = network if network is not None else NetworkPolicy()
        self.retry = retry if retry is not None else RetryPolicy()
        self.refresh_interval = refresh_interval
        self.lease = lease
        self.clock = clock
        self._index: Index | None = None
        self._runs = RunTracker(load=self._saved_windows)
        self._match_lock = threading.Lock()
        self._windows_lock = threading.Lock()  # orders saves and deletes of run windows
        self._next_check = 0.0
        self._secrets: dict[tuple[str, str], str] = {}

    # -- matching --------------------------------------------------------

    def needs_refresh(self) -> bool:
        return self._index is None or time.monotonic() >= self._next_check

    def refresh(self) -> Index:
        """Rebuild the index if the storage's revision moved since the last
        build, and save the run windows that moved since the last refresh."""
        revision = self.storage.revision()
        self._next_check = time.monotonic() + self.refresh_interval
        if self._index is None or self._index.revision != revision:
            webhooks: dict[tuple[str, str], Webhook] = {}
            automations = self.storage.list_automations()
            for team in {a.team for a in automations}:
                webhooks.update(((w.team, w.name), w) for w in self.storage.list_webhooks(team))
            self._index = Index.build(automations, webhooks, revision)
            self._secrets.clear()
        self.save_windows()
        return self._index

    # -- run windows across restarts ---------------------------------------

    def _saved_windows(self, run: tuple[str, str, str]) -> Mapping[str, str]:
        try:
            saved = self.storage.load_windows(_stored_run(run))
        except Exception:  # a storage hiccup must not stop training: start afresh
            logger.warning("could not load the saved windows of run %s", run[2], exc_info=True)
            return {}
        return {window.automation: window.state for window in saved}

    def save_windows(self) -> None:
        """Save the windows that moved since the last save (a few per run).

        One save at a time, and deletes wait for it: a snapshot taken before
        a run ended, or before a newer snapshot, must not land after it. A
        failed save is logged and tried again at the next one; training goes on.
        """
        with self._windows_lock:
            with self._match_lock:
                checkpoint = self._runs.checkpoint()
            if not checkpoint.rows:
                return
            now = self.clock()
            try:
                self.storage.save_windows(
                    [
                        RunWindow(_stored_run(run), automation, state, now)
                        for run, automation, state in checkpoint.rows
                    ]
                )
            except Exception:
                logger.warning("could not save run windows; will try again", exc_info=True)
                with self._match_lock:
                    self._runs.retry_later(checkpoint)

    def run_ended(self, event: Event) -> None:
        """A run that finished or failed logs no more metrics: forget its windows."""
        if event.run is None or event.state in (None, RunState.RUNNING):
            return
        with self._windows_lock:
            try:
                self.storage.delete_windows(_stored_run(event.run.key))
            except Exception:  # the rows stay; the run's next start loads them
                logger.warning(
                    "could not delete the windows of run %s", event.run.id, exc_info=True
                )

    def match(self, event: Event) -> list[Match]:
        """The automations ``event`` fires; pure once the index is fresh."""
        index = self._index if self._index is not None else self.refresh()
        with self._match_lock:  # run windows: threads of one training job may share us
            return list(index.match(event, self._runs))

    # -- event -> outbox -------------------------------------------------

    def _secret(self, team: str, name: str) -> str:
        value = self._secrets.get((team, name))
        if value is None:
            record = self.storage.get_secret(team, name)
            if record is None:
                raise NotFoundError("secret", f"{team}/{name}")
            value = self._secrets[(team, name)] = unseal_secret(self.storage, record)
        return value

    def webhook_secrets(self, webhook: Webhook) -> dict[str, str]:
        """The values a webhook's template may use, by placeholder name."""
        values: dict[str, str] = {}
        if webhook.access_token is not None:
            token = self._secret(webhook.team, webhook.access_token)
            values[ACCESS_TOKEN] = values[webhook.access_token] = token
        if webhook.secret is not None:
            values[webhook.secret] = self._secret(webhook.team, webhook.secret)
        return values

    def plan(self, event: Event, matches: Sequence[Match]) -> list[tuple[Delivery, bytes]]:
        """Render each match into a delivery with its sealed body.

        A match that cannot render (a secret deleted since the automation was
        saved) becomes a FAILED delivery, so the history shows why, and the
        other matches still go out.
        """
        now = self.clock()
        rows = []
        for match in matches:
            if not self._cooled_down(event, match, now):
                continue
            webhook, template = match.target.webhook, match.target.template
            if webhook is None or template is None:
                continue  # DoNothing
            rows.append(self._render(event, match, webhook, template, now))
        return rows

    def _cooled_down(self, event: Event, match: Match, now: float) -> bool:
        """A run automation fires at most once per run per cooldown; the storage
        keeps the time, so a restart or a second process does not fire again."""
        automation = match.target.automation
        run_filter = automation.event
        if not isinstance(run_filter, RunFilter) or event.run is None:
            return True
        key = f"{automation.team}/{automation.name}"
        if event.state is not None:  # each state a run enters has its own cooldown
            key = f"{key}/{event.state.value}"
        if self.storage.fire_trigger(key, event.run.id, now, run_filter.cooldown):
            return True
        logger.debug("automation %r: run %s is cooling down", automation.name, event.run.id)
        return False

    def _render(
        self, event: Event, match: Match, webhook: Webhook, template: Template, now: float
    ) -> tuple[Delivery, bytes]:
        automation = match.target.automation
        values = event_values(event, match.event_type)
        values.update(match.values)
        delivery = Delivery(
            id=uuid.uuid4().hex,
            message_id=new_message_id(),
            team=automation.team,
            webhook=webhook.name,
            automation=automation.name,
            event_type=match.event_type.value,
            event_id=event.id,
            created_at=now,
            display=template.render_display(values, metadata=event.metadata),
            url=webhook.url,
            next_attempt_at=now,
        )
        try:
            body = template.render(
                values, secrets=self.webhook_secrets(webhook), metadata=event.metadata
            )
        except (HookwiseError, UnicodeError) as exc:
            logger.warning("automation %r could not render: %s", automation.name, exc)
            failed = attrs.evolve(
                delivery,
                status=DeliveryStatus.FAILED,
                next_attempt_at=None,
                error=f"could not render the payload: {exc}",
                finished_at=now,
            )
            return failed, b""
        return delivery, self.storage.key.encrypt(body, context=body_context(delivery.id))

    def enqueue(self, event: Event, matches: Sequence[Match]) -> list[Delivery]:
        rows = self.plan(event, matches)
        if rows:
            self.storage.enqueue(rows)
        return [delivery for delivery, _ in rows]

    def handle(self, event: Event) -> list[Delivery]:
        """Match, render and store; the sync path of both shells.

        The training hot path: when nothing fires this is a clock read, a lock
        and the index's lookups, nothing else.
        """
        index = self._index
        if index is None or _monotonic() >= self._next_check:
            index = self.refresh()
        with self._match_lock:
            matches = index.match(event, self._runs)
        deliveries = self.enqueue(event, matches) if matches else []
        if event.type is _RUN_STATE:
            self.run_ended(event)
        return deliveries

    # -- outbox -> requests ----------------------------------------------

    def claim(self, limit: int) -> list[Job]:
        if self.needs_refresh():  # a worker that sees no events still sees rotated secrets
            self.refresh()
        claims = self.storage.claim(self.clock(), limit=limit, lease=self.lease)
        return [self.prepare(claim) for claim in claims]

    def prepare(self, claim: Claim) -> Job:
        """Build the request for a claimed delivery, or the reason it cannot go."""
        delivery = claim.delivery
        webhook = self.storage.get_webhook(delivery.team, delivery.webhook)
        if webhook is None:
            return Job(claim, None, f"webhook {delivery.webhook!r} no longer exists")
        if not webhook.enabled:
            return Job(claim, None, f"webhook {delivery.webhook!r} is disabled")
        secrets: dict[str, str] = {}
        try:
            secrets = self.webhook_secrets(webhook)
            body = self.storage.key.decrypt(claim.sealed_body, context=body_context(delivery.id))
            request = self.build_request(webhook, body, delivery.message_id, secrets)
        except (HookwiseError, httpx.InvalidURL) as exc:
            return Job(claim, None, scrub(str(exc), list(secrets.values())))
        except OSError as exc:  # DNS failed: transient, like a refused connection
            return Job(claim, None, describe(exc), retryable=True)
        except Exception as exc:  # one bad row must not stall the rest of the batch
            logger.error(
                "delivery %s: could not build the request (%s)", delivery.id, type(exc).__name__
            )
            return Job(claim, None, f"could not build the request: {type(exc).__name__}")
        return Job(claim, request, None, tuple(set(secrets.values())))

    def build_request(
        self, webhook: Webhook, body: bytes, message_id: str, secrets: Mapping[str, str]
    ) -> httpx.Request:
        """The signed POST. Raises when the NetworkPolicy refuses the URL."""
        url = httpx.URL(webhook.url)
        self.network.check_url(webhook.url)
        self.network.resolve(
            url.raw_host.decode("ascii"), url.port or (443 if url.scheme == "https" else 80)
        )
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if webhook.access_token is not None:
            token = secrets[ACCESS_TOKEN]
            check_access_token(webhook.access_token, token)
            headers["Authorization"] = f"Bearer {token}"
        if webhook.secret is not None and webhook.signing:
            headers.update(
                sign(
                    body,
                    secrets[webhook.secret],
                    message_id=message_id,
                    timestamp=int(self.clock()),
                    schemes=webhook.signing,
                )
            )
        return httpx.Request("POST", url, headers=headers, content=body)

    # -- response -> next state ------------------------------------------

    def complete(
        self,
        job: Job,
        *,
        started: float,
        elapsed: float,
        status_code: int | None = None,
        retry_after: str | None = None,
        body: str | None = None,
        error: str | None = None,
    ) -> Delivery | None:
        """Record an attempt and move the delivery on. Returns the new state,
        or None if the lease was lost (another worker owns it now). ``body``
        comes from :func:`history_body`, ready to keep."""
        delivery = job.claim.delivery
        attempts = delivery.attempts + 1
        error = job.error if job.error is not None else error
        if job.request is None:
            outcome = Outcome.RETRY if job.retryable else Outcome.FAIL
        else:
            outcome = classify(status_code)
        next_at: float | None = None
        status = DeliveryStatus.SUCCEEDED if outcome is Outcome.SUCCESS else DeliveryStatus.FAILED
        if outcome is Outcome.RETRY:
            now = self.clock()
            wait = self.retry.next_attempt(
                attempts=attempts,
                age=now - delivery.created_at,
                retry_after=parse_retry_after(retry_after, now),
            )
            if wait is not None:
                status, next_at = DeliveryStatus.RETRYING, now + wait
        if error is None and status_code is not None and outcome is not Outcome.SUCCESS:
            error = f"HTTP {status_code}"
        attempt = Attempt(
            delivery_id=delivery.id,
            number=attempts,
            started_at=started,
            elapsed=elapsed,
            url=str(job.request.url) if job.request is not None else delivery.url,
            response_status=status_code,
            response_body=body,
            error=None if error is None else scrub(error, job.secrets),
        )
        recorded = self.storage.record_attempt(
            job.claim, attempt, status=status, next_attempt_at=next_at
        )
        if not recorded:
            logger.warning("delivery %s: lease lost; another worker has it", delivery.id)
            return None
        level = logging.INFO if status is DeliveryStatus.SUCCEEDED else logging.WARNING
        logger.log(
            level,
            "delivery %s (%s via %s) attempt %d: %s",
            delivery.id,
            delivery.automation,
            delivery.webhook,
            attempts,
            attempt.error or status_code,
        )
        if outcome is Outcome.GONE:
            self._disable(delivery.team, delivery.webhook)
        return self.storage.get_delivery(delivery.id)

    def record_response(
        self, job: Job, *, started: float, elapsed: float, response: httpx.Response, body: bytes
    ) -> Delivery | None:
        return self.complete(
            job,
            started=started,
            elapsed=elapsed,
            status_code=response.status_code,
            retry_after=response.headers.get("retry-after"),
            body=history_body(body, response.charset_encoding, job.secrets),
        )

    def record_error(
        self, job: Job, *, started: float, elapsed: float, error: BaseException | None = None
    ) -> Delivery | None:
        """An attempt with no response: a connection error, or a job that could not be built."""
        return self.complete(
            job, started=started, elapsed=elapsed, error=None if error is None else describe(error)
        )

    def _disable(self, team: str, name: str) -> None:
        webhook = self.storage.get_webhook(team, name)
        if webhook is not None and webhook.enabled:
            self.storage.put_webhook(attrs.evolve(webhook, enabled=False), replace=True)
            logger.warning("webhook %s/%s disabled: the receiver answered 410 Gone", team, name)

    def seconds_until_due(self, default: float) -> float:
        """How long a worker may sleep before something is due (capped at ``default``)."""
        count, earliest = self.storage.outstanding()
        if count == 0 or earliest is None:
            return default
        return max(0.0, min(default, earliest - self.clock()))

    def idle(self, until: float | None = None) -> bool:
        """Nothing is due by ``until`` (default: now): every delivery is
        finished or waits for a retry after that."""
        count, earliest = self.storage.outstanding()
        limit = self.clock() if until is None else until
        return count == 0 or earliest is None or earliest > limit

    # -- the Test button -------------------------------------------------

    def test_request(self, team: str, name: str, payload: object = None) -> TestPlan:
        """What ``test_webhook`` sends. Bad input raises; a URL the
        NetworkPolicy refuses becomes the test's error, as the Test button shows."""
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
        secrets = self.webhook_secrets(webhook)
        display = template.render_display(values)
        scrubbed = tuple(set(secrets.values()))
        body = template.render(values, secrets=secrets)
        try:
            request = self.build_request(webhook, body, new_message_id(), secrets)
        except (BlockedAddressError, UnsafeURLError, ValidationError, OSError) as exc:
            return TestPlan(None, display, scrubbed, exc)
        return TestPlan(request, display, scrubbed)


@attrs.frozen(slots=True)
class TestPlan:
    """A test request about to go out, or the reason it cannot."""

    __test__ = False

    request: httpx.Request | None
    display: str
    secrets: tuple[str, ...] = attrs.field(repr=False)
    refusal: BaseException | None = None

    def result(
        self,
        *,
        elapsed: float,
        response: httpx.Response | None = None,
        body: bytes = b"",
        error: BaseException | None = None,
    ) -> TestResult:
        if response is None:
            problem = error or self.refusal
            return TestResult(
                ok=False,
                status_code=None,
                headers={},
                body="",
                elapsed=elapsed,
                error=scrub(describe(problem) if problem else "no response", self.secrets),
                request_body=self.display,
            )
        return TestResult(
            ok=response.is_success,
            status_code=response.status_code,
            headers={k: scrub(v, self.secrets) for k, v in response.headers.items()},
            body=history_body(body, response.charset_encoding, self.secrets),
            elapsed=elapsed,
            error=None if response.is_success else f"HTTP {response.status_code}",
            request_body=self.display,
        )


def secret_context(team: str, name: str) -> str:
    """Binds a secret's ciphertext to its row, so rows cannot be swapped."""
    return f"secret:{team}/{name}"


def body_context(delivery_id: str) -> str:
    return f"delivery:{delivery_id}"
