"""Signing and verification: round trips, tampering, replay windows, interop."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timezone

import httpx
import pytest
import standardwebhooks
from hypothesis import given, settings
from hypothesis import strategies as st

from hookwise.errors import SignatureError, ValidationError
from hookwise.signing import (
    DEFAULT_SCHEMES,
    Scheme,
    new_message_id,
    sign,
    signing_key,
    verify,
)

NOW = 1_700_000_000
BODY = b'{"event_type": "BUILD_AND_DEPLOY", "client_payload": {"version": "v12"}}'
SECRET = "s3cr3t-signing-key"
WHSEC = "whsec_" + base64.b64encode(b"\x00\x01binary key material\xff" * 2).decode()

plain_secrets = st.text(min_size=1, max_size=64).filter(lambda s: not s.startswith("whsec_"))
whsec_secrets = st.binary(min_size=1, max_size=64).map(
    lambda b: "whsec_" + base64.b64encode(b).decode()
)
any_secret = plain_secrets | whsec_secrets
bodies = st.binary(max_size=512)


def signed(body: bytes = BODY, secret: str = SECRET, **kw: object) -> dict[str, str]:
    kw.setdefault("message_id", "msg_test")
    kw.setdefault("timestamp", NOW)
    return sign(body, secret, **kw)  # type: ignore[arg-type]


# --- keys and ids -----------------------------------------------------------------


def test_signing_key_plain_is_utf8() -> None:
    assert signing_key("héllo") == "héllo".encode()


def test_signing_key_whsec_is_base64_decoded() -> None:
    assert signing_key("whsec_" + base64.b64encode(b"raw key").decode()) == b"raw key"


def test_signing_key_whsec_without_padding() -> None:
    assert signing_key("whsec_" + base64.b64encode(b"raw key").decode().rstrip("=")) == b"raw key"


@pytest.mark.parametrize("bad", ["whsec_not*base64!", "whsec_", "whsec_a"])
def test_signing_key_bad_whsec(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        signing_key(bad)
    assert info.value.field == "secret"


def test_signing_key_empty() -> None:
    with pytest.raises(ValidationError):
        signing_key("")


def test_new_message_id_shape_and_uniqueness() -> None:
    ids = {new_message_id() for _ in range(200)}
    assert len(ids) == 200
    for mid in ids:
        assert mid.startswith("msg_")
        assert len(mid) >= 4 + 26
        assert set(mid[4:]) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


# --- sign ---------------------------------------------------------------------------


def test_sign_headers_for_each_scheme() -> None:
    both = signed()
    assert set(both) == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "X-Wandb-Signature",
    }
    assert both["webhook-id"] == "msg_test"
    assert both["webhook-timestamp"] == str(NOW)
    assert both["webhook-signature"].startswith("v1,")
    assert set(signed(schemes=[Scheme.WANDB])) == {"X-Wandb-Signature"}
    assert set(signed(schemes=[Scheme.STANDARD])) == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    assert signed(schemes=[]) == {}
    assert DEFAULT_SCHEMES == (Scheme.STANDARD, Scheme.WANDB)


def test_sign_matches_hand_computed_hmacs() -> None:
    headers = signed()
    standard = hmac.new(SECRET.encode(), f"msg_test.{NOW}.".encode() + BODY, hashlib.sha256)
    assert headers["webhook-signature"] == "v1," + base64.b64encode(standard.digest()).decode()
    wandb = hmac.new(SECRET.encode(), BODY, hashlib.sha256)
    assert headers["X-Wandb-Signature"] == base64.b64encode(wandb.digest()).decode()


def test_sign_accepts_scheme_strings() -> None:
    assert set(signed(schemes=["wandb"])) == {"X-Wandb-Signature"}
    with pytest.raises(ValidationError) as info:
        signed(schemes=["md5"])
    assert info.value.field == "schemes"


@pytest.mark.parametrize("bad", ["", "has space", "new\nline", "x" * 257])
def test_sign_rejects_bad_message_id(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        signed(message_id=bad)
    assert info.value.field == "message_id"


@pytest.mark.parametrize("bad", [-1, 1.5, True, "123"])
def test_sign_rejects_bad_timestamp(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        signed(timestamp=bad)
    assert info.value.field == "timestamp"


def test_sign_rejects_text_body() -> None:
    with pytest.raises(TypeError):
        sign("text", SECRET, message_id="msg_1", timestamp=NOW)  # type: ignore[arg-type]


# --- round trips --------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(body=bodies, secret=any_secret)
def test_round_trip_standard(body: bytes, secret: str) -> None:
    headers = sign(body, secret, message_id="msg_rt", timestamp=NOW, schemes=[Scheme.STANDARD])
    assert verify(secret, body, headers, now=NOW) is Scheme.STANDARD


@settings(max_examples=60, deadline=None)
@given(body=bodies, secret=any_secret)
def test_round_trip_wandb(body: bytes, secret: str) -> None:
    headers = sign(body, secret, message_id="msg_rt", timestamp=NOW, schemes=[Scheme.WANDB])
    # the body-only W&B check is an explicit opt-in (it cannot stop a replay)
    assert verify(secret, body, headers, now=NOW, scheme=Scheme.WANDB) is Scheme.WANDB


@settings(max_examples=40, deadline=None)
@given(body=bodies, secret=any_secret, other=any_secret)
def test_wrong_secret_fails(body: bytes, secret: str, other: str) -> None:
    if signing_key(other) == signing_key(secret):
        return
    headers = sign(body, secret, message_id="msg_rt", timestamp=NOW)
    for scheme in Scheme:
        with pytest.raises(SignatureError):
            verify(other, body, headers, now=NOW, scheme=scheme)


@settings(max_examples=40, deadline=None)
@given(body=bodies, extra=st.binary(min_size=1, max_size=8), secret=any_secret)
def test_tampered_body_fails_both_schemes(body: bytes, extra: bytes, secret: str) -> None:
    headers = sign(body, secret, message_id="msg_rt", timestamp=NOW)
    for scheme in Scheme:
        with pytest.raises(SignatureError, match="no matching signature"):
            verify(secret, body + extra, headers, now=NOW, scheme=scheme)


def test_auto_prefers_standard_and_returns_scheme() -> None:
    assert verify(SECRET, BODY, signed(), now=NOW) is Scheme.STANDARD


def test_tampered_id_fails() -> None:
    headers = signed()
    headers["webhook-id"] = "msg_other"
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(SECRET, BODY, headers, now=NOW)


def test_tampered_timestamp_fails() -> None:
    headers = signed()
    headers["webhook-timestamp"] = str(NOW + 1)
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(SECRET, BODY, headers, now=NOW)


def test_tampered_signature_fails() -> None:
    headers = signed()
    sig = bytearray(base64.b64decode(headers["webhook-signature"][3:]))
    sig[0] ^= 1
    headers["webhook-signature"] = "v1," + base64.b64encode(bytes(sig)).decode()
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(SECRET, BODY, headers, now=NOW)


# --- replay window ------------------------------------------------------------------


def test_timestamp_at_the_edges_of_tolerance_passes() -> None:
    headers = signed()
    assert verify(SECRET, BODY, headers, now=NOW + 300) is Scheme.STANDARD
    assert verify(SECRET, BODY, headers, now=NOW - 300) is Scheme.STANDARD


def test_expired_timestamp_fails() -> None:
    with pytest.raises(SignatureError, match="timestamp too old"):
        verify(SECRET, BODY, signed(), now=NOW + 301)


def test_future_timestamp_fails() -> None:
    with pytest.raises(SignatureError, match="timestamp too far in the future"):
        verify(SECRET, BODY, signed(), now=NOW - 301)


def test_custom_tolerance() -> None:
    headers = signed()
    assert verify(SECRET, BODY, headers, now=NOW + 3000, tolerance=3600) is Scheme.STANDARD
    with pytest.raises(SignatureError, match="too old"):
        verify(SECRET, BODY, headers, now=NOW + 11, tolerance=10)


def test_default_now_is_the_clock() -> None:
    headers = signed(timestamp=int(time.time()))
    assert verify(SECRET, BODY, headers) is Scheme.STANDARD
    with pytest.raises(SignatureError, match="too old"):
        verify(SECRET, BODY, signed(timestamp=int(time.time()) - 3600))


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_bad_tolerance(bad: float) -> None:
    with pytest.raises(ValidationError):
        verify(SECRET, BODY, signed(), now=NOW, tolerance=bad)


def test_nan_now_is_refused() -> None:
    with pytest.raises(ValidationError):
        verify(SECRET, BODY, signed(), now=float("nan"))


@pytest.mark.parametrize("bad", ["", "abc", "1.5e9", "-5", "9" * 40])
def test_malformed_timestamp(bad: str) -> None:
    headers = signed()
    headers["webhook-timestamp"] = bad
    with pytest.raises(SignatureError):
        verify(SECRET, BODY, headers, now=NOW)


# --- header parsing -----------------------------------------------------------------


def test_multiple_signatures_in_header() -> None:
    headers = signed()
    good = headers["webhook-signature"]
    other = "v1," + base64.b64encode(b"x" * 32).decode()
    for value in (f"{other} {good}", f"{good} {other}", f"v2,abc {other}  {good}"):
        headers["webhook-signature"] = value
        assert verify(SECRET, BODY, headers, now=NOW) is Scheme.STANDARD


def test_other_versions_are_ignored() -> None:
    headers = signed()
    headers["webhook-signature"] = "v2," + headers["webhook-signature"][3:]
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(SECRET, BODY, headers, now=NOW)


@pytest.mark.parametrize("junk", ["v1", "v1,", "v1,!!!", ",", "v1,abc,def"])
def test_malformed_entries_do_not_crash(junk: str) -> None:
    headers = signed()
    headers["webhook-signature"] = junk
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(SECRET, BODY, headers, now=NOW)
    headers["webhook-signature"] = f"{junk} {signed()['webhook-signature']}"
    assert verify(SECRET, BODY, headers, now=NOW) is Scheme.STANDARD


@pytest.mark.parametrize("case", [str.upper, str.title, str.lower])
def test_header_names_are_case_insensitive(case: Callable[[str], str]) -> None:
    headers = {case(k): v for k, v in signed().items()}
    assert verify(SECRET, BODY, headers, now=NOW) is Scheme.STANDARD
    wandb = {case(k): v for k, v in signed(schemes=[Scheme.WANDB]).items()}
    assert verify(SECRET, BODY, wandb, now=NOW, scheme=Scheme.WANDB) is Scheme.WANDB


def test_httpx_headers_including_repeated_signature_lines() -> None:
    base = signed()
    assert verify(SECRET, BODY, httpx.Headers(base), now=NOW) is Scheme.STANDARD
    other = "v1," + base64.b64encode(b"y" * 32).decode()
    lines = [(k, v) for k, v in base.items() if k != "webhook-signature"]
    lines += [("Webhook-Signature", other), ("webhook-signature", base["webhook-signature"])]
    # httpx joins repeated lines with ", "
    assert verify(SECRET, BODY, httpx.Headers(lines), now=NOW) is Scheme.STANDARD


class MultiHeaders:
    """werkzeug-like: not a Mapping; items() yields repeated names separately."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)


