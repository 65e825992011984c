"""Encryption at rest for secret values, under keys the user controls.

A :class:`SecretKey` holds one or more 32-byte keys. The first encrypts; all of
them decrypt, so rotation is: put the new key first, keep the old one after it,
re-encrypt (:meth:`SecretKey.rotate`), then drop the old key. Ciphertexts are
AES-256-GCM with the caller's ``context`` (e.g. ``"secret:team/NAME"``) as
associated data, so a ciphertext copied onto another row does not decrypt::

    b"hw1" | key id (8 bytes) | nonce (12 bytes) | ciphertext + GCM tag (16 bytes)

The key id is the first 8 bytes of SHA-256 of the key: it picks the key for
decryption and names it in logs without revealing it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable
from typing import NoReturn, final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hookwise.errors import SecretKeyError, ValidationError

__all__ = ["ENV_VAR", "SecretKey", "check_key_ids", "generate_key_text", "key_id_of"]

ENV_VAR = "HOOKWISE_SECRET_KEY"
KEY_SIZE = 32
_MAGIC = b"hw1"
_KEY_ID_SIZE = 8
_NONCE_SIZE = 12
_TAG_SIZE = 16
_HEADER_SIZE = len(_MAGIC) + _KEY_ID_SIZE + _NONCE_SIZE
_URLSAFE_B64 = re.compile(r"[A-Za-z0-9_-]+")


def generate_key_text() -> str:
    """A new random key as urlsafe-base64 text (what ``hookwise keygen`` prints)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_SIZE)).decode("ascii")


def _decode_key(key: str | bytes, position: int) -> bytes:
    """Raw key bytes from text or bytes; errors name the position, never the key."""
    where = f"key #{position}"
    if isinstance(key, (bytes, bytearray, memoryview)):
        raw = bytes(key)
        if len(raw) != KEY_SIZE:
            raise ValidationError("key", f"{where}: raw keys must be {KEY_SIZE} bytes")
        return raw
    if not isinstance(key, str):
        raise ValidationError("key", f"{where}: expected text or bytes")
    # Accept both base64 alphabets and missing padding: people paste from openssl too.
    text = key.strip().rstrip("=").replace("+", "-").replace("/", "_")
    if not text:
        raise ValidationError("key", f"{where}: empty; run `hookwise keygen` to make one")
    try:
        if not _URLSAFE_B64.fullmatch(text):
            raise ValueError("outside the base64 alphabet")
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValidationError(
            "key", f"{where}: not urlsafe-base64 text; run `hookwise keygen` to make one"
        ) from None
    if len(raw) != KEY_SIZE:
        raise ValidationError("key", f"{where}: decodes to {len(raw)} bytes, expected {KEY_SIZE}")
    return raw


