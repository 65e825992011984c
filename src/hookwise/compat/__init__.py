"""Bridges from other webhook-automation products to hookwise.

:mod:`hookwise.compat.wandb` reads automations as the W&B SDK serialises
them and builds hookwise :class:`~hookwise.Automation` objects, with a note
for everything it could not carry over.
"""

from __future__ import annotations

__all__: list[str] = []
