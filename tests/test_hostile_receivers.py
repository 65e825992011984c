"""Receivers that misbehave (issue 7, item 5), against real local servers on
127.0.0.1: a gzip bomb, nested or not, and a huge body cost little memory and
give at most ``RESPONSE_BYTES``; a receiver trickling bytes is cut at the
attempt's deadline; a normal compressed answer is still decoded; and we ask
for ``Accept-Encoding: identity``. Both senders.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import pytest

import hookwise as hw
from hookwise.history import RESPONSE_BYTES
from hookwise.senders import AsyncHttpxSender, HttpxSender
from hookwise.wire import OutgoingRequest, RawResponse

POLICY = hw.NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True)
TIMEOUT = 1.0
MEMORY_BOUND = 64 * 1024 * 1024

Behaviour = Callable[[socket.socket], None]


class Receiver:
    """A raw socket server on 127.0.0.1: reads each request, keeps its
    headers, then lets ``behaviour`` answer on the socket."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[dict[str, str]] = []
        self.saw_close = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/hook"
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            handler = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            handler.start()
            self._threads.append(handler)

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            buffer = b""
            try:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, rest = buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")[1:]
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)
                }
                length = int(headers.get("content-length", "0"))
                while len(rest) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    rest += chunk
                self.requests.append(headers)
                self.behaviour(conn)
            except OSError:  # the client hung up on us
                self.saw_close.set()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)


def answer(body: bytes, *, encoding: str | None = None, status: int = 200) -> Behaviour:
    def behaviour(conn: socket.socket) -> None:
        head = f"HTTP/1.1 {status} OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
        if encoding is not None:
            head += f"Content-Encoding: {encoding}\r\n"
        conn.sendall(head.encode() + b"\r\n" + body)

    return behaviour


