"""Keep secrets out of log records: hookwise's own, and those of the HTTP
libraries it drives.

httpx logs each request's URL at INFO, and httpcore logs response headers at
DEBUG (a receiver that echoes the access token puts it there); a Slack or
Discord webhook URL carries its token in the path. :func:`install` puts one
:class:`RedactingFilter` on the ``hookwise``, ``httpx``, ``httpcore`` (and
their known child) loggers. It rewrites each record before any handler sees
it:

- every URL becomes ``scheme://host[:port]`` (no user info, path, query or
  fragment);
- every secret value a live dispatcher has opened is replaced by ``***``, in
  the forms a log line may carry it (as is, in a ``repr`` of text or bytes,
  JSON-escaped, percent-encoded).

The values come from :class:`SecretValues` registries, one per
:class:`~hookwise.vault.Keyring`, held weakly here: a registry is bounded
(:data:`MAX_VALUES`), keeps two generations (what was opened since the last
configuration refresh, and the one before, for requests still in flight) and
disappears with its dispatcher.

A logger filter applies to records created on that logger only, not to those
of its children, which is why the children are named one by one. Records
below a logger's level are never created, so with the default ``WARNING``
level none of this costs anything.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import weakref
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

__all__ = [
    "LOGGER_NAMES",
    "MAX_VALUES",
    "REDACTED",
    "RedactingFilter",
    "SecretValues",
    "install",
    "redact_urls",
    "register",
    "scrub_text",
]

REDACTED = "***"
MAX_VALUES = 1024
"""Secret values one registry keeps per generation; the oldest go first."""

LOGGER_NAMES = (
    "hookwise",
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.connection_pool",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    # HTTP/2 (httpx[http2]) decodes headers with hpack, which logs them at DEBUG
    "hpack",
    "hpack.hpack",
    "hpack.table",
    "h2",
    "h2.connection",
)
_PREFIXES = ("hookwise.", "httpx.", "httpcore.", "hpack.", "h2.")

# scheme://[userinfo@]host[:port] then anything up to whitespace or a quote
_URL = re.compile(
    r"(?i)\b([a-z][a-z0-9+.\-]{0,31})://"  # scheme
    r"(?:[^\s/?#@'\"<>]*@)?"  # user info, dropped
    r"(\[[0-9a-f:.]+\](?::[0-9]+)?|[^\s/?#'\"<>\\,)]*)"  # host[:port]
    r"[^\s'\"<>\\]*"  # path, query, fragment: dropped
)


def redact_urls(text: str) -> str:
    """``text`` with every URL cut down to its scheme and host."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: f"{m.group(1)}://{m.group(2)}", text)


def _forms(value: str) -> list[str]:
    """The spellings of ``value`` a log line may hold, longest first."""
    forms = {value, repr(value)[1:-1], json.dumps(value)[1:-1]}
    try:
        forms.add(repr(value.encode("utf-8"))[2:-1])
        forms.add(quote(value, safe=""))
        forms.add(quote_plus(value))
    except UnicodeEncodeError:  # lone surrogates: only the text forms apply
        pass
    return sorted((f for f in forms if f), key=len, reverse=True)


def scrub_text(text: str, values: Iterable[str]) -> str:
    """``text`` with each of ``values`` (in any of its spellings) replaced by ``***``."""
    for value in values:
        if value and value in text:
            text = text.replace(value, REDACTED)
    return text


class SecretValues:
    """The secret values one dispatcher has opened, bounded, in two generations."""

    __slots__ = ("__weakref__", "_current", "_lock", "_previous")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[str, list[str]] = {}
        self._previous: dict[str, list[str]] = {}

    def __repr__(self) -> str:  # never the values
        return f"SecretValues({len(self._current) + len(self._previous)} values)"

    def add(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            return
        with self._lock:
            if value in self._current:
                return
            forms = self._previous.pop(value, None) or _forms(value)
            while len(self._current) >= MAX_VALUES:
                del self._current[next(iter(self._current))]
            self._current[value] = forms

    def rotate(self) -> None:
        """A configuration refresh: what was opened so far becomes the older
        generation (requests in flight may still log it), the older one goes."""
        with self._lock:
            self._previous, self._current = self._current, {}

    def clear(self) -> None:
        with self._lock:
            self._current.clear()
            self._previous.clear()

    def forms(self) -> list[str]:
        with self._lock:
            groups = [*self._current.values(), *self._previous.values()]
        return [form for group in groups for form in group]

    def __len__(self) -> int:
        with self._lock:
            return len(self._current) + len(self._previous)


_registries: weakref.WeakSet[SecretValues] = weakref.WeakSet()
_registries_lock = threading.Lock()


def register(values: SecretValues) -> None:
    """Have every installed filter scrub ``values`` for as long as it lives."""
    with _registries_lock:
        _registries.add(values)


def _known_forms() -> list[str]:
    with _registries_lock:
        registries = list(_registries)
    forms = {form for registry in registries for form in registry.forms()}
    return sorted(forms, key=len, reverse=True)  # a longer form before its own substrings


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, exception and stack text; never drops one."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._scrub(record)
        except Exception:  # a filter must never break logging; say nothing rather than leak
            record.msg, record.args = "[hookwise: log record withheld: could not scrub it]", None
            record.exc_info = record.exc_text = record.stack_info = None
        return True

    def _scrub(self, record: logging.LogRecord) -> None:
        forms = _known_forms()

        def clean(text: str) -> str:
            return scrub_text(redact_urls(text), forms)

        record.msg, record.args = clean(record.getMessage()), None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = self._formatter.formatException(record.exc_info)
            # Formatters print exc_text when it is set; a library's exception
            # object goes too, in case a handler formats it again itself.
            # hookwise's own keep theirs (their texts never hold a value).
            if not record.name.startswith("hookwise"):
                record.exc_info = None
        if record.exc_text:
            record.exc_text = clean(record.exc_text)
        if record.stack_info:
            record.stack_info = clean(record.stack_info)


_FILTER = RedactingFilter()
_install_lock = threading.Lock()


def install() -> RedactingFilter:
    """Put the filter on the hookwise and HTTP library loggers; idempotent."""
    with _install_lock:
        names = set(LOGGER_NAMES)
        names.update(
            name for name in logging.Logger.manager.loggerDict if name.startswith(_PREFIXES)
        )
        for name in sorted(names):
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
    return _FILTER
