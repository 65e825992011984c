"""The SSRF guard at connect time (hookwise.transport).

Nothing here reaches the network. Every test runs under a fake DNS (names
resolve only from a table; numeric hosts are never looked up) and a recording
socket layer: httpcore's own backends are wrapped so every connection attempt
is recorded, and anything but a loopback address is refused *by the test
layer* before a socket is opened. Refused addresses therefore reach hookwise
only as fake resolver answers or URL spellings, and the only real traffic is
to the loopback receiver from ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Sequence
from typing import Any

import httpcore
import httpx
import pytest

import hookwise as hw
from hookwise.errors import BlockedAddressError, HookwiseError
from hookwise.network import NetworkPolicy
from hookwise.senders import AsyncHttpxSender, HttpxSender
from hookwise.transport import (
    AsyncGuardedBackend,
    AsyncGuardedTransport,
    GuardedBackend,
    GuardedTransport,
    _swap_pool,
)
from hookwise.wire import OutgoingRequest, RawResponse
from tests.conftest import TEAM, Receiver, alias_event, setup_team

PUBLIC_IP = "93.184.216.34"
FAST = hw.RetryPolicy(max_attempts=3, base_delay=0.001, factor=1.0, jitter=False)


# --- the test harness: fake DNS and a recording socket layer ------------------------


class FakeDNS:
    """``socket.getaddrinfo`` for the whole test: a name answers from its
    script (one entry per lookup, the last one repeating); numeric hosts are
    parsed, never looked up; any other name fails as DNS does."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.scripts: dict[str, list[str]] = {}
        self.lookups: list[str] = []
        self.lock = threading.Lock()

    def __call__(  # type: ignore[no-untyped-def]
        self, host, port, family=0, type=0, proto=0, flags=0
    ):
        name = host.decode() if isinstance(host, bytes) else host
        with self.lock:
            script = self.scripts.get(name)
            if script is not None:
                self.lookups.append(name)
                host = script.pop(0) if len(script) > 1 else script[0]
        return self.real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)


