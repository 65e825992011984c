"""The aiohttp sender (hookwise.aiohttp_sender), against raw socket receivers
on 127.0.0.1 (``Receiver`` from test_hostile_receivers).

Nothing here leaves the machine: a recording socket layer under asyncio
refuses every connection that is not to a loopback address before a packet
is sent, so refused addresses reach hookwise only as fake resolver answers
or URL spellings, and every connection attempt is on record.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib
import ipaddress
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

import hookwise as hw
from hookwise.aiohttp_sender import AiohttpSender, _checked_socket
from hookwise.errors import BlockedAddressError, HookwiseError, UnsafeURLError, ValidationError
from hookwise.history import RESPONSE_BYTES
from hookwise.network import NetworkPolicy
from hookwise.senders import AsyncSender
from hookwise.wire import OutgoingRequest, RawResponse
from tests.conftest import Receiver as HTTPReceiver
from tests.test_hostile_receivers import (
    MEMORY_BOUND,
    Behaviour,
    Receiver,
    _gzip_stream,
    _zeros,
    answer,
    endless,
)
from tests.test_transport import NAMED, NAMED_HOSTS, VECTORS, FakeResolver

LOCAL = NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True)
NOTHING_ALLOWED = NetworkPolicy(allow_http=True, resolver=lambda host, port: [])  # no real DNS
PUBLIC_IP = "93.184.216.34"
TIMEOUT = 1.0


# --- the harness: a recording socket layer, receivers, one attempt ------------------


class SocketLayer:
    """Records every ``loop.sock_connect`` (how aiohttp connects) and
    refuses, before connecting, any address that is not loopback."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def admit(self, address: Any) -> None:
        host, port = str(address[0]), int(address[1])
        with self.lock:
            self.connects.append((host, port))
        if not ipaddress.ip_address(host).is_loopback:
            raise ConnectionRefusedError(f"the test socket layer refuses {host}")


@pytest.fixture(autouse=True)
def layer(monkeypatch: pytest.MonkeyPatch) -> SocketLayer:
    import asyncio.selector_events

    recording = SocketLayer()
    real = asyncio.selector_events.BaseSelectorEventLoop.sock_connect

    async def sock_connect(self: Any, sock: socket.socket, address: Any) -> None:
        recording.admit(address)
        await real(self, sock, address)

    monkeypatch.setattr(asyncio.selector_events.BaseSelectorEventLoop, "sock_connect", sock_connect)
    real_getaddrinfo = socket.getaddrinfo

    def numeric_only(  # type: ignore[no-untyped-def]
        host, port, family=0, type=0, proto=0, flags=0
    ):
        # no real DNS in this file: names are the fake resolvers' business
        return real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    return recording


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], Receiver]]:
    receivers: list[Receiver] = []

    def start(behaviour: Behaviour) -> Receiver:
        receiver = Receiver(behaviour)
        receivers.append(receiver)
        return receiver

    yield start
    for receiver in receivers:
        receiver.close()


def port_of(receiver: Receiver) -> int:
    return int(receiver.url.split(":")[2].split("/")[0])


def post(url: str, headers: dict[str, str] | None = None) -> OutgoingRequest:
    if headers is None:
        headers = {"content-type": "application/json"}
    return OutgoingRequest("POST", url, headers, b'{"a": 1}')


