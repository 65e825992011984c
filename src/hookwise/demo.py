"""``hookwise demo``: the whole loop on this machine, in a few seconds.

A receiver on 127.0.0.1, a SQLite store in a temporary folder, a secret pair,
a webhook and two automations; then artifact events go in, and what the
receiver got (verified) and the delivery history come out.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import hookwise as hw

__all__ = ["run_demo"]

TEAM = "ml-team"
REGISTRY = "model-registry"


class _Receiver:
    """Records every POST on 127.0.0.1 and answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"received": true}')

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the demo prints what matters."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _mask(value: str) -> str:
    return value[:4] + "…" if len(value) > 8 else "…"


def run_demo(out: Callable[[str], None] = print) -> int:
    """Run the demo; returns a process exit code (0: every request verified)."""
    token, signing = "ghp_demo-access-token-0123456789", "whsec_" + "ZGVtby1zaWduaW5nLWtleQ=="
    receiver = _Receiver()
    local = hw.NetworkPolicy(allow=["127.0.0.0/8"], allow_http=True)
    problems = 0
    with tempfile.TemporaryDirectory(prefix="hookwise-demo-") as folder:
        path = Path(folder) / "hookwise.db"
        store = hw.SQLiteStorage(path, key=hw.SecretKey.generate())
        try:
            out(f"hookwise {hw.__version__} demo: store {path}, receiver {receiver.url('/')}\n")
            admin = hw.Admin(store, network=local)
            admin.create_secret(hw.Secret(team=TEAM, name="GITHUB_TOKEN", value=token))
            admin.create_secret(hw.Secret(team=TEAM, name="SIGNING_KEY", value=signing))
            admin.create_webhook(
                hw.Webhook(
                    team=TEAM,
                    name="github-dispatch",
                    url=receiver.url("/dispatches"),
                    access_token="GITHUB_TOKEN",  # noqa: S106 - a secret's name
                    secret="SIGNING_KEY",  # noqa: S106
                )
            )
            admin.create_automation(
                hw.Automation(
                    name="deploy-on-production-alias",
                    scope=hw.Scope.registry(TEAM, REGISTRY),
                    event=hw.OnAddArtifactAlias(alias=r"^production$"),
                    action=hw.SendWebhook(
                        webhook="github-dispatch",
                        payload={
                            "event_type": "BUILD_AND_DEPLOY",
                            "client_payload": {
                                "version": "${artifact_version_string}",
                                "author": "${event_author}",
                                "accuracy": "${artifact_metadata.accuracy}",
                            },
                        },
                    ),
                )
            )
            admin.create_automation(
                hw.Automation(
                    name="announce-links",
                    scope=hw.Scope.registry(TEAM, REGISTRY),
                    event=hw.OnLinkArtifact(),
                    action=hw.SendWebhook(
                        webhook="github-dispatch",
                        payload={"text": "${event_author} linked ${artifact_version_string}"},
                    ),
                )
            )
            out("created 2 secrets, 1 webhook, 2 automations\n")

            events = [
                hw.Event.artifact_alias_added(
                    entity=TEAM, project=REGISTRY, collection="churn", version="v12",
                    alias="production", author="alice", metadata={"accuracy": 0.93},
                ),
                hw.Event.artifact_alias_added(
                    entity=TEAM, project=REGISTRY, collection="churn", version="v13",
                    alias="staging", author="bob",
                ),
                hw.Event.artifact_linked(
                    entity=TEAM, project=REGISTRY, collection="churn", version="v13",
                    author="bob",
                ),
            ]  # fmt: skip
            with hw.Dispatcher(store, network=local) as dispatcher:
                for event in events:
                    fired = dispatcher.handle(event)
                    detail = event.alias or event.version
                    out(f"event {event.type.value} ({detail}): {len(fired)} delivery(ies) queued")
                dispatcher.flush(timeout=10)
                test = dispatcher.test_webhook(TEAM, "github-dispatch", payload={"ping": "pong"})
                out(f"test_webhook: ok={test.ok} status={test.status_code} body={test.body}\n")

            out(f"the receiver got {len(receiver.received)} requests:")
            for number, (where, headers, body) in enumerate(receiver.received, 1):
                out(f"\n#{number} POST {where}")
                for name in ("Content-Type", "User-Agent", "webhook-id", "webhook-timestamp"):
                    out(f"  {name}: {headers.get(name)}")
                bearer = headers.get("Authorization", "").removeprefix("Bearer ")
                same = bearer == token
                out(f"  Authorization: Bearer {_mask(bearer)} (matches the token: {same})")
                for scheme in hw.Scheme:
                    try:
                        hw.verify(signing, body, headers, scheme=scheme)
                        out(f"  signature {scheme.value}: verified")
                    except hw.SignatureError as exc:
                        problems += 1
                        out(f"  signature {scheme.value}: FAILED ({exc})")
                out(f"  body: {json.dumps(json.loads(body), indent=None)}")

            out("\ndelivery history (newest first):")
            for delivery in admin.deliveries(team=TEAM):
                out(
                    f"  {delivery.status.value:<9} {delivery.automation:<28} "
                    f"{delivery.event_type:<18} HTTP {delivery.response_status} "
                    f"attempts={delivery.attempts} payload={delivery.display}"
                )
                if delivery.status is not hw.DeliveryStatus.SUCCEEDED:
                    problems += 1
        finally:
            store.close()
            receiver.close()
    if len(receiver.received) != 3:  # two automations fired, plus the test request
        problems += 1
    out("\nall requests delivered and verified" if not problems else f"\n{problems} problem(s)")
    return 1 if problems else 0