def _key_id(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()[:_KEY_ID_SIZE]


def key_id_of(token: bytes) -> str | None:
    """The hex id of the key ``token`` was sealed under, read without any key
    (None if it is not a hookwise ciphertext). Stores record these ids so a
    store opened with the wrong key says so at once."""
    if not isinstance(token, (bytes, bytearray, memoryview)):
        return None
    data = bytes(token[:_HEADER_SIZE])
    if len(data) < _HEADER_SIZE or not data.startswith(_MAGIC):
        return None
    return data[len(_MAGIC) : len(_MAGIC) + _KEY_ID_SIZE].hex()


@final
class SecretKey:
    """One or more AES-256 keys: the first encrypts, every one decrypts.

    Only AESGCM objects and key ids are kept, never the key bytes as an attribute;
    ``repr`` shows the ids, and the object refuses to be pickled.
    """

    __slots__ = ("_ciphers", "_ids")

    def __init__(self, *keys: str | bytes) -> None:
        if not keys:
            raise ValidationError("key", "at least one key is required")
        ciphers: dict[bytes, AESGCM] = {}
        ids: list[bytes] = []
        for position, key in enumerate(keys, start=1):
            raw = _decode_key(key, position)
            kid = _key_id(raw)
            if kid in ciphers:
                continue  # the same key listed twice is harmless
            ciphers[kid] = AESGCM(raw)
            ids.append(kid)
        self._ciphers = ciphers
        self._ids = tuple(ids)

    @classmethod
    def generate(cls) -> SecretKey:
        """A fresh random single key (tests, demos; real deployments keep theirs)."""
        return cls(os.urandom(KEY_SIZE))

    @classmethod
    def from_env(cls, var: str = ENV_VAR) -> SecretKey:
        """Keys from a comma-separated environment variable, the first one encrypting.

        Missing or empty is an error, never a silently generated key: data
        encrypted under a key nobody kept would be lost on restart.
        """
        value = os.environ.get(var, "")
        keys = [part.strip() for part in value.split(",") if part.strip()]
        if not keys:
            state = "is empty" if var in os.environ else "is not set"
            raise SecretKeyError(
                f"{var} {state}: run `hookwise keygen` and set {var} to the key it prints "
                f"(to rotate, list the new key first: {var}=new,old)"
            )
        try:
            return cls(*keys)
        except ValidationError as exc:
            raise ValidationError("key", f"in {var}: {exc.message}") from None

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Hex ids of the keys, first (encrypting) one first; safe to log."""
        return tuple(kid.hex() for kid in self._ids)

    def encrypt(self, plaintext: bytes, *, context: str) -> bytes:
        """Encrypt under the first key, bound to ``context``."""
        kid = self._ids[0]
        nonce = os.urandom(_NONCE_SIZE)
        sealed = self._ciphers[kid].encrypt(nonce, bytes(plaintext), _aad(context))
        return _MAGIC + kid + nonce + sealed

    def decrypt(self, token: bytes, *, context: str) -> bytes:
        """Decrypt with the key the token names; any failure is a SecretKeyError."""
        kid, nonce, sealed = self._split(token)
        try:
            return self._ciphers[kid].decrypt(nonce, sealed, _aad(context))
        except InvalidTag:
            raise SecretKeyError(
                f"ciphertext for context {context!r} failed authentication: it was "
                "tampered with, or belongs to another context"
            ) from None

    def needs_rotation(self, token: bytes) -> bool:
        """True when ``token`` is not encrypted under the first key."""
        kid = self._split(token)[0]
        return kid != self._ids[0]

    def rotate(self, token: bytes, *, context: str) -> bytes:
        """``token`` re-encrypted under the first key (unchanged if it already is)."""
        plaintext = self.decrypt(token, context=context)
        if not self.needs_rotation(token):
            return bytes(token)
        return self.encrypt(plaintext, context=context)

    def _split(self, token: bytes) -> tuple[bytes, bytes, bytes]:
        if not isinstance(token, (bytes, bytearray, memoryview)):
            raise SecretKeyError("ciphertext must be bytes")
        data = bytes(token)
        if len(data) < _HEADER_SIZE + _TAG_SIZE or not data.startswith(_MAGIC):
            raise SecretKeyError("not a hookwise ciphertext (expected the hw1 format)")
        kid = data[len(_MAGIC) : len(_MAGIC) + _KEY_ID_SIZE]
        if kid not in self._ciphers:
            raise SecretKeyError(
                f"ciphertext was encrypted under key id {kid.hex()}, which is not among the "
                f"configured keys ({', '.join(self.key_ids)}); add that key to {ENV_VAR}"
            )
        nonce = data[len(_MAGIC) + _KEY_ID_SIZE : _HEADER_SIZE]
        return kid, nonce, data[_HEADER_SIZE:]

    def __repr__(self) -> str:
        count = len(self._ids)
        noun = "key" if count == 1 else "keys"
        return f"SecretKey({count} {noun}, ids={list(self.key_ids)})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretKey cannot be pickled: keys stay in the process that loaded them")


def check_key_ids(key: SecretKey, recorded: Iterable[str], *, where: str) -> tuple[str, ...]:
    """Check ``key`` against the key ids a store holds ciphertexts under.

    None of them among ``key``'s: a SecretKeyError naming the ids (never a
    key). An empty store takes any key. Returns the recorded ids ``key``
    lacks (rows it cannot open, e.g. half-way through a rotation), for the
    caller to warn about.
    """
    held = sorted(set(recorded))
    if not held:
        return ()
    ours = set(key.key_ids)
    missing = tuple(kid for kid in held if kid not in ours)
    if len(missing) == len(held):
        raise SecretKeyError(
            f"{where} holds secrets sealed under key id(s) {', '.join(held)}, and the "
            f"configured key(s) ({', '.join(key.key_ids)}) include none of them: this is "
            f"not the key this store was written with. Set {ENV_VAR} to that key (to "
            f"rotate: {ENV_VAR}=new,old, then `hookwise rotate-key`)"
        )
    return missing


def _aad(context: str) -> bytes:
    if not isinstance(context, str):
        raise TypeError("context must be a string naming the row, e.g. 'secret:team/NAME'")
    return context.encode("utf-8")
