"""The README quickstart as a script that runs offline.

It stores everything in memory, answers every request with an
``httpx.MockTransport`` instead of the network, and resolves every host to a
fixed public address, so no DNS lookup and no connection happen. It prints
the request hookwise would send to GitHub, checks its signatures the way a
receiver would, then shows the delivery history.

    python examples/quickstart.py
"""

from __future__ import annotations

import threading

import httpx

import hookwise as hw

GITHUB_TOKEN = "ghp_example-token-0123456789"  # fake values: nothing leaves this process
SIGNING_KEY = "s3cr3t-example-signing-key"

received: list[httpx.Request] = []
lock = threading.Lock()


def github(request: httpx.Request) -> httpx.Response:
    """Stands in for api.github.com. Echoes the body back, as some receivers
    do: hookwise keeps the answer in its history with secrets redacted."""
    with lock:
        received.append(request)
    return httpx.Response(200, content=request.content)


def show(request: httpx.Request) -> None:
    print(f"{request.method} {request.url}")
    for name, value in request.headers.items():
        if name == "authorization":
            value = "Bearer <the GITHUB_TOKEN secret>"  # never print a secret
        print(f"  {name}: {value}")
    print(f"  body: {request.content.decode()}")
    for scheme in (hw.Scheme.STANDARD, hw.Scheme.WANDB):
        hw.verify(secret=SIGNING_KEY, body=request.content, headers=request.headers, scheme=scheme)
        print(f"  signature verified: {scheme.value}")


def main() -> None:
    # A fake resolver: api.github.com "resolves" to a public address, so the
    # NetworkPolicy allows it and no real DNS query is made.
    network = hw.NetworkPolicy(resolver=lambda host, port: ["93.184.216.34"])

    store = hw.MemoryStorage()  # a random key; use SQLiteStorage to keep things
    admin = hw.Admin(store, network=network)

    admin.create_secret(hw.Secret(team="ml-team", name="GITHUB_TOKEN", value=GITHUB_TOKEN))
    admin.create_secret(hw.Secret(team="ml-team", name="SIGNING_KEY", value=SIGNING_KEY))
    admin.create_webhook(
        hw.Webhook(
            team="ml-team",
            name="github-dispatch",
            url="https://api.github.com/repos/acme/models/dispatches",
            access_token="GITHUB_TOKEN",  # -> Authorization: Bearer ..., and ${ACCESS_TOKEN}
            secret="SIGNING_KEY",  # signs each request, usable as ${SIGNING_KEY}
        )
    )
    admin.create_automation(
        hw.Automation(
            name="deploy-on-production-alias",
            scope=hw.Scope.registry("ml-team", "model-registry"),
            event=hw.OnAddArtifactAlias(alias=r"^production$"),
            action=hw.SendWebhook(
                webhook="github-dispatch",
                payload={
                    "event_type": "BUILD_AND_DEPLOY",
                    "client_payload": {
                        "version": "${artifact_version_string}",
                        "author": "${event_author}",
                    },
                },
            ),
        )
    )

    transport = httpx.MockTransport(github)
    with hw.Dispatcher(store, network=network, transport=transport) as dispatcher:
        dispatcher.handle(
            hw.Event.artifact_alias_added(
                entity="ml-team",
                project="model-registry",
                collection="churn",
                version="v12",
                alias="production",
                author="alice",
                metadata={"accuracy": 0.93},
            )
        )
        # An alias the filter does not match: nothing is sent.
        dispatcher.handle(
            hw.Event.artifact_alias_added(
                entity="ml-team",
                project="model-registry",
                collection="churn",
                version="v13",
                alias="staging",
                author="bob",
            )
        )
        dispatcher.flush(timeout=5)

        print("== the request the automation sent ==")
        with lock:
            show(received[0])

        # The Test button: sends now, stores nothing. The payload names the
        # signing secret; the result shows it as its placeholder, and the
        # receiver's echo of the value comes back redacted.
        result = dispatcher.test_webhook(
            "ml-team", "github-dispatch", payload={"ping": "$SIGNING_KEY"}
        )
        print("\n== test_webhook ==")
        print(f"ok={result.ok} status={result.status_code}")
        print(f"sent (display copy): {result.request_body}")
        print(f"answer: {result.body}")

    print("\n== delivery history ==")
    for delivery in admin.deliveries(team="ml-team"):
        print(f"{delivery.status}  {delivery.automation} -> {delivery.url}")
        print(f"  event: {delivery.event_type}  webhook-id: {delivery.message_id}")
        print(f"  payload: {delivery.display}")
        for attempt in admin.attempts(delivery.id):
            outcome = attempt.error or f"HTTP {attempt.response_status}"
            print(f"  attempt {attempt.number}: {outcome}, answer: {attempt.response_body}")


if __name__ == "__main__":
    main()
