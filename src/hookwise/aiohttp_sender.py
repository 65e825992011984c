"""The aiohttp sender for AsyncDispatcher (extra ``hookwise[aiohttp]``), with
the httpx senders' guard: aiohttp connects only to addresses the
NetworkPolicy checked, because its resolver *is* the check (one lookup per
connection), IP literals are checked first (aiohttp never resolves them) and
its socket factory refuses any other address before connecting. Bodies are
read raw and bounded by :mod:`hookwise.senders`, under one deadline.

Importing this module needs no aiohttp; constructing the sender does.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import socket
from typing import Any

from hookwise.errors import BlockedAddressError, HookwiseError, UnsafeURLError, ValidationError
from hookwise.history import RESPONSE_BYTES
from hookwise.network import NetworkPolicy
from hookwise.senders import _decoded, _take, within
from hookwise.transport import LIMITS, _ssl_context, checked_addresses
from hookwise.url import parse_url
from hookwise.wire import OutgoingRequest, RawResponse

try:
    import aiohttp
    import yarl
    from aiohttp.abc import AbstractResolver, ResolveResult
except ImportError:  # the extra is not installed: AiohttpSender() says so
    _AIOHTTP_MISSING = True
else:
    _AIOHTTP_MISSING = False

__all__ = ["AiohttpSender"]

# The refusals of the attempt running in this context. aiohttp wraps what
# the resolver or the socket factory raise (a BlockedAddressError is an
# OSError, so it becomes a retryable-looking connection error, and several
# addresses' errors are merged into one); the attempt returns the refusal itself.
_REFUSALS: contextvars.ContextVar[list[HookwiseError] | None] = contextvars.ContextVar(
    "hookwise_aiohttp_refusals", default=None
)


def _refused(error: HookwiseError) -> HookwiseError:
    refusals = _REFUSALS.get()
    if refusals is not None:
        refusals.append(error)
    return error


def _checked_socket(network: NetworkPolicy, addr_info: tuple[Any, ...]) -> socket.socket:
    """The connector's socket factory: a socket for the address in
    ``addr_info``, which aiohttp connects it to next, if the policy allows it."""
    family, type_, proto, _, address = addr_info
    ip = str(address[0])
    try:
        allowed = network.is_allowed(ip)
    except ValueError:
        allowed = False
    if not allowed:
        raise _refused(BlockedAddressError(f"a connection to {ip!r} was refused by the policy"))
    return socket.socket(family=family, type=type_, proto=proto)


if not _AIOHTTP_MISSING:

    class _GuardedResolver(AbstractResolver):
        """The connector's one lookup: :meth:`NetworkPolicy.resolve`, in a
        worker thread when it needs DNS. Every answer is allowed or none is
        returned (BlockedAddressError)."""

        def __init__(self, network: NetworkPolicy) -> None:
            self._network = network

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            try:
                addresses = self._network.resolve_without_dns(host)
                if addresses is None:  # the one lookup, off the loop
                    addresses = await asyncio.to_thread(
                        checked_addresses, self._network, host, port
                    )
            except HookwiseError as exc:
                raise _refused(exc) from None
            flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
            return [
                ResolveResult(
                    hostname=host,
                    host=ip,
                    port=port,
                    family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    proto=0,
                    flags=flags,
                )
                for ip in addresses
            ]

        async def close(self) -> None:
            pass


def _headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    """Names lowercased and repeated values joined with ", ", as httpx does."""
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


class AiohttpSender:
    """Sends from the event loop with one shared ``aiohttp.ClientSession``,
    made on the first attempt inside the running loop."""

    def __init__(self, network: NetworkPolicy, *, timeout: float) -> None:
        if _AIOHTTP_MISSING:
            raise ValidationError(
                "http", "needs the aiohttp extra: pip install 'hookwise[aiohttp]'"
            )
        self._network = network
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the sender is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=_GuardedResolver(self._network),
                socket_factory=functools.partial(_checked_socket, self._network),
                use_dns_cache=False,  # one check per connection, as the httpx guard
                ssl=_ssl_context(),  # the httpx senders' trust store; not from the environment
                limit=LIMITS.max_connections or 0,
                limit_per_host=0,
                keepalive_timeout=LIMITS.keepalive_expiry or 0.0,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,  # no proxy from the environment
                auto_decompress=False,  # raw bytes: bounded decoding in _decoded
                cookie_jar=aiohttp.DummyCookieJar(),  # one receiver's cookies go to no other
                timeout=aiohttp.ClientTimeout(total=None),  # the attempt's deadline rules
                skip_auto_headers=("Content-Type",),  # send the core's headers, add none
                raise_for_status=False,
            )
        return self._session

    async def attempt(self, request: OutgoingRequest) -> RawResponse | Exception:
        # One deadline for the whole attempt (lookup, connect, send, headers,
        # body): a receiver trickling bytes anywhere is cut when it passes.
        return await within(self._timeout, self._attempt(request))

    async def _attempt(self, request: OutgoingRequest) -> RawResponse | Exception:
        refusals: list[HookwiseError] = []
        token = _REFUSALS.set(refusals)
        try:
            return await self._send(request)
        except Exception as exc:  # any failure to get an answer is this attempt's result
            return refusals[0] if refusals else exc
        finally:
            _REFUSALS.reset(token)

    async def _send(self, request: OutgoingRequest) -> RawResponse:
        url = parse_url(request.url)  # as the policy read it
        if url.scheme not in ("http", "https") or not url.host:
            raise UnsafeURLError("url", "must be an http or https URL with a host")
        # aiohttp never resolves an IP literal: check it here (no DNS needed).
        self._network.resolve_without_dns(url.host)
        target = yarl.URL(str(url.parsed), encoded=True)  # exactly that URL, not re-quoted
        read = (target.scheme, target.raw_host, target.port)
        if read != (url.scheme, url.host, url.effective_port):
            # two parsers that disagree on the destination: send nowhere
            raise UnsafeURLError("url", f"aiohttp reads the URL for {url.host!r} differently")
        headers = dict(request.headers)
        if not any(name.lower() == "accept-encoding" for name in headers):
            headers["Accept-Encoding"] = "identity"  # as senders._httpx_request asks
        response = await self._client().request(
            request.method, target, headers=headers, data=request.body, allow_redirects=False
        )
        complete = False
        try:
            data = bytearray()
            while True:
                chunk = await response.content.read(RESPONSE_BYTES - len(data))
                if not chunk:
                    complete = True
                    break
                if _take(data, chunk):
                    break
            result_headers = _headers(response)
            return RawResponse(
                response.status, result_headers, _decoded(result_headers, bytes(data))
            )
        finally:
            if complete:
                response.release()  # the connection may serve the next request
            else:
                response.close()  # unread bytes: drop the connection

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