def send(
    url: str,
    *,
    policy: NetworkPolicy = LOCAL,
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> RawResponse | Exception:
    async def go() -> RawResponse | Exception:
        sender = AiohttpSender(policy, timeout=timeout)
        try:
            return await sender.attempt(post(url, headers))
        finally:
            await sender.aclose()

    return asyncio.run(go())


def measured(url: str) -> tuple[RawResponse | Exception, int]:
    tracemalloc.start()
    try:
        result = send(url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def raw(head: str, body: bytes = b"") -> Behaviour:
    """Answers with exactly these header lines (CRLF added) and body."""

    def behaviour(conn: socket.socket) -> None:
        conn.sendall(head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body)

    return behaviour


def trickle(*, in_headers: bool = False, every: float = 0.3) -> Behaviour:
    def behaviour(conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
        if in_headers:
            for i in range(len(head)):
                conn.sendall(head[i : i + 1])
                time.sleep(every)
        else:
            conn.sendall(head)
        for _ in range(100):  # 30 s at most, far past the deadline
            conn.sendall(b"x")
            time.sleep(every)

    return behaviour


class Hang:
    """Reads the request, never answers; notes when the client hangs up."""

    def __init__(self) -> None:
        self.hung_up = threading.Event()

    def __call__(self, conn: socket.socket) -> None:
        if conn.recv(1) == b"":
            self.hung_up.set()


# --- answers ------------------------------------------------------------------------


def test_it_is_an_async_sender() -> None:
    sender: AsyncSender = AiohttpSender(LOCAL, timeout=TIMEOUT)
    asyncio.run(sender.aclose())


def test_a_normal_answer_with_body_and_headers(
    serve: Callable[[Behaviour], Receiver], layer: SocketLayer
) -> None:
    receiver = serve(
        raw(
            "HTTP/1.1 201 Created\nContent-Length: 5\nX-Multi: a\nX-Multi: b\n"
            "X-Case: Yes\nConnection: close",
            b"hello",
        )
    )
    result = send(receiver.url, headers={"content-type": "application/json", "X-Id": "7"})
    assert isinstance(result, RawResponse), repr(result)
    assert result.status_code == 201
    assert result.body == b"hello"
    assert result.headers["x-multi"] == "a, b"  # repeated values joined
    assert result.header("X-Case") == "Yes"
    [seen] = receiver.requests
    assert seen["content-type"] == "application/json"
    assert seen["x-id"] == "7"
    assert seen["content-length"] == str(len(b'{"a": 1}'))
    assert seen["host"] == f"127.0.0.1:{port_of(receiver)}"
    assert layer.connects == [("127.0.0.1", port_of(receiver))]


def test_the_url_goes_out_as_parsed_not_requoted() -> None:
    receiver = HTTPReceiver()
    try:
        base = receiver.url.removesuffix("/hook")
        result = send(f"{base}/a%2Fb/%7E c?q=%20x&y=\u00fc#fragment")
        assert isinstance(result, RawResponse), repr(result)
        [seen] = receiver.requests
        assert seen.path == "/a%2Fb/%7E%20c?q=%20x&y=%C3%BC"  # as httpx reads it
    finally:
        receiver.close()


def test_a_204_has_an_empty_body(serve: Callable[[Behaviour], Receiver]) -> None:
    receiver = serve(raw("HTTP/1.1 204 No Content\nConnection: close"))
    result = send(receiver.url)
    assert isinstance(result, RawResponse), repr(result)
    assert result.status_code == 204
    assert result.is_success
    assert result.body == b""


def test_no_content_type_is_added_and_identity_is_asked_for(
    serve: Callable[[Behaviour], Receiver],
) -> None:
    receiver = serve(answer(b"ok"))
    result = send(receiver.url, headers={"User-Agent": "hookwise/test"})
    assert isinstance(result, RawResponse), repr(result)
    [seen] = receiver.requests
    assert seen["accept-encoding"] == "identity"
    assert seen["user-agent"] == "hookwise/test"
    assert "content-type" not in seen  # only what the core set


def test_an_accept_encoding_of_the_webhook_is_kept(
    serve: Callable[[Behaviour], Receiver],
) -> None:
    receiver = serve(answer(gzip.compress(b"zipped"), encoding="gzip"))
    result = send(receiver.url, headers={"Accept-Encoding": "gzip"})
    assert isinstance(result, RawResponse), repr(result)
    assert receiver.requests[0]["accept-encoding"] == "gzip"
    assert result.body == b"zipped"  # decoded by hookwise, not aiohttp


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity", None])
def test_a_normal_compressed_answer_is_decoded(
    encoding: str | None, serve: Callable[[Behaviour], Receiver]
) -> None:
    payload = json.dumps({"ok": True, "items": list(range(200))}).encode()
    compress: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
    }
    body = compress.get(encoding or "", bytes)(payload)
    receiver = serve(answer(body, encoding=encoding))
    result = send(receiver.url)
    assert isinstance(result, RawResponse), repr(result)
    assert result.body == payload


def test_an_answer_we_cannot_decode_is_kept_raw_and_marked(
    serve: Callable[[Behaviour], Receiver],
) -> None:
    receiver = serve(answer(b"\x8b\x02\x80hi\x03", encoding="br", status=202))
    result = send(receiver.url)
    assert isinstance(result, RawResponse), repr(result)
    assert result.status_code == 202
    assert result.body.startswith(b"[hookwise: body not decoded, Content-Encoding: br]")
    assert result.body.endswith(b"\x8b\x02\x80hi\x03")


def test_a_redirect_is_the_answer_not_followed(serve: Callable[[Behaviour], Receiver]) -> None:
    elsewhere = serve(answer(b"should not be reached"))
    receiver = serve(
        raw(f"HTTP/1.1 302 Found\nLocation: {elsewhere.url}\nContent-Length: 0\nConnection: close")
    )
    result = send(receiver.url)
    assert isinstance(result, RawResponse), repr(result)
    assert result.status_code == 302
    assert result.header("location") == elsewhere.url
    assert len(receiver.requests) == 1
    assert elsewhere.requests == []


# --- hostile receivers: bytes and time ----------------------------------------------


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """10 MB of zeros, gzipped: about 10 KB."""
    return _gzip_stream(_zeros(10))


@pytest.fixture(scope="module")
def double_bomb() -> bytes:
    """512 MB of zeros gzipped twice: a few KB that expand to 512 MB."""
    return gzip.compress(_gzip_stream(_zeros(512)), 9)


def test_a_gzip_bomb_costs_little_memory(
    serve: Callable[[Behaviour], Receiver], bomb: bytes
) -> None:
    receiver = serve(answer(bomb, encoding="gzip"))
    result, peak = measured(receiver.url)
    assert isinstance(result, RawResponse), repr(result)
    assert result.body == bytes(RESPONSE_BYTES)  # decoded, and cut at the cap
    assert peak < MEMORY_BOUND, peak


def test_a_double_gzip_bomb_costs_little_memory(
    serve: Callable[[Behaviour], Receiver], double_bomb: bytes
) -> None:
    assert len(double_bomb) < RESPONSE_BYTES
    receiver = serve(answer(double_bomb, encoding="gzip, gzip"))
    result, peak = measured(receiver.url)
    assert isinstance(result, RawResponse), repr(result)
    assert result.body == bytes(RESPONSE_BYTES)
    assert peak < MEMORY_BOUND, peak


def test_a_50_mb_body_is_read_only_up_to_the_cap(serve: Callable[[Behaviour], Receiver]) -> None:
    receiver = serve(endless)
    result, peak = measured(receiver.url)
    assert isinstance(result, RawResponse), repr(result)
    assert result.body == b"x" * RESPONSE_BYTES
    assert peak < MEMORY_BOUND, peak
    assert receiver.saw_close.wait(timeout=5)  # the rest was never read: connection dropped


def test_an_undecodable_large_answer_stays_under_the_cap(
    serve: Callable[[Behaviour], Receiver],
) -> None:
    receiver = serve(answer(b"\xff" * (3 * RESPONSE_BYTES), encoding="br"))
    result = send(receiver.url)
    assert isinstance(result, RawResponse), repr(result)
    assert len(result.body) == RESPONSE_BYTES


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
def test_a_trickling_receiver_is_cut_at_the_deadline(
    in_headers: bool, serve: Callable[[Behaviour], Receiver]
) -> None:
    receiver = serve(trickle(in_headers=in_headers))
    started = time.monotonic()
    result = send(receiver.url)
    elapsed = time.monotonic() - started
    assert isinstance(result, TimeoutError), repr(result)
    assert str(result) == "the receiver took longer than 1 s"
    assert elapsed < TIMEOUT * 3, elapsed
    assert receiver.saw_close.wait(timeout=5)  # the next byte found the connection gone


def test_a_receiver_that_hangs_is_cut_at_the_deadline(
    serve: Callable[[Behaviour], Receiver],
) -> None:
    hang = Hang()
    receiver = serve(hang)
    started = time.monotonic()
    result = send(receiver.url)
    elapsed = time.monotonic() - started
    assert isinstance(result, TimeoutError), repr(result)
    assert elapsed < TIMEOUT * 3, elapsed
    assert hang.hung_up.wait(timeout=5)
    assert len(receiver.requests) == 1


# --- the guard: refused before any connection ---------------------------------------


@pytest.mark.parametrize(
    ("url_of", "resolver"),
    [
        pytest.param(lambda r: r.url, FakeResolver(), id="literal"),
        pytest.param(lambda r: r.url.replace("127.0.0.1", "localhost"), FakeResolver(), id="lh"),
        pytest.param(
            lambda r: r.url.replace("127.0.0.1", "hooks.test"),
            FakeResolver({"hooks.test": ["127.0.0.1"]}),
            id="name",
        ),
        pytest.param(
            lambda r: r.url.replace("127.0.0.1", "hooks.test"),
            FakeResolver({"hooks.test": [PUBLIC_IP, "127.0.0.1"]}),
            id="one-answer-of-two",
        ),
    ],
)
def test_loopback_is_refused_without_an_allow_list(
    url_of: Callable[[Receiver], str],
    resolver: FakeResolver,
    serve: Callable[[Behaviour], Receiver],
    layer: SocketLayer,
) -> None:
    receiver = serve(answer(b"ok"))
    policy = NetworkPolicy(allow_http=True, resolver=resolver)
    result = send(url_of(receiver), policy=policy)
    assert isinstance(result, BlockedAddressError), repr(result)
    assert "127.0.0.1" in str(result) or "loopback" in str(result)
    assert layer.connects == []  # no connection attempt at all
    assert receiver.requests == []


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


@pytest.mark.parametrize(("url", "answers", "name", "blocked"), _cases())
def test_ssrf_vector_is_refused_before_any_connection(
    url: str,
    answers: list[str] | None,
    name: str | None,
    blocked: bool,
    layer: SocketLayer,
) -> None:
    """The httpx senders' table (tests/test_transport.py), through aiohttp."""
    host = name or "hook.example"
    resolver = FakeResolver({host: answers} if answers is not None else {})
    result = send(url, policy=NetworkPolicy(allow_http=True, resolver=resolver))
    assert isinstance(result, Exception)
    if blocked:
        assert isinstance(result, BlockedAddressError), repr(result)
    assert layer.connects == []
    if answers is None:
        assert resolver.calls == []  # read without DNS
    else:
        assert resolver.calls == [(host, 80)]  # asked once


class Rebinding:
    """A resolver answering public first, then loopback."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_rebinding_never_reaches_loopback(
    serve: Callable[[Behaviour], Receiver], layer: SocketLayer
) -> None:
    receiver = serve(answer(b"ok"))
    port = port_of(receiver)
    resolver = Rebinding([PUBLIC_IP], ["127.0.0.1"])
    policy = NetworkPolicy(allow_http=True, resolver=resolver)
    url = f"http://rebind.example:{port}/hook"

    async def go() -> list[RawResponse | Exception]:
        sender = AiohttpSender(policy, timeout=TIMEOUT)  # one sender: no cache may hide a lookup
        try:
            return [await sender.attempt(post(url)), await sender.attempt(post(url))]
        finally:
            await sender.aclose()

    first, second = asyncio.run(go())
    # the public answer was connected to (and the test layer refused it),
    # the loopback answer was refused by the policy
    assert isinstance(first, OSError), repr(first)
    assert not isinstance(first, HookwiseError)  # transient: retried
    assert isinstance(second, BlockedAddressError), repr(second)
    assert "127.0.0.1" in str(second)
    assert resolver.calls == [("rebind.example", port), ("rebind.example", port)]
    assert layer.connects == [(PUBLIC_IP, port)]
    assert receiver.requests == []


def test_an_allowed_name_goes_to_exactly_the_checked_address(
    serve: Callable[[Behaviour], Receiver], layer: SocketLayer
) -> None:
    receiver = serve(answer(b"ok"))
    port = port_of(receiver)
    resolver = FakeResolver({"hooks.test": ["127.0.0.1"]})
    policy = NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True, resolver=resolver)
    result = send(f"http://hooks.test:{port}/hook", policy=policy)
    assert isinstance(result, RawResponse), repr(result)
    assert resolver.calls == [("hooks.test", port)]
    assert layer.connects == [("127.0.0.1", port)]
    assert receiver.requests[0]["host"] == f"hooks.test:{port}"  # the name still in Host


def test_the_socket_factory_refuses_what_the_resolver_should_never_give(
    serve: Callable[[Behaviour], Receiver],
    layer: SocketLayer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last check, on the very address a socket is about to connect to:
    with the resolver's check broken, loopback is still refused."""
    import hookwise.aiohttp_sender as module

    monkeypatch.setattr(module, "checked_addresses", lambda network, host, port: ["127.0.0.1"])
    receiver = serve(answer(b"ok"))
    policy = NetworkPolicy(allow_http=True, resolver=FakeResolver())
    result = send(f"http://hooks.test:{port_of(receiver)}/hook", policy=policy)
    assert isinstance(result, BlockedAddressError), repr(result)
    assert "127.0.0.1" in str(result)
    assert layer.connects == []
    assert receiver.requests == []


def test_the_socket_factory_check() -> None:
    v4 = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 80))
    v6 = (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("::1", 80, 0, 0))
    for addr_info in (v4, v6):
        with pytest.raises(BlockedAddressError):
            _checked_socket(NOTHING_ALLOWED, addr_info)
    sock = _checked_socket(LOCAL, v4)
    try:
        assert sock.family == socket.AF_INET
    finally:
        sock.close()
    with pytest.raises(BlockedAddressError):
        _checked_socket(LOCAL, (socket.AF_UNIX, socket.SOCK_STREAM, 0, "", ("/tmp/x",)))