def test_werkzeug_like_headers() -> None:
    base = signed()
    other = "v1," + base64.b64encode(b"z" * 32).decode()
    pairs = [("Webhook-Signature", other), *((k.title(), v) for k, v in base.items())]
    assert verify(SECRET, BODY, MultiHeaders(pairs), now=NOW) is Scheme.STANDARD


def test_conflicting_repeated_id_is_refused() -> None:
    pairs = [*signed().items(), ("Webhook-Id", "msg_other")]
    with pytest.raises(SignatureError, match="conflicting"):
        verify(SECRET, BODY, MultiHeaders(pairs), now=NOW)


# --- scheme selection ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_standard_header_never_falls_back(name: str) -> None:
    headers = signed()
    del headers[name]
    with pytest.raises(SignatureError, match=f"missing {name} header"):
        verify(SECRET, BODY, headers, now=NOW)


def test_broken_standard_does_not_fall_back_to_valid_wandb() -> None:
    headers = signed()
    headers["webhook-id"] = "msg_other"
    with pytest.raises(SignatureError):
        verify(SECRET, BODY, headers, now=NOW)
    assert verify(SECRET, BODY, headers, now=NOW, scheme=Scheme.WANDB) is Scheme.WANDB


def test_no_signature_headers() -> None:
    # the default is the Standard Webhooks scheme: its headers are what is missing
    with pytest.raises(SignatureError, match="missing webhook-signature header"):
        verify(SECRET, BODY, {"content-type": "application/json"}, now=NOW)


