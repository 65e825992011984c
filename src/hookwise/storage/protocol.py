"""The storage contract, split by role, and the records that cross it.

A platform backs hookwise with its own database by implementing
:class:`Storage`, or one role of it at a time (:class:`ConfigStore`,
:class:`Outbox`, :class:`History`, :class:`RunStateStore`). Storage never
sees a plaintext secret: secret values and outbox bodies arrive sealed.
Storage holds no rules and no clock: the core decides what a delivery's
status, next due time and finish time are, and when a cooldown holds, and
hands those down as values; a store keeps them and compares them.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import attrs

from hookwise.model import Automation, Webhook

__all__ = [
    "Attempt",
    "AttemptResult",
    "Claim",
    "ConfigStore",
    "Cooldown",
    "Delivery",
    "DeliveryStatus",
    "History",
    "Outbox",
    "OutboxEntry",
    "RunStateStore",
    "RunWindow",
    "SecretRecord",
    "Storage",
    "Transactional",
]


@attrs.frozen(slots=True)
class RunWindow:
    """One automation's metric window for one run, saved so that a restart
    goes on from it instead of waiting for the window to fill again.

    ``automation`` names the automation and its condition: a changed
    condition does not pick up a window kept for the old one. ``state`` is
    JSON the evaluator wrote and reads back; storages keep it as it is.
    """

    run: str  # entity/project/run id
    automation: str
    state: str
    saved_at: float


class DeliveryStatus(str, enum.Enum):
    PENDING = "PENDING"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def finished(self) -> bool:
        return self in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED)

    def __str__(self) -> str:
        return self.value


@attrs.frozen(slots=True)
class SecretRecord:
    """A secret as stored: the value sealed by :class:`hookwise.vault.Vault`."""

    team: str
    name: str
    ciphertext: bytes = attrs.field(repr=False)
    created_at: float
    updated_at: float


@attrs.frozen(slots=True)
class Delivery:
    """One execution of an automation: the outbox row and its history line.

    ``display`` is the payload with secrets shown as their placeholders;
    the exact body, which may hold secrets, is kept sealed beside it.
    """

    id: str
    message_id: str
    team: str
    webhook: str
    automation: str
    event_type: str
    event_id: str
    created_at: float
    display: str
    url: str
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    next_attempt_at: float | None = None
    response_status: int | None = None
    response_body: str | None = None
    error: str | None = None
    finished_at: float | None = None


@attrs.frozen(slots=True)
class Attempt:
    """One try at sending a delivery, kept for the history."""

    delivery_id: str
    number: int
    started_at: float
    elapsed: float
    url: str
    response_status: int | None = None
    response_body: str | None = None
    error: str | None = None


@attrs.frozen(slots=True)
class Cooldown:
    """A run automation's rate limit, written with its delivery.

    The entry is stored only if ``automation`` last fired for ``run`` at or
    before ``since`` (or never); then ``at`` becomes its last firing. The core
    computes ``since`` (``at`` minus the cooldown), so a store only compares.
    """

    automation: str  # team/name, plus /STATE for a per-state cooldown
    run: str  # the run id (an automation watches one project, so its runs are unique)
    at: float
    since: float


@attrs.frozen(slots=True)
class OutboxEntry:
    """A new delivery, its sealed body, and the cooldown it must pass, if any."""

    delivery: Delivery
    sealed_body: bytes = attrs.field(repr=False)
    cooldown: Cooldown | None = None


@attrs.frozen(slots=True)
class Claim:
    """A delivery leased to one worker until ``lease_until``."""

    delivery: Delivery
    sealed_body: bytes = attrs.field(repr=False)
    lease_token: str
    lease_until: float


@attrs.frozen(slots=True)
class AttemptResult:
    """What :meth:`Outbox.record_attempts` writes for one claim: the attempt,
    and the status, next due time and finish time the core decided."""

    claim: Claim
    attempt: Attempt
    status: DeliveryStatus
    next_attempt_at: float | None
    finished_at: float | None


@runtime_checkable
class ConfigStore(Protocol):
    """Secrets (sealed), webhooks and automations: what ``Admin`` manages.

    ``create_*`` raises AlreadyExistsError for a taken name; ``update_*``
    raises NotFoundError for a missing one. Lists are sorted by name.
    """

    def revision(self) -> int:
        """A number that changes whenever a secret, webhook or automation does,
        and stays still on reads; dispatchers rebuild their index when it moves."""
        ...

    def create_secret(self, record: SecretRecord) -> None: ...
    def update_secret(self, record: SecretRecord) -> None: ...
    def get_secret(self, team: str, name: str) -> SecretRecord | None: ...
    def list_secrets(self, team: str) -> list[SecretRecord]: ...
    def delete_secret(self, team: str, name: str) -> bool: ...

    def create_webhook(self, webhook: Webhook) -> None: ...
    def update_webhook(self, webhook: Webhook) -> None: ...
    def get_webhook(self, team: str, name: str) -> Webhook | None: ...
    def list_webhooks(self, team: str) -> list[Webhook]: ...
    def delete_webhook(self, team: str, name: str) -> bool: ...

    def disable_webhook(self, team: str, name: str, reason: str) -> bool:
        """In one step, turn an enabled webhook off and keep ``reason`` on it.
        False, changing nothing, when it is missing or already off."""
        ...

    # automations are keyed by the scope's entity and the name
    def create_automation(self, automation: Automation) -> None: ...
    def update_automation(self, automation: Automation) -> None: ...
    def get_automation(self, team: str, name: str) -> Automation | None: ...

    def list_automations(self, team: str | None = None) -> list[Automation]:
        """Sorted by team, then name; every team's when ``team`` is None."""
        ...

    def delete_automation(self, team: str, name: str) -> bool: ...


