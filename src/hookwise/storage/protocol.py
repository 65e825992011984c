"""The storage contract, and the records that cross it.

A platform backs hookwise with its own database by implementing
:class:`Storage`. Storage never sees a plaintext secret: secret values and
outbox bodies arrive sealed by :class:`hookwise.SecretKey`. Time is always
passed in (``now``, seconds since the epoch), so storages hold no clocks and
tests can move time.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

from hookwise.crypto import SecretKey
from hookwise.model import Automation, Webhook

__all__ = [
    "Attempt",
    "Claim",
    "Delivery",
    "DeliveryStatus",
    "RunWindow",
    "SecretRecord",
    "Storage",
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
    """A secret as stored: the value sealed with the storage's key."""

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
class Claim:
    """A delivery leased to one worker until ``lease_until``."""

    delivery: Delivery
    sealed_body: bytes = attrs.field(repr=False)
    lease_token: str
    lease_until: float


@runtime_checkable
class Storage(Protocol):
    """What hookwise needs from a database. ``hookwise.testing`` checks an
    implementation against this contract."""

    @property
    def key(self) -> SecretKey:
        """The key that seals secrets and outbox bodies for this store."""
        ...

    def revision(self) -> int:
        """A number that changes whenever a secret, webhook or automation does;
        dispatchers rebuild their index when it moves."""
        ...

    # secrets: ciphertext only
    def put_secret(self, record: SecretRecord, *, replace: bool) -> None:
        """Insert, or with ``replace`` update, a secret. Raises AlreadyExistsError
        when inserting a taken name, NotFoundError when replacing a missing one."""
        ...

    def get_secret(self, team: str, name: str) -> SecretRecord | None: ...

    def list_secrets(self, team: str) -> list[SecretRecord]:
        """Sorted by name."""
        ...

    def delete_secret(self, team: str, name: str) -> bool: ...

    # webhooks
    def put_webhook(self, webhook: Webhook, *, replace: bool) -> None:
        """As :meth:`put_secret`."""
        ...

    def get_webhook(self, team: str, name: str) -> Webhook | None: ...

    def list_webhooks(self, team: str) -> list[Webhook]:
        """Sorted by name."""
        ...

    def delete_webhook(self, team: str, name: str) -> bool: ...

    # automations (keyed by the scope's entity and the name)
    def put_automation(self, automation: Automation, *, replace: bool) -> None:
        """As :meth:`put_secret`."""
        ...

    def get_automation(self, team: str, name: str) -> Automation | None: ...

    def list_automations(self, team: str | None = None) -> list[Automation]:
        """Sorted by team, then name; every team's when ``team`` is None."""
        ...

    def delete_automation(self, team: str, name: str) -> bool: ...

    # the outbox and its history
    def enqueue(self, deliveries: Sequence[tuple[Delivery, bytes]]) -> None:
        """Store new deliveries with their sealed bodies, all or none."""
        ...

    def claim(self, now: float, *, limit: int, lease: float) -> list[Claim]:
        """Lease up to ``limit`` unfinished deliveries whose ``next_attempt_at``
        is due and whose lease, if any, has expired; oldest due first."""
        ...

    def record_attempt(
        self,
        claim: Claim,
        attempt: Attempt,
        *,
        status: DeliveryStatus,
        next_attempt_at: float | None,
    ) -> bool:
        """Append ``attempt`` and move the delivery to ``status``, releasing the
        lease. Returns False, changing nothing, if the lease was lost."""
        ...

    def requeue(self, delivery_id: str, now: float) -> Delivery:
        """Make a delivery due again at ``now`` (redelivery), same message id."""
        ...

    def get_delivery(self, delivery_id: str) -> Delivery | None: ...

    def list_deliveries(
        self,
        *,
        team: str | None = None,
        automation: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Newest first."""
        ...

    def list_attempts(self, delivery_id: str) -> list[Attempt]:
        """Oldest first."""
        ...

    def outstanding(self) -> tuple[int, float | None]:
        """How many deliveries are unfinished, and the earliest time one is due
        (``None`` when none is); a leased delivery counts as due when its
        lease ends."""
        ...

    # run-trigger state
    def fire_trigger(self, automation: str, run_id: str, now: float, cooldown: float) -> bool:
        """Atomically: if ``automation`` (``team/name``) has not fired for
        ``run_id`` within ``cooldown`` seconds before ``now``, record ``now``
        and return True; else change nothing and return False."""
        ...

    def save_windows(self, windows: Sequence[RunWindow]) -> None:
        """Insert or replace each window, keyed by (``run``, ``automation``)."""
        ...

    def load_windows(self, run: str) -> list[RunWindow]:
        """The windows saved for ``run``, in no particular order."""
        ...

    def delete_windows(self, run: str) -> None:
        """Forget a run's windows (it ended); unknown runs are no error."""
        ...

    def close(self) -> None: ...
