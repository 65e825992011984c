"""hookwise: webhook automations for ML platforms."""

from hookwise._version import __version__

__all__ = ["__version__"]
