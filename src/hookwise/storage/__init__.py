"""Storage: the role protocols, their records, and the stores that ship."""

from hookwise.storage.memory import MemoryStorage
from hookwise.storage.protocol import (
    Attempt,
    Claim,
    ConfigStore,
    Cooldown,
    Delivery,
    DeliveryStatus,
    History,
    Outbox,
    OutboxEntry,
    RunStateStore,
    RunWindow,
    SecretRecord,
    Storage,
    Transactional,
)
from hookwise.storage.sqlite import SQLiteStorage

__all__ = [
    "Attempt",
    "Claim",
    "ConfigStore",
    "Cooldown",
    "Delivery",
    "DeliveryStatus",
    "History",
    "MemoryStorage",
    "Outbox",
    "OutboxEntry",
    "RunStateStore",
    "RunWindow",
    "SQLiteStorage",
    "SecretRecord",
    "Storage",
    "Transactional",
]
