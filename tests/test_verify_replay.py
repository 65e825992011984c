"""hw.verify() is replay-safe by default: the Standard Webhooks scheme with a
5-minute tolerance; the W&B body-only HMAC is an explicit opt-in. Several
secrets during a rotation; constant-time comparison; malformed headers are a
clean SignatureError."""

from __future__ import annotations

import base64
import hmac
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hookwise as hw
from hookwise.signing import MAX_HEADER_LENGTH, Scheme, sign, verify

NOW = 1_700_000_000
BODY = b'{"event_type": "BUILD_AND_DEPLOY"}'
SECRET = "s3cr3t-signing-key"
OLD_SECRET = "old-s3cr3t-signing-key"


def captured(secret: str = SECRET, **kw: Any) -> dict[str, str]:
    kw.setdefault("message_id", "msg_captured")
    kw.setdefault("timestamp", NOW)
    return sign(BODY, secret, **kw)


# --- replay -------------------------------------------------------------------------


def test_a_request_stripped_to_its_wandb_signature_is_refused_by_default() -> None:
    headers = captured()
    stripped = {"X-Wandb-Signature": headers["X-Wandb-Signature"]}
    with pytest.raises(hw.SignatureError, match="missing webhook-signature header"):
        hw.verify(SECRET, BODY, stripped, now=NOW)
    with pytest.raises(hw.SignatureError):  # a year later: still refused
        hw.verify(SECRET, BODY, stripped, now=NOW + 365 * 86400)


def test_the_same_request_replayed_after_the_tolerance_is_refused() -> None:
    headers = captured()
    assert hw.verify(SECRET, BODY, headers, now=NOW + 300) is Scheme.STANDARD
    with pytest.raises(hw.SignatureError, match="too old"):
        hw.verify(SECRET, BODY, headers, now=NOW + 301)


def test_wandb_is_an_explicit_opt_in_and_does_not_stop_a_replay() -> None:
    stripped = {"X-Wandb-Signature": captured()["X-Wandb-Signature"]}
    for later in (NOW, NOW + 365 * 86400):  # what the docstring warns about
        assert hw.verify(SECRET, BODY, stripped, now=later, scheme=Scheme.WANDB) is Scheme.WANDB
    assert hw.verify(SECRET, BODY, stripped, scheme="wandb") is Scheme.WANDB
    assert "replay" in (hw.verify.__doc__ or "")


def test_scheme_none_means_the_default() -> None:
    stripped = {"X-Wandb-Signature": captured()["X-Wandb-Signature"]}
    with pytest.raises(hw.SignatureError):
        hw.verify(SECRET, BODY, stripped, now=NOW, scheme=None)
    assert hw.verify(SECRET, BODY, captured(), now=NOW, scheme=None) is Scheme.STANDARD


# --- several secrets ----------------------------------------------------------------


@pytest.mark.parametrize("scheme", list(Scheme))
def test_several_secrets_during_a_rotation(scheme: Scheme) -> None:
    for signer in (SECRET, OLD_SECRET):
        headers = captured(signer)
        assert verify([SECRET, OLD_SECRET], BODY, headers, now=NOW, scheme=scheme) is scheme
        assert verify((OLD_SECRET, SECRET), BODY, headers, now=NOW, scheme=scheme) is scheme
    with pytest.raises(hw.SignatureError, match="no matching signature"):
        verify(["a-third-secret"], BODY, captured(), now=NOW, scheme=scheme)


@pytest.mark.parametrize("bad", [[], (), [SECRET, ""], [SECRET, None], {SECRET}, b"bytes", None])
def test_a_bad_secret_list_is_a_validation_error(bad: Any) -> None:
    with pytest.raises(hw.ValidationError):
        verify(bad, BODY, captured(), now=NOW)