def endless(conn: socket.socket) -> None:
    """Announces 50 MB and sends it in 64 KB pieces until the client stops
    reading; never holds more than one piece (tracemalloc sees this thread)."""
    total = 50 * 1024 * 1024
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode())
    piece = b"x" * 65536
    for _ in range(total // len(piece)):
        conn.sendall(piece)


def trickle(*, in_headers: bool = False) -> Behaviour:
    def behaviour(conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
        if in_headers:
            for i in range(len(head)):
                conn.sendall(head[i : i + 1])
                time.sleep(0.2)
        else:
            conn.sendall(head)
        for _ in range(100):  # 20 s at most, far past the deadline
            conn.sendall(b"x")
            time.sleep(0.2)

    return behaviour


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


def _request(url: str) -> OutgoingRequest:
    return OutgoingRequest("POST", url, {"content-type": "application/json"}, b'{"a": 1}')


def attempt(kind: str, url: str) -> RawResponse | Exception:
    if kind == "sync":
        sender = HttpxSender(POLICY, timeout=TIMEOUT)
        try:
            return sender.attempt(_request(url))
        finally:
            sender.close()

    async def go() -> RawResponse | Exception:
        sender = AsyncHttpxSender(POLICY, timeout=TIMEOUT)
        try:
            return await sender.attempt(_request(url))
        finally:
            await sender.aclose()

    return asyncio.run(go())


def measured(kind: str, url: str) -> tuple[RawResponse | Exception, int]:
    """The attempt's result and the peak of Python memory allocated during it."""
    tracemalloc.start()
    try:
        result = attempt(kind, url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def _gzip_stream(chunks: Iterator[bytes]) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    out = [compressor.compress(chunk) for chunk in chunks]
    out.append(compressor.flush())
    return b"".join(out)


def _zeros(megabytes: int) -> Iterator[bytes]:
    block = bytes(1024 * 1024)
    for _ in range(megabytes):
        yield block


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """10 MB of zeros, gzipped: about 10 KB."""
    return _gzip_stream(_zeros(10))


@pytest.fixture(scope="module")
def double_bomb() -> bytes:
    """512 MB of zeros gzipped twice: a few KB that expand to 512 MB."""
    return gzip.compress(_gzip_stream(_zeros(512)), 9)


KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


@KINDS
def test_a_gzip_bomb_costs_little_memory(
    kind: str, serve: Callable[[Behaviour], Receiver], bomb: bytes
) -> None:
    receiver = serve(answer(bomb, encoding="gzip"))
    result, peak = measured(kind, receiver.url)
    assert isinstance(result, RawResponse), result
    assert result.status_code == 200
    assert result.body == bytes(RESPONSE_BYTES)  # decoded, and cut at the cap
    assert peak < MEMORY_BOUND, peak


@KINDS
def test_a_double_gzip_bomb_costs_little_memory(
    kind: str, serve: Callable[[Behaviour], Receiver], double_bomb: bytes
) -> None:
    assert len(double_bomb) < RESPONSE_BYTES
    receiver = serve(answer(double_bomb, encoding="gzip, gzip"))
    result, peak = measured(kind, receiver.url)
    assert isinstance(result, RawResponse), result
    assert result.body == bytes(RESPONSE_BYTES)
    assert peak < MEMORY_BOUND, peak


@KINDS
def test_a_50_mb_body_is_read_only_up_to_the_cap(
    kind: str, serve: Callable[[Behaviour], Receiver]
) -> None:
    receiver = serve(endless)
    result, peak = measured(kind, receiver.url)
    assert isinstance(result, RawResponse), result
    assert result.body == b"x" * RESPONSE_BYTES
    assert peak < MEMORY_BOUND, peak


@KINDS
def test_a_trickling_body_is_cut_at_the_deadline(
    kind: str, serve: Callable[[Behaviour], Receiver]
) -> None:
    receiver = serve(trickle())
    started = time.monotonic()
    result = attempt(kind, receiver.url)
    elapsed = time.monotonic() - started
    assert isinstance(result, Exception)
    assert isinstance(result, TimeoutError), repr(result)
    assert elapsed < TIMEOUT * 3, elapsed
    assert receiver.saw_close.wait(timeout=5)  # the server's next byte found the connection gone


def test_async_cuts_trickling_headers_at_the_deadline(
    serve: Callable[[Behaviour], Receiver],
) -> None:
    # The sync sender cannot: httpx's per-read timeout restarts with each
    # header byte (documented in HttpxSender.attempt).
    receiver = serve(trickle(in_headers=True))
    started = time.monotonic()
    result = attempt("async", receiver.url)
    elapsed = time.monotonic() - started
    assert isinstance(result, TimeoutError), repr(result)
    assert elapsed < TIMEOUT * 3, elapsed
    assert receiver.saw_close.wait(timeout=5)


@KINDS
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "x-gzip", "identity", None])
def test_a_normal_compressed_answer_is_decoded(
    kind: str, encoding: str | None, serve: Callable[[Behaviour], Receiver]
) -> None:
    payload = json.dumps({"ok": True, "items": list(range(200))}).encode()
    body = {"gzip": gzip.compress, "x-gzip": gzip.compress, "deflate": zlib.compress}.get(
        encoding or "", lambda b: b
    )(payload)
    receiver = serve(answer(body, encoding=encoding))
    result = attempt(kind, receiver.url)
    assert isinstance(result, RawResponse), result
    assert result.body == payload


@KINDS
def test_raw_deflate_is_decoded_too(kind: str, serve: Callable[[Behaviour], Receiver]) -> None:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    receiver = serve(
        answer(compressor.compress(b"raw deflate") + compressor.flush(), encoding="deflate")
    )
    result = attempt(kind, receiver.url)
    assert isinstance(result, RawResponse), result
    assert result.body == b"raw deflate"


@KINDS
@pytest.mark.parametrize(
    ("encoding", "body"), [("br", b"\x8b\x02\x80hi\x03"), ("gzip", b"not gzip at all")]
)
def test_an_answer_we_cannot_decode_is_kept_raw_and_marked(
    kind: str, encoding: str, body: bytes, serve: Callable[[Behaviour], Receiver]
) -> None:
    receiver = serve(answer(body, encoding=encoding, status=202))
    result = attempt(kind, receiver.url)
    assert isinstance(result, RawResponse), result
    assert result.status_code == 202
    assert b"not decoded" in result.body
    assert encoding.encode() in result.body
    assert result.body.endswith(body)
    assert len(result.body) <= RESPONSE_BYTES


@KINDS
def test_an_undecodable_large_answer_stays_under_the_cap(
    kind: str, serve: Callable[[Behaviour], Receiver]
) -> None:
    receiver = serve(answer(b"\xff" * (3 * RESPONSE_BYTES), encoding="br"))
    result = attempt(kind, receiver.url)
    assert isinstance(result, RawResponse), result
    assert len(result.body) == RESPONSE_BYTES
    assert result.body.startswith(b"[hookwise: body not decoded")


@KINDS
def test_the_request_asks_for_identity(kind: str, serve: Callable[[Behaviour], Receiver]) -> None:
    receiver = serve(answer(b"ok"))
    result = attempt(kind, receiver.url)
    assert isinstance(result, RawResponse), result
    assert receiver.requests[0]["accept-encoding"] == "identity"


@KINDS
def test_an_accept_encoding_of_the_webhook_is_kept(
    kind: str, serve: Callable[[Behaviour], Receiver]
) -> None:
    receiver = serve(answer(gzip.compress(b"zipped"), encoding="gzip"))
    request = OutgoingRequest("POST", receiver.url, {"Accept-Encoding": "gzip"}, b"{}")
    if kind == "sync":
        sender = HttpxSender(POLICY, timeout=TIMEOUT)
        result = sender.attempt(request)
        sender.close()
    else:

        async def go() -> RawResponse | Exception:
            sender = AsyncHttpxSender(POLICY, timeout=TIMEOUT)
            try:
                return await sender.attempt(request)
            finally:
                await sender.aclose()

        result = asyncio.run(go())
    assert isinstance(result, RawResponse), result
    assert receiver.requests[0]["accept-encoding"] == "gzip"
    assert result.body == b"zipped"
