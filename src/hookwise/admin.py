"""Admin: the validating management API over any Storage.

Every method checks everything first (the object itself, then the objects it
names) and writes once, so a failure leaves nothing stored half-way. Secret
values go in and never come out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import attrs

from hookwise.crypto import SecretKey
from hookwise.errors import NotFoundError, ValidationError
from hookwise.history import list_deliveries
from hookwise.model import (
    Automation,
    Secret,
    SendNotification,
    SendWebhook,
    Webhook,
    check_access_token,
)
from hookwise.network import NetworkPolicy
from hookwise.signing import signing_key
from hookwise.storage.protocol import Attempt, Delivery, DeliveryStatus, SecretRecord, Storage
from hookwise.template import compile_template
from hookwise.vault import Vault, key_for

__all__ = ["Admin", "SecretInfo"]


@attrs.frozen(slots=True)
class SecretInfo:
    """What Admin tells about a secret: everything but its value."""

    team: str
    name: str
    created_at: float
    updated_at: float


def _info(record: SecretRecord) -> SecretInfo:
    return SecretInfo(record.team, record.name, record.created_at, record.updated_at)


def _check_secret_roles(webhook: Webhook, values: Mapping[str, str]) -> None:
    """Each secret in ``values`` that ``webhook`` uses must fit its role there,
    so a bad value is refused now rather than failing every delivery later."""
    if webhook.access_token is not None and webhook.access_token in values:
        check_access_token(webhook.access_token, values[webhook.access_token])
    if webhook.secret is not None and webhook.signing and webhook.secret in values:
        signing_key(values[webhook.secret])  # only a webhook that signs needs a key


class Admin:
    """Create, read, update and delete secrets, webhooks and automations.

    ``network`` is the policy webhook URLs are checked against, and ``key``
    seals secret values (default: the store's own key, else
    ``HOOKWISE_SECRET_KEY``); give the dispatcher the same ones.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        network: NetworkPolicy | None = None,
        key: SecretKey | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if network is not None and not isinstance(network, NetworkPolicy):
            raise ValidationError("network", "must be a hookwise.NetworkPolicy")
        self.storage = storage
        self.network = network if network is not None else NetworkPolicy()
        self._vault = Vault(key_for(storage, key))
        self._clock = clock

    def __repr__(self) -> str:
        return f"Admin({self.storage!r})"

    # -- secrets ---------------------------------------------------------

    def create_secret(self, secret: Secret) -> SecretInfo:
        _expect(secret, Secret, "secret")
        now = self._clock()
        record = self._sealed(secret, created_at=now, now=now)
        self.storage.create_secret(record)
        return _info(record)

    def update_secret(self, secret: Secret) -> SecretInfo:
        """Replace a secret's value (rotation); deliveries use it from now on."""
        _expect(secret, Secret, "secret")
        created = self._secret_record(secret.team, secret.name).created_at
        for webhook in self.storage.list_webhooks(secret.team):
            if secret.name in webhook.secret_names:
                _check_secret_roles(webhook, {secret.name: secret.value})
        for automation in self.storage.list_automations(secret.team):
            action = automation.action
            if isinstance(action, SendNotification) and action.secret == secret.name:
                self.network.check_url(secret.value, field="value")  # a Slack URL still
        record = self._sealed(secret, created_at=created, now=self._clock())
        self.storage.update_secret(record)
        return _info(record)

    def _sealed(self, secret: Secret, *, created_at: float, now: float) -> SecretRecord:
        return SecretRecord(
            team=secret.team,
            name=secret.name,
            ciphertext=self._vault.seal_secret(secret.team, secret.name, secret.value),
            created_at=created_at,
            updated_at=now,
        )

    def _secret_record(self, team: str, name: str) -> SecretRecord:
        record = self.storage.get_secret(team, name)
        if record is None:
            raise NotFoundError("secret", f"{team}/{name}")
        return record

    def get_secret(self, team: str, name: str) -> SecretInfo:
        return _info(self._secret_record(team, name))

    def list_secrets(self, team: str) -> list[SecretInfo]:
        return [_info(r) for r in self.storage.list_secrets(team)]

    def delete_secret(self, team: str, name: str) -> None:
        """Refused while a webhook or a Slack notification uses the secret:
        delete or change those first."""
        self._secret_record(team, name)
        users = [w.name for w in self.storage.list_webhooks(team) if name in w.secret_names]
        if users:
            raise ValidationError("name", f"secret {name!r} is used by webhooks {users}")
        notifying = [
            a.name
            for a in self.storage.list_automations(team)
            if isinstance(a.action, SendNotification) and a.action.secret == name
        ]
        if notifying:
            raise ValidationError("name", f"secret {name!r} is used by automations {notifying}")
        self.storage.delete_secret(team, name)

    # -- webhooks --------------------------------------------------------

    def create_webhook(self, webhook: Webhook) -> Webhook:
        self._check_webhook(webhook)
        self.storage.create_webhook(webhook)
        return webhook

    def update_webhook(self, webhook: Webhook) -> Webhook:
        """Replace a webhook. Its automations' templates must still validate."""
        self._check_webhook(webhook)
        self.get_webhook(webhook.team, webhook.name)
        for automation in self._automations_using(webhook.team, webhook.name):
            assert isinstance(automation.action, SendWebhook)
            automation.action.payload.validate(allowed_secrets=webhook.template_secrets)
        self.storage.update_webhook(webhook)
        return webhook

    def _check_webhook(self, webhook: Webhook) -> None:
        _expect(webhook, Webhook, "webhook")
        self.network.check_url(webhook.url, field="url")
        values = {}
        for field in ("access_token", "secret"):
            name = getattr(webhook, field)
            if name is None:
                continue
            record = self.storage.get_secret(webhook.team, name)
            if record is None:
                raise ValidationError(
                    field, f"secret {name!r} does not exist in team {webhook.team!r}"
                )
            values[name] = self._vault.open_secret(record)
        _check_secret_roles(webhook, values)

    def get_webhook(self, team: str, name: str) -> Webhook:
        webhook = self.storage.get_webhook(team, name)
        if webhook is None:
            raise NotFoundError("webhook", f"{team}/{name}")
        return webhook

    def list_webhooks(self, team: str) -> list[Webhook]:
        return self.storage.list_webhooks(team)

    def delete_webhook(self, team: str, name: str) -> None:
        """Refused while an automation sends through it."""
        self.get_webhook(team, name)
        users = [a.name for a in self._automations_using(team, name)]
        if users:
            raise ValidationError("name", f"webhook {name!r} is used by automations {users}")
        self.storage.delete_webhook(team, name)

    def enable_webhook(self, team: str, name: str) -> Webhook:
        """Turn a webhook back on, after a 410 Gone disabled it, say."""
        webhook = attrs.evolve(self.get_webhook(team, name), enabled=True, disabled_reason=None)
        self.storage.update_webhook(webhook)
        return webhook

    def disable_webhook(
        self, team: str, name: str, reason: str = "disabled by an admin"
    ) -> Webhook:
        """Stop sending through a webhook; its deliveries fail as "disabled"."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("reason", "must be a non-empty string")
        self.get_webhook(team, name)
        self.storage.disable_webhook(team, name, reason)
        return self.get_webhook(team, name)

    def _automations_using(self, team: str, webhook: str) -> list[Automation]:
        return [
            a
            for a in self.storage.list_automations(team)
            if isinstance(a.action, SendWebhook) and a.action.webhook == webhook
        ]

    # -- automations -----------------------------------------------------

    def create_automation(self, automation: Automation) -> Automation:
        self._check_automation(automation)
        self.storage.create_automation(automation)
        return automation

    def update_automation(self, automation: Automation) -> Automation:
        self._check_automation(automation)
        self.get_automation(automation.team, automation.name)
        self.storage.update_automation(automation)
        return automation

    def validate_automation(self, automation: Automation) -> None:
        """Run every check ``create_automation`` runs, storing nothing (a dry run)."""
        self._check_automation(automation)

    def _check_automation(self, automation: Automation) -> None:
        _expect(automation, Automation, "automation")
        action = automation.action
        if isinstance(action, SendWebhook):
            webhook = self.storage.get_webhook(automation.team, action.webhook)
            if webhook is None:
                raise ValidationError(
                    "action.webhook",
                    f"webhook {action.webhook!r} does not exist in team {automation.team!r}",
                )
            action.payload.validate(allowed_secrets=webhook.template_secrets)
        elif isinstance(action, SendNotification):
            record = self.storage.get_secret(automation.team, action.secret)
            if record is None:
                raise ValidationError(
                    "action.secret",
                    f"secret {action.secret!r} does not exist in team {automation.team!r}",
                )
            self.network.check_url(self._vault.open_secret(record), field="action.secret")
            for field, text in (("action.title", action.title), ("action.message", action.message)):
                # variables only: a Slack message names no secret
                compile_template({field[7:]: text}, field=field).validate(
                    allowed_secrets=frozenset()
                )

    def get_automation(self, team: str, name: str) -> Automation:
        automation = self.storage.get_automation(team, name)
        if automation is None:
            raise NotFoundError("automation", f"{team}/{name}")
        return automation

    def list_automations(self, team: str | None = None) -> list[Automation]:
        return self.storage.list_automations(team)

    def delete_automation(self, team: str, name: str) -> None:
        self.get_automation(team, name)
        self.storage.delete_automation(team, name)

    def enable_automation(self, team: str, name: str) -> Automation:
        return self._set_enabled(team, name, enabled=True)

    def disable_automation(self, team: str, name: str) -> Automation:
        return self._set_enabled(team, name, enabled=False)

    def _set_enabled(self, team: str, name: str, *, enabled: bool) -> Automation:
        automation = attrs.evolve(self.get_automation(team, name), enabled=enabled)
        self.storage.update_automation(automation)
        return automation

    # -- history ---------------------------------------------------------

    def deliveries(
        self,
        *,
        team: str | None = None,
        automation: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Executions, newest first, as W&B's history shows them."""
        return list_deliveries(
            self.storage, team=team, automation=automation, status=status, limit=limit
        )

    def attempts(self, delivery_id: str) -> list[Attempt]:
        if self.storage.get_delivery(delivery_id) is None:
            raise NotFoundError("delivery", delivery_id)
        return self.storage.list_attempts(delivery_id)


def _expect(value: object, cls: type, field: str) -> None:
    if not isinstance(value, cls):
        raise ValidationError(
            field, f"must be a hookwise.{cls.__name__}, not {type(value).__name__}"
        )
