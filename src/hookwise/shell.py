"""What both dispatchers hold and answer without I/O, written once (as
httpx's ``BaseClient`` is for its two clients): the core, the closed state,
and the options every constructor takes."""

from __future__ import annotations

from hookwise.core import Core
from hookwise.errors import DispatcherClosedError
from hookwise.settings import Options, Settings
from hookwise.storage.protocol import Storage

__all__ = ["Shell"]


class Shell:
    def __init__(self, storage: Storage, options: Options) -> None:
        self._core = Core(storage, Settings.of(options, owner=type(self).__name__))
        self._closed = False
        self._left = 0  # unfinished deliveries when closed
        self._busy = 0  # worker passes under way

    @property
    def storage(self) -> Storage:
        """The store this dispatcher reads and writes."""
        return self._core.storage

    @property
    def settings(self) -> Settings:
        """The checked options this dispatcher was made with."""
        return self._core.settings

    def _is_busy(self) -> bool:
        return self._busy > 0

    def _check_open(self) -> None:
        if self._closed:
            raise DispatcherClosedError("this dispatcher is closed")
