"""Records for storage tests: valid defaults, fixed times, stand-in sealed bytes.

Storage never opens what it keeps sealed, so the kit needs no key: a secret's
ciphertext and an outbox body are any bytes, and a store must give them back
exactly as it was given them.
"""

from __future__ import annotations

from typing import Any

import attrs

from hookwise.events import EventType
from hookwise.filters import OnAddArtifactAlias
from hookwise.model import Automation, SendWebhook, Webhook
from hookwise.scope import Scope
from hookwise.storage.protocol import (
    Attempt,
    Claim,
    Cooldown,
    Delivery,
    DeliveryStatus,
    Outbox,
    OutboxEntry,
    SecretRecord,
)

__all__ = [
    "T0",
    "claim_one",
    "enqueue",
    "fail_once",
    "make_attempt",
    "make_automation",
    "make_cooldown",
    "make_delivery",
    "make_entry",
    "make_secret",
    "make_webhook",
    "sealed_body",
    "undue",
]

T0 = 1_700_000_000.0
"""The kit's "now": a fixed time, so tests never depend on the clock."""


def make_secret(
    team: str = "ml-team", name: str = "TOKEN", value: str = "s3cr3t", **changes: Any
) -> SecretRecord:
    """A secret record created at :data:`T0` whose ciphertext stands in for
    ``value`` sealed (``b"sealed:" + value``); keyword arguments override
    fields (pass ``ciphertext=`` to store bytes really sealed with a key)."""
    fields: dict[str, Any] = {
        "ciphertext": b"sealed:" + value.encode(),
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(changes)
    return SecretRecord(team=team, name=name, **fields)


def make_webhook(team: str = "ml-team", name: str = "hook", **changes: Any) -> Webhook:
    """A valid, enabled webhook; keyword arguments override fields."""
    fields: dict[str, Any] = {"url": "https://example.com/h", "access_token": "TOKEN"}
    fields.update(changes)
    return Webhook(team=team, name=name, **fields)


def make_automation(
    team: str = "ml-team", name: str = "a", project: str = "proj", **changes: Any
) -> Automation:
    """A valid automation in ``team``'s project; keyword arguments override fields."""
    fields: dict[str, Any] = {
        "scope": Scope.project(team, project),
        "event": OnAddArtifactAlias(alias="^prod$"),
        "action": SendWebhook(webhook="hook", payload={"v": "${artifact_version}"}),
    }
    fields.update(changes)
    return Automation(name=name, **fields)


def make_delivery(delivery_id: str, **changes: Any) -> Delivery:
    """A new delivery created at :data:`T0` and due then; keyword arguments
    override fields."""
    fields: dict[str, Any] = {
        "message_id": f"msg_{delivery_id}",
        "team": "ml-team",
        "webhook": "hook",
        "automation": "a",
        "event_type": EventType.ADD_ARTIFACT_ALIAS.value,
        "event_id": f"evt_{delivery_id}",
        "created_at": T0,
        "display": '{"v":"v1"}',
        "url": "https://example.com/h",
        "next_attempt_at": T0,
    }
    fields.update(changes)
    return Delivery(id=delivery_id, **fields)


def make_attempt(claim: Claim, number: int = 1, **changes: Any) -> Attempt:
    """A successful attempt on ``claim``'s delivery, started at :data:`T0`, 0.25 s long."""
    fields: dict[str, Any] = {
        "started_at": T0,
        "elapsed": 0.25,
        "url": claim.delivery.url,
        "response_status": 200,
        "response_body": "ok",
    }
    fields.update(changes)
    return Attempt(delivery_id=claim.delivery.id, number=number, **fields)


def make_cooldown(
    automation: str = "ml-team/a",
    run: str = "ml-team/proj/run-1",
    *,
    at: float = T0,
    seconds: float = 100.0,
) -> Cooldown:
    """A cooldown of ``seconds`` firing at ``at``, as the core computes it:
    it holds if ``automation`` last fired for ``run`` at least ``seconds``
    before ``at``, or never."""
    return Cooldown(automation=automation, run=run, at=at, since=at - seconds)


def sealed_body(delivery_id: str) -> bytes:
    """The bytes the kit stores as a delivery's sealed body."""
    return b"sealed:" + delivery_id.encode()


def make_entry(delivery: Delivery, cooldown: Cooldown | None = None) -> OutboxEntry:
    """An outbox entry for ``delivery``, with :func:`sealed_body` as its body."""
    return OutboxEntry(delivery, sealed_body(delivery.id), cooldown)


def enqueue(outbox: Outbox, *deliveries: Delivery) -> list[Delivery]:
    """Enqueue ``deliveries`` in one call, with no cooldowns; what was stored."""
    return outbox.enqueue([make_entry(d) for d in deliveries])


def claim_one(outbox: Outbox, now: float = T0, lease: float = 60.0) -> Claim:
    """Claim exactly one delivery at ``now``; fails the test if not exactly one is due."""
    claims = outbox.claim(now, limit=1, lease=lease)
    assert len(claims) == 1, claims
    return claims[0]


def fail_once(outbox: Outbox) -> Attempt:
    """Enqueue delivery ``d1`` and record one attempt that failed it for good
    (no answer, "connection refused", 2 s from ``T0``); the attempt."""
    enqueue(outbox, make_delivery("d1"))
    claim = claim_one(outbox)
    attempt = make_attempt(
        claim, started_at=T0, elapsed=2.0, response_status=None, response_body=None,
        error="connection refused",
    )  # fmt: skip
    assert outbox.record_attempt(
        claim, attempt, status=DeliveryStatus.FAILED, next_attempt_at=None, finished_at=T0 + 2
    )
    return attempt


def undue(delivery: Delivery) -> Delivery:
    """``delivery`` without its ``next_attempt_at``, to compare a claim's copy
    of a delivery: the contract leaves open whether that copy shows the time
    it was due or the end of its lease (which the store keeps from then on)."""
    return attrs.evolve(delivery, next_attempt_at=None)
