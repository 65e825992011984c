"""Senders: an :class:`~hookwise.wire.OutgoingRequest` in, the attempt's
result out, a :class:`~hookwise.wire.RawResponse` or the exception that
stopped it. With :mod:`hookwise.transport` and :mod:`hookwise.url`, the only
place that knows httpx.

The destination is checked against the NetworkPolicy at connect time: the
default transport (:mod:`hookwise.transport`) resolves the host once, checks
every address and connects to exactly a checked one. A transport passed in
(tests pass ``httpx.MockTransport``) never connects through that guard, so
for it the host is resolved and checked before the request instead.
Redirects are not followed and no proxy comes from the environment.

A receiver may be hostile, so every attempt is bounded:

- bytes: we ask for ``Accept-Encoding: identity`` and read the raw stream,
  at most ``RESPONSE_BYTES`` of it on the wire. If the receiver compresses
  anyway (gzip, deflate), we decode those bytes ourselves with a bounded
  decompressor that stops at ``RESPONSE_BYTES`` of output, so neither a huge
  body nor a gzip bomb (nested or not) costs more than a few times
  ``RESPONSE_BYTES`` of memory. An encoding we do not decode (br, zstd, an
  unknown one) keeps its raw bytes behind a marker saying so.
- time: each attempt has a deadline of ``timeout`` seconds from its start
  (connect + send + receive), not only a timeout per read that a receiver
  trickling one byte at a time keeps restarting. Past it, the attempt's
  result is a :class:`TimeoutError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Protocol

import httpx

from hookwise.history import RESPONSE_BYTES
from hookwise.network import NetworkPolicy
from hookwise.transport import (
    AsyncGuardedTransport,
    GuardedTransport,
    attempt_deadline,
    checked_addresses,
)
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


def _httpx_request(url: ParsedURL, request: OutgoingRequest, timeout: float) -> httpx.Request:
    """The request as the transport takes it. The senders call the transport
    themselves rather than ``Client.send``: a client's redirects, cookies,
    auth, proxies from the environment and event hooks are all things we do
    not want, and skipping them takes about a third off each request's cost
    (``python bench/delivery.py``)."""
    headers = dict(request.headers)
    if not any(name.lower() == "accept-encoding" for name in headers):
        # Ask for the body as it is: decompressing is where a small answer
        # turns into gigabytes. A receiver may still compress (see _decoded).
        headers["Accept-Encoding"] = "identity"
    return httpx.Request(
        request.method,
        url.parsed,
        headers=headers,
        content=request.body,
        extensions={
            "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        },
    )


NOT_DECODED = b"[hookwise: body not decoded, Content-Encoding: %s]\n"
_ZLIB_ENCODINGS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": 0}


def _inflate(data: bytes, encoding: str) -> bytes:
    """At most ``RESPONSE_BYTES`` of ``data`` decompressed; a truncated stream
    gives what it holds. Raises ``zlib.error`` on data that is not ``encoding``."""
    wbits = _ZLIB_ENCODINGS[encoding]
    if wbits == 0:  # deflate: zlib-wrapped as the RFC says, or raw as some servers send
        try:
            return zlib.decompressobj(zlib.MAX_WBITS).decompress(data, RESPONSE_BYTES)
        except zlib.error:
            wbits = -zlib.MAX_WBITS
    # max_length bounds the output whatever the ratio; the rest stays unread.
    return zlib.decompressobj(wbits).decompress(data, RESPONSE_BYTES)


def _decoded(headers: Mapping[str, str], raw: bytes) -> bytes:
    """The body as the receiver meant it, at most ``RESPONSE_BYTES``: ``raw``
    (at most ``RESPONSE_BYTES`` read off the wire) undone of each
    Content-Encoding, last applied first. Each step is bounded, so a nested
    bomb (``gzip, gzip``) stays bounded too. An encoding we cannot undo, or
    data that is not what its header says, keeps the raw bytes, marked."""
    header = ",".join(v for k, v in headers.items() if k.lower() == "content-encoding")
    encodings = [e.strip().lower() for e in header.split(",") if e.strip()]
    encodings = [e for e in encodings if e != "identity"]
    if not encodings:
        return raw
    if all(e in _ZLIB_ENCODINGS for e in encodings):
        data = raw
        try:
            for encoding in reversed(encodings):
                data = _inflate(data, encoding)
        except zlib.error:
            pass
        else:
            return data
    marker = NOT_DECODED % ", ".join(encodings).encode("ascii", "replace")[:200]
    return (marker + raw)[:RESPONSE_BYTES]


def _deadline_error(timeout: float) -> TimeoutError:
    return TimeoutError(f"the receiver took longer than {timeout:g} s")


def _take(data: bytearray, chunk: bytes) -> bool:
    """Add a raw chunk, up to ``RESPONSE_BYTES`` in all; True once full."""
    data += chunk[: RESPONSE_BYTES - len(data)]
    return len(data) >= RESPONSE_BYTES


def _response(response: httpx.Response, raw: bytearray) -> RawResponse:
    headers = dict(response.headers.items())
    return RawResponse(response.status_code, headers, _decoded(headers, bytes(raw)))


def _preloaded(response: httpx.Response) -> RawResponse:
    """A response whose body is already in memory, decoded by httpx: what a
    transport of the caller's (``httpx.MockTransport``) answers with
    ``content=``. Nothing comes off the wire for it."""
    body = response.content[:RESPONSE_BYTES]
    return RawResponse(response.status_code, dict(response.headers.items()), body)


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
        self._timeout = timeout
        # A transport of the caller's does not connect through the guard: check first.
        self._precheck = transport is not None
        if transport is None:
            transport = GuardedTransport(network)
        self._transport: httpx.BaseTransport = transport

    def attempt(self, request: OutgoingRequest) -> RawResponse | Exception:
        # One deadline for the whole attempt: on the guarded transport every
        # socket read and write waits at most until it (attempt_deadline),
        # and the body is cut between chunks too. A caller's own transport
        # (a test's MockTransport) only gets the checks between chunks.
        deadline = time.monotonic() + self._timeout
        try:
            with attempt_deadline(self._timeout):
                return self._attempt(request, deadline)
        except httpx.TimeoutException as exc:
            return _deadline_error(self._timeout) if time.monotonic() >= deadline - 0.01 else exc
        except Exception as exc:  # any failure to get an answer is this attempt's result
            return exc

    def _attempt(self, request: OutgoingRequest, deadline: float) -> RawResponse | Exception:
        url = parse_url(request.url)  # as the policy read it
        if self._precheck:
            checked_addresses(self._network, url.host, url.effective_port)
        response = self._transport.handle_request(_httpx_request(url, request, self._timeout))
        try:
            if response.is_stream_consumed:
                return _preloaded(response)
            data = bytearray()
            for chunk in response.iter_raw():  # as sent: decoded, bounded, in _response
                if time.monotonic() > deadline:
                    return _deadline_error(self._timeout)
                if _take(data, chunk):
                    break
            # a body that ended is the answer, even if it ended late
            return _response(response, data)
        finally:
            response.close()

    def close(self) -> None:
        self._transport.close()


@contextlib.asynccontextmanager
async def deadline(seconds: float) -> AsyncIterator[Callable[[], bool]]:
    """Cancel the current task when ``seconds`` pass, as ``asyncio.timeout``
    (Python 3.11) does: a timer instead of the extra task ``asyncio.wait_for``
    makes for every attempt. Yields whether the deadline has passed."""
    task = asyncio.current_task()
    assert task is not None
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        yield lambda: fired
    finally:
        timer.cancel()
        if fired and hasattr(task, "uncancel"):  # Python 3.11: the cancel was ours
            task.uncancel()


async def within(
    seconds: float, attempt: Awaitable[RawResponse | Exception]
) -> RawResponse | Exception:
    """``attempt``'s result, or a TimeoutError once ``seconds`` pass."""
    async with deadline(seconds) as passed:
        try:
            return await attempt
        except asyncio.CancelledError:
            if not passed():
                raise  # a cancellation from outside: the dispatcher is stopping
    return _deadline_error(seconds)


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
        self._timeout = timeout
        # A transport of the caller's does not connect through the guard: check first.
        self._precheck = transport is not None
        if transport is None:
            transport = AsyncGuardedTransport(network)
        self._transport: httpx.AsyncBaseTransport = transport

    async def attempt(self, request: OutgoingRequest) -> RawResponse | Exception:
        # One deadline for the whole attempt (lookup, connect, send, headers,
        # body): a receiver trickling bytes anywhere is cut when it passes.
        return await within(self._timeout, self._attempt(request))

    async def _attempt(self, request: OutgoingRequest) -> RawResponse | Exception:
        try:
            url = parse_url(request.url)  # as the policy read it
            if self._precheck and self._network.resolve_without_dns(url.host) is None:
                # a lookup: off the loop
                await asyncio.to_thread(
                    checked_addresses, self._network, url.host, url.effective_port
                )
            response = await self._transport.handle_async_request(
                _httpx_request(url, request, self._timeout)
            )
            try:
                if response.is_stream_consumed:
                    return _preloaded(response)
                data = bytearray()
                async for chunk in response.aiter_raw():  # as sent: decoded, bounded, in _response
                    if _take(data, chunk):
                        break
                return _response(response, data)
            finally:
                await response.aclose()
        except Exception as exc:  # any failure to get an answer is this attempt's result
            return exc

    async def aclose(self) -> None:
        await self._transport.aclose()