class SocketLayer:
    """Wraps httpcore's SyncBackend and AnyIOBackend: records every connect
    and refuses anything that is not a loopback address. A host name is
    resolved here as the OS would (through the fake DNS), so a transport that
    connects by name is caught reaching loopback."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self.names: list[str] = []
        self.lock = threading.Lock()

    def admit(self, host: str, port: int) -> str:
        with self.lock:
            self.connects.append((host, port))
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            with self.lock:
                self.names.append(host)
            ip = ipaddress.ip_address(socket.getaddrinfo(host, port)[0][4][0])
        if not ip.is_loopback:
            raise httpcore.ConnectError(f"the test socket layer refuses {ip}")
        return str(ip)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture(autouse=True)
def layer(monkeypatch: pytest.MonkeyPatch, dns: FakeDNS) -> SocketLayer:
    recording = SocketLayer()
    real_sync = httpcore.SyncBackend.connect_tcp
    real_async = httpcore.AnyIOBackend.connect_tcp

    def sync_connect(self: Any, host: str, port: int, **kwargs: Any) -> Any:
        return real_sync(self, recording.admit(host, port), port, **kwargs)

    async def async_connect(self: Any, host: str, port: int, **kwargs: Any) -> Any:
        return await real_async(self, recording.admit(host, port), port, **kwargs)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", sync_connect)
    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", async_connect)
    return recording


class FakeResolver:
    """A NetworkPolicy resolver answering from a table, recording questions."""

    def __init__(self, answers: dict[str, Sequence[str]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        return self.answers.get(host, [])


def post(url: str) -> OutgoingRequest:
    return OutgoingRequest("POST", url, {"content-type": "application/json"}, b"{}")


def send_sync(policy: NetworkPolicy, url: str) -> RawResponse | Exception:
    sender = HttpxSender(policy, timeout=5.0)
    try:
        return sender.attempt(post(url))
    finally:
        sender.close()


def send_async(policy: NetworkPolicy, url: str) -> RawResponse | Exception:
    async def go() -> RawResponse | Exception:
        sender = AsyncHttpxSender(policy, timeout=5.0)
        try:
            return await sender.attempt(post(url))
        finally:
            await sender.aclose()

    return asyncio.run(go())


SENDS = {"sync": send_sync, "async": send_async}


def port_of(receiver: Receiver) -> int:
    return int(receiver.server.server_address[1])


# --- DNS rebinding: public to the check, loopback to the connection -----------------

# No allowlist: loopback is refused, as in production.
NOTHING_ALLOWED = hw.NetworkPolicy(allow_http=True)  # the system resolver: the fake DNS


def rebinding(dns: FakeDNS, receiver: Receiver) -> str:
    dns.scripts["rebind.example"] = [PUBLIC_IP, "127.0.0.1"]
    return f"http://rebind.example:{port_of(receiver)}/hook"


def test_harness_catches_rebinding_past_a_precheck(
    dns: FakeDNS, layer: SocketLayer, receiver: Receiver
) -> None:
    """The control: a check before the request, then httpx connecting by name
    (the sender's pre-check with a transport passed in, as before the guard
    moved into the transport) is led to loopback. The tests below would catch it."""
    url = rebinding(dns, receiver)
    sender = HttpxSender(NOTHING_ALLOWED, timeout=5.0, transport=httpx.HTTPTransport())
    try:
        result = sender.attempt(post(url))
    finally:
        sender.close()
    assert isinstance(result, RawResponse)
    assert len(receiver.requests) == 1
    assert layer.names == ["rebind.example"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_rebinding_never_reaches_loopback_through_a_sender(
    kind: str, dns: FakeDNS, layer: SocketLayer, receiver: Receiver
) -> None:
    url = rebinding(dns, receiver)
    first = SENDS[kind](NOTHING_ALLOWED, url)
    second = SENDS[kind](NOTHING_ALLOWED, url)
    # one lookup per connection: the public answer was connected to (and the
    # test layer refused it), the loopback answer was refused by the policy
    assert dns.lookups == ["rebind.example", "rebind.example"]
    assert isinstance(first, httpx.ConnectError)
    assert isinstance(second, BlockedAddressError)
    assert "127.0.0.1" in str(second)
    assert layer.connects == [(PUBLIC_IP, port_of(receiver))]
    assert layer.names == []
    assert receiver.requests == []


def test_rebinding_never_reaches_loopback_in_a_delivery(
    store: hw.Storage,
    dns: FakeDNS,
    layer: SocketLayer,
    receiver: Receiver,
    make_dispatcher: Any,
) -> None:
    url = rebinding(dns, receiver)
    setup_team(store, url)
    dispatcher = make_dispatcher(store, network=NOTHING_ALLOWED, retry=FAST)
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    done = store.get_delivery(delivery.id)
    assert done is not None
    # an address refused after DNS is retried like any failure (a worker's
    # policy may be fixed, a record may change), never sent there, and it
    # fails when the retries run out, with the reason kept
    assert done.status is hw.DeliveryStatus.FAILED
    assert done.attempts == FAST.max_attempts
    first, *refused = store.list_attempts(delivery.id)
    assert "ConnectError" in (first.error or "")  # the public answer: transient
    assert all("resolves to 127.0.0.1" in (a.error or "") for a in refused)
    assert dns.lookups == ["rebind.example"] * FAST.max_attempts
    assert layer.connects == [(PUBLIC_IP, port_of(receiver))]
    assert receiver.requests == []


def test_rebinding_never_reaches_loopback_in_test_webhook(
    store: hw.Storage,
    dns: FakeDNS,
    layer: SocketLayer,
    receiver: Receiver,
    make_dispatcher: Any,
) -> None:
    url = rebinding(dns, receiver)
    setup_team(store, url)
    dispatcher = make_dispatcher(store, network=NOTHING_ALLOWED)
    first = dispatcher.test_webhook(TEAM, "github-dispatch")
    second = dispatcher.test_webhook(TEAM, "github-dispatch")
    assert not first.ok
    assert "ConnectError" in (first.error or "")
    assert not second.ok
    assert "127.0.0.1" in (second.error or "")
    assert dns.lookups == ["rebind.example", "rebind.example"]
    assert layer.connects == [(PUBLIC_IP, port_of(receiver))]
    assert receiver.requests == []


# --- SSRF vectors: refused before any connection attempt ----------------------------

# (id, URL, the resolver's answers for hook.example, or None for a host the
# policy reads without DNS). All are refused by the policy (BlockedAddressError)
# unless marked "invalid": httpx rejects the URL itself before any connection.
VECTORS: list[tuple[str, str, list[str] | None]] = [
    # resolver answers
    ("dns-loopback", "http://hook.example/", ["127.0.0.1"]),
    ("dns-loopback-8", "http://hook.example/", ["127.1.2.3"]),
    ("dns-unspecified", "http://hook.example/", ["0.0.0.0"]),
    ("dns-this-network", "http://hook.example/", ["0.1.2.3"]),
    ("dns-loopback6", "http://hook.example/", ["::1"]),
    ("dns-unspecified6", "http://hook.example/", ["::"]),
    ("dns-v4-mapped", "http://hook.example/", ["::ffff:127.0.0.1"]),
    ("dns-v4-compatible", "http://hook.example/", ["::127.0.0.1"]),
    ("dns-metadata", "http://hook.example/", ["169.254.169.254"]),
    ("dns-aws-metadata6", "http://hook.example/", ["fd00:ec2::254"]),
    ("dns-10", "http://hook.example/", ["10.0.0.1"]),
    ("dns-172.16", "http://hook.example/", ["172.16.0.1"]),
    ("dns-172.31", "http://hook.example/", ["172.31.255.254"]),
    ("dns-192.168", "http://hook.example/", ["192.168.1.1"]),
    ("dns-cgnat", "http://hook.example/", ["100.64.0.1"]),
    ("dns-link-local6", "http://hook.example/", ["fe80::1"]),
    ("dns-link-local6-zone", "http://hook.example/", ["fe80::1%eth0"]),
    ("dns-unique-local", "http://hook.example/", ["fc00::1"]),
    ("dns-6to4-loopback", "http://hook.example/", ["2002:7f00:1::"]),
    ("dns-6to4-metadata", "http://hook.example/", ["2002:a9fe:a9fe::"]),
    ("dns-nat64-loopback", "http://hook.example/", ["64:ff9b::7f00:1"]),
    ("dns-nat64-local-use", "http://hook.example/", ["64:ff9b:1::a00:1"]),
    ("dns-teredo-loopback", "http://hook.example/", ["2001:0:4136:e378:8000:63bf:80ff:fffe"]),
    ("dns-multicast", "http://hook.example/", ["224.0.0.1"]),
    ("dns-multicast6", "http://hook.example/", ["ff02::1"]),
    ("dns-broadcast", "http://hook.example/", ["255.255.255.255"]),
    ("dns-reserved", "http://hook.example/", ["240.0.0.1"]),
    ("dns-benchmarking", "http://hook.example/", ["198.18.0.1"]),
    ("dns-documentation", "http://hook.example/", ["192.0.2.1"]),
    ("dns-reserved6", "http://hook.example/", ["4000::1"]),
    ("dns-mixed-private", "http://hook.example/", [PUBLIC_IP, "10.0.0.1"]),
    ("dns-mixed-metadata-first", "http://hook.example/", ["169.254.169.254", PUBLIC_IP]),
    ("dns-mixed-loopback6", "http://hook.example/", ["2606:4700:4700::1111", "::1"]),
    ("dns-no-answer", "http://hook.example/", []),
    ("dns-not-an-ip", "http://hook.example/", ["localhost"]),
    # URL spellings: read without DNS
    ("url-loopback", "http://127.0.0.1/", None),
    ("url-loopback-port", "http://127.0.0.1:6379/", None),
    ("url-decimal", "http://2130706433/", None),
    ("url-hex", "http://0x7f000001/", None),
    ("url-hex-dotted", "http://0x7f.1/", None),
    ("url-short", "http://127.1/", None),
    ("url-zero", "http://0/", None),
    ("url-unspecified", "http://0.0.0.0/", None),
    ("url-trailing-dot", "http://127.0.0.1./", None),
    ("url-metadata", "http://169.254.169.254/latest/meta-data/", None),
    ("url-metadata-decimal", "http://2852039166/", None),
    ("url-private", "http://10.0.0.5/", None),
    ("url-loopback6", "http://[::1]/", None),
    ("url-v4-mapped", "http://[::ffff:127.0.0.1]/", None),
    ("url-v4-mapped-hex", "http://[::ffff:7f00:1]/", None),
    ("url-v4-mapped-metadata", "http://[::ffff:a9fe:a9fe]/", None),
    ("url-nat64-metadata", "http://[64:ff9b::a9fe:a9fe]/", None),
    ("url-6to4-private", "http://[2002:a00:1::]/", None),
    ("url-link-local-zone", "http://[fe80::1%25eth0]/", None),
    ("url-localhost", "http://localhost/", None),
    ("url-localhost-upper-dot", "http://LOCALHOST./", None),
    ("url-sub-localhost", "http://api.localhost/", None),
    ("invalid-broken-literal", "http://1.2.3.999/", None),
    ("invalid-octal", "http://0177.0.0.1/", None),
    (
        "invalid-idna-fullwidth-localhost",
        "http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/",
        None,
    ),
    ("invalid-idna-fullwidth-digits", "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", None),
]

# Names whose answers come from the resolver, not hook.example.
NAMED: dict[str, tuple[str, list[str]]] = {
    "idna-name": ("http://b\u00fccher.example/", ["10.0.0.1"]),  # xn--bcher-kva.example
    "trailing-dot-name": ("http://hook.example./", ["127.0.0.1"]),
    "encoded-dot": ("http://127.0.0.1%2e/", ["127.0.0.1"]),
    "localtest-style": ("http://localtest.me/", ["127.0.0.1"]),
    "nip-io-style": ("http://169.254.169.254.nip.io/", ["169.254.169.254"]),
}
NAMED_HOSTS = {
    "idna-name": "xn--bcher-kva.example",
    "trailing-dot-name": "hook.example.",
    "encoded-dot": "127.0.0.1%2e",
    "localtest-style": "localtest.me",
    "nip-io-style": "169.254.169.254.nip.io",
}


def _cases() -> list[Any]:
    cases = [
        pytest.param(url, answers, None, not name.startswith("invalid"), id=name)
        for name, url, answers in VECTORS
    ]
    cases += [
        pytest.param(url, answers, NAMED_HOSTS[name], True, id=name)
        for name, (url, answers) in NAMED.items()
    ]
    return cases


def test_the_table_is_long_enough() -> None:
    assert len(_cases()) >= 30


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize(("url", "answers", "name", "blocked"), _cases())
def test_ssrf_vector_is_refused_before_any_connection(
    kind: str,
    url: str,
    answers: list[str] | None,
    name: str | None,
    blocked: bool,
    layer: SocketLayer,
) -> None:
    host = name or "hook.example"
    resolver = FakeResolver({host: answers} if answers is not None else {})
    policy = NetworkPolicy(allow_http=True, resolver=resolver)
    result = SENDS[kind](policy, url)
    assert isinstance(result, Exception)
    if blocked:
        assert isinstance(result, BlockedAddressError), repr(result)
    assert layer.connects == []  # no connection attempt at all
    if answers is None:
        assert resolver.calls == []  # read without DNS
    else:
        assert resolver.calls == [(host, 80)]  # asked once


# --- what is allowed goes to exactly the checked address ----------------------------

LOOPBACK_ALLOWED = ["127.0.0.0/8"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_allowlisted_loopback_reaches_the_receiver_at_the_checked_address(
    kind: str, layer: SocketLayer, receiver: Receiver
) -> None:
    resolver = FakeResolver({"hooks.test": ["127.0.0.1"]})
    policy = NetworkPolicy(allow=LOOPBACK_ALLOWED, allow_http=True, resolver=resolver)
    port = port_of(receiver)
    result = SENDS[kind](policy, f"http://hooks.test:{port}/hook")
    assert isinstance(result, RawResponse), repr(result)
    assert result.status_code == 200
    assert resolver.calls == [("hooks.test", port)]
    assert layer.connects == [("127.0.0.1", port)]  # the checked IP, not the name
    [got] = receiver.requests
    assert got.headers["Host"] == f"hooks.test:{port}"  # the name still in Host


def test_allowlisted_loopback_delivery_and_test_webhook(
    store: hw.Storage, dns: FakeDNS, layer: SocketLayer, receiver: Receiver, make_dispatcher: Any
) -> None:
    dns.scripts["hooks.test"] = ["127.0.0.1"]
    port = port_of(receiver)
    setup_team(store, f"http://hooks.test:{port}/hook")
    policy = hw.NetworkPolicy(allow=LOOPBACK_ALLOWED, allow_http=True)
    dispatcher = make_dispatcher(store, network=policy)
    assert dispatcher.test_webhook(TEAM, "github-dispatch").ok
    [delivery] = dispatcher.handle(alias_event())
    assert dispatcher.flush(timeout=10)
    done = store.get_delivery(delivery.id)
    assert done is not None
    assert done.status is hw.DeliveryStatus.SUCCEEDED
    assert len(receiver.requests) == 2
    assert {host for host, _ in layer.connects} == {"127.0.0.1"}
    assert layer.names == []


def test_the_public_receiver_policy_refuses_loopback_by_literal_too(
    layer: SocketLayer, receiver: Receiver
) -> None:
    result = send_sync(NetworkPolicy(allow_http=True), receiver.url)
    assert isinstance(result, BlockedAddressError)
    assert layer.connects == []
    assert receiver.requests == []


# --- the backends in units: fake sockets, never a real one --------------------------


class FakeStream(httpcore.NetworkStream):
    def __init__(self, peer: tuple[str, int] | None = None) -> None:
        self.peer = peer
        self.tls: dict[str, Any] = {}
        self.closed = False

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        raise httpcore.ReadError("fake")

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        raise httpcore.WriteError("fake")

    def close(self) -> None:
        self.closed = True

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self.tls["server_hostname"] = server_hostname
        raise httpcore.ConnectError("fake TLS stops here")

    def get_extra_info(self, info: str) -> Any:
        return self.peer if info == "server_addr" else None


class FakeBackend(httpcore.NetworkBackend):
    """Answers connect_tcp from a script: an exception to raise or a stream."""

    def __init__(self, *script: Exception | FakeStream) -> None:
        self.script = list(script)
        self.hosts: list[str] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        self.hosts.append(host)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


class AsyncFakeStream(httpcore.AsyncNetworkStream):
    def __init__(self) -> None:
        self.tls: dict[str, Any] = {}

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        raise httpcore.ReadError("fake")

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        raise httpcore.WriteError("fake")

    async def aclose(self) -> None:
        pass

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        self.tls["server_hostname"] = server_hostname
        raise httpcore.ConnectError("fake TLS stops here")

    def get_extra_info(self, info: str) -> Any:
        return None


class AsyncFakeBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, stream: AsyncFakeStream) -> None:
        self.stream = stream
        self.hosts: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self.hosts.append(host)
        return self.stream


def test_tls_is_verified_against_the_url_host_not_the_address() -> None:
    stream = FakeStream()
    backend = FakeBackend(stream)
    policy = NetworkPolicy(resolver=FakeResolver({"hooks.example": [PUBLIC_IP]}))
    with (
        httpx.Client(transport=GuardedTransport(policy, backend=backend)) as client,
        pytest.raises(httpx.ConnectError, match="fake TLS"),
    ):
        client.post("https://hooks.example/x")
    assert backend.hosts == [PUBLIC_IP]
    assert stream.tls["server_hostname"] == "hooks.example"


def test_async_tls_is_verified_against_the_url_host_not_the_address() -> None:
    stream = AsyncFakeStream()
    backend = AsyncFakeBackend(stream)
    resolver = FakeResolver({"hooks.example": [PUBLIC_IP]})
    policy = NetworkPolicy(resolver=resolver)

    async def go() -> None:
        transport = AsyncGuardedTransport(policy, backend=backend)
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ConnectError, match="fake TLS"):
                await client.post("https://hooks.example/x")

    asyncio.run(go())
    assert backend.hosts == [PUBLIC_IP]
    assert resolver.calls == [("hooks.example", 443)]
    assert stream.tls["server_hostname"] == "hooks.example"


def test_the_next_checked_address_is_tried_when_one_does_not_answer() -> None:
    answers = ["2606:4700:4700::1111", PUBLIC_IP]
    stream = FakeStream()
    backend = FakeBackend(httpcore.ConnectError("unreachable"), stream)
    policy = NetworkPolicy(resolver=FakeResolver({"hooks.example": answers}))
    with (
        httpx.Client(transport=GuardedTransport(policy, backend=backend)) as client,
        pytest.raises(httpx.ConnectError, match="fake TLS"),
    ):
        client.post("https://hooks.example/x")
    assert backend.hosts == answers


def test_when_no_checked_address_answers_the_last_error_is_the_result() -> None:
    backend = FakeBackend(httpcore.ConnectError("first"), httpcore.ConnectTimeout("second"))
    policy = NetworkPolicy(resolver=FakeResolver({"hooks.example": [PUBLIC_IP, "8.8.8.8"]}))
    with pytest.raises(httpcore.ConnectTimeout, match="second"):
        GuardedBackend(policy, backend).connect_tcp("hooks.example", 443, timeout=5.0)
    assert backend.hosts == [PUBLIC_IP, "8.8.8.8"]


def test_the_connected_peer_is_checked_too() -> None:
    stream = FakeStream(peer=("10.0.0.1", 443))
    backend = FakeBackend(stream)
    policy = NetworkPolicy(resolver=FakeResolver({"hooks.example": [PUBLIC_IP]}))
    with pytest.raises(BlockedAddressError, match=r"10\.0\.0\.1"):
        GuardedBackend(policy, backend).connect_tcp("hooks.example", 443)
    assert stream.closed
    fine = FakeStream(peer=(PUBLIC_IP, 443))
    connected = GuardedBackend(policy, FakeBackend(fine)).connect_tcp("hooks.example", 443)
    assert connected.get_extra_info("server_addr") == (PUBLIC_IP, 443)  # fine, under the deadline


def test_a_refusal_comes_out_of_httpx_as_the_hookwise_error() -> None:
    backend = FakeBackend()
    policy = NetworkPolicy(resolver=FakeResolver({"hooks.example": ["10.0.0.1"]}))
    with (
        httpx.Client(transport=GuardedTransport(policy, backend=backend)) as client,
        pytest.raises(BlockedAddressError, match=r"10\.0\.0\.1"),
    ):
        client.post("https://hooks.example/x")
    assert backend.hosts == []


def test_dns_failure_stays_a_connection_error_and_a_resolver_bug_a_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def broken(host: str, port: int) -> list[str]:
        raise RuntimeError("resolver bug, token s3cr3t")

    backend = FakeBackend()
    with pytest.raises(socket.gaierror):
        GuardedBackend(NetworkPolicy(resolver=failing), backend).connect_tcp("gone.example", 443)
    with pytest.raises(HookwiseError, match="RuntimeError") as refused:
        GuardedBackend(NetworkPolicy(resolver=broken), backend).connect_tcp("bug.example", 443)
    assert "s3cr3t" not in str(refused.value)
    assert all("s3cr3t" not in record.getMessage() for record in caplog.records)
    assert backend.hosts == []


def test_async_ip_literals_need_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import anyio.to_thread

    def no_thread(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("hopped to a thread for an IP literal")

    monkeypatch.setattr(anyio.to_thread, "run_sync", no_thread)
    stream = AsyncFakeStream()
    backend = AsyncFakeBackend(stream)
    policy = NetworkPolicy(resolver=FakeResolver())

    async def go() -> None:
        guarded = AsyncGuardedBackend(policy, backend)
        assert await guarded.connect_tcp(PUBLIC_IP, 443) is stream
        with pytest.raises(BlockedAddressError):
            await guarded.connect_tcp("169.254.169.254", 80)

    asyncio.run(go())
    assert backend.hosts == [PUBLIC_IP]


def test_unix_sockets_are_refused() -> None:
    policy = NetworkPolicy()
    with pytest.raises(BlockedAddressError):
        GuardedBackend(policy, FakeBackend()).connect_unix_socket("/var/run/docker.sock")

    async def go() -> None:
        with pytest.raises(BlockedAddressError):
            await AsyncGuardedBackend(policy).connect_unix_socket("/var/run/docker.sock")

    asyncio.run(go())


def test_the_guard_fails_closed_if_httpx_moves_its_pool() -> None:
    with pytest.raises(RuntimeError, match="SSRF guard"):
        _swap_pool(object(), object, httpcore.ConnectionPool)


def test_senders_use_the_guard_unless_given_a_transport() -> None:
    policy = NetworkPolicy()
    guarded = HttpxSender(policy, timeout=1.0)
    mocked = HttpxSender(
        policy, timeout=1.0, transport=httpx.MockTransport(lambda r: httpx.Response(200))
    )
    try:
        transport = guarded._transport
        assert isinstance(transport, GuardedTransport)
        assert isinstance(transport._pool._network_backend, GuardedBackend)
        assert not guarded._precheck
        assert mocked._precheck
    finally:
        guarded.close()
        mocked.close()
