"""Admin: the validating management API over any Storage.

Every method checks everything first (the object itself, then the objects it
names) and writes once, so a failure leaves nothing stored half-way. Secret
values go in and never come out.

Every public method takes ``actor=`` (the acting user) and, when the Admin has
an :class:`~hookwise.authz.Authorizer`, asks it before reading or writing
anything: a refusal is :class:`~hookwise.errors.PermissionDenied` and changes
nothing. The only read before that question is the one that finds which scope
a named automation has, or which team a delivery belongs to, when the
question needs it. With no authorizer every call is allowed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import attrs

from hookwise.authz import Action, Authorizer, Target, as_action
from hookwise.crypto import SecretKey
from hookwise.errors import (
    AlreadyExistsError,
    NotFoundError,
    PermissionDenied,
    TemplateError,
    ValidationError,
)
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

    ``authorizer`` decides who may do what: every method takes ``actor=``
    and asks it first (see :meth:`check`). ``None`` allows everything.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        authorizer: Authorizer | None = None,
        network: NetworkPolicy | None = None,
        key: SecretKey | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if network is not None and not isinstance(network, NetworkPolicy):
            raise ValidationError("network", "must be a hookwise.NetworkPolicy")
        if authorizer is not None and not isinstance(authorizer, Authorizer):
            raise ValidationError(
                "authorizer", "must have a method allows(actor, action, target) -> bool"
            )
        self.storage = storage
        self.authorizer = authorizer
        self.network = network if network is not None else NetworkPolicy()
        self._vault = Vault(key_for(storage, key))
        self._clock = clock

    def __repr__(self) -> str:
        return f"Admin({self.storage!r})"

    # -- who may do what -------------------------------------------------

    def check(self, actor: str | None, action: Action | str, target: Target) -> None:
        """Raise :class:`~hookwise.errors.PermissionDenied` unless the
        authorizer lets ``actor`` do ``action`` to ``target``.

        Every Admin method calls this itself. Call it before what is not
        Admin's, such as ``dispatcher.test_webhook`` (``"webhook.test"``)
        and ``dispatcher.redeliver`` (``"history.redeliver"``).
        """
        action = as_action(action)
        if not isinstance(target, Target):
            raise ValidationError("target", "must be a hookwise.Target")
        self._allow(actor, action, lambda: target)

    def _allow(self, actor: str | None, action: Action, target: Callable[[], Target]) -> None:
        """Ask the authorizer; ``target`` is built only when there is one to ask."""
        if actor is not None and not isinstance(actor, str):
            raise ValidationError("actor", "must be a string naming the acting user, or None")
        if self.authorizer is None:
            return
        resolved = target()
        if self.authorizer.allows(actor, action, resolved) is not True:
            raise PermissionDenied(actor, action, resolved)

    def _stored_automation(self, team: str, name: str) -> Target:
        """The target of an action on a stored automation: its scope, found
        with one read (``scope=None`` when there is no such automation)."""
        target = Target(team, name)
        stored = self.storage.get_automation(team, name)
        return target if stored is None else Target.of_scope(stored.scope, name)

    # -- secrets ---------------------------------------------------------

    def create_secret(
        self, secret: Secret, *, actor: str | None = None, fetch_existing: bool = False
    ) -> SecretInfo:
        """Store a new secret. With ``fetch_existing`` (the W&B SDK's word), a
        secret of that name already there is returned as it is, value kept,
        instead of raising :class:`~hookwise.AlreadyExistsError`."""
        _expect(secret, Secret, "secret")
        self._allow(actor, Action.SECRET_CREATE, lambda: Target(secret.team, secret.name))
        now = self._clock()
        record = self._sealed(secret, created_at=now, now=now)
        try:
            self.storage.create_secret(record)
        except AlreadyExistsError:
            if not fetch_existing:
                raise
            return _info(self._secret_record(secret.team, secret.name))
        return _info(record)

    def update_secret(
        self, secret: Secret, *, actor: str | None = None, create_missing: bool = False
    ) -> SecretInfo:
        """Replace a secret's value (rotation); deliveries use it from now on.
        With ``create_missing`` a secret not there yet is created."""
        _expect(secret, Secret, "secret")
        if create_missing and self.storage.get_secret(secret.team, secret.name) is None:
            return self.create_secret(secret, actor=actor)
        self._allow(actor, Action.SECRET_UPDATE, lambda: Target(secret.team, secret.name))
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

    def get_secret(self, team: str, name: str, *, actor: str | None = None) -> SecretInfo:
        """What is known of a secret, never its value; NotFoundError if there is none."""
        self._allow(actor, Action.SECRET_READ, lambda: Target(team, name))
        return _info(self._secret_record(team, name))

    def list_secrets(self, team: str, *, actor: str | None = None) -> list[SecretInfo]:
        """The team's secrets, without their values."""
        self._allow(actor, Action.SECRET_READ, lambda: Target(team))
        return [_info(r) for r in self.storage.list_secrets(team)]

    def delete_secret(self, team: str, name: str, *, actor: str | None = None) -> None:
        """Refused while a webhook or a Slack notification uses the secret:
        delete or change those first."""
        self._allow(actor, Action.SECRET_DELETE, lambda: Target(team, name))
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

    def create_webhook(
        self, webhook: Webhook, *, actor: str | None = None, fetch_existing: bool = False
    ) -> Webhook:
        """Store a new webhook. With ``fetch_existing``, a webhook of that name
        already there is returned as stored instead of raising
        :class:`~hookwise.AlreadyExistsError` (the one given is still checked)."""
        _expect(webhook, Webhook, "webhook")
        self._allow(actor, Action.WEBHOOK_CREATE, lambda: Target(webhook.team, webhook.name))
        self._check_webhook(webhook)
        try:
            self.storage.create_webhook(webhook)
        except AlreadyExistsError:
            if not fetch_existing:
                raise
            return self._webhook(webhook.team, webhook.name)
        return webhook

    def update_webhook(
        self, webhook: Webhook, *, actor: str | None = None, create_missing: bool = False
    ) -> Webhook:
        """Replace a webhook. Its automations' templates must still validate.
        With ``create_missing`` a webhook not there yet is created."""
        _expect(webhook, Webhook, "webhook")
        if create_missing and self.storage.get_webhook(webhook.team, webhook.name) is None:
            return self.create_webhook(webhook, actor=actor)
        self._allow(actor, Action.WEBHOOK_UPDATE, lambda: Target(webhook.team, webhook.name))
        self._check_webhook(webhook)
        self._webhook(webhook.team, webhook.name)
        for automation in self._automations_using(webhook.team, webhook.name):
            assert isinstance(automation.action, SendWebhook)
            try:
                automation.action.payload.validate(allowed_secrets=webhook.template_secrets)
            except TemplateError as exc:  # name what breaks: not this webhook's own field
                detail = exc.message.removeprefix(f"at {exc.path}: ")
                raise TemplateError(
                    exc.path,
                    f"{detail}; its payload needs the secret this change takes away",
                    field=f"automation {automation.name!r}",
                ) from None
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

    def get_webhook(self, team: str, name: str, *, actor: str | None = None) -> Webhook:
        """The stored webhook; NotFoundError if there is none."""
        self._allow(actor, Action.WEBHOOK_READ, lambda: Target(team, name))
        return self._webhook(team, name)

    def _webhook(self, team: str, name: str) -> Webhook:
        webhook = self.storage.get_webhook(team, name)
        if webhook is None:
            raise NotFoundError("webhook", f"{team}/{name}")
        return webhook

    def list_webhooks(self, team: str, *, actor: str | None = None) -> list[Webhook]:
        """The team's webhooks."""
        self._allow(actor, Action.WEBHOOK_READ, lambda: Target(team))
        return self.storage.list_webhooks(team)

    def delete_webhook(self, team: str, name: str, *, actor: str | None = None) -> None:
        """Refused while an automation sends through it."""
        self._allow(actor, Action.WEBHOOK_DELETE, lambda: Target(team, name))
        self._webhook(team, name)
        users = [a.name for a in self._automations_using(team, name)]
        if users:
            raise ValidationError("name", f"webhook {name!r} is used by automations {users}")
        self.storage.delete_webhook(team, name)
        self.storage.note_success(team, name)  # one made again later starts with a clean slate

    def enable_webhook(self, team: str, name: str, *, actor: str | None = None) -> Webhook:
        """Turn a webhook back on, after a 410 Gone or sustained failure
        disabled it, say; its failing streak starts again from nothing."""
        self._allow(actor, Action.WEBHOOK_ENABLE, lambda: Target(team, name))
        webhook = attrs.evolve(self._webhook(team, name), enabled=True, disabled_reason=None)
        self.storage.update_webhook(webhook)
        self.storage.note_success(team, name)
        return webhook

    def disable_webhook(
        self,
        team: str,
        name: str,
        reason: str = "disabled by an admin",
        *,
        actor: str | None = None,
    ) -> Webhook:
        """Stop sending through a webhook; its deliveries fail as "disabled"."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("reason", "must be a non-empty string")
        self._allow(actor, Action.WEBHOOK_DISABLE, lambda: Target(team, name))
        self._webhook(team, name)
        self.storage.disable_webhook(team, name, reason)
        return self._webhook(team, name)

    def _automations_using(self, team: str, webhook: str) -> list[Automation]:
        return [
            a
            for a in self.storage.list_automations(team)
            if isinstance(a.action, SendWebhook) and a.action.webhook == webhook
        ]

    # -- automations -----------------------------------------------------

    def create_automation(
        self, automation: Automation, *, actor: str | None = None, fetch_existing: bool = False
    ) -> Automation:
        """Store a new automation. With ``fetch_existing`` (as in the W&B SDK),
        an automation of that name already there is returned as stored instead
        of raising :class:`~hookwise.AlreadyExistsError`."""
        _expect(automation, Automation, "automation")
        self._allow(actor, Action.AUTOMATION_CREATE, lambda: _target(automation))
        self._check_automation(automation)
        try:
            self.storage.create_automation(automation)
        except AlreadyExistsError:
            if not fetch_existing:
                raise
            return self._automation(automation.team, automation.name)
        return automation

    def update_automation(
        self, automation: Automation, *, actor: str | None = None, create_missing: bool = False
    ) -> Automation:
        """Replace the automation of that team and name. With an authorizer,
        the actor must manage both the scope it had and the scope it gets.
        With ``create_missing`` (as in the W&B SDK) one not there yet is created."""
        _expect(automation, Automation, "automation")
        if create_missing and self.storage.get_automation(automation.team, automation.name) is None:
            return self.create_automation(automation, actor=actor)
        self._allow(actor, Action.AUTOMATION_UPDATE, lambda: _target(automation))
        if self.authorizer is not None:
            stored = self._stored_automation(automation.team, automation.name)
            if stored.scope != automation.scope:  # moved (or missing): judge where it was too
                self._allow(actor, Action.AUTOMATION_UPDATE, lambda: stored)
        self._check_automation(automation)
        self._automation(automation.team, automation.name)
        self.storage.update_automation(automation)
        return automation

    def validate_automation(self, automation: Automation, *, actor: str | None = None) -> None:
        """Run every check ``create_automation`` runs, storing nothing (a dry run)."""
        _expect(automation, Automation, "automation")
        self._allow(actor, Action.AUTOMATION_VALIDATE, lambda: _target(automation))
        self._check_automation(automation)

    def _check_automation(self, automation: Automation) -> None:
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

    def get_automation(self, team: str, name: str, *, actor: str | None = None) -> Automation:
        """The stored automation; NotFoundError if there is none."""
        self._allow(actor, Action.AUTOMATION_READ, lambda: Target(team, name))
        return self._automation(team, name)

    def _automation(self, team: str, name: str) -> Automation:
        automation = self.storage.get_automation(team, name)
        if automation is None:
            raise NotFoundError("automation", f"{team}/{name}")
        return automation

    def list_automations(
        self, team: str | None = None, *, actor: str | None = None
    ) -> list[Automation]:
        """The team's automations, or every team's when ``team`` is None."""
        self._allow(actor, Action.AUTOMATION_READ, lambda: Target(team))
        return self.storage.list_automations(team)

    def delete_automation(self, team: str, name: str, *, actor: str | None = None) -> None:
        """Delete an automation; the deliveries it made stay in the history."""
        self._allow(actor, Action.AUTOMATION_DELETE, lambda: self._stored_automation(team, name))
        self._automation(team, name)
        self.storage.delete_automation(team, name)

    def enable_automation(self, team: str, name: str, *, actor: str | None = None) -> Automation:
        """Turn an automation back on: events from now on fire it."""
        self._allow(actor, Action.AUTOMATION_ENABLE, lambda: self._stored_automation(team, name))
        return self._set_enabled(team, name, enabled=True)

    def disable_automation(self, team: str, name: str, *, actor: str | None = None) -> Automation:
        """Stop an automation firing, without deleting it."""
        self._allow(actor, Action.AUTOMATION_DISABLE, lambda: self._stored_automation(team, name))
        return self._set_enabled(team, name, enabled=False)

    def _set_enabled(self, team: str, name: str, *, enabled: bool) -> Automation:
        automation = attrs.evolve(self._automation(team, name), enabled=enabled)
        self.storage.update_automation(automation)
        return automation

    # -- history ---------------------------------------------------------

    def deliveries(
        self,
        *,
        team: str | None = None,
        automation: str | None = None,
        status: DeliveryStatus | None = None,
        webhook: str | None = None,
        since: float | None = None,
        limit: int = 100,
        actor: str | None = None,
    ) -> list[Delivery]:
        """Executions, newest first, as W&B's history shows them. The filters
        combine: ``webhook`` is a webhook's name (with ``team``, one team's
        webhook), ``since`` a Unix time (those created at or after it)."""
        self._allow(actor, Action.HISTORY_READ, lambda: Target(team, automation))
        return list_deliveries(
            self.storage,
            team=team,
            automation=automation,
            status=status,
            webhook=webhook,
            since=since,
            limit=limit,
        )

    def attempts(self, delivery_id: str, *, actor: str | None = None) -> list[Attempt]:
        """Every attempt of one delivery, oldest first. With an authorizer,
        the delivery is read first to learn its team; an id that names no
        delivery is a ``NotFoundError`` (there is nothing to guard)."""
        self._allow(actor, Action.HISTORY_READ, lambda: self._delivery_target(delivery_id))
        if self.storage.get_delivery(delivery_id) is None:
            raise NotFoundError("delivery", delivery_id)
        return self.storage.list_attempts(delivery_id)

    def _delivery_target(self, delivery_id: str) -> Target:
        if not isinstance(delivery_id, str):
            raise ValidationError("delivery_id", "must be a string")
        delivery = self.storage.get_delivery(delivery_id)
        if delivery is None:
            raise NotFoundError("delivery", delivery_id)
        return Target(delivery.team, delivery_id)


def _target(automation: Automation) -> Target:
    return Target.of_scope(automation.scope, automation.name)


def _expect(value: object, cls: type, field: str) -> None:
    if not isinstance(value, cls):
        raise ValidationError(
            field, f"must be a hookwise.{cls.__name__}, not {type(value).__name__}"
        )
