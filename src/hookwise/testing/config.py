"""The :class:`~hookwise.storage.protocol.ConfigStore` contract: secrets,
webhooks, automations and ``revision()``."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hookwise.errors import AlreadyExistsError, NotFoundError
from hookwise.filters import OnAddArtifactAlias, OnCreateArtifact, OnLinkArtifact
from hookwise.model import DoNothing, SendWebhook
from hookwise.scope import Scope
from hookwise.signing import Scheme
from hookwise.storage.protocol import ConfigStore
from hookwise.testing.helpers import T0, make_automation, make_secret, make_webhook

__all__ = ["ConfigStoreContract"]


class ConfigStoreContract:
    """Every behaviour of :class:`~hookwise.storage.protocol.ConfigStore`, as
    pytest tests: what ``Admin`` and the dispatchers' index rely on.

    Subclass it and define a ``storage`` fixture returning a fresh, empty
    ``ConfigStore`` (yield it to close it afterwards). The store must be
    safe to call from several threads.
    """

    def test_is_a_config_store(self, storage: ConfigStore) -> None:
        assert isinstance(storage, ConfigStore)

    def test_config_starts_empty(self, storage: ConfigStore) -> None:
        assert storage.list_secrets("ml-team") == []
        assert storage.list_webhooks("ml-team") == []
        assert storage.list_automations() == []

    # -- secrets ---------------------------------------------------------------------

    def test_secret_crud(self, storage: ConfigStore) -> None:
        record = make_secret()
        storage.create_secret(record)
        assert storage.get_secret("ml-team", "TOKEN") == record
        assert storage.get_secret("ml-team", "OTHER") is None

        rotated = make_secret(value="new", updated_at=T0 + 5)
        storage.update_secret(rotated)
        stored = storage.get_secret("ml-team", "TOKEN")
        assert stored == rotated
        assert stored is not None
        assert stored.ciphertext == b"sealed:new"  # kept exactly as given

        assert storage.delete_secret("ml-team", "TOKEN") is True
        assert storage.get_secret("ml-team", "TOKEN") is None
        assert storage.delete_secret("ml-team", "TOKEN") is False

    def test_secret_create_taken_and_update_missing(self, storage: ConfigStore) -> None:
        record = make_secret()
        storage.create_secret(record)
        with pytest.raises(AlreadyExistsError):
            storage.create_secret(make_secret(value="other"))
        assert storage.get_secret("ml-team", "TOKEN") == record
        with pytest.raises(NotFoundError):
            storage.update_secret(make_secret(name="MISSING"))
        assert storage.get_secret("ml-team", "MISSING") is None

    def test_secrets_sorted_and_team_isolated(self, storage: ConfigStore) -> None:
        for team, name in [("ml-team", "B"), ("other", "A"), ("ml-team", "A"), ("ml-team", "C")]:
            storage.create_secret(make_secret(team, name))
        assert [r.name for r in storage.list_secrets("ml-team")] == ["A", "B", "C"]
        assert [(r.team, r.name) for r in storage.list_secrets("other")] == [("other", "A")]
        assert storage.list_secrets("nobody") == []
        assert storage.get_secret("other", "B") is None
        assert storage.delete_secret("other", "B") is False
        assert len(storage.list_secrets("ml-team")) == 3

    # -- webhooks --------------------------------------------------------------------

    def test_webhook_crud(self, storage: ConfigStore) -> None:
        webhook = make_webhook()
        storage.create_webhook(webhook)
        assert storage.get_webhook("ml-team", "hook") == webhook
        assert storage.get_webhook("ml-team", "other") is None

        changed = make_webhook(
            url="https://example.org/x?a=1",
            access_token=None,
            secret="SIGNING_KEY",  # noqa: S106 - a secret's name, not a value
            signing=(Scheme.WANDB,),
            enabled=False,
            disabled_reason="paused by alice",
            max_in_flight=3,
            rate_limit=0.5,
        )
        storage.update_webhook(changed)
        assert storage.get_webhook("ml-team", "hook") == changed
        assert storage.list_webhooks("ml-team") == [changed]

        assert storage.delete_webhook("ml-team", "hook") is True
        assert storage.get_webhook("ml-team", "hook") is None
        assert storage.delete_webhook("ml-team", "hook") is False

    def test_webhook_delivery_limits_round_trip(self, storage: ConfigStore) -> None:
        limited = make_webhook(max_in_flight=1, rate_limit=0.001)
        plain = make_webhook(name="plain")
        storage.create_webhook(limited)
        storage.create_webhook(plain)
        stored = storage.get_webhook("ml-team", "hook")
        assert stored == limited
        assert stored is not None
        assert (stored.max_in_flight, stored.rate_limit) == (1, 0.001)
        assert storage.list_webhooks("ml-team") == [limited, plain]

        for changed in (
            make_webhook(max_in_flight=10_000, rate_limit=100_000.0),
            make_webhook(max_in_flight=7, rate_limit=1 / 3),  # every digit kept
            make_webhook(max_in_flight=2),  # rate_limit back to None, not kept from before
            make_webhook(rate_limit=12.5),
            make_webhook(),
        ):
            storage.update_webhook(changed)
            assert storage.get_webhook("ml-team", "hook") == changed
            assert storage.list_webhooks("ml-team") == [changed, plain]

        storage.update_webhook(limited)
        assert storage.disable_webhook("ml-team", "hook", "410 Gone") is True
        assert storage.get_webhook("ml-team", "hook") == make_webhook(
            max_in_flight=1, rate_limit=0.001, enabled=False, disabled_reason="410 Gone"
        )
        assert storage.get_webhook("ml-team", "plain") == plain

    def test_webhook_create_taken_and_update_missing(self, storage: ConfigStore) -> None:
        webhook = make_webhook()
        storage.create_webhook(webhook)
        with pytest.raises(AlreadyExistsError):
            storage.create_webhook(make_webhook(url="https://example.org/"))
        assert storage.get_webhook("ml-team", "hook") == webhook
        with pytest.raises(NotFoundError):
            storage.update_webhook(make_webhook(name="missing"))
        assert storage.get_webhook("ml-team", "missing") is None

    def test_webhooks_sorted_and_team_isolated(self, storage: ConfigStore) -> None:
        for team, name in [("ml-team", "b"), ("other", "a"), ("ml-team", "a b"), ("ml-team", "c")]:
            storage.create_webhook(make_webhook(team, name))
        assert [w.name for w in storage.list_webhooks("ml-team")] == ["a b", "b", "c"]
        assert storage.list_webhooks("other") == [make_webhook("other", "a")]
        assert storage.get_webhook("other", "b") is None
        assert storage.delete_webhook("other", "b") is False

    def test_disable_webhook_keeps_the_reason(self, storage: ConfigStore) -> None:
        fields: dict[str, Any] = {"secret": "SIGNING_KEY", "signing": (Scheme.WANDB,)}
        storage.create_webhook(make_webhook(**fields))
        storage.create_webhook(make_webhook("other"))
        assert storage.disable_webhook("ml-team", "hook", "410 Gone") is True
        disabled = make_webhook(**fields, enabled=False, disabled_reason="410 Gone")
        assert storage.get_webhook("ml-team", "hook") == disabled
        assert storage.list_webhooks("ml-team") == [disabled]
        assert storage.get_webhook("other", "hook") == make_webhook("other")

    def test_disable_webhook_missing_or_already_off(self, storage: ConfigStore) -> None:
        assert storage.disable_webhook("ml-team", "missing", "410 Gone") is False
        assert storage.get_webhook("ml-team", "missing") is None

        storage.create_webhook(make_webhook())
        assert storage.disable_webhook("ml-team", "hook", "first") is True
        assert storage.disable_webhook("ml-team", "hook", "second") is False
        assert storage.get_webhook("ml-team", "hook") == make_webhook(
            enabled=False, disabled_reason="first"
        )

        off = make_webhook("ml-team", "off", enabled=False)  # turned off by an update
        storage.create_webhook(off)
        assert storage.disable_webhook("ml-team", "off", "410 Gone") is False
        assert storage.get_webhook("ml-team", "off") == off
        assert storage.disable_webhook("other", "hook", "410 Gone") is False

    def test_disable_webhook_is_one_step(self, storage: ConfigStore) -> None:
        storage.create_webhook(make_webhook())
        results: dict[str, bool] = {}
        errors: list[BaseException] = []
        lock = threading.Lock()
        start = threading.Barrier(8, timeout=30)

        def disable(reason: str) -> None:
            try:
                start.wait()
                done = storage.disable_webhook("ml-team", "hook", reason)
                with lock:
                    results[reason] = done
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=disable, args=(f"worker {i}",)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        winners = [reason for reason, done in results.items() if done]
        assert len(results) == 8
        assert len(winners) == 1, results
        assert storage.get_webhook("ml-team", "hook") == make_webhook(
            enabled=False, disabled_reason=winners[0]
        )

    # -- automations -----------------------------------------------------------------

    def test_automation_crud(self, storage: ConfigStore) -> None:
        automation = make_automation()
        storage.create_automation(automation)
        assert storage.get_automation("ml-team", "a") == automation
        assert storage.get_automation("ml-team", "b") is None

        changed = make_automation(
            scope=Scope.collection("ml-team", "registry", "churn"),
            event=OnLinkArtifact(),
            action=DoNothing(),
            description="kept for later",
            enabled=False,
        )
        storage.update_automation(changed)
        assert storage.get_automation("ml-team", "a") == changed

        assert storage.delete_automation("ml-team", "a") is True
        assert storage.get_automation("ml-team", "a") is None
        assert storage.delete_automation("ml-team", "a") is False

    def test_automation_round_trips_its_parts(self, storage: ConfigStore) -> None:
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
        storage.create_automation(automation)
        stored = storage.get_automation("ml-team", automation.name)
        assert stored == automation
        assert stored is not None
        assert isinstance(stored.action, SendWebhook)
        assert isinstance(automation.action, SendWebhook)
        assert stored.action.payload.source == automation.action.payload.source

    def test_automation_create_taken_and_update_missing(self, storage: ConfigStore) -> None:
        automation = make_automation()
        storage.create_automation(automation)
        with pytest.raises(AlreadyExistsError):
            storage.create_automation(make_automation(event=OnCreateArtifact()))
        assert storage.get_automation("ml-team", "a") == automation
        with pytest.raises(NotFoundError):
            storage.update_automation(make_automation(name="missing"))
        assert storage.get_automation("ml-team", "missing") is None

    def test_automations_sorted_and_team_isolated(self, storage: ConfigStore) -> None:
        for team, name in [("zeta", "a"), ("ml-team", "b"), ("alpha", "z"), ("ml-team", "a")]:
            storage.create_automation(make_automation(team, name))
        keys = [(a.team, a.name) for a in storage.list_automations()]
        assert keys == [("alpha", "z"), ("ml-team", "a"), ("ml-team", "b"), ("zeta", "a")]
        assert [a.name for a in storage.list_automations("ml-team")] == ["a", "b"]
        assert storage.list_automations("nobody") == []
        assert storage.get_automation("zeta", "b") is None
        assert storage.delete_automation("zeta", "b") is False

    def test_automations_keyed_by_scope_entity(self, storage: ConfigStore) -> None:
        storage.create_automation(make_automation("ml-team", "same"))
        storage.create_automation(make_automation("other", "same"))
        mine = storage.get_automation("ml-team", "same")
        assert mine is not None
        assert mine.scope.entity == "ml-team"
        assert storage.delete_automation("other", "same") is True
        assert storage.get_automation("ml-team", "same") == mine

    # -- revision --------------------------------------------------------------------

    def test_revision_moves_on_every_change(self, storage: ConfigStore) -> None:
        seen = [storage.revision()]

        def moved() -> None:
            now = storage.revision()
            assert now not in seen, "revision() did not move after a change"
            seen.append(now)

        storage.create_secret(make_secret())
        moved()
        storage.update_secret(make_secret(value="v2"))
        moved()
        storage.delete_secret("ml-team", "TOKEN")
        moved()
        storage.create_webhook(make_webhook())
        moved()
        storage.update_webhook(make_webhook(enabled=False))
        moved()
        storage.update_webhook(make_webhook())
        moved()
        storage.disable_webhook("ml-team", "hook", "410 Gone")
        moved()
        storage.delete_webhook("ml-team", "hook")
        moved()
        storage.create_automation(make_automation())
        moved()
        storage.update_automation(make_automation(enabled=False))
        moved()
        storage.delete_automation("ml-team", "a")
        moved()

    def test_revision_still_on_reads(self, storage: ConfigStore) -> None:
        storage.create_secret(make_secret())
        storage.create_webhook(make_webhook())
        storage.create_automation(make_automation())
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
