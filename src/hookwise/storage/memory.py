"""MemoryStorage: the whole contract in dicts, for tests and short scripts."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

import attrs

from hookwise.crypto import SecretKey
from hookwise.errors import AlreadyExistsError, NotFoundError
from hookwise.model import Automation, Webhook
from hookwise.storage.protocol import (
    Attempt,
    Claim,
    Delivery,
    DeliveryStatus,
    RunWindow,
    SecretRecord,
)

__all__ = ["MemoryStorage"]

_T = TypeVar("_T")


class MemoryStorage:
    """Everything in process memory; gone when the process ends.

    With no ``key`` a random one is made: nothing outlives the process, so
    there is nothing a lost key could lock away.
    """

    def __init__(self, key: SecretKey | None = None) -> None:
        self._key = key if key is not None else SecretKey.generate()
        self._lock = threading.RLock()
        self._revision = 0
        self._secrets: dict[tuple[str, str], SecretRecord] = {}
        self._webhooks: dict[tuple[str, str], Webhook] = {}
        self._automations: dict[tuple[str, str], Automation] = {}
        self._deliveries: dict[str, Delivery] = {}
        self._bodies: dict[str, bytes] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._attempts: dict[str, list[Attempt]] = {}
        self._fired: dict[tuple[str, str], float] = {}
        self._windows: dict[str, dict[str, RunWindow]] = {}

    def __repr__(self) -> str:
        automations, deliveries = len(self._automations), len(self._deliveries)
        return f"MemoryStorage({automations} automations, {deliveries} deliveries)"

    @property
    def key(self) -> SecretKey:
        return self._key

    def revision(self) -> int:
        return self._revision

    def _put(
        self,
        table: dict[tuple[str, str], _T],
        kind: str,
        key: tuple[str, str],
        value: _T,
        replace: bool,
    ) -> None:
        with self._lock:
            exists = key in table
            if replace and not exists:
                raise NotFoundError(kind, "/".join(key))
            if not replace and exists:
                raise AlreadyExistsError(kind, "/".join(key))
            table[key] = value
            self._revision += 1

    def _delete(self, table: dict[tuple[str, str], _T], key: tuple[str, str]) -> bool:
        with self._lock:
            if table.pop(key, None) is None:
                return False
            self._revision += 1
            return True

    # secrets
    def put_secret(self, record: SecretRecord, *, replace: bool) -> None:
        self._put(self._secrets, "secret", (record.team, record.name), record, replace)

    def get_secret(self, team: str, name: str) -> SecretRecord | None:
        return self._secrets.get((team, name))

    def list_secrets(self, team: str) -> list[SecretRecord]:
        return [r for k, r in sorted(self._secrets.items()) if k[0] == team]

    def delete_secret(self, team: str, name: str) -> bool:
        return self._delete(self._secrets, (team, name))

    # webhooks
    def put_webhook(self, webhook: Webhook, *, replace: bool) -> None:
        self._put(self._webhooks, "webhook", (webhook.team, webhook.name), webhook, replace)

    def get_webhook(self, team: str, name: str) -> Webhook | None:
        return self._webhooks.get((team, name))

    def list_webhooks(self, team: str) -> list[Webhook]:
        return [w for k, w in sorted(self._webhooks.items()) if k[0] == team]

    def delete_webhook(self, team: str, name: str) -> bool:
        return self._delete(self._webhooks, (team, name))

    # automations
    def put_automation(self, automation: Automation, *, replace: bool) -> None:
        key = (automation.team, automation.name)
        self._put(self._automations, "automation", key, automation, replace)

    def get_automation(self, team: str, name: str) -> Automation | None:
        return self._automations.get((team, name))

    def list_automations(self, team: str | None = None) -> list[Automation]:
        with self._lock:
            items = sorted(self._automations.items())
        return [a for k, a in items if team is None or k[0] == team]

    def delete_automation(self, team: str, name: str) -> bool:
        return self._delete(self._automations, (team, name))

    # outbox
    def enqueue(self, deliveries: Sequence[tuple[Delivery, bytes]]) -> None:
        with self._lock:
            seen: set[str] = set()
            for delivery, _body in deliveries:
                if delivery.id in self._deliveries or delivery.id in seen:
                    raise AlreadyExistsError("delivery", delivery.id)
                seen.add(delivery.id)
            for delivery, body in deliveries:
                self._deliveries[delivery.id] = delivery
                self._bodies[delivery.id] = body
                self._attempts[delivery.id] = []

    def _due(self, delivery: Delivery, now: float) -> bool:
        if delivery.status.finished or delivery.next_attempt_at is None:
            return False
        lease = self._leases.get(delivery.id)
        return delivery.next_attempt_at <= now and (lease is None or lease[1] <= now)

    def claim(self, now: float, *, limit: int, lease: float) -> list[Claim]:
        with self._lock:
            due = [d for d in self._deliveries.values() if self._due(d, now)]
            due.sort(key=lambda d: (d.next_attempt_at or 0.0, d.created_at))
            claims = []
            for delivery in due[:limit]:
                token = uuid.uuid4().hex
                self._leases[delivery.id] = (token, now + lease)
                claims.append(Claim(delivery, self._bodies[delivery.id], token, now + lease))
            return claims

    def record_attempt(
        self,
        claim: Claim,
        attempt: Attempt,
        *,
        status: DeliveryStatus,
        next_attempt_at: float | None,
    ) -> bool:
        with self._lock:
            delivery_id = claim.delivery.id
            lease = self._leases.get(delivery_id)
            if lease is None or lease[0] != claim.lease_token:
                return False
            del self._leases[delivery_id]
            current = self._deliveries[delivery_id]
            self._attempts[delivery_id].append(attempt)
            self._deliveries[delivery_id] = attrs.evolve(
                current,
                status=status,
                attempts=current.attempts + 1,
                next_attempt_at=None if status.finished else next_attempt_at,
                url=attempt.url,
                response_status=attempt.response_status,
                response_body=attempt.response_body,
                error=attempt.error,
                finished_at=attempt.started_at + attempt.elapsed if status.finished else None,
            )
            return True

    def requeue(self, delivery_id: str, now: float) -> Delivery:
        with self._lock:
            current = self._deliveries.get(delivery_id)
            if current is None:
                raise NotFoundError("delivery", delivery_id)
            self._leases.pop(delivery_id, None)
            updated = attrs.evolve(
                current, status=DeliveryStatus.PENDING, next_attempt_at=now, finished_at=None
            )
            self._deliveries[delivery_id] = updated
            return updated

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        return self._deliveries.get(delivery_id)

    def list_deliveries(
        self,
        *,
        team: str | None = None,
        automation: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        keep: list[Callable[[Delivery], bool]] = []
        if team is not None:
            keep.append(lambda d: d.team == team)
        if automation is not None:
            keep.append(lambda d: d.automation == automation)
        if status is not None:
            keep.append(lambda d: d.status is status)
        with self._lock:
            rows = [d for d in self._deliveries.values() if all(k(d) for k in keep)]
        rows.sort(key=lambda d: d.created_at, reverse=True)
        return rows[:limit]

    def list_attempts(self, delivery_id: str) -> list[Attempt]:
        with self._lock:
            return list(self._attempts.get(delivery_id, ()))

    def outstanding(self) -> tuple[int, float | None]:
        with self._lock:
            count = 0
            earliest: float | None = None
            for delivery in self._deliveries.values():
                if delivery.status.finished or delivery.next_attempt_at is None:
                    continue
                count += 1
                due = delivery.next_attempt_at
                lease = self._leases.get(delivery.id)
                if lease is not None:
                    due = max(due, lease[1])
                earliest = due if earliest is None else min(earliest, due)
            return count, earliest

    def fire_trigger(self, automation: str, run_id: str, now: float, cooldown: float) -> bool:
        with self._lock:
            last = self._fired.get((automation, run_id))
            if last is not None and now - last < cooldown:
                return False
            self._fired[(automation, run_id)] = now
            return True

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

    def close(self) -> None:
        """Nothing to release."""
