"""The storage conformance kit: check your own :class:`~hookwise.Storage` class.

Subclass :class:`StorageContract` in a test module and provide a ``storage``
fixture that returns a fresh, empty store (yield it to close it afterwards);
pytest then runs every ``test_*`` method of the contract against it::

    import pytest
    from hookwise.testing import StorageContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            store = MyStorage(tmp_path / "hooks.db", key=SecretKey.generate())
            yield store
            store.close()

The contract is what the dispatcher and ``Admin`` rely on, so a store that
passes it can back them. The tests pass time in explicitly, as the protocol
does, and need a store that is safe to call from several threads.

This module imports pytest; import it from tests only.
"""

from __future__ import annotations

import threading
from typing import Any

import attrs
import pytest

from hookwise.crypto import SecretKey
from hookwise.errors import AlreadyExistsError, NotFoundError
from hookwise.events import EventType
from hookwise.model import (
    Automation,
    DoNothing,
    OnAddArtifactAlias,
    OnCreateArtifact,
    OnLinkArtifact,
    Scope,
    SendWebhook,
    Webhook,
)
from hookwise.signing import Scheme
from hookwise.storage.protocol import (
    Attempt,
    Claim,
    Delivery,
    DeliveryStatus,
    RunWindow,
    SecretRecord,
    Storage,
)

__all__ = [
    "T0",
    "StorageContract",
    "make_attempt",
    "make_automation",
    "make_delivery",
    "make_secret",
    "make_webhook",
]

T0 = 1_700_000_000.0
"""The kit's "now": a fixed time, so tests never depend on the clock."""


def make_secret(
    storage: Storage, team: str = "ml-team", name: str = "TOKEN", value: str = "s3cr3t"
) -> SecretRecord:
    """A secret record sealed with the store's key, as ``Admin`` would make it."""
    ciphertext = storage.key.encrypt(value.encode(), context=f"secret:{team}/{name}")
    return SecretRecord(team=team, name=name, ciphertext=ciphertext, created_at=T0, updated_at=T0)


def make_webhook(team: str = "ml-team", name: str = "hook", **changes: Any) -> Webhook:
    """A valid webhook; keyword arguments override fields."""
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
    """A new, due delivery created at :data:`T0`; keyword arguments override fields."""
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


def _body(delivery_id: str) -> bytes:
    return b"sealed:" + delivery_id.encode()


def _enqueue(storage: Storage, *deliveries: Delivery) -> None:
    storage.enqueue([(d, _body(d.id)) for d in deliveries])


def _claim_one(storage: Storage, now: float = T0, lease: float = 60.0) -> Claim:
    claims = storage.claim(now, limit=1, lease=lease)
    assert len(claims) == 1, claims
    return claims[0]


