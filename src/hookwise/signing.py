"""Sign outgoing webhook requests and verify them on the receiving side.

Two schemes, both HMAC-SHA256 over the exact body bytes:

- ``Scheme.STANDARD``: the `Standard Webhooks <https://www.standardwebhooks.com>`_
  headers ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature: v1,<base64>``,
  signing ``f"{id}.{timestamp}."`` + body, so a receiver can reject replays.
- ``Scheme.WANDB``: ``X-Wandb-Signature: base64(HMAC-SHA256(key, body))``, what
  W&B sends and what ``openssl dgst -sha256 -hmac KEY -binary | base64`` prints.

The HMAC key is the secret's UTF-8 bytes, except that a secret written
``whsec_<base64>`` is base64-decoded, as the Standard Webhooks spec says.
Everything here is pure: no clock unless the caller leaves ``now`` unset.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import math
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

from hookwise.errors import SignatureError, ValidationError

__all__ = [
    "DEFAULT_SCHEMES",
    "DEFAULT_TOLERANCE",
    "ID_HEADER",
    "MAX_HEADER_LENGTH",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WANDB_HEADER",
    "WHSEC_PREFIX",
    "HeadersLike",
    "Scheme",
    "new_message_id",
    "sign",
    "signing_key",
    "verify",
]

WHSEC_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300.0
"""Seconds a ``webhook-timestamp`` may differ from the receiver's clock (5 minutes)."""

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
WANDB_HEADER = "X-Wandb-Signature"

_MESSAGE_ID = re.compile(r"[!-~]{1,256}")  # printable ASCII, no spaces: it goes into a header
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


class Scheme(str, enum.Enum):
    """A signature scheme; the value is what configuration files spell."""

    STANDARD = "standard-webhooks"
    WANDB = "wandb"


DEFAULT_SCHEMES: tuple[Scheme, ...] = (Scheme.STANDARD, Scheme.WANDB)


