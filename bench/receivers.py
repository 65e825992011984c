"""Local receivers for the benches, in a child process so they never compete
with the senders for the bench's GIL: minimal asyncio HTTP/1.1 keep-alive
servers, one port per kind. ``fast`` answers at once, ``slow`` after
``SLOW_SECONDS``, ``trickle`` one byte every ``TRICKLE_SECONDS``. Only
127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

FAST, SLOW, TRICKLE = "fast", "slow", "trickle"
ENDPOINTS = (FAST, SLOW, TRICKLE)
SLOW_SECONDS = 2.0
TRICKLE_SECONDS = 0.5  # between two bytes of the trickled answer

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"  # trickled: 38 bytes, 19 s
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _content_length(head: bytes) -> int | None:
    """The body length of a request head; None for chunked, which we do not take."""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            return None
    return length


async def _trickle(writer: asyncio.StreamWriter) -> bool:
    """Send OK one byte at a time; False if the client hung up first."""
    for byte in OK:
        if writer.is_closing():
            return False
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(TRICKLE_SECONDS)
    return True


async def _answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str, counts: Any
) -> None:
    """Serve one keep-alive connection the way ``kind`` does."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = _content_length(head)
            if length is None:
                writer.write(BAD_REQUEST)
                break
            if length:
                await reader.readexactly(length)
            counts[ENDPOINTS.index(kind)] += 1  # one writer, this process: no lock
            if kind == SLOW:
                await asyncio.sleep(SLOW_SECONDS)
            if kind == TRICKLE:
                if not await _trickle(writer):
                    break
            else:
                writer.write(OK)
                await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


def _receive(counts: Any, ready: Connection) -> None:
    """The child process: one server per kind, ports sent up, run until killed."""

    async def serve() -> None:
        ports = {}
        for kind in ENDPOINTS:

            async def handler(r: Any, w: Any, kind: str = kind) -> None:
                await _answer(r, w, kind, counts)

            server = await asyncio.start_server(handler, "127.0.0.1", 0, backlog=1024)
            ports[kind] = server.sockets[0].getsockname()[1]
        ready.send(ports)
        await asyncio.Event().wait()  # until the parent terminates us

    asyncio.run(serve())


@contextlib.contextmanager
def receivers() -> Iterator[tuple[dict[str, str], Callable[[str], int]]]:
    """The receivers' URLs, and a function that reads how many POSTs one got."""
    context = multiprocessing.get_context("spawn")
    counts = context.Array("q", len(ENDPOINTS), lock=False)
    ours, theirs = context.Pipe(duplex=False)
    process = context.Process(target=_receive, args=(counts, theirs), daemon=True)
    process.start()
    try:
        if not ours.poll(30):
            raise RuntimeError("the receivers did not start within 30 s")
        ports = ours.recv()
        urls = {kind: f"http://127.0.0.1:{port}/{kind}" for kind, port in ports.items()}
        yield urls, lambda kind: int(counts[ENDPOINTS.index(kind)])
    finally:
        process.terminate()
        process.join(5)