@runtime_checkable
class Outbox(Protocol):
    """Deliveries waiting to be sent, leased to workers, and their results.

    A delivery is due when its ``next_attempt_at`` is set and not after
    ``now``; a store needs to know nothing else (a finished delivery has
    none, a leased one has its lease end).
    """

    def enqueue(self, entries: Sequence[OutboxEntry]) -> list[Delivery]:
        """In one transaction: store each entry whose cooldown (if any) holds,
        recording that cooldown's firing with it, and return the deliveries
        stored. A taken delivery id raises AlreadyExistsError, storing nothing."""
        ...

    def claim(
        self,
        now: float,
        *,
        limit: int,
        lease: float,
        exclude: Collection[tuple[str, str]] = (),
    ) -> list[Claim]:
        """Lease up to ``limit`` due deliveries, earliest ``next_attempt_at``
        first (then oldest), passing over those whose ``(team, webhook)`` is
        in ``exclude`` (endpoints the worker has enough of, or has paused):
        each gets a new lease token, and its ``next_attempt_at`` moves to
        ``now + lease``, when it is due again if no result comes back."""
        ...

    def record_attempt(
        self,
        claim: Claim,
        attempt: Attempt,
        *,
        status: DeliveryStatus,
        next_attempt_at: float | None,
        finished_at: float | None,
    ) -> bool:
        """If ``claim`` still holds the lease: append ``attempt``, copy its
        url, response and error onto the delivery, set ``attempts`` to its
        number and the three given values, and release the lease. Else
        change nothing and return False."""
        ...

    def record_attempts(self, results: Sequence[AttemptResult]) -> list[bool]:
        """:meth:`record_attempt` for each result, in one transaction; the
        answer for each, in order. A worker writes finished attempts in
        batches, so this is what it calls."""
        ...

    def release(self, claims: Sequence[Claim], next_attempt_at: float) -> int:
        """Give back leases that were never used: each claim that still holds
        its lease is due again at ``next_attempt_at``, with no attempt counted
        and nothing else changed. How many were still held."""
        ...

    def note_failure(self, team: str, webhook: str, at: float) -> float:
        """An attempt to this webhook failed at ``at``: unless a failure is
        already noted since the last success, note ``at``. Returns the time
        noted, the start of the failing streak (for auto-disable)."""
        ...

    def note_success(self, team: str, webhook: str) -> None:
        """An attempt to this webhook succeeded: forget any failing streak."""
        ...

    def requeue(self, delivery_id: str, now: float) -> Delivery:
        """Make a delivery PENDING and due at ``now`` again, unfinished, with
        the same message id (redelivery); any lease is broken. NotFoundError
        when it does not exist."""
        ...

    def outstanding(self) -> tuple[int, float | None]:
        """How many deliveries have a ``next_attempt_at``, and the earliest."""
        ...


@runtime_checkable
class History(Protocol):
    """Reading back what was delivered."""

    def get_delivery(self, delivery_id: str) -> Delivery | None: ...

    def list_deliveries(
        self,
        *,
        team: str | None = None,
        automation: str | None = None,
        status: DeliveryStatus | None = None,
        webhook: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Newest first, at most ``limit``. Each filter given narrows the list
        (they combine with AND): ``team``, ``automation`` and ``webhook`` (a
        name: with ``team``, one team's webhook) match exactly, ``status``
        is the current status, and ``since`` keeps deliveries created at or
        after it (``created_at >= since``, seconds since the epoch)."""
        ...

    def list_attempts(self, delivery_id: str) -> list[Attempt]:
        """Oldest first."""
        ...


@runtime_checkable
class RunStateStore(Protocol):
    """Run metric windows that must survive a restart (cooldowns are
    written by :meth:`Outbox.enqueue`, together with their delivery)."""

    def save_windows(self, windows: Sequence[RunWindow]) -> None:
        """Insert or replace each window, keyed by (``run``, ``automation``)."""
        ...

    def load_windows(self, run: str) -> list[RunWindow]:
        """The windows saved for ``run``, in no particular order."""
        ...

    def delete_windows(self, run: str) -> None:
        """Forget a run's windows (it ended); unknown runs are no error."""
        ...


@runtime_checkable
class Transactional(Protocol):
    """Optional: a store that can make several calls one transaction.
    ``hookwise apply`` uses it, so that a description is stored whole or
    not at all; without it, an apply interrupted half-way leaves what it
    wrote so far (it says so)."""

    def transaction(self) -> AbstractContextManager[None]:
        """Every call inside is stored together, or none is (on an exception)."""
        ...


@runtime_checkable
class Storage(ConfigStore, Outbox, History, RunStateStore, Protocol):
    """Every role in one store: what ``Admin`` and the dispatchers take.
    ``hookwise.testing`` checks an implementation, role by role."""

    def close(self) -> None: ...