def test_required_scheme_must_be_present() -> None:
    with pytest.raises(SignatureError, match="missing webhook-signature header"):
        verify(SECRET, BODY, signed(schemes=[Scheme.WANDB]), now=NOW, scheme=Scheme.STANDARD)
    with pytest.raises(SignatureError, match="missing X-Wandb-Signature header"):
        verify(SECRET, BODY, signed(schemes=[Scheme.STANDARD]), now=NOW, scheme=Scheme.WANDB)


def test_required_scheme_is_checked_even_when_other_present() -> None:
    headers = signed()
    assert verify(SECRET, BODY, headers, now=NOW, scheme=Scheme.WANDB) is Scheme.WANDB
    assert verify(SECRET, BODY, headers, now=NOW, scheme=Scheme.STANDARD) is Scheme.STANDARD


def test_verify_rejects_text_body() -> None:
    with pytest.raises(TypeError):
        verify(SECRET, BODY.decode(), signed(), now=NOW)  # type: ignore[arg-type]


# --- error texts never leak ---------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(secret=plain_secrets.map(lambda s: "S3CRET-" + s), body=bodies)
def test_errors_never_contain_secret_or_expected_signature(secret: str, body: bytes) -> None:
    headers = sign(body, secret, message_id="msg_leak", timestamp=NOW)
    expected = {headers["webhook-signature"][3:], headers["X-Wandb-Signature"]}
    cases: list[tuple[bytes, dict[str, str], float, Scheme | None]] = [
        (body + b"!", headers, NOW, None),
        (body + b"!", headers, NOW, Scheme.WANDB),
        (body, headers, NOW + 10_000, None),
        (body, {"X-Wandb-Signature": "AAAA"}, NOW, None),
        (body, {}, NOW, None),
    ]
    for data, hdrs, now, scheme in cases:
        with pytest.raises(SignatureError) as info:
            verify(secret, data, hdrs, now=now, scheme=scheme)
        text = f"{info.value!s} {info.value!r}"
        assert secret not in text
        for sig in expected:
            assert sig not in text


