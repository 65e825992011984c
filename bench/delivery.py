"""Deliveries per second: hookwise's dispatchers against hand-written httpx loops.

A keep-alive HTTP/1.1 receiver on 127.0.0.1 answers every POST with 204.
The baselines send the same number of POSTs with a plain ``httpx.Client``
loop and a plain ``httpx.AsyncClient`` loop (``concurrency`` in flight);
hookwise first stores the deliveries through ``handle()`` (not timed) and
then drains the SQLite outbox with a worker (timed until ``flush()`` says
nothing is left). Every side runs in the same process, in the same run.

Run: ``python bench/delivery.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

import hookwise as hw

TEAM = "ml-team"
QUICK = "--quick" in sys.argv
COUNT = 300 if QUICK else 1_500
CONCURRENCY = 4
LOCAL = hw.NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _payload(i: int) -> bytes:
    return b'{"event_type": "ADD_ARTIFACT_ALIAS", "version": "v%d"}' % i


def httpx_sync(url: str) -> None:
    with httpx.Client() as client:
        for i in range(COUNT):
            client.post(url, content=_payload(i)).raise_for_status()


def httpx_async(url: str) -> None:
    async def main() -> None:
        queue = iter(range(COUNT))
        async with httpx.AsyncClient() as client:

            async def lane() -> None:
                for i in queue:
                    (await client.post(url, content=_payload(i))).raise_for_status()

            await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))

    asyncio.run(main())


def _outbox(path: Path, url: str) -> hw.SQLiteStorage:
    """A store with COUNT deliveries waiting for ``url``."""
    store = hw.SQLiteStorage(path, key=hw.SecretKey.generate())
    admin = hw.Admin(store, network=LOCAL)
    admin.create_webhook(hw.Webhook(team=TEAM, name="hook", url=url, signing=()))
    admin.create_automation(
        hw.Automation(
            "on-alias",
            hw.Scope.project(TEAM, "models"),
            hw.OnAddArtifactAlias(alias="^production$"),
            hw.SendWebhook(webhook="hook", payload={"version": "${artifact_version}"}),
        )
    )
    with hw.Dispatcher(store, network=LOCAL, worker=False) as dispatcher:
        for i in range(COUNT):
            event = hw.Event.artifact_alias_added(
                entity=TEAM, project="models", collection="c", version=f"v{i}", alias="production"
            )
            dispatcher.handle(event)
        dispatcher.close(timeout=0)
    return store


def hookwise_sync(store: hw.SQLiteStorage) -> None:
    with hw.Dispatcher(store, network=LOCAL, concurrency=CONCURRENCY) as dispatcher:
        assert dispatcher.flush(timeout=120)


def hookwise_async(store: hw.SQLiteStorage) -> None:
    async def main() -> None:
        async with hw.AsyncDispatcher(store, network=LOCAL, concurrency=CONCURRENCY) as d:
            assert await d.flush(timeout=120)

    asyncio.run(main())


def _rate(send: Callable[[], None]) -> float:
    started = time.perf_counter()
    send()
    return COUNT / (time.perf_counter() - started)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    rates: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for round_ in range(2):  # the second round runs warm; the best counts
                for name, send, shell in (
                    ("sync", httpx_sync, hookwise_sync),
                    ("async", httpx_async, hookwise_async),
                ):
                    rates[f"httpx {name}"] = max(
                        rates.get(f"httpx {name}", 0.0), _rate(lambda s=send: s(url))
                    )
                    store = _outbox(Path(folder) / f"{name}{round_}.db", url)
                    rate = _rate(lambda sh=shell, st=store: sh(st))
                    unfinished = store.outstanding()[0]
                    store.close()
                    assert unfinished == 0, f"{unfinished} deliveries left"
                    rates[f"hookwise {name}"] = max(rates.get(f"hookwise {name}", 0.0), rate)
    finally:
        server.shutdown()
    print(f"{COUNT:,} POSTs to a keep-alive receiver on 127.0.0.1, best of 2 rounds")
    for name in ("sync", "async"):
        baseline, ours = rates[f"httpx {name}"], rates[f"hookwise {name}"]
        print(f"  hand-written httpx {name} loop: {baseline:8.0f} deliveries/s")
        print(f"  hookwise {name} dispatcher:     {ours:8.0f} deliveries/s")
        print(f"  ratio hookwise / httpx ({name}): {ours / baseline:.2f}")


if __name__ == "__main__":
    main()