def test_ip_literals_need_no_thread(
    serve: Callable[[Behaviour], Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_thread(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("hopped to a thread for an IP literal")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    receiver = serve(answer(b"ok"))
    assert isinstance(send(receiver.url), RawResponse)
    assert isinstance(send(receiver.url.replace("127.0.0.1", "localhost")), RawResponse)


def test_tls_is_verified_against_the_url_host(
    serve: Callable[[Behaviour], Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    async def create_connection(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        kwargs["sock"].close()
        raise ssl.SSLError("fake TLS stops here")

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", create_connection)
    receiver = serve(answer(b"ok"))
    resolver = FakeResolver({"hooks.test": ["127.0.0.1"]})
    policy = NetworkPolicy(allow=["127.0.0.0/8"], resolver=resolver)
    result = send(f"https://hooks.test:{port_of(receiver)}/hook", policy=policy)
    assert isinstance(result, Exception)
    assert "fake TLS" in repr(result)
    assert seen["server_hostname"] == "hooks.test"
    context = seen["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


# --- failures are results -----------------------------------------------------------


def test_connection_refused_is_a_retryable_result() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    result = send(f"http://127.0.0.1:{port}/hook")
    assert isinstance(result, OSError), repr(result)
    assert not isinstance(result, HookwiseError)


def test_dns_failure_is_retryable_and_a_resolver_bug_a_refusal(
    caplog: pytest.LogCaptureFixture, layer: SocketLayer
) -> None:
    def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def broken(host: str, port: int) -> list[str]:
        raise RuntimeError("resolver bug, token s3cr3t")

    gone = send("https://gone.example/", policy=NetworkPolicy(resolver=failing))
    assert isinstance(gone, OSError), repr(gone)
    assert not isinstance(gone, HookwiseError)
    bug = send("https://bug.example/", policy=NetworkPolicy(resolver=broken))
    assert isinstance(bug, HookwiseError), repr(bug)
    assert "RuntimeError" in str(bug)
    assert "s3cr3t" not in str(bug)
    assert all("s3cr3t" not in record.getMessage() for record in caplog.records)
    assert layer.connects == []


@pytest.mark.parametrize(
    "url", ["garbage", "", "http://", "ftp://example.com/", "http://[::1", "http://a b/", "/x"]
)
def test_a_garbage_url_is_a_result_not_a_raise(url: str, layer: SocketLayer) -> None:
    result = send(url, policy=NOTHING_ALLOWED)
    assert isinstance(result, Exception)
    assert isinstance(result, (ValueError, UnsafeURLError, BlockedAddressError)), repr(result)
    assert layer.connects == []


def test_aclose_works_and_attempts_after_it_are_results(
    serve: Callable[[Behaviour], Receiver],
) -> None:
    receiver = serve(answer(b"ok"))

    async def go() -> tuple[RawResponse | Exception, RawResponse | Exception]:
        sender = AiohttpSender(LOCAL, timeout=TIMEOUT)
        first = await sender.attempt(post(receiver.url))
        await sender.aclose()
        await sender.aclose()  # twice is fine
        return first, await sender.attempt(post(receiver.url))

    first, after = asyncio.run(go())
    assert isinstance(first, RawResponse)
    assert isinstance(after, RuntimeError)
    assert len(receiver.requests) == 1
    asyncio.run(AiohttpSender(LOCAL, timeout=TIMEOUT).aclose())  # never used


def test_concurrent_attempts_share_one_session(serve: Callable[[Behaviour], Receiver]) -> None:
    receiver = serve(answer(b"ok"))

    async def go() -> list[RawResponse | Exception]:
        sender = AiohttpSender(LOCAL, timeout=5.0)
        try:
            results = await asyncio.gather(*(sender.attempt(post(receiver.url)) for _ in range(8)))
            assert sender._session is not None
            return list(results)
        finally:
            await sender.aclose()

    results = asyncio.run(go())
    assert all(isinstance(r, RawResponse) and r.status_code == 200 for r in results), results
    assert len(receiver.requests) == 8


# --- the extra is optional ----------------------------------------------------------


def test_without_aiohttp_the_module_imports_and_the_sender_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hw, "aiohttp_sender", sys.modules["hookwise.aiohttp_sender"], raising=False)
    monkeypatch.delitem(sys.modules, "hookwise.aiohttp_sender")
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # import aiohttp: ImportError
    module = importlib.import_module("hookwise.aiohttp_sender")
    with pytest.raises(ValidationError, match=r"pip install 'hookwise\[aiohttp\]'"):
        module.AiohttpSender(LOCAL, timeout=TIMEOUT)


def test_importing_hookwise_does_not_import_aiohttp() -> None:
    code = (
        "import sys, hookwise, hookwise.async_dispatcher, hookwise.senders\n"
        "assert 'hookwise.aiohttp_sender' not in sys.modules\n"
        "assert 'aiohttp' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
