"""What the delivery history keeps of an attempt: text that is scrubbed of
secrets, capped, and says what went wrong; and the one validated query over it."""

from __future__ import annotations

import email.message
import json
import math
from collections.abc import Mapping, Sequence

from hookwise.errors import ValidationError
from hookwise.storage.protocol import Delivery, DeliveryStatus, History

__all__ = [
    "MAX_LIST_LIMIT",
    "REDACTED",
    "RESPONSE_BYTES",
    "RESPONSE_CAP",
    "charset",
    "describe",
    "history_body",
    "list_deliveries",
    "scrub",
    "scrub_headers",
]

RESPONSE_CAP = 8192  # characters of a response body kept in the history
RESPONSE_BYTES = 4 * RESPONSE_CAP  # what a sender reads of a body before it stops
REDACTED = "[REDACTED]"
MAX_LIST_LIMIT = 2**63 - 1  # the largest LIMIT SQLite and PostgreSQL take


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Remove secret values from text we keep: a receiver may echo them back,
    as they are or escaped in JSON (the body it got is JSON), and an error may
    quote one escaped as Python does (``repr`` of a str or of its bytes)."""
    for value in secrets:
        forms = {
            value,
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            repr(value)[1:-1],
            repr(value.encode("utf-8", "replace"))[2:-1],
        }
        for form in sorted(forms, key=len, reverse=True):  # longest first: one may hold another
            if form and form in text:
                text = text.replace(form, REDACTED)
    return text


def scrub_headers(headers: Mapping[str, str], secrets: Sequence[str]) -> dict[str, str]:
    return {name: scrub(value, secrets) for name, value in headers.items()}


def charset(content_type: str | None) -> str | None:
    """The charset a ``Content-Type`` header names, if any."""
    if content_type is None:
        return None
    message = email.message.Message()
    message["content-type"] = content_type
    return message.get_content_charset(failobj=None)


def history_body(data: bytes, encoding: str | None, secrets: Sequence[str]) -> str:
    """A response body as the history keeps it: text, scrubbed, then capped
    (a cap first could keep half a secret)."""
    try:
        text = data.decode(encoding or "utf-8", errors="replace")
    except LookupError:  # the receiver named a charset Python does not know
        text = data.decode("utf-8", errors="replace")
    return scrub(text, secrets)[:RESPONSE_CAP]


def describe(exc: BaseException) -> str:
    """An error for the history: its type, and its text when it has one."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def list_deliveries(
    history: History,
    *,
    team: str | None = None,
    automation: str | None = None,
    status: DeliveryStatus | None = None,
    webhook: str | None = None,
    since: float | None = None,
    limit: int = 100,
) -> list[Delivery]:
    """Executions, newest first, as W&B's history shows them. A ``limit`` above
    :data:`MAX_LIST_LIMIT` means them all (SQL's LIMIT is a 64-bit integer).
    ``since`` (a Unix time: a finite int or float) keeps those created at or
    after it; ``webhook`` is a webhook's name."""
    if isinstance(limit, bool) or not isinstance(limit, int) or int.__int__(limit) < 0:
        raise ValidationError("limit", "must be an int >= 0")
    for field, value in (("team", team), ("automation", automation), ("webhook", webhook)):
        if value is not None and not isinstance(value, str):
            raise ValidationError(field, f"must be a string or None, not {type(value).__name__}")
    if status is not None and not isinstance(status, DeliveryStatus):
        raise ValidationError("status", "must be a hookwise.DeliveryStatus")
    return history.list_deliveries(
        team=None if team is None else str.__str__(team),
        automation=None if automation is None else str.__str__(automation),
        status=status,
        webhook=None if webhook is None else str.__str__(webhook),
        since=None if since is None else _unix_time("since", since),
        limit=min(int.__int__(limit), MAX_LIST_LIMIT),
    )


def _unix_time(field: str, value: object) -> float:
    """A finite int or float (never a bool, NaN, an infinity or an int past
    the float range) as a plain float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(
            field, f"must be a Unix time (an int or float), not {type(value).__name__}"
        )
    try:
        number = int.__float__(value) if isinstance(value, int) else float.__float__(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValidationError(field, "must be a finite number")
    return number
