"""SecretKey: AES-256-GCM at rest, context binding, rotation, configuration."""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookwise.crypto import SecretKey, generate_key_text
from hookwise.errors import SecretKeyError, ValidationError

CTX = "secret:ml-team/GITHUB_TOKEN"


def key_text() -> str:
    return generate_key_text()


# --- keys ---------------------------------------------------------------------------


def test_generate_key_text_is_32_urlsafe_bytes() -> None:
    text = generate_key_text()
    assert len(base64.urlsafe_b64decode(text)) == 32
    assert generate_key_text() != text


def test_key_forms_are_equivalent() -> None:
    raw = os.urandom(32)
    padded = base64.urlsafe_b64encode(raw).decode()
    forms: list[str | bytes] = [
        raw,
        padded,
        padded.rstrip("="),
        base64.b64encode(raw).decode(),
        f"  {padded}\n",
    ]
    ids = {SecretKey(form).key_ids for form in forms}
    assert ids == {(hashlib.sha256(raw).digest()[:8].hex(),)}
    token = SecretKey(raw).encrypt(b"v", context=CTX)
    for form in forms:
        assert SecretKey(form).decrypt(token, context=CTX) == b"v"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "not base64 at all!",
        base64.urlsafe_b64encode(b"short").decode(),
        base64.urlsafe_b64encode(os.urandom(33)).decode(),
        "é" * 43,
        b"sixteen raw byte",
        os.urandom(31),
        base64.urlsafe_b64encode(os.urandom(32)),  # text as bytes: bytes must be raw
        42,
    ],
)
def test_bad_key_is_validation_error_without_echo(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        SecretKey(bad)  # type: ignore[arg-type]
    assert info.value.field == "key"
    if isinstance(bad, str) and bad.strip():
        assert bad not in str(info.value)


def test_bad_second_key_names_its_position() -> None:
    with pytest.raises(ValidationError, match="key #2"):
        SecretKey(key_text(), "nope")


def test_no_keys() -> None:
    with pytest.raises(ValidationError) as info:
        SecretKey()
    assert info.value.field == "key"


def test_key_ids_order_and_duplicates() -> None:
    a, b = key_text(), key_text()
    key = SecretKey(a, b, a)
    assert key.key_ids == (SecretKey(a).key_ids[0], SecretKey(b).key_ids[0])
    assert all(len(kid) == 16 for kid in key.key_ids)


def test_repr_and_str_hold_no_key_material() -> None:
    a, b = key_text(), key_text()
    key = SecretKey(a, b)
    for text in (repr(key), str(key), f"{key}"):
        assert text.startswith("SecretKey(2 keys, ids=")
        for secret in (a, b, a.rstrip("=")):
            assert secret not in text
    assert repr(SecretKey(a)).startswith("SecretKey(1 key, ")


def test_no_key_bytes_in_attributes() -> None:
    raw = os.urandom(32)
    key = SecretKey(raw)
    assert not hasattr(key, "__dict__")
    for slot in ("_ciphers", "_ids"):
        assert raw not in repr(getattr(key, slot)).encode("latin-1", "replace")


def test_cannot_be_pickled_or_copied() -> None:
    key = SecretKey.generate()
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        copy.copy(key)


def test_generate_is_random() -> None:
    assert SecretKey.generate().key_ids != SecretKey.generate().key_ids


# --- round trip ---------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=2048), context=st.text(max_size=64))
def test_round_trip(plaintext: bytes, context: str) -> None:
    key = SecretKey.generate()
    token = key.encrypt(plaintext, context=context)
    assert key.decrypt(token, context=context) == plaintext


def test_format() -> None:
    key = SecretKey.generate()
    token = key.encrypt(b"ghp_value", context=CTX)
    assert token[:3] == b"hw1"
    assert token[3:11].hex() == key.key_ids[0]
    assert len(token) == 3 + 8 + 12 + len(b"ghp_value") + 16
    assert b"ghp_value" not in token


def test_nonces_differ() -> None:
    key = SecretKey.generate()
    tokens = {key.encrypt(b"same", context=CTX) for _ in range(50)}
    assert len(tokens) == 50
    assert len({t[11:23] for t in tokens}) == 50


# --- failures -----------------------------------------------------------------------


def test_wrong_context_fails() -> None:
    key = SecretKey.generate()
    token = key.encrypt(b"value", context="secret:team-a/TOKEN")
    with pytest.raises(SecretKeyError, match="failed authentication"):
        key.decrypt(token, context="secret:team-b/TOKEN")


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=64), data=st.data())
def test_any_flipped_bit_fails(plaintext: bytes, data: st.DataObject) -> None:
    key = SecretKey.generate()
    token = bytearray(key.encrypt(plaintext, context=CTX))
    index = data.draw(st.integers(0, len(token) - 1))
    bit = data.draw(st.integers(0, 7))
    token[index] ^= 1 << bit
    with pytest.raises(SecretKeyError):
        key.decrypt(bytes(token), context=CTX)


