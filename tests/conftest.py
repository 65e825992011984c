"""Shared fixtures: a real HTTP receiver on 127.0.0.1, storages, and a
driver that runs the sync and the async dispatcher through one test body."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import attrs
import httpx
import pytest

import hookwise as hw

T = TypeVar("T")

TEAM = "ml-team"
TOKEN = "ghp_token-VALUE-1234567890"
SIGNING = "s3cr3t-signing-VALUE"
LOCAL = hw.NetworkPolicy(allow=["127.0.0.0/8", "::1"], allow_http=True)
# A public address for unit tests: never connected to (MockTransport answers).
PUBLIC = hw.NetworkPolicy(resolver=lambda host, port: ["93.184.216.34"])


@attrs.define
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A real HTTP server on 127.0.0.1 that records requests and answers
    from a script of (status, headers, body), then 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[tuple[int, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(
                        Received("POST", self.path, dict(self.headers.items()), body)
                    )
                    status, headers, answer = (
                        receiver.script.pop(0) if receiver.script else (200, {}, b"ok")
                    )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[hw.Storage]:
    key = hw.SecretKey.generate()
    storage: hw.Storage
    if request.param == "memory":
        storage = hw.MemoryStorage(key=key)
    else:
        storage = hw.SQLiteStorage(tmp_path / "hookwise.db", key=key)
    yield storage
    storage.close()


def setup_team(
    store: hw.Storage,
    url: str,
    *,
    network: hw.NetworkPolicy = LOCAL,
    payload: object = None,
    alias: str = r"^production$",
) -> hw.Admin:
    """A secret pair, a webhook using both, and an alias automation."""
    admin = hw.Admin(store, network=network)
    admin.create_secret(hw.Secret(team=TEAM, name="GITHUB_TOKEN", value=TOKEN))
    admin.create_secret(hw.Secret(team=TEAM, name="SIGNING_KEY", value=SIGNING))
    admin.create_webhook(
        hw.Webhook(
            team=TEAM,
            name="github-dispatch",
            url=url,
            access_token="GITHUB_TOKEN",
            secret="SIGNING_KEY",
        )
    )
    admin.create_automation(
        hw.Automation(
            name="deploy-on-production",
            scope=hw.Scope.registry(TEAM, "model-registry"),
            event=hw.OnAddArtifactAlias(alias=alias),
            action=hw.SendWebhook(
                webhook="github-dispatch",
                payload=payload
                if payload is not None
                else {
                    "event_type": "BUILD_AND_DEPLOY",
                    "client_payload": {
                        "version": "${artifact_version_string}",
                        "author": "${event_author}",
                        "token": "${ACCESS_TOKEN}",
                    },
                },
            ),
        )
    )
    return admin


def alias_event(alias: str = "production", **extra: Any) -> hw.Event:
    return hw.Event.artifact_alias_added(
        entity=TEAM,
        project="model-registry",
        collection="churn",
        version="v12",
        alias=alias,
        author="alice",
        **extra,
    )


class AsyncDriver:
    """Runs an AsyncDispatcher on a loop in its own thread and exposes the
    sync Dispatcher's API, so one test body checks both shells."""

    def __init__(self, dispatcher: hw.AsyncDispatcher, loop: asyncio.AbstractEventLoop) -> None:
        self.dispatcher = dispatcher
        self.loop = loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def handle(self, event: hw.Event) -> list[hw.Delivery]:
        return self._run(self.dispatcher.handle(event))

    def flush(self, timeout: float | None = None) -> bool:
        return self._run(self.dispatcher.flush(timeout))

    def close(self, timeout: float = 10.0) -> int:
        return self._run(self.dispatcher.close(timeout))

    def redeliver(self, delivery_id: str) -> hw.Delivery:
        return self._run(self.dispatcher.redeliver(delivery_id))

    def test_webhook(self, team: str, name: str, payload: object = None) -> hw.WebhookTestResult:
        return self._run(self.dispatcher.test_webhook(team, name, payload))

    def deliver_due(self) -> int:
        return self._run(self.dispatcher.deliver_due())


MakeDispatcher = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def make_dispatcher(request: pytest.FixtureRequest) -> Iterator[MakeDispatcher]:
    """``make_dispatcher(store, network=..., handler=...)``: a Dispatcher or
    a driven AsyncDispatcher; ``handler`` plugs an httpx.MockTransport in."""
    made: list[Any] = []
    loop: asyncio.AbstractEventLoop | None = None
    thread: threading.Thread | None = None
    if request.param == "async":
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()

    def make(
        store: hw.Storage,
        *,
        handler: Callable[[httpx.Request], httpx.Response] | None = None,
        **options: Any,
    ) -> Any:
        options.setdefault("network", LOCAL)
        options.setdefault("refresh_interval", 0.0)
        if loop is None:
            transport = None if handler is None else httpx.MockTransport(handler)
            dispatcher: Any = hw.Dispatcher(store, transport=transport, **options)
        else:
            atransport = None if handler is None else httpx.MockTransport(handler)

            async def build() -> hw.AsyncDispatcher:
                return hw.AsyncDispatcher(store, transport=atransport, **options)

            dispatcher = AsyncDriver(asyncio.run_coroutine_threadsafe(build(), loop).result(), loop)
        made.append(dispatcher)
        return dispatcher

    make.kind = request.param  # type: ignore[attr-defined]
    yield make
    for dispatcher in made:
        dispatcher.close(timeout=1.0)
    if loop is not None and thread is not None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
