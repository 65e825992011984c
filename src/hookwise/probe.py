"""The Test button: a webhook's request sent now, stored nowhere, and what
came back, secrets scrubbed."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from hookwise.history import charset, describe, history_body, scrub, scrub_headers
from hookwise.wire import OutgoingRequest, RawResponse

__all__ = ["WebhookTestPlan", "WebhookTestResult"]


@attrs.frozen(slots=True)
class WebhookTestResult:
    """What ``test_webhook`` got back. ``ok`` means a 2xx answer."""

    ok: bool
    status_code: int | None
    headers: Mapping[str, str]
    body: str
    elapsed: float
    error: str | None
    request_body: str  # what was sent, secrets shown as placeholders


@attrs.frozen(slots=True)
class WebhookTestPlan:
    """A test request about to go out, or the reason it cannot."""

    request: OutgoingRequest | None
    display: str
    secrets: tuple[str, ...] = attrs.field(repr=False)
    refusal: BaseException | None = None

    def result(
        self, *, elapsed: float = 0.0, outcome: RawResponse | Exception | None = None
    ) -> WebhookTestResult:
        if not isinstance(outcome, RawResponse):
            problem = outcome or self.refusal
            return WebhookTestResult(
                ok=False,
                status_code=None,
                headers={},
                body="",
                elapsed=elapsed,
                error=scrub(describe(problem) if problem else "no response", self.secrets),
                request_body=self.display,
            )
        return WebhookTestResult(
            ok=outcome.is_success,
            status_code=outcome.status_code,
            headers=scrub_headers(outcome.headers, self.secrets),
            body=history_body(outcome.body, charset(outcome.header("content-type")), self.secrets),
            elapsed=elapsed,
            error=None if outcome.is_success else f"HTTP {outcome.status_code}",
            request_body=self.display,
        )
