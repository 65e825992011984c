"""The SSRF guard at connect time: httpx transports that connect only to
addresses the :class:`~hookwise.network.NetworkPolicy` checked.

httpx resolves a host name when it connects. A guard that resolves the name
first, checks the answers and then lets httpx connect by name asks DNS twice,
and a rebinding resolver (a public address to the check, ``127.0.0.1`` to the
connection) walks straight past it. Here the check *is* the lookup: the
network backend under httpcore's connection pool gets the host name from the
URL, asks :meth:`NetworkPolicy.resolve` once (every answer must be allowed,
or the connection is refused), and opens a socket to one of exactly those IP
addresses, in order, trying the next when one does not answer. The address
the socket reached is checked again before it is used.

Nothing else about the request changes: httpcore takes the TLS server name
(SNI and certificate check) from the request's origin, never from the
socket, so certificates are still verified against the host name in the URL,
and httpx still sends that name in ``Host``.

A refusal raises :class:`~hookwise.errors.BlockedAddressError` out of
``connect_tcp``; httpcore and httpx pass exceptions that are not their own
through unchanged, so the sender's attempt ends with the hookwise error and
the core fails the delivery at once. A DNS failure (``OSError``) also passes
through unchanged: it is transient and retried.

The sync sender's attempts have one deadline (:func:`attempt_deadline`):
every read and write on a guarded connection waits at most until it, so a
receiver trickling its status line or headers a byte at a time cannot keep
a thread past it (a timeout per read would restart with each byte).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import ssl
import threading
import time
import typing
from collections.abc import Callable, Iterable, Iterator

import anyio.to_thread
import httpcore
import httpx

from hookwise.errors import BlockedAddressError, HookwiseError
from hookwise.network import NetworkPolicy

__all__ = [
    "AsyncGuardedBackend",
    "AsyncGuardedTransport",
    "GuardedBackend",
    "GuardedTransport",
    "attempt_deadline",
    "checked_addresses",
]

logger = logging.getLogger("hookwise")

SocketOption: typing.TypeAlias = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

# httpx's own defaults (httpx.Client builds its transport with these).
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


def checked_addresses(network: NetworkPolicy, host: str, port: int) -> list[str]:
    """``network.resolve(host, port)``: the allowed addresses, or BlockedAddressError.

    A resolver that fails as DNS does (OSError) may do better later, so that
    propagates; any other error is a bug that retries would only repeat, so it
    becomes a refusal that names its type (its text might quote a secret).
    """
    try:
        return network.resolve(host, port)
    except (OSError, HookwiseError):
        raise
    except Exception as exc:
        logger.error("could not resolve %s (%s)", host, type(exc).__name__)
        raise HookwiseError(f"could not build the request: {type(exc).__name__}") from None


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ConnectTimeout("timed out connecting")
    return left


def _check_peer(
    network: NetworkPolicy, host: str, stream: httpcore.NetworkStream | httpcore.AsyncNetworkStream
) -> str | None:
    """Why the address ``stream`` reached is refused, or None (also when the
    stream cannot tell, as test doubles cannot)."""
    peer = stream.get_extra_info("server_addr")
    if not isinstance(peer, tuple) or not peer:
        return None
    try:
        ip = ipaddress.ip_address(str(peer[0]))
    except ValueError:
        return f"connected to {peer[0]!r} for {host!r}, which is not an IP address"
    if network.is_allowed(ip):
        return None
    return f"the connection for {host!r} reached {ip}, which the policy refuses"


_deadline = threading.local()


@contextlib.contextmanager
def attempt_deadline(seconds: float) -> Iterator[None]:
    """Bound every read and write this thread makes on a guarded connection
    to ``seconds`` from now, all of them together."""
    _deadline.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _deadline.at = None


def _bounded(timeout: float | None) -> float | None:
    """``timeout``, cut to what is left of this thread's attempt deadline."""
    at: float | None = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the attempt's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every wait ends at the current attempt's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """An httpcore network backend that connects only to checked addresses.

    ``backend`` opens the sockets (httpcore's ``SyncBackend`` by default); it
    is only ever handed IP addresses.
    """

    def __init__(self, network: NetworkPolicy, backend: httpcore.NetworkBackend | None = None):
        self._network = network
        self._backend = backend if backend is not None else httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = checked_addresses(self._network, host, port)  # the one lookup
        timeout = _bounded(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        failure: Exception | None = None
        for ip in addresses:
            try:
                stream = self._backend.connect_tcp(
                    ip,
                    port,
                    timeout=_remaining(deadline),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # this address does not answer: the next checked one may
                continue
            refused = _check_peer(self._network, host, stream)
            if refused is not None:
                stream.close()
                raise BlockedAddressError(refused)
            return _DeadlineStream(stream)
        assert failure is not None  # resolve() never returns an empty list
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        raise BlockedAddressError("webhooks are sent over TCP, never a Unix socket")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    """:class:`GuardedBackend` for the event loop: a name's lookup runs in a
    worker thread (an IP literal or ``localhost`` needs none), and
    ``backend`` (httpcore's ``AnyIOBackend`` by default) opens the sockets."""

    def __init__(self, network: NetworkPolicy, backend: httpcore.AsyncNetworkBackend | None = None):
        self._network = network
        self._backend = backend if backend is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = self._network.resolve_without_dns(host)
        if addresses is None:  # the one lookup, off the loop
            addresses = await anyio.to_thread.run_sync(checked_addresses, self._network, host, port)
        deadline = None if timeout is None else time.monotonic() + timeout
        failure: Exception | None = None
        for ip in addresses:
            try:
                stream = await self._backend.connect_tcp(
                    ip,
                    port,
                    timeout=_remaining(deadline),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            refused = _check_peer(self._network, host, stream)
            if refused is not None:
                await stream.aclose()
                raise BlockedAddressError(refused)
            return stream
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError("webhooks are sent over TCP, never a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def _swap_pool(transport: object, make: Callable[[], object], kind: type) -> None:
    """Put hookwise's pool where httpx keeps its own. Fails closed: an httpx
    that keeps its pool elsewhere would otherwise send unguarded."""
    if not isinstance(getattr(transport, "_pool", None), kind):
        raise RuntimeError(
            f"httpx {httpx.__version__} keeps its connection pool where hookwise does not "
            "expect it, so the SSRF guard cannot be installed; please report this"
        )
    transport._pool = make()  # type: ignore[attr-defined]


def _pool_options(ssl_context: ssl.SSLContext) -> dict[str, typing.Any]:
    return {
        "ssl_context": ssl_context,
        "max_connections": LIMITS.max_connections,
        "max_keepalive_connections": LIMITS.max_keepalive_connections,
        "keepalive_expiry": LIMITS.keepalive_expiry,
        "http1": True,
        "http2": False,
    }


def _ssl_context() -> ssl.SSLContext:
    # trust_env=False: no SSL_CERT_FILE/SSL_CERT_DIR from the environment, as
    # for the client (which also takes no proxy from there).
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` (no proxy, http/1.1, httpx's limits) whose
    connections go through a :class:`GuardedBackend`."""

    def __init__(
        self, network: NetworkPolicy, *, backend: httpcore.NetworkBackend | None = None
    ) -> None:
        context = _ssl_context()
        super().__init__(verify=context, trust_env=False, http2=False, limits=LIMITS)
        guarded = GuardedBackend(network, backend)
        _swap_pool(
            self,
            lambda: httpcore.ConnectionPool(network_backend=guarded, **_pool_options(context)),
            httpcore.ConnectionPool,
        )


class AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections go through an
    :class:`AsyncGuardedBackend`."""

    def __init__(
        self, network: NetworkPolicy, *, backend: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        context = _ssl_context()
        super().__init__(verify=context, trust_env=False, http2=False, limits=LIMITS)
        guarded = AsyncGuardedBackend(network, backend)
        _swap_pool(
            self,
            lambda: httpcore.AsyncConnectionPool(network_backend=guarded, **_pool_options(context)),
            httpcore.AsyncConnectionPool,
        )