@pytest.mark.parametrize("cut", [1, 16, 20])
def test_truncated_fails(cut: int) -> None:
    key = SecretKey.generate()
    token = key.encrypt(b"value", context=CTX)
    with pytest.raises(SecretKeyError):
        key.decrypt(token[:-cut], context=CTX)


@pytest.mark.parametrize(
    "junk", [b"", b"hw1", b"plaintext-value-that-is-long-enough-xx", b"x" * 64]
)
def test_not_a_token(junk: bytes) -> None:
    with pytest.raises(SecretKeyError, match="not a hookwise ciphertext"):
        SecretKey.generate().decrypt(junk, context=CTX)


def test_unknown_key_id() -> None:
    token = SecretKey.generate().encrypt(b"value", context=CTX)
    other = SecretKey.generate()
    with pytest.raises(SecretKeyError, match=token[3:11].hex()) as info:
        other.decrypt(token, context=CTX)
    assert other.key_ids[0] in str(info.value)


def test_decrypt_error_texts_hold_no_key_or_plaintext() -> None:
    text = key_text()
    key = SecretKey(text)
    token = key.encrypt(b"super-secret-value", context=CTX)
    for bad_token, ctx in [(token, "other"), (token[:-1], CTX), (b"junk", CTX)]:
        with pytest.raises(SecretKeyError) as info:
            key.decrypt(bad_token, context=ctx)
        assert text not in str(info.value)
        assert "super-secret-value" not in str(info.value)


# --- rotation -----------------------------------------------------------------------


def test_rotation() -> None:
    old, new = key_text(), key_text()
    token = SecretKey(old).encrypt(b"ghp_value", context=CTX)

    both = SecretKey(new, old)
    assert both.decrypt(token, context=CTX) == b"ghp_value"
    assert both.needs_rotation(token)

    rotated = both.rotate(token, context=CTX)
    assert not both.needs_rotation(rotated)
    assert rotated[3:11].hex() == both.key_ids[0]
    assert both.decrypt(rotated, context=CTX) == b"ghp_value"
    assert SecretKey(new).decrypt(rotated, context=CTX) == b"ghp_value"
    with pytest.raises(SecretKeyError, match="not among the configured keys"):
        SecretKey(old).decrypt(rotated, context=CTX)

    assert both.rotate(rotated, context=CTX) == rotated  # already current: unchanged


def test_new_encryptions_use_first_key() -> None:
    old, new = key_text(), key_text()
    token = SecretKey(new, old).encrypt(b"x", context=CTX)
    assert SecretKey(new).decrypt(token, context=CTX) == b"x"
    with pytest.raises(SecretKeyError):
        SecretKey(old).decrypt(token, context=CTX)


def test_rotate_checks_context() -> None:
    old, new = key_text(), key_text()
    token = SecretKey(old).encrypt(b"x", context=CTX)
    with pytest.raises(SecretKeyError):
        SecretKey(new, old).rotate(token, context="secret:other/NAME")


def test_needs_rotation_rejects_junk() -> None:
    with pytest.raises(SecretKeyError):
        SecretKey.generate().needs_rotation(b"junk")


# --- from_env -----------------------------------------------------------------------


def test_from_env_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOKWISE_SECRET_KEY", raising=False)
    with pytest.raises(SecretKeyError, match="HOOKWISE_SECRET_KEY is not set") as info:
        SecretKey.from_env()
    assert "hookwise keygen" in str(info.value)


@pytest.mark.parametrize("value", ["", "  ", ",", " , "])
def test_from_env_empty(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", value)
    with pytest.raises(SecretKeyError, match="HOOKWISE_SECRET_KEY is empty") as info:
        SecretKey.from_env()
    assert "hookwise keygen" in str(info.value)


def test_from_env_one_key(monkeypatch: pytest.MonkeyPatch) -> None:
    text = key_text()
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", text)
    assert SecretKey.from_env().key_ids == SecretKey(text).key_ids


def test_from_env_two_keys_first_encrypts(monkeypatch: pytest.MonkeyPatch) -> None:
    new, old = key_text(), key_text()
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", f" {new} , {old} ")
    key = SecretKey.from_env()
    assert key.key_ids == SecretKey(new, old).key_ids
    token = key.encrypt(b"x", context=CTX)
    assert SecretKey(new).decrypt(token, context=CTX) == b"x"


def test_from_env_custom_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_KEYS", raising=False)
    with pytest.raises(SecretKeyError, match="MY_KEYS"):
        SecretKey.from_env("MY_KEYS")
    monkeypatch.setenv("MY_KEYS", key_text())
    assert len(SecretKey.from_env("MY_KEYS").key_ids) == 1


def test_from_env_bad_key(monkeypatch: pytest.MonkeyPatch) -> None:
    good = key_text()
    monkeypatch.setenv("HOOKWISE_SECRET_KEY", f"{good},definitely-not-a-key")
    with pytest.raises(ValidationError) as info:
        SecretKey.from_env()
    assert info.value.field == "key"
    assert "HOOKWISE_SECRET_KEY" in str(info.value)
    assert "key #2" in str(info.value)
    assert "definitely-not-a-key" not in str(info.value)
    assert good not in str(info.value)
