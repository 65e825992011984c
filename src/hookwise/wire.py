"""What crosses between the core and a sender: plain values, no HTTP library.

The core builds an :class:`OutgoingRequest` and reads a :class:`RawResponse`;
a sender (httpx today, aiohttp later) turns one into the other. Nothing here
knows which library sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

__all__ = ["OutgoingRequest", "RawResponse"]


def _frozen(headers: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(headers))


@attrs.frozen(slots=True)
class OutgoingRequest:
    """One POST as it goes on the wire. ``headers`` may hold a bearer token:
    they never show in a repr."""

    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(repr=False, converter=_frozen)
    body: bytes = attrs.field(repr=False)


@attrs.frozen(slots=True)
class RawResponse:
    """What came back: the status, the headers (repeated ones joined with
    commas; the httpx sender lowercases names, so read them with
    :meth:`header`) and at most the first ``RESPONSE_BYTES`` of the body."""

    status_code: int
    headers: Mapping[str, str] = attrs.field(converter=_frozen)
    body: bytes = attrs.field(repr=False)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def header(self, name: str) -> str | None:
        """A header's value, whatever case the receiver wrote its name in."""
        name = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == name), None)
