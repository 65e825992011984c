"""Senders: an :class:`~hookwise.wire.OutgoingRequest` in, the attempt's
result out, a :class:`~hookwise.wire.RawResponse` or the exception that
stopped it. With :mod:`hookwise.transport` and :mod:`hookwise.url`, the only
place that knows httpx.

The destination is checked against the NetworkPolicy at connect time: the
default transport (:mod:`hookwise.transport`) resolves the host once, checks
every address and connects to exactly a checked one. A transport passed in
(tests pass ``httpx.MockTransport``) never connects through that guard, so
for it the host is resolved and checked before the request instead.
Redirects are not followed, no proxy comes from the environment, and at most
``RESPONSE_BYTES`` of an answer are read.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import httpx

from hookwise.history import RESPONSE_BYTES
from hookwise.network import NetworkPolicy
from hookwise.transport import AsyncGuardedTransport, GuardedTransport, checked_addresses
from hookwise.url import ParsedURL, parse_url
from hookwise.wire import OutgoingRequest, RawResponse

__all__ = ["AsyncHttpxSender", "AsyncSender", "HttpxSender", "Sender"]


class Sender(Protocol):
    def attempt(self, request: OutgoingRequest) -> RawResponse | Exception:
        """Send; never raises: a failure to get an answer is the result."""
        ...

    def close(self) -> None: ...


class AsyncSender(Protocol):
    async def attempt(self, request: OutgoingRequest) -> RawResponse | Exception: ...

    async def aclose(self) -> None: ...


def _options(timeout: float) -> dict[str, object]:
    # trust_env=False: no proxy from the environment sits between us and
    # the address the NetworkPolicy checked.
    return {"timeout": timeout, "follow_redirects": False, "trust_env": False}


def _resolve(network: NetworkPolicy, host: str, port: int) -> None:
    """The pre-check for a transport passed in: every address ``host``
    resolves to must be allowed (see :func:`hookwise.transport.checked_addresses`)."""
    checked_addresses(network, host, port)


def _httpx_request(url: ParsedURL, request: OutgoingRequest) -> httpx.Request:
    return httpx.Request(
        request.method, url.parsed, headers=dict(request.headers), content=request.body
    )


def _response(response: httpx.Response, body: bytearray) -> RawResponse:
    return RawResponse(response.status_code, dict(response.headers.items()), bytes(body))


class HttpxSender:
    """Sends from the calling thread with one shared ``httpx.Client``."""

    def __init__(
        self,
        network: NetworkPolicy,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._network = network
        # A transport of the caller's does not connect through the guard: check first.
        self._precheck = transport is not None
        if transport is None:
            transport = GuardedTransport(network)
        self._client = httpx.Client(transport=transport, **_options(timeout))  # type: ignore[arg-type]

    def attempt(self, request: OutgoingRequest) -> RawResponse | Exception:
        try:
            url = parse_url(request.url)  # as the policy read it
            if self._precheck:
                _resolve(self._network, url.host, url.effective_port)
            response = self._client.send(_httpx_request(url, request), stream=True)
            try:
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) >= RESPONSE_BYTES:
                        break
                return _response(response, data)
            finally:
                response.close()
        except Exception as exc:  # any failure to get an answer is this attempt's result
            return exc

    def close(self) -> None:
        self._client.close()


class AsyncHttpxSender:
    """Sends from the event loop with one shared ``httpx.AsyncClient``; DNS
    for the policy check runs in a thread (IP literals need none)."""

    def __init__(
        self,
        network: NetworkPolicy,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._network = network
        # A transport of the caller's does not connect through the guard: check first.
        self._precheck = transport is not None
        if transport is None:
            transport = AsyncGuardedTransport(network)
        self._client = httpx.AsyncClient(transport=transport, **_options(timeout))  # type: ignore[arg-type]

    async def attempt(self, request: OutgoingRequest) -> RawResponse | Exception:
        try:
            url = parse_url(request.url)  # as the policy read it
            if self._precheck and self._network.resolve_without_dns(url.host) is None:
                # a lookup: off the loop
                await asyncio.to_thread(_resolve, self._network, url.host, url.effective_port)
            response = await self._client.send(_httpx_request(url, request), stream=True)
            try:
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) >= RESPONSE_BYTES:
                        break
                return _response(response, data)
            finally:
                await response.aclose()
        except Exception as exc:  # any failure to get an answer is this attempt's result
            return exc

    async def aclose(self) -> None:
        await self._client.aclose()