class HeadersLike(Protocol):
    """Anything with ``items()`` of name/value pairs: dict, httpx, Starlette, werkzeug."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def signing_key(secret: str) -> bytes:
    """The HMAC key for ``secret``: its UTF-8 bytes, or the decoded ``whsec_`` base64."""
    if not isinstance(secret, str) or not secret:
        raise ValidationError("secret", "must be a non-empty string")
    if secret.startswith(WHSEC_PREFIX):
        encoded = secret[len(WHSEC_PREFIX) :]
        try:
            # Padding is optional in the wild (svix emits it, others do not).
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(
                "secret", "starts with 'whsec_' but the rest is not valid base64"
            ) from None
        if not key:
            raise ValidationError("secret", "'whsec_' secret decodes to an empty key")
        return key
    try:
        return secret.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("secret", "is not encodable as UTF-8") from None


def new_message_id() -> str:
    """A fresh delivery id; the caller stores it so retries and redelivery reuse it."""
    return "msg_" + secrets.token_urlsafe(20)  # 27 url-safe chars, 160 random bits


def _standard_signature(key: bytes, message_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def _wandb_signature(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _coerce_scheme(value: Scheme | str, field: str) -> Scheme:
    try:
        return Scheme(value)
    except ValueError:
        known = ", ".join(repr(s.value) for s in Scheme)
        raise ValidationError(field, f"unknown scheme {value!r} (known: {known})") from None


def sign(
    body: bytes,
    secret: str,
    *,
    message_id: str,
    timestamp: int,
    schemes: Iterable[Scheme] = DEFAULT_SCHEMES,
) -> dict[str, str]:
    """The headers that sign ``body`` under each of ``schemes``.

    ``message_id`` and ``timestamp`` (Unix seconds) only enter the Standard
    Webhooks signature; the caller keeps the id stable across retries.
    """
    wanted = [_coerce_scheme(s, "schemes") for s in schemes]
    if not wanted:
        return {}
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError("body must be bytes: the exact bytes that will be sent")
    key = signing_key(secret)
    body = bytes(body)
    headers: dict[str, str] = {}
    if Scheme.STANDARD in wanted:
        if not isinstance(message_id, str) or not _MESSAGE_ID.fullmatch(message_id):
            raise ValidationError(
                "message_id", "must be 1-256 printable ASCII characters without spaces"
            )
        if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
            raise ValidationError("timestamp", "must be a non-negative integer (Unix seconds)")
        stamp = str(timestamp)
        headers[ID_HEADER] = message_id
        headers[TIMESTAMP_HEADER] = stamp
        headers[SIGNATURE_HEADER] = "v1," + _b64(_standard_signature(key, message_id, stamp, body))
    if Scheme.WANDB in wanted:
        headers[WANDB_HEADER] = _b64(_wandb_signature(key, body))
    return headers


MAX_HEADER_LENGTH = 8192
"""A signature header longer than this is refused before any work is done on it."""


def _text(value: object, what: str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (bytes, bytearray)):  # ASGI and some frameworks pass raw bytes
        text = bytes(value).decode("latin-1")
    else:
        raise SignatureError(f"a header {what} is not text")
    return text


def _lowercase(headers: HeadersLike) -> dict[str, str]:
    """Fold header names to lower case; a repeated header with another value is refused.

    Only the signature headers are kept, each at most :data:`MAX_HEADER_LENGTH`
    characters; anything malformed is a SignatureError.
    """
    try:
        items = list(headers.items())
    except Exception:
        raise ValidationError("headers", "must have items() of (name, value) pairs") from None
    wanted = {ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER, WANDB_HEADER.lower()}
    folded: dict[str, str] = {}
    for item in items:
        try:
            raw_name, raw_value = item
        except (TypeError, ValueError):
            raise SignatureError("malformed headers: expected (name, value) pairs") from None
        lower = _text(raw_name, "name").lower()
        if lower not in wanted:
            continue
        value = _text(raw_value, "value")
        if len(value) > MAX_HEADER_LENGTH:
            raise SignatureError(f"the {lower} header is too long (over {MAX_HEADER_LENGTH})")
        if lower not in folded or folded[lower] == value:
            folded[lower] = value
        elif lower == SIGNATURE_HEADER:  # repeated lines: one list of signatures
            folded[lower] = f"{folded[lower]} {value}"
            if len(folded[lower]) > MAX_HEADER_LENGTH:
                raise SignatureError(f"the {lower} header is too long (over {MAX_HEADER_LENGTH})")
        else:
            raise SignatureError(f"conflicting values for the {lower} header")
    return folded


def _decode_b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _verify_standard(
    keys: Sequence[bytes], body: bytes, headers: dict[str, str], tolerance: float, now: float | None
) -> None:
    for name in (SIGNATURE_HEADER, ID_HEADER, TIMESTAMP_HEADER):
        if not headers.get(name, "").strip():
            raise SignatureError(f"missing {name} header")
    message_id = headers[ID_HEADER].strip()
    stamp = headers[TIMESTAMP_HEADER].strip()
    if not _TIMESTAMP.fullmatch(stamp):
        raise SignatureError("invalid webhook-timestamp header: expected integer Unix seconds")
    try:
        prefix = f"{message_id}.{stamp}.".encode()
    except UnicodeEncodeError:
        raise SignatureError("invalid webhook-id header: not encodable text") from None
    current = time.time() if now is None else now
    age = current - int(stamp)
    if age > tolerance:
        raise SignatureError(f"timestamp too old: {age:.0f}s past, tolerance {tolerance:g}s")
    if -age > tolerance:
        raise SignatureError(
            f"timestamp too far in the future: {-age:.0f}s ahead, tolerance {tolerance:g}s"
        )
    expected = [hmac.new(key, prefix + body, hashlib.sha256).digest() for key in keys]
    candidates = []
    # Space-separated "version,signature" entries; a comma-joined repeat of the
    # header (how some frameworks merge duplicates) leaves a trailing comma.
    for entry in headers[SIGNATURE_HEADER].split():
        version, _, encoded = entry.rstrip(",").partition(",")
        if version != "v1":
            continue
        candidate = _decode_b64(encoded)
        if candidate is not None:
            candidates.append(candidate)
    if not _any_match(expected, candidates):
        raise SignatureError("no matching signature in the webhook-signature header")


def _any_match(expected: Sequence[bytes], candidates: Sequence[bytes]) -> bool:
    """Compare every pair in constant time, without stopping at the first match."""
    matched = False
    for digest in expected:
        for candidate in candidates:
            matched |= hmac.compare_digest(digest, candidate)
    return matched


def _verify_wandb(keys: Sequence[bytes], body: bytes, headers: dict[str, str]) -> None:
    value = headers.get(WANDB_HEADER.lower(), "").strip()
    if not value:
        raise SignatureError(f"missing {WANDB_HEADER} header")
    candidate = _decode_b64(value)
    expected = [_wandb_signature(key, body) for key in keys]
    if candidate is None or not _any_match(expected, [candidate]):
        raise SignatureError(f"no matching signature in the {WANDB_HEADER} header")


def _signing_keys(secret: str | Sequence[str]) -> list[bytes]:
    if isinstance(secret, str):
        return [signing_key(secret)]
    if not isinstance(secret, (list, tuple)) or not secret:
        raise ValidationError("secret", "must be a non-empty string, or a list of them")
    return [signing_key(one) for one in secret]


def verify(
    secret: str | Sequence[str],
    body: bytes,
    headers: HeadersLike,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
    scheme: Scheme | str | None = Scheme.STANDARD,
) -> Scheme:
    """Check a received request; return the scheme that passed or raise SignatureError.

    ``body`` must be the raw bytes as received, before any JSON parsing.
    ``secret`` may be a list of secrets (during a rotation): the request
    passes if it is signed with any of them. Every comparison is constant
    time, and a malformed header (bad base64, a timestamp that is not
    integer seconds, a missing part, a value over :data:`MAX_HEADER_LENGTH`,
    a conflicting repeat) is a SignatureError, never another exception.

    By default only the Standard Webhooks scheme is accepted: the
    ``webhook-signature`` must match ``webhook-id``, ``webhook-timestamp`` and
    the body, and the timestamp must be within ``tolerance`` seconds (5
    minutes) of ``now``, so a captured request cannot be replayed later.
    (``scheme=None`` means the same, for callers written against an older
    hookwise.)

    ``scheme=Scheme.WANDB`` opts in to W&B's body-only HMAC
    (``X-Wandb-Signature``) instead. It proves who sent the body but carries
    no timestamp and no id, so it does NOT protect against replay: anyone
    who captures one request (a proxy log, a leaked capture) can send it
    again, unchanged, at any later time, and it will verify forever. Use it
    only for a sender that cannot send Standard Webhooks headers, and make
    the receiver's handling idempotent (or deduplicate on the body) if
    replays matter.
    """
    if not isinstance(tolerance, (int, float)) or not tolerance >= 0:  # also refuses NaN
        raise ValidationError("tolerance", "must be zero or more seconds")
    if now is not None and not math.isfinite(now):
        raise ValidationError("now", "must be a finite Unix time")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError("body must be the raw request bytes, not a decoded or parsed value")
    required = Scheme.STANDARD if scheme is None else _coerce_scheme(scheme, "scheme")
    keys = _signing_keys(secret)
    folded = _lowercase(headers)
    data = bytes(body)
    if required is Scheme.WANDB:
        _verify_wandb(keys, data, folded)
        return Scheme.WANDB
    _verify_standard(keys, data, folded, tolerance, now)
    return Scheme.STANDARD
