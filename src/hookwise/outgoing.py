"""The signed POST for a webhook: headers, token and signatures over the
exact body bytes. Pure: the URL is checked against the policy here, and the
address it resolves to is checked by the sender, when it connects."""

from __future__ import annotations

from collections.abc import Mapping

from hookwise._version import __version__
from hookwise.model import Webhook, check_access_token
from hookwise.network import NetworkPolicy
from hookwise.signing import sign
from hookwise.template import ACCESS_TOKEN
from hookwise.wire import OutgoingRequest

__all__ = ["USER_AGENT", "build_request", "build_slack_request"]

USER_AGENT = f"hookwise/{__version__}"


def build_request(
    webhook: Webhook,
    body: bytes,
    *,
    message_id: str,
    secrets: Mapping[str, str],
    timestamp: int,
    network: NetworkPolicy,
) -> OutgoingRequest:
    """Raises UnsafeURLError when the policy refuses the URL, and
    ValidationError when the stored token cannot be a header value."""
    network.check_url(webhook.url)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if webhook.access_token is not None:
        token = secrets[ACCESS_TOKEN]
        check_access_token(webhook.access_token, token)
        headers["Authorization"] = f"Bearer {token}"
    if webhook.secret is not None and webhook.signing:
        headers.update(
            sign(
                body,
                secrets[webhook.secret],
                message_id=message_id,
                timestamp=timestamp,
                schemes=webhook.signing,
            )
        )
    return OutgoingRequest("POST", webhook.url, headers, body)


def build_slack_request(url: str, body: bytes, *, network: NetworkPolicy) -> OutgoingRequest:
    """A Slack incoming-webhook POST: unsigned, no token (the URL is the
    credential). Raises UnsafeURLError when the policy refuses the URL."""
    network.check_url(url, field="action.secret")
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    return OutgoingRequest("POST", url, headers, body)