def test_every_candidate_is_compared_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    headers = captured()
    other = "v1," + base64.b64encode(b"x" * 32).decode()
    headers["webhook-signature"] = f"{headers['webhook-signature']} {other} {other}"
    assert verify([SECRET, OLD_SECRET], BODY, headers, now=NOW) is Scheme.STANDARD
    assert len(calls) == 2 * 3  # two secrets, three signatures: no early exit


# --- malformed headers ------------------------------------------------------------------


def _with(**changes: str) -> dict[str, str]:
    headers = captured()
    for name, value in changes.items():
        headers[name.replace("_", "-")] = value
    return headers


@pytest.mark.parametrize(
    "headers",
    [
        _with(webhook_signature="v1,not base64!!"),
        _with(webhook_signature="v1," + "A" * 7),  # bad padding
        _with(webhook_signature="v1,"),
        _with(webhook_signature=","),
        _with(webhook_signature="v1"),
        _with(webhook_timestamp="1e9"),
        _with(webhook_timestamp="-1"),
        _with(webhook_timestamp="٣٤٥"),  # unicode digits are not seconds
        _with(webhook_timestamp="9" * 5000),
        _with(webhook_timestamp=" "),
        _with(webhook_id=""),
        _with(webhook_id="msg_\udc80"),  # a lone surrogate
        _with(webhook_signature="v1," + "A" * (MAX_HEADER_LENGTH + 4)),
        _with(webhook_id="m" * (MAX_HEADER_LENGTH + 1)),
        {"webhook-id": "msg_1"},
        {},
        {"webhook-signature": "v1,AAAA", "webhook-timestamp": str(NOW)},
    ],
)
def test_malformed_headers_are_a_clean_signature_error(headers: dict[str, str]) -> None:
    with pytest.raises(hw.SignatureError):
        verify(SECRET, BODY, headers, now=NOW)


def test_huge_repeated_signature_lines_are_refused() -> None:
    line = captured()["webhook-signature"]
    pairs = [*captured().items()] + [("webhook-signature", f"{line} {i}") for i in range(300)]

    class Pairs:
        def items(self) -> list[tuple[str, str]]:
            return pairs

    with pytest.raises(hw.SignatureError, match="too long"):
        verify(SECRET, BODY, Pairs(), now=NOW)


def test_raw_byte_headers_are_read_as_latin_1() -> None:
    raw = {k.encode(): v.encode() for k, v in captured().items()}
    assert verify(SECRET, BODY, raw, now=NOW) is Scheme.STANDARD  # type: ignore[arg-type]


@pytest.mark.parametrize("items", [[("webhook-id",)], [(1, 2)], [("webhook-id", 5)], [None]])
def test_odd_header_items_are_a_signature_error(items: list[Any]) -> None:
    class Odd:
        def items(self) -> list[Any]:
            return items

    with pytest.raises(hw.SignatureError):
        verify(SECRET, BODY, Odd(), now=NOW)


def test_headers_that_are_not_headers_are_a_validation_error() -> None:
    with pytest.raises(hw.ValidationError):
        verify(SECRET, BODY, None, now=NOW)  # type: ignore[arg-type]


header_values = st.one_of(
    st.text(max_size=64),
    st.text(alphabet="v1,=+/ AZaz09", max_size=64),
    st.integers().map(str),
    st.binary(max_size=32).map(lambda b: "v1," + base64.b64encode(b).decode()),
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(
            ["webhook-id", "webhook-timestamp", "webhook-signature", "X-Wandb-Signature"]
        ),
        header_values,
    ),
    scheme=st.sampled_from([None, *Scheme]),
    secrets=st.lists(st.text(min_size=1, max_size=16), min_size=1, max_size=3),
)
def test_arbitrary_headers_only_ever_raise_signature_error(
    headers: dict[str, str], scheme: Scheme | None, secrets: list[str]
) -> None:
    try:
        verify(secrets, BODY, headers, now=NOW, scheme=scheme)
    except hw.SignatureError:
        pass
    except hw.ValidationError:  # only for a secret that is no key (e.g. a broken whsec_)
        assert any(s.startswith("whsec_") for s in secrets)
