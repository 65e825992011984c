"""Storage: the protocol and the implementations that ship with hookwise."""

from hookwise.storage.memory import MemoryStorage
from hookwise.storage.protocol import (
    Attempt,
    Claim,
    Delivery,
    DeliveryStatus,
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
    "SQLiteStorage",
    "SecretRecord",
    "Storage",
]