class StorageContract:
    """Every behaviour of the :class:`~hookwise.Storage` protocol, as pytest tests.

    Subclass it and define a ``storage`` fixture; see the module docstring.
    """

    # -- the basics ------------------------------------------------------------------

    def test_is_a_storage(self, storage: Storage) -> None:
        assert isinstance(storage, Storage)
        assert isinstance(storage.key, SecretKey)
        sealed = storage.key.encrypt(b"x", context="test")
        assert storage.key.decrypt(sealed, context="test") == b"x"

    def test_starts_empty(self, storage: Storage) -> None:
        assert storage.list_secrets("ml-team") == []
        assert storage.list_webhooks("ml-team") == []
        assert storage.list_automations() == []
        assert storage.list_deliveries() == []
        assert storage.outstanding() == (0, None)

    # -- secrets ---------------------------------------------------------------------

    def test_secret_crud(self, storage: Storage) -> None:
        record = make_secret(storage)
        storage.put_secret(record, replace=False)
        assert storage.get_secret("ml-team", "TOKEN") == record
        assert storage.get_secret("ml-team", "OTHER") is None

        rotated = attrs.evolve(make_secret(storage, value="new"), updated_at=T0 + 5)
        storage.put_secret(rotated, replace=True)
        stored = storage.get_secret("ml-team", "TOKEN")
        assert stored == rotated
        assert stored is not None
        assert storage.key.decrypt(stored.ciphertext, context="secret:ml-team/TOKEN") == b"new"

        assert storage.delete_secret("ml-team", "TOKEN") is True
        assert storage.get_secret("ml-team", "TOKEN") is None
        assert storage.delete_secret("ml-team", "TOKEN") is False

    def test_secret_insert_taken_and_replace_missing(self, storage: Storage) -> None:
        record = make_secret(storage)
        storage.put_secret(record, replace=False)
        with pytest.raises(AlreadyExistsError):
            storage.put_secret(make_secret(storage, value="other"), replace=False)
        assert storage.get_secret("ml-team", "TOKEN") == record
        with pytest.raises(NotFoundError):
            storage.put_secret(make_secret(storage, name="MISSING"), replace=True)
        assert storage.get_secret("ml-team", "MISSING") is None

    def test_secrets_sorted_and_team_isolated(self, storage: Storage) -> None:
        for team, name in [("ml-team", "B"), ("other", "A"), ("ml-team", "A"), ("ml-team", "C")]:
            storage.put_secret(make_secret(storage, team, name), replace=False)
        assert [r.name for r in storage.list_secrets("ml-team")] == ["A", "B", "C"]
        assert [(r.team, r.name) for r in storage.list_secrets("other")] == [("other", "A")]
        assert storage.list_secrets("nobody") == []
        assert storage.get_secret("other", "B") is None
        assert storage.delete_secret("other", "B") is False
        assert len(storage.list_secrets("ml-team")) == 3

    # -- webhooks --------------------------------------------------------------------

    def test_webhook_crud(self, storage: Storage) -> None:
        webhook = make_webhook()
        storage.put_webhook(webhook, replace=False)
        assert storage.get_webhook("ml-team", "hook") == webhook
        assert storage.get_webhook("ml-team", "other") is None

        changed = make_webhook(
            url="https://example.org/x?a=1",
            access_token=None,
            secret="SIGNING_KEY",  # noqa: S106 - a secret's name, not a value
            signing=(Scheme.WANDB,),
            enabled=False,
        )
        storage.put_webhook(changed, replace=True)
        assert storage.get_webhook("ml-team", "hook") == changed

        assert storage.delete_webhook("ml-team", "hook") is True
        assert storage.get_webhook("ml-team", "hook") is None
        assert storage.delete_webhook("ml-team", "hook") is False

    def test_webhook_insert_taken_and_replace_missing(self, storage: Storage) -> None:
        webhook = make_webhook()
        storage.put_webhook(webhook, replace=False)
        with pytest.raises(AlreadyExistsError):
            storage.put_webhook(make_webhook(url="https://example.org/"), replace=False)
        assert storage.get_webhook("ml-team", "hook") == webhook
        with pytest.raises(NotFoundError):
            storage.put_webhook(make_webhook(name="missing"), replace=True)
        assert storage.get_webhook("ml-team", "missing") is None

    def test_webhooks_sorted_and_team_isolated(self, storage: Storage) -> None:
        for team, name in [("ml-team", "b"), ("other", "a"), ("ml-team", "a b"), ("ml-team", "c")]:
            storage.put_webhook(make_webhook(team, name), replace=False)
        assert [w.name for w in storage.list_webhooks("ml-team")] == ["a b", "b", "c"]
        assert storage.list_webhooks("other") == [make_webhook("other", "a")]
        assert storage.get_webhook("other", "b") is None
        assert storage.delete_webhook("other", "b") is False

    # -- automations -----------------------------------------------------------------

    def test_automation_crud(self, storage: Storage) -> None:
        automation = make_automation()
        storage.put_automation(automation, replace=False)
        assert storage.get_automation("ml-team", "a") == automation
        assert storage.get_automation("ml-team", "b") is None

        changed = make_automation(
            scope=Scope.collection("ml-team", "registry", "churn"),
            event=OnLinkArtifact(),
            action=DoNothing(),
            description="kept for later",
            enabled=False,
        )
        storage.put_automation(changed, replace=True)
        assert storage.get_automation("ml-team", "a") == changed

        assert storage.delete_automation("ml-team", "a") is True
        assert storage.get_automation("ml-team", "a") is None
        assert storage.delete_automation("ml-team", "a") is False

    def test_automation_round_trips_its_parts(self, storage: Storage) -> None:
        automation = make_automation(
            name="deploy on production: v2 ✓",
            scope=Scope.registry("ml-team", "model-registry"),
            event=OnAddArtifactAlias(alias=r"^production$"),
            action=SendWebhook(
                webhook="github-dispatch",
                team="ml-team",
                payload={
                    "event_type": "BUILD_AND_DEPLOY",
                    "client_payload": {"version": "${artifact_version_string}", "n": [1, 2.5]},
                },
            ),
        )
        storage.put_automation(automation, replace=False)
        stored = storage.get_automation("ml-team", automation.name)
        assert stored == automation
        assert stored is not None
        assert isinstance(stored.action, SendWebhook)
        assert isinstance(automation.action, SendWebhook)
        assert stored.action.payload.source == automation.action.payload.source

    def test_automation_insert_taken_and_replace_missing(self, storage: Storage) -> None:
        automation = make_automation()
        storage.put_automation(automation, replace=False)
        with pytest.raises(AlreadyExistsError):
            storage.put_automation(make_automation(event=OnCreateArtifact()), replace=False)
        assert storage.get_automation("ml-team", "a") == automation
        with pytest.raises(NotFoundError):
            storage.put_automation(make_automation(name="missing"), replace=True)
        assert storage.get_automation("ml-team", "missing") is None

    def test_automations_sorted_and_team_isolated(self, storage: Storage) -> None:
        for team, name in [("zeta", "a"), ("ml-team", "b"), ("alpha", "z"), ("ml-team", "a")]:
            storage.put_automation(make_automation(team, name), replace=False)
        keys = [(a.team, a.name) for a in storage.list_automations()]
        assert keys == [("alpha", "z"), ("ml-team", "a"), ("ml-team", "b"), ("zeta", "a")]
        assert [a.name for a in storage.list_automations("ml-team")] == ["a", "b"]
        assert storage.list_automations("nobody") == []
        assert storage.get_automation("zeta", "b") is None
        assert storage.delete_automation("zeta", "b") is False

    def test_automations_keyed_by_scope_entity(self, storage: Storage) -> None:
        storage.put_automation(make_automation("ml-team", "same"), replace=False)
        storage.put_automation(make_automation("other", "same"), replace=False)
        mine = storage.get_automation("ml-team", "same")
        assert mine is not None
        assert mine.scope.entity == "ml-team"
        assert storage.delete_automation("other", "same") is True
        assert storage.get_automation("ml-team", "same") == mine

    # -- revision --------------------------------------------------------------------

    def test_revision_moves_on_every_change(self, storage: Storage) -> None:
        seen = [storage.revision()]

        def moved() -> None:
            now = storage.revision()
            assert now not in seen, "revision() did not move after a change"
            seen.append(now)

        storage.put_secret(make_secret(storage), replace=False)
        moved()
        storage.put_secret(make_secret(storage, value="v2"), replace=True)
        moved()
        storage.delete_secret("ml-team", "TOKEN")
        moved()
        storage.put_webhook(make_webhook(), replace=False)
        moved()
        storage.put_webhook(make_webhook(enabled=False), replace=True)
        moved()
        storage.delete_webhook("ml-team", "hook")
        moved()
        storage.put_automation(make_automation(), replace=False)
        moved()
        storage.put_automation(make_automation(enabled=False), replace=True)
        moved()
        storage.delete_automation("ml-team", "a")
        moved()

    def test_revision_still_on_reads(self, storage: Storage) -> None:
        storage.put_secret(make_secret(storage), replace=False)
        storage.put_webhook(make_webhook(), replace=False)
        storage.put_automation(make_automation(), replace=False)
        before = storage.revision()
        storage.get_secret("ml-team", "TOKEN")
        storage.list_secrets("ml-team")
        storage.get_webhook("ml-team", "hook")
        storage.list_webhooks("ml-team")
        storage.get_automation("ml-team", "a")
        storage.list_automations()
        storage.list_automations("ml-team")
        assert storage.revision() == before
        assert storage.revision() == before

    # -- enqueue ---------------------------------------------------------------------

    def test_enqueue_and_get(self, storage: Storage) -> None:
        delivery = make_delivery("d1")
        _enqueue(storage, delivery)
        assert storage.get_delivery("d1") == delivery
        assert storage.get_delivery("missing") is None
        assert storage.list_attempts("d1") == []
        assert storage.list_deliveries() == [delivery]
        storage.enqueue([])
        assert storage.list_deliveries() == [delivery]

    def test_enqueue_is_all_or_none(self, storage: Storage) -> None:
        _enqueue(storage, make_delivery("d1"))
        with pytest.raises(AlreadyExistsError):
            _enqueue(storage, make_delivery("d2"), make_delivery("d1", display="changed"))
        assert storage.get_delivery("d2") is None
        assert storage.get_delivery("d1") == make_delivery("d1")
        assert [d.id for d in storage.list_deliveries()] == ["d1"]

    def test_enqueue_duplicate_within_a_batch_stores_nothing(self, storage: Storage) -> None:
        with pytest.raises(AlreadyExistsError):
            _enqueue(storage, make_delivery("d1"), make_delivery("d2"), make_delivery("d1"))
        assert storage.get_delivery("d1") is None
        assert storage.get_delivery("d2") is None
        assert storage.outstanding() == (0, None)

    # -- claim -----------------------------------------------------------------------

    def test_claim_returns_the_delivery_and_its_body(self, storage: Storage) -> None:
        delivery = make_delivery("d1")
        _enqueue(storage, delivery)
        claim = _claim_one(storage, T0 + 1, lease=30.0)
        assert claim.delivery == delivery
        assert claim.sealed_body == _body("d1")
        assert claim.lease_until == T0 + 31.0
        assert isinstance(claim.lease_token, str)
        assert claim.lease_token

    def test_claim_only_due(self, storage: Storage) -> None:
        _enqueue(storage, make_delivery("now"), make_delivery("later", next_attempt_at=T0 + 100))
        assert [c.delivery.id for c in storage.claim(T0, limit=10, lease=600)] == ["now"]
        assert storage.claim(T0 + 99, limit=10, lease=600) == []
        assert [c.delivery.id for c in storage.claim(T0 + 100, limit=10, lease=600)] == ["later"]

    def test_lease_excludes_others_until_it_expires(self, storage: Storage) -> None:
        _enqueue(storage, make_delivery("d1"))
        first = _claim_one(storage, T0, lease=60)
        assert storage.claim(T0, limit=10, lease=60) == []
        assert storage.claim(T0 + 59.5, limit=10, lease=60) == []
        second = _claim_one(storage, T0 + 60, lease=60)
        assert second.delivery.id == "d1"
        assert second.lease_token != first.lease_token
        assert second.lease_until == T0 + 120
        assert storage.claim(T0 + 61, limit=10, lease=60) == []

    def test_claim_limit_and_oldest_due_first(self, storage: Storage) -> None:
        _enqueue(
            storage,
            make_delivery("c", next_attempt_at=T0 + 3, created_at=T0 - 30),
            make_delivery("a", next_attempt_at=T0 + 1, created_at=T0 - 10),
            make_delivery("b2", next_attempt_at=T0 + 2, created_at=T0 - 5),
            make_delivery("b1", next_attempt_at=T0 + 2, created_at=T0 - 20),
            make_delivery("future", next_attempt_at=T0 + 50, created_at=T0 - 40),
        )
        now = T0 + 10
        assert [c.delivery.id for c in storage.claim(now, limit=2, lease=60)] == ["a", "b1"]
        assert [c.delivery.id for c in storage.claim(now, limit=2, lease=60)] == ["b2", "c"]
        assert storage.claim(now, limit=2, lease=60) == []
        assert storage.claim(T0 + 50, limit=0, lease=60) == []

    def test_finished_deliveries_are_not_claimed(self, storage: Storage) -> None:
        _enqueue(storage, make_delivery("d1"), make_delivery("d2"))
        for claim in storage.claim(T0, limit=10, lease=60):
            status = (
                DeliveryStatus.SUCCEEDED if claim.delivery.id == "d1" else DeliveryStatus.FAILED
            )
            assert storage.record_attempt(
                claim, make_attempt(claim), status=status, next_attempt_at=None
            )
        assert storage.claim(T0 + 1000, limit=10, lease=60) == []

    def test_concurrent_claims_never_share_a_delivery(self, storage: Storage) -> None:
        ids = [f"d{i:03}" for i in range(60)]
        _enqueue(storage, *(make_delivery(i) for i in ids))
        got: list[list[str]] = [[] for _ in range(4)]
        errors: list[BaseException] = []

        def work(mine: list[str]) -> None:
            try:
                while claims := storage.claim(T0, limit=3, lease=600):
                    mine.extend(c.delivery.id for c in claims)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(mine,)) for mine in got]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        claimed = [i for mine in got for i in mine]
        assert sorted(claimed) == ids

    # -- record_attempt --------------------------------------------------------------

    def test_success(self, storage: Storage) -> None:
        _enqueue(storage, make_delivery("d1"))
        claim = _claim_one(storage)
        attempt = make_attempt(claim, started_at=T0 + 1, elapsed=0.5, url="https://example.com/v2")
        ok = storage.record_attempt(
            claim, attempt, status=DeliveryStatus.SUCCEEDED, next_attempt_at=T0 + 999
        )
        assert ok is True
        delivery = storage.get_delivery("d1")
        assert delivery == attrs.evolve(
            make_delivery("d1"),
            status=DeliveryStatus.SUCCEEDED,
            attempts=1,
            next_attempt_at=None,
            url="https://example.com/v2",
            response_status=200,
            response_body="ok",
            error=None,
            finished_at=T0 + 1.5,
        )
        assert storage.list_attempts("d1") == [attempt]
        assert storage.outstanding() == (0, None)

    def test_retry_then_success(self, storage: Storage) -> None:
        _enqueue(storage, make_delivery("d1"))
        claim = _claim_one(storage)
        first = make_attempt(claim, response_status=503, response_body="busy")
        assert storage.record_attempt(
            claim, first, status=DeliveryStatus.RETRYING, next_attempt_at=T0 + 30
        )
        delivery = storage.get_delivery("d1")
        assert delivery is not None
        assert delivery.status is DeliveryStatus.RETRYING
        assert delivery.attempts == 1
        assert delivery.next_attempt_at == T0 + 30
        assert delivery.finished_at is None
        assert delivery.response_status == 503
        assert delivery.response_body == "busy"
        assert storage.outstanding() == (1, T0 + 30)
        assert storage.claim(T0 + 29, limit=10, lease=60) == []

        again = _claim_one(storage, T0 + 30)
        assert again.delivery == delivery
        second = make_attempt(again, number=2, started_at=T0 + 30, elapsed=1.0)
        assert storage.record_attempt(
            again, second, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None
        )
        delivery = storage.get_delivery("d1")
        assert delivery is not None
        assert delivery.status is DeliveryStatus.SUCCEEDED
        assert delivery.attempts == 2
        assert delivery.finished_at == T0 + 31
        assert delivery.response_status == 200
        assert storage.list_attempts("d1") == [first, second]

    def test_failure(self, storage: Storage) -> None:
        _enqueue(storage, make_delivery("d1"))
        claim = _claim_one(storage)
        attempt = make_attempt(
            claim, started_at=T0, elapsed=2.0, response_status=None, response_body=None,
            error="connection refused",
        )  # fmt: skip
        assert storage.record_attempt(
            claim, attempt, status=DeliveryStatus.FAILED, next_attempt_at=None
        )
        delivery = storage.get_delivery("d1")
        assert delivery is not None
        assert delivery.status is DeliveryStatus.FAILED
        assert delivery.attempts == 1
        assert delivery.next_attempt_at is None
        assert delivery.finished_at == T0 + 2
        assert delivery.response_status is None
        assert delivery.error == "connection refused"
        assert storage.outstanding() == (0, None)

    def test_record_attempt_with_a_lost_lease_changes_nothing(self, storage: Storage) -> None:
        _enqueue(storage, make_delivery("d1"))
        stale = _claim_one(storage, T0, lease=10)
        fresh = _claim_one(storage, T0 + 10, lease=10)
        before = storage.get_delivery("d1")
        ok = storage.record_attempt(
            stale, make_attempt(stale), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None
        )
        assert ok is False
        assert storage.get_delivery("d1") == before
        assert storage.list_attempts("d1") == []
        assert storage.claim(T0 + 15, limit=10, lease=10) == []  # fresh's lease still holds
        assert storage.record_attempt(
            fresh, make_attempt(fresh), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None
        )
        assert len(storage.list_attempts("d1")) == 1

    def test_a_lease_is_used_once(self, storage: Storage) -> None:
        _enqueue(storage, make_delivery("d1"))
        claim = _claim_one(storage)
        first = make_attempt(claim, response_status=500)
        assert storage.record_attempt(
            claim, first, status=DeliveryStatus.RETRYING, next_attempt_at=T0 + 5
        )
        after = storage.get_delivery("d1")
        again = storage.record_attempt(
            claim,
            make_attempt(claim, number=2),
            status=DeliveryStatus.SUCCEEDED,
            next_attempt_at=None,
        )
        assert again is False
        assert storage.get_delivery("d1") == after
        assert storage.list_attempts("d1") == [first]

    # -- requeue ---------------------------------------------------------------------

    def test_requeue_keeps_the_message_id(self, storage: Storage) -> None:
        _enqueue(storage, make_delivery("d1"))
        claim = _claim_one(storage)
        assert storage.record_attempt(
            claim, make_attempt(claim, response_status=400), status=DeliveryStatus.FAILED,
            next_attempt_at=None,
        )  # fmt: skip
        requeued = storage.requeue("d1", T0 + 500)
        assert requeued.id == "d1"
        assert requeued.message_id == "msg_d1"
        assert requeued.status is DeliveryStatus.PENDING
        assert requeued.next_attempt_at == T0 + 500
        assert requeued.finished_at is None
        assert requeued.attempts == 1
        assert storage.get_delivery("d1") == requeued
        assert storage.outstanding() == (1, T0 + 500)
        assert storage.claim(T0 + 499, limit=10, lease=60) == []
        again = _claim_one(storage, T0 + 500)
        assert again.delivery == requeued
        assert again.sealed_body == _body("d1")

    def test_requeue_breaks_a_lease(self, storage: Storage) -> None:
        _enqueue(storage, make_delivery("d1"))
        claim = _claim_one(storage, T0, lease=600)
        storage.requeue("d1", T0 + 1)
        assert _claim_one(storage, T0 + 1).delivery.id == "d1"
        ok = storage.record_attempt(
            claim, make_attempt(claim), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None
        )
        assert ok is False

    def test_requeue_missing(self, storage: Storage) -> None:
        with pytest.raises(NotFoundError):
            storage.requeue("missing", T0)

    # -- history ---------------------------------------------------------------------

    def test_list_deliveries_filters_newest_first(self, storage: Storage) -> None:
        _enqueue(
            storage,
            make_delivery("old", created_at=T0 - 30),
            make_delivery("new", created_at=T0),
            make_delivery("mid", created_at=T0 - 10, automation="b"),
            make_delivery("theirs", created_at=T0 - 20, team="other"),
        )
        claims = {c.delivery.id: c for c in storage.claim(T0, limit=10, lease=60)}
        for delivery_id in ("old", "theirs"):
            claim = claims[delivery_id]
            assert storage.record_attempt(
                claim, make_attempt(claim), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None
            )

        def ids(**filters: Any) -> list[str]:
            return [d.id for d in storage.list_deliveries(**filters)]

        assert ids() == ["new", "mid", "theirs", "old"]
        assert ids(limit=2) == ["new", "mid"]
        assert ids(limit=0) == []
        assert ids(team="ml-team") == ["new", "mid", "old"]
        assert ids(team="other") == ["theirs"]
        assert ids(automation="a") == ["new", "theirs", "old"]
        assert ids(team="ml-team", automation="a") == ["new", "old"]
        assert ids(status=DeliveryStatus.SUCCEEDED) == ["theirs", "old"]
        assert ids(status=DeliveryStatus.PENDING) == ["new", "mid"]
        assert ids(status=DeliveryStatus.FAILED) == []
        assert ids(team="ml-team", automation="b", status=DeliveryStatus.PENDING) == ["mid"]
        assert ids(team="nobody") == []

    def test_list_attempts_oldest_first(self, storage: Storage) -> None:
        _enqueue(storage, make_delivery("d1"), make_delivery("d2"))
        made: dict[str, list[Attempt]] = {"d1": [], "d2": []}
        now = T0
        for number in (1, 2, 3):
            for claim in storage.claim(now, limit=10, lease=60):
                attempt = make_attempt(claim, number=number, started_at=now, response_status=500)
                made[claim.delivery.id].append(attempt)
                assert storage.record_attempt(
                    claim, attempt, status=DeliveryStatus.RETRYING, next_attempt_at=now + 1
                )
            now += 1
        assert storage.list_attempts("d1") == made["d1"]
        assert [a.number for a in storage.list_attempts("d2")] == [1, 2, 3]
        assert storage.list_attempts("missing") == []

    # -- outstanding -----------------------------------------------------------------

    def test_outstanding_counts_and_earliest_due(self, storage: Storage) -> None:
        assert storage.outstanding() == (0, None)
        _enqueue(
            storage,
            make_delivery("a", next_attempt_at=T0 + 20),
            make_delivery("b", next_attempt_at=T0 + 5),
            make_delivery("c", next_attempt_at=T0 + 40),
        )
        assert storage.outstanding() == (3, T0 + 5)

        claim = _claim_one(storage, T0 + 5, lease=100)  # b, leased until T0 + 105
        assert storage.outstanding() == (3, T0 + 20)
        assert storage.record_attempt(
            claim, make_attempt(claim), status=DeliveryStatus.SUCCEEDED, next_attempt_at=None
        )
        assert storage.outstanding() == (2, T0 + 20)

        claims = storage.claim(T0 + 40, limit=10, lease=100)
        assert sorted(c.delivery.id for c in claims) == ["a", "c"]
        assert storage.outstanding() == (2, T0 + 140)

    # -- run-trigger state -----------------------------------------------

    def test_fire_trigger_once_per_cooldown(self, storage: Storage) -> None:
        assert storage.fire_trigger("ml-team/a", "run-1", T0, 100.0)
        assert not storage.fire_trigger("ml-team/a", "run-1", T0 + 99.0, 100.0)
        # other runs and other automations have their own cooldowns
        assert storage.fire_trigger("ml-team/a", "run-2", T0 + 1.0, 100.0)
        assert storage.fire_trigger("ml-team/b", "run-1", T0 + 1.0, 100.0)
        # a refused try does not restart the clock
        assert storage.fire_trigger("ml-team/a", "run-1", T0 + 100.0, 100.0)
        assert not storage.fire_trigger("ml-team/a", "run-1", T0 + 150.0, 100.0)

    def test_fire_trigger_is_atomic(self, storage: Storage) -> None:
        results: list[bool] = []
        lock = threading.Lock()

        def fire() -> None:
            won = storage.fire_trigger("ml-team/a", "run-1", T0, 3600.0)
            with lock:
                results.append(won)

        threads = [threading.Thread(target=fire) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [False] * 7 + [True]

    def test_windows_are_saved_replaced_and_deleted_per_run(self, storage: Storage) -> None:
        run, other = "ml-team/training/run-1", "ml-team/training/run-2"
        storage.save_windows(
            [
                RunWindow(run, "ml-team\x00a\x00cond", '{"on": false, "values": [1.0]}', T0),
                RunWindow(run, "ml-team\x00b\x00cond", '{"on": true, "values": []}', T0),
                RunWindow(other, "ml-team\x00a\x00cond", '{"on": false, "values": [9.0]}', T0),
            ]
        )
        storage.save_windows(
            [RunWindow(run, "ml-team\x00a\x00cond", '{"on": true, "values": [1.0, 2.0]}', T0 + 1)]
        )
        saved = sorted(storage.load_windows(run), key=lambda w: w.automation)
        assert saved == [
            RunWindow(run, "ml-team\x00a\x00cond", '{"on": true, "values": [1.0, 2.0]}', T0 + 1),
            RunWindow(run, "ml-team\x00b\x00cond", '{"on": true, "values": []}', T0),
        ]
        storage.delete_windows(run)
        storage.delete_windows("ml-team/training/never-seen")
        assert storage.load_windows(run) == []
        assert [w.state for w in storage.load_windows(other)] == ['{"on": false, "values": [9.0]}']
        storage.save_windows([])
