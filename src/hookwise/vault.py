"""Sealing what storage keeps: secret values and outbox bodies.

Each ciphertext is bound to its row (a secret to its team and name, a body to
its delivery id), so a ciphertext copied onto another row does not open. The
key belongs to whoever seals (``Admin``, the dispatchers), never to the
storage, which only ever sees the sealed bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import attrs

from hookwise import logs
from hookwise.crypto import SecretKey
from hookwise.errors import NotFoundError, ValidationError
from hookwise.model import Webhook
from hookwise.storage.protocol import ConfigStore, SecretRecord
from hookwise.template import ACCESS_TOKEN

__all__ = [
    "Keyring",
    "Resealable",
    "Rotation",
    "Vault",
    "body_context",
    "key_for",
    "rotate_store",
    "secret_context",
]


def secret_context(team: str, name: str) -> str:
    return f"secret:{team}/{name}"


def body_context(delivery_id: str) -> str:
    return f"delivery:{delivery_id}"


def key_for(storage: object, key: SecretKey | None) -> SecretKey:
    """The key to seal with: the one given, else the one the shipped stores
    were opened with (their ``key`` attribute, a convenience and no part of
    the Storage protocol), else ``HOOKWISE_SECRET_KEY``.

    The key is checked against the key ids a shipped store records (its
    ``check_key``): one that opens none of them is a SecretKeyError naming
    the ids, before anything is sealed with it. (The store's own key is
    checked again too: the file may have been rotated since it was opened.)
    """
    if key is not None:
        if not isinstance(key, SecretKey):
            raise ValidationError("key", f"must be a hookwise.SecretKey, not {type(key).__name__}")
    else:
        kept = getattr(storage, "key", None)
        key = kept if isinstance(kept, SecretKey) else SecretKey.from_env()
    check = getattr(storage, "check_key", None)
    if callable(check):
        check(key)
    return key


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
    until :meth:`clear` (called whenever the configuration moves).

    A Keyring is what a dispatcher opens secrets with, so making one installs
    the log filter (:func:`hookwise.logs.install`) and every value it opens
    is scrubbed from the records of hookwise, httpx and httpcore.
    """

    __slots__ = ("_config", "_generation", "_logged", "_opened", "_vault")

    def __init__(self, config: ConfigStore, vault: Vault) -> None:
        self._config = config
        self._vault = vault
        self._opened: dict[tuple[str, str], str] = {}
        self._generation = 0
        self._logged = logs.SecretValues()
        logs.register(self._logged)
        logs.install()

    def clear(self) -> None:
        self._generation += 1
        self._opened.clear()
        self._logged.rotate()

    def secret(self, team: str, name: str) -> str:
        value = self._opened.get((team, name))
        if value is None:
            generation = self._generation
            record = self._config.get_secret(team, name)
            if record is None:
                raise NotFoundError("secret", f"{team}/{name}")
            value = self._vault.open_secret(record)
            self._logged.add(value)
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


class Resealable(Protocol):
    """What :func:`rotate_store` needs of a store (both shipped stores have it)."""

    def sealed_rows(self) -> tuple[list[tuple[str, str]], list[str]]: ...

    def reseal_secret(
        self, team: str, name: str, change: Callable[[bytes], bytes | None]
    ) -> bool: ...

    def reseal_body(self, delivery_id: str, change: Callable[[bytes], bytes | None]) -> bool: ...

    def forget_unused_key_ids(self) -> tuple[str, ...]: ...


@attrs.frozen(slots=True)
class Rotation:
    """What :func:`rotate_store` did: rows re-sealed, rows already under the
    first key (or gone meanwhile), and the key ids the store still uses."""

    secrets: int
    bodies: int
    skipped: int
    key_ids: tuple[str, ...]


def _rotator(key: SecretKey, context: str) -> Callable[[bytes], bytes | None]:
    def change(token: bytes) -> bytes | None:
        if not key.needs_rotation(token):
            return None
        return key.rotate(token, context=context)

    return change


def rotate_store(
    store: Resealable,
    key: SecretKey,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Rotation:
    """Re-seal every secret and outbox body under ``key``'s first key.

    Each row is read, re-sealed and written in its own transaction, and a row
    already under the first key is left alone, so an interrupted rotation is
    simply run again. A row under a key ``key`` lacks stops it with a
    SecretKeyError naming that key id (the rows done so far stay done).
    ``progress(done, total)`` is called after each row.
    """
    secrets, bodies = store.sealed_rows()
    total, done, counts = len(secrets) + len(bodies), 0, [0, 0]
    for team, name in secrets:
        counts[0] += store.reseal_secret(team, name, _rotator(key, secret_context(team, name)))
        done += 1
        if progress is not None:
            progress(done, total)
    for delivery_id in bodies:
        counts[1] += store.reseal_body(delivery_id, _rotator(key, body_context(delivery_id)))
        done += 1
        if progress is not None:
            progress(done, total)
    kept = store.forget_unused_key_ids()
    return Rotation(counts[0], counts[1], total - counts[0] - counts[1], kept)
