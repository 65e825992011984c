"""MemoryStorage: the whole contract in dicts, for tests and short scripts."""

from __future__ import annotations

import heapq
import itertools
import threading
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

import attrs

from hookwise.crypto import SecretKey, check_key_ids, key_id_of
from hookwise.errors import AlreadyExistsError, NotFoundError
from hookwise.model import Automation, Webhook
from hookwise.storage.protocol import (
    Attempt,
    AttemptResult,
    Claim,
    Delivery,
    DeliveryStatus,
    OutboxEntry,
    RunWindow,
    SecretRecord,
)

__all__ = ["MemoryStorage"]

_T = TypeVar("_T")
_Key = tuple[str, str]
# A due-index entry: (next_attempt_at, created_at, enqueue order, version, id).
# The enqueue order breaks ties as the stable sort over insertion order did;
# the version is unique, so an entry is live only while it is the delivery's
# current one in ``_due_version``.
_DueEntry = tuple[float, float, int, int, str]


class MemoryStorage:
    """Everything in process memory; gone when the process ends.

    ``key`` is kept for ``Admin`` and the dispatchers to seal with when they
    are given none; with no ``key`` a random one is made: nothing outlives
    the process, so there is nothing a lost key could lock away.
    """

    def __init__(self, key: SecretKey | None = None) -> None:
        self.key = key if key is not None else SecretKey.generate()
        self._lock = threading.RLock()
        self._revision = 0
        self._secrets: dict[_Key, SecretRecord] = {}
        self._webhooks: dict[_Key, Webhook] = {}
        self._automations: dict[_Key, Automation] = {}
        self._deliveries: dict[str, Delivery] = {}
        self._bodies: dict[str, bytes] = {}
        self._leases: dict[str, str] = {}
        self._attempts: dict[str, list[Attempt]] = {}
        self._fired: dict[tuple[str, str], float] = {}
        self._windows: dict[str, dict[str, RunWindow]] = {}
        self._key_ids: set[str] = set()
        self._failing: dict[_Key, float] = {}  # webhook -> start of its failing streak
        # The due index: every delivery with a ``next_attempt_at`` has one
        # live entry in ``_due_heap``; stale entries (moved or finished
        # deliveries) are dropped when they reach the top, or all at once
        # when they outnumber the live ones. So ``claim`` and ``outstanding``
        # cost what is outstanding, not the whole history.
        self._due_heap: list[_DueEntry] = []
        self._due_version: dict[str, int] = {}
        self._order: dict[str, int] = {}
        self._counter = itertools.count()

    def __repr__(self) -> str:
        automations, deliveries = len(self._automations), len(self._deliveries)
        return f"MemoryStorage({automations} automations, {deliveries} deliveries)"

    def revision(self) -> int:
        return self._revision

    # -- configuration ---------------------------------------------------

    def _write(self, table: dict[_Key, _T], kind: str, key: _Key, value: _T, *, new: bool) -> None:
        with self._lock:
            if new and key in table:
                raise AlreadyExistsError(kind, "/".join(key))
            if not new and key not in table:
                raise NotFoundError(kind, "/".join(key))
            table[key] = value
            self._revision += 1

    def _delete(self, table: dict[_Key, _T], key: _Key) -> bool:
        with self._lock:
            if table.pop(key, None) is None:
                return False
            self._revision += 1
            return True

    @staticmethod
    def _list(table: dict[_Key, _T], team: str | None) -> list[_T]:
        return [value for key, value in sorted(table.items()) if team is None or key[0] == team]

    def create_secret(self, record: SecretRecord) -> None:
        with self._lock:
            self._write(self._secrets, "secret", (record.team, record.name), record, new=True)
            self._note(record.ciphertext)

    def update_secret(self, record: SecretRecord) -> None:
        with self._lock:
            self._write(self._secrets, "secret", (record.team, record.name), record, new=False)
            self._note(record.ciphertext)

    def get_secret(self, team: str, name: str) -> SecretRecord | None:
        return self._secrets.get((team, name))

    def list_secrets(self, team: str) -> list[SecretRecord]:
        with self._lock:
            return self._list(self._secrets, team)

    def delete_secret(self, team: str, name: str) -> bool:
        return self._delete(self._secrets, (team, name))

    def create_webhook(self, webhook: Webhook) -> None:
        self._write(self._webhooks, "webhook", (webhook.team, webhook.name), webhook, new=True)

    def update_webhook(self, webhook: Webhook) -> None:
        self._write(self._webhooks, "webhook", (webhook.team, webhook.name), webhook, new=False)

    def get_webhook(self, team: str, name: str) -> Webhook | None:
        return self._webhooks.get((team, name))

    def list_webhooks(self, team: str) -> list[Webhook]:
        with self._lock:
            return self._list(self._webhooks, team)

    def delete_webhook(self, team: str, name: str) -> bool:
        return self._delete(self._webhooks, (team, name))

    def disable_webhook(self, team: str, name: str, reason: str) -> bool:
        with self._lock:
            webhook = self._webhooks.get((team, name))
            if webhook is None or not webhook.enabled:
                return False
            disabled = attrs.evolve(webhook, enabled=False, disabled_reason=reason)
            self._write(self._webhooks, "webhook", (team, name), disabled, new=False)
            return True

    def create_automation(self, automation: Automation) -> None:
        key = (automation.team, automation.name)
        self._write(self._automations, "automation", key, automation, new=True)

    def update_automation(self, automation: Automation) -> None:
        key = (automation.team, automation.name)
        self._write(self._automations, "automation", key, automation, new=False)

    def get_automation(self, team: str, name: str) -> Automation | None:
        return self._automations.get((team, name))

    def list_automations(self, team: str | None = None) -> list[Automation]:
        with self._lock:
            return self._list(self._automations, team)

    def delete_automation(self, team: str, name: str) -> bool:
        return self._delete(self._automations, (team, name))

    # -- the outbox ------------------------------------------------------

    def enqueue(self, entries: Sequence[OutboxEntry]) -> list[Delivery]:
        with self._lock:
            seen: set[str] = set()
            for entry in entries:
                delivery_id = entry.delivery.id
                if delivery_id in self._deliveries or delivery_id in seen:
                    raise AlreadyExistsError("delivery", delivery_id)
                seen.add(delivery_id)
            stored = []
            for entry in entries:
                cooldown, delivery = entry.cooldown, entry.delivery
                if cooldown is not None:
                    last = self._fired.get((cooldown.automation, cooldown.run))
                    if last is not None and last > cooldown.since:
                        continue
                    self._fired[(cooldown.automation, cooldown.run)] = cooldown.at
                self._order[delivery.id] = next(self._counter)
                self._put(delivery)
                self._bodies[delivery.id] = entry.sealed_body
                self._note(entry.sealed_body)
                self._attempts[delivery.id] = []
                stored.append(delivery)
            return stored

    def _put(self, delivery: Delivery) -> None:
        """Store ``delivery`` and keep the due index in step with it.

        Every write of a delivery goes through here (the lock held).
        """
        delivery_id = delivery.id
        self._deliveries[delivery_id] = delivery
        if delivery.next_attempt_at is None:
            self._due_version.pop(delivery_id, None)
        else:
            version = next(self._counter)
            self._due_version[delivery_id] = version
            order = self._order[delivery_id]
            entry = (delivery.next_attempt_at, delivery.created_at, order, version, delivery_id)
            heapq.heappush(self._due_heap, entry)
            if len(self._due_heap) > 2 * len(self._due_version) + 64:
                self._compact()

    def _compact(self) -> None:
        """Drop every stale entry from the due index."""
        live = self._due_version
        self._due_heap = [e for e in self._due_heap if live.get(e[4]) == e[3]]
        heapq.heapify(self._due_heap)

    def _due_top(self) -> _DueEntry | None:
        """The earliest live entry of the due index, dropping stale ones above it."""
        heap, live = self._due_heap, self._due_version
        while heap:
            top = heap[0]
            if live.get(top[4]) == top[3]:
                return top
            heapq.heappop(heap)
        return None

    def claim(
        self,
        now: float,
        *,
        limit: int,
        lease: float,
        exclude: Collection[tuple[str, str]] = (),
    ) -> list[Claim]:
        with self._lock:
            due: list[Delivery] = []
            passed: list[_DueEntry] = []  # due, but for an excluded endpoint
            skip = set(exclude)
            while len(due) < limit:
                top = self._due_top()
                if top is None or not top[0] <= now:
                    break
                heapq.heappop(self._due_heap)
                delivery = self._deliveries[top[4]]
                if skip and (delivery.team, delivery.webhook) in skip:
                    passed.append(top)
                    continue
                # Out of the index until re-put below with its lease.
                del self._due_version[top[4]]
                due.append(delivery)
            for entry in passed:  # still live: its version did not change
                heapq.heappush(self._due_heap, entry)
            claims = []
            for delivery in due:
                token = uuid.uuid4().hex
                self._leases[delivery.id] = token
                self._put(attrs.evolve(delivery, next_attempt_at=now + lease))
                claims.append(Claim(delivery, self._bodies[delivery.id], token, now + lease))
            return claims

    def record_attempt(
        self,
        claim: Claim,
        attempt: Attempt,
        *,
        status: DeliveryStatus,
        next_attempt_at: float | None,
        finished_at: float | None,
    ) -> bool:
        return self.record_attempts(
            [AttemptResult(claim, attempt, status, next_attempt_at, finished_at)]
        )[0]

    def record_attempts(self, results: Sequence[AttemptResult]) -> list[bool]:
        with self._lock:
            return [self._record(result) for result in results]

    def _record(self, result: AttemptResult) -> bool:
        delivery_id, attempt = result.claim.delivery.id, result.attempt
        if self._leases.get(delivery_id) != result.claim.lease_token:
            return False
        del self._leases[delivery_id]
        self._attempts[delivery_id].append(attempt)
        self._put(
            attrs.evolve(
                self._deliveries[delivery_id],
                status=result.status,
                attempts=attempt.number,
                next_attempt_at=result.next_attempt_at,
                url=attempt.url,
                response_status=attempt.response_status,
                response_body=attempt.response_body,
                error=attempt.error,
                finished_at=result.finished_at,
            )
        )
        return True

    def release(self, claims: Sequence[Claim], next_attempt_at: float) -> int:
        with self._lock:
            released = 0
            for claim in claims:
                delivery_id = claim.delivery.id
                if self._leases.get(delivery_id) != claim.lease_token:
                    continue
                del self._leases[delivery_id]
                current = self._deliveries[delivery_id]
                self._put(attrs.evolve(current, next_attempt_at=next_attempt_at))
                released += 1
            return released

    def note_failure(self, team: str, webhook: str, at: float) -> float:
        with self._lock:
            return self._failing.setdefault((team, webhook), at)

    def note_success(self, team: str, webhook: str) -> None:
        with self._lock:
            self._failing.pop((team, webhook), None)

    def requeue(self, delivery_id: str, now: float) -> Delivery:
        with self._lock:
            current = self._deliveries.get(delivery_id)
            if current is None:
                raise NotFoundError("delivery", delivery_id)
            self._leases.pop(delivery_id, None)
            updated = attrs.evolve(
                current, status=DeliveryStatus.PENDING, next_attempt_at=now, finished_at=None
            )
            self._put(updated)
            return updated

    def outstanding(self) -> tuple[int, float | None]:
        with self._lock:
            top = self._due_top()
            return len(self._due_version), None if top is None else top[0]

    # -- the history -----------------------------------------------------

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        return self._deliveries.get(delivery_id)

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
        keep: list[Callable[[Delivery], bool]] = []
        if team is not None:
            keep.append(lambda d: d.team == team)
        if automation is not None:
            keep.append(lambda d: d.automation == automation)
        if status is not None:
            keep.append(lambda d: d.status is status)
        if webhook is not None:
            keep.append(lambda d: d.webhook == webhook)
        if since is not None:
            keep.append(lambda d: d.created_at >= since)
        with self._lock:
            rows = [d for d in self._deliveries.values() if all(k(d) for k in keep)]
        rows.sort(key=lambda d: d.created_at, reverse=True)
        return rows[: max(limit, 0)]

    def list_attempts(self, delivery_id: str) -> list[Attempt]:
        with self._lock:
            return list(self._attempts.get(delivery_id, ()))

    # -- run state -------------------------------------------------------

    def save_windows(self, windows: Sequence[RunWindow]) -> None:
        with self._lock:
            for window in windows:
                self._windows.setdefault(window.run, {})[window.automation] = window

    def load_windows(self, run: str) -> list[RunWindow]:
        with self._lock:
            return list(self._windows.get(run, {}).values())

    def delete_windows(self, run: str) -> None:
        with self._lock:
            self._windows.pop(run, None)

    # -- keys ------------------------------------------------------------

    def _note(self, sealed: bytes) -> None:
        kid = key_id_of(sealed)
        if kid is not None:
            self._key_ids.add(kid)

    def key_ids(self) -> tuple[str, ...]:
        """The ids of the keys this store holds ciphertexts under."""
        with self._lock:
            return tuple(sorted(self._key_ids))

    def check_key(self, key: SecretKey) -> None:
        """A SecretKeyError if ``key`` includes none of :meth:`key_ids`."""
        check_key_ids(key, self.key_ids(), where=repr(self))

    def sealed_rows(self) -> tuple[list[tuple[str, str]], list[str]]:
        with self._lock:
            bodies = [d for d, sealed in self._bodies.items() if sealed]
            return sorted(self._secrets), bodies

    def reseal_secret(self, team: str, name: str, change: Callable[[bytes], bytes | None]) -> bool:
        with self._lock:
            record = self._secrets.get((team, name))
            new = None if record is None else change(bytes(record.ciphertext))
            if record is None or new is None:
                return False
            self._secrets[(team, name)] = attrs.evolve(record, ciphertext=new)
            self._note(new)
            return True

    def reseal_body(self, delivery_id: str, change: Callable[[bytes], bytes | None]) -> bool:
        with self._lock:
            sealed = self._bodies.get(delivery_id)
            new = None if not sealed else change(bytes(sealed))
            if new is None:
                return False
            self._bodies[delivery_id] = new
            self._note(new)
            return True

    def forget_unused_key_ids(self) -> tuple[str, ...]:
        with self._lock:
            self._key_ids.clear()
            for record in self._secrets.values():
                self._note(record.ciphertext)
            for sealed in self._bodies.values():
                self._note(sealed)
            return tuple(sorted(self._key_ids))

    def close(self) -> None:
        """Nothing to release."""
