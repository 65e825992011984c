"""Sealing what storage keeps: secret values and outbox bodies.

Each ciphertext is bound to its row (a secret to its team and name, a body to
its delivery id), so a ciphertext copied onto another row does not open. The
key belongs to whoever seals (``Admin``, the dispatchers), never to the
storage, which only ever sees the sealed bytes.
"""

from __future__ import annotations

from hookwise.crypto import SecretKey
from hookwise.errors import NotFoundError, ValidationError
from hookwise.model import Webhook
from hookwise.storage.protocol import ConfigStore, SecretRecord
from hookwise.template import ACCESS_TOKEN

__all__ = ["Keyring", "Vault", "body_context", "key_for", "secret_context"]


def secret_context(team: str, name: str) -> str:
    return f"secret:{team}/{name}"


def body_context(delivery_id: str) -> str:
    return f"delivery:{delivery_id}"


def key_for(storage: object, key: SecretKey | None) -> SecretKey:
    """The key to seal with: the one given, else the one the shipped stores
    were opened with (their ``key`` attribute, a convenience and no part of
    the Storage protocol), else ``HOOKWISE_SECRET_KEY``."""
    if key is not None:
        if not isinstance(key, SecretKey):
            raise ValidationError("key", f"must be a hookwise.SecretKey, not {type(key).__name__}")
        return key
    kept = getattr(storage, "key", None)
    return kept if isinstance(kept, SecretKey) else SecretKey.from_env()


class Vault:
    """Seals and opens secret values and outbox bodies under one key."""

    __slots__ = ("key",)

    def __init__(self, key: SecretKey) -> None:
        self.key = key

    def __repr__(self) -> str:
        return f"Vault({self.key!r})"

    def seal_secret(self, team: str, name: str, value: str) -> bytes:
        return self.key.encrypt(value.encode(), context=secret_context(team, name))

    def open_secret(self, record: SecretRecord) -> str:
        return self.key.decrypt(
            record.ciphertext, context=secret_context(record.team, record.name)
        ).decode()

    def seal_body(self, delivery_id: str, body: bytes) -> bytes:
        return self.key.encrypt(body, context=body_context(delivery_id))

    def open_body(self, delivery_id: str, sealed: bytes) -> bytes:
        return self.key.decrypt(sealed, context=body_context(delivery_id))


class Keyring:
    """The opened secrets of webhooks, read from a ConfigStore once and kept
    until :meth:`clear` (called whenever the configuration moves)."""

    __slots__ = ("_config", "_generation", "_opened", "_vault")

    def __init__(self, config: ConfigStore, vault: Vault) -> None:
        self._config = config
        self._vault = vault
        self._opened: dict[tuple[str, str], str] = {}
        self._generation = 0

    def clear(self) -> None:
        self._generation += 1
        self._opened.clear()

    def secret(self, team: str, name: str) -> str:
        value = self._opened.get((team, name))
        if value is None:
            generation = self._generation
            record = self._config.get_secret(team, name)
            if record is None:
                raise NotFoundError("secret", f"{team}/{name}")
            value = self._vault.open_secret(record)
            if generation == self._generation:  # not read before a rotation cleared us
                self._opened[(team, name)] = value
        return value

    def for_webhook(self, webhook: Webhook) -> dict[str, str]:
        """The values a webhook's template may use, by placeholder name."""
        values: dict[str, str] = {}
        if webhook.access_token is not None:
            token = self.secret(webhook.team, webhook.access_token)
            values[ACCESS_TOKEN] = values[webhook.access_token] = token
        if webhook.secret is not None:
            values[webhook.secret] = self.secret(webhook.team, webhook.secret)
        return values