# --- interop ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=300), secret=plain_secrets)
def test_standardwebhooks_accepts_plain_secret(text: str, secret: str) -> None:
    body = text.encode()  # the reference library decodes the body as UTF-8
    headers = sign(body, secret, message_id=new_message_id(), timestamp=int(time.time()))
    standardwebhooks.Webhook(secret.encode()).verify(body, headers, json_parse=False)


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=300), secret=whsec_secrets)
def test_standardwebhooks_accepts_whsec_secret(text: str, secret: str) -> None:
    body = text.encode()
    headers = sign(body, secret, message_id=new_message_id(), timestamp=int(time.time()))
    standardwebhooks.Webhook(secret).verify(body, headers, json_parse=False)


def test_standardwebhooks_signatures_verify_with_us() -> None:
    now = int(time.time())
    wh = standardwebhooks.Webhook(WHSEC)
    sig = wh.sign("msg_theirs", datetime.fromtimestamp(now, tz=timezone.utc), BODY.decode())
    headers = {"webhook-id": "msg_theirs", "webhook-timestamp": str(now), "webhook-signature": sig}
    assert verify(WHSEC, BODY, headers) is Scheme.STANDARD


def _openssl_wandb(body: bytes, secret: str) -> str:
    # Exactly the receiver recipe from docs/signing.md.
    result = subprocess.run(
        ["sh", "-c", 'openssl dgst -sha256 -hmac "$SECRET" -binary | base64'],
        input=body,
        capture_output=True,
        check=True,
        env={**os.environ, "SECRET": secret},
    )
    return result.stdout.decode().strip()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize(
    ("body", "secret"),
    [
        (BODY, SECRET),
        (b"", "k"),
        (b"\x00\xff binary \r\n body", "s3cr3t with spaces & $chars"),
        ('{"ü": "ß", "emoji": "🚀"}'.encode(), "pässwörd-ключ"),
        (os.urandom(4096), "a" * 100),  # longer than the SHA-256 block: key gets hashed
    ],
)
def test_wandb_matches_openssl_and_hand_computed(body: bytes, secret: str) -> None:
    ours = sign(body, secret, message_id="msg_x", timestamp=NOW, schemes=[Scheme.WANDB])
    by_hand = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    assert ours["X-Wandb-Signature"] == by_hand == _openssl_wandb(body, secret)
    wandb = {"x-wandb-signature": _openssl_wandb(body, secret)}
    assert verify(secret, body, wandb, scheme=Scheme.WANDB) is Scheme.WANDB
