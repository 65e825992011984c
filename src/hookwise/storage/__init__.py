"""Storage: the protocol and the implementations that ship with hookwise."""

from hookwise.storage.memory import MemoryStorage
from hookwise.storage.protocol import (
    Attempt,
    Claim,
    Delivery,
    DeliveryStatus,
    RunWindow,
    SecretRecord,
    Storage,
)
from hookwise.storage.sqlite import SQLiteStorage

__all__ = [
    "Attempt",
    "Claim",
    "Delivery",
    "DeliveryStatus",
    "MemoryStorage",
    "RunWindow",
    "SQLiteStorage",
    "SecretRecord",
    "Storage",
]
