"""The one URL parser, shared by every check and every sender: httpx's.

A URL checked with one parser and fetched with another is a classic way
past an SSRF guard (the two may disagree on the host). So the webhook rules
and the NetworkPolicy read URLs exactly as the sender will, through this
module, and nothing else below the shells imports httpx.
"""

from __future__ import annotations

import functools

import attrs
import httpx

__all__ = ["ParsedURL", "parse_url"]


@attrs.frozen(slots=True)
class ParsedURL:
    scheme: str
    host: str  # as it goes on the wire: IDNA-encoded, IPv6 without brackets
    port: int | None  # only when written in the URL
    userinfo: bool  # a user name or password is present
    parsed: httpx.URL = attrs.field(repr=False, eq=False)  # what an httpx sender sends to

    @property
    def effective_port(self) -> int:
        return self.port or (443 if self.scheme == "https" else 80)


def parse_url(text: str) -> ParsedURL:
    """Raises ValueError (with httpx's reason) when ``text`` is no URL.

    Parses are kept (each delivery's URL is read by the policy check and by
    the sender, and httpx's parser costs more than the rest of a delivery's
    own work): only a plain ``str`` is looked up, so a subclass's own
    ``__hash__`` or ``__eq__`` never runs."""
    if type(text) is str:
        return _parse_kept(text)
    return _parse(text)


@functools.lru_cache(maxsize=1024)
def _parse_kept(text: str) -> ParsedURL:
    return _parse(text)


def _parse(text: str) -> ParsedURL:
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(str(exc)) from None
    return ParsedURL(
        scheme=url.scheme,
        host=url.raw_host.decode("ascii", "replace"),
        port=url.port,
        userinfo=bool(url.userinfo),
        parsed=url,
    )
