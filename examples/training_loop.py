"""Run automations in a simulated training loop, offline.

A run logs its loss every step. Two automations watch the project: one posts
to Slack when the loss jumps (a z-score of 3 or more against the 30 values
before it), the other when the run fails. The loss spikes twice: the first
spike fires, the second falls inside the automation's cooldown (24 hours per
run by default). A NaN loss is skipped, never an error. Then the run crashes.

Everything stays in this process: ``MemoryStorage``, an ``httpx.MockTransport``
in place of Slack, and a resolver that answers every host with a fixed
public address, so no DNS lookup and no connection happen. The hookwise
logger is set to DEBUG, so stderr shows the skipped value and the cooldown.

    python examples/training_loop.py
"""

from __future__ import annotations

import json
import logging
import math
import threading

import httpx

import hookwise as hw

ENTITY, PROJECT = "ml-team", "churn-training"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"  # a fake incoming webhook

SPIKE_PAYLOAD = {
    "text": "${metric_name} jumped to ${metric_value} at step ${step} in run ${run_name}",
    "blocks": [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*${metric_name}* jumped to `${metric_value}` at step ${step} "
                "in run *${run_name}* (`${run_id}`, ${run_user})",
            },
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "${event_type} in ${entity_name}/${project_name}"}
            ],
        },
    ],
}

FAILED_PAYLOAD = {
    "text": "Run ${run_name} ${run_state} in ${entity_name}/${project_name}",
    "blocks": [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "Run *${run_name}* (`${run_id}`) by ${run_user} is *${run_state}*",
            },
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "${event_type} in ${entity_name}/${project_name}"}
            ],
        },
    ],
}

received: list[httpx.Request] = []
lock = threading.Lock()


def slack(request: httpx.Request) -> httpx.Response:
    """Stands in for Slack's incoming webhook, which answers ``ok``."""
    with lock:
        received.append(request)
    return httpx.Response(200, text="ok")


SPIKES = {40: 4.0, 52: 6.0}  # step -> loss
NAN_STEP = 46
CRASH_STEP = 55


def loss_at(step: int) -> float:
    """A decaying loss with a little deterministic noise, two spikes and a NaN."""
    if step in SPIKES:
        return SPIKES[step]
    if step == NAN_STEP:
        return math.nan
    return 2.0 * 0.95**step + 0.02 * math.sin(step)


def setup(admin: hw.Admin) -> None:
    admin.create_webhook(hw.Webhook(team=ENTITY, name="slack-alerts", url=SLACK_URL))
    scope = hw.Scope.project(ENTITY, PROJECT)  # run automations need a project scope
    admin.create_automation(
        hw.Automation(
            name="loss-spike",
            scope=scope,
            event=hw.OnRunMetric(hw.RunMetric("loss").zscore(30) >= 3),
            action=hw.SendWebhook(webhook="slack-alerts", payload=SPIKE_PAYLOAD),
        )
    )
    admin.create_automation(
        hw.Automation(
            name="run-failed",
            scope=scope,
            event=hw.OnRunState(states={hw.RunState.FAILED}),
            action=hw.SendWebhook(webhook="slack-alerts", payload=FAILED_PAYLOAD),
        )
    )


def train(dispatcher: hw.Dispatcher) -> None:
    run = hw.Run(entity=ENTITY, project=PROJECT, id="3kd9x", name="lr-sweep-3", user="alice")
    dispatcher.handle(hw.Event.run_state(run, hw.RunState.RUNNING))
    try:
        for step in range(60):
            loss = loss_at(step)
            acc = 0.5 + step / 200
            fired = dispatcher.handle(
                hw.Event.run_metrics(run, {"loss": loss, "acc": acc}, step=step)
            )
            for delivery in fired:
                print(f"step {step}: loss={loss} -> {delivery.automation} ({delivery.event_type})")
            if step in SPIKES and not fired:
                print(f"step {step}: loss={loss} -> nothing sent: loss-spike is cooling down")
            if step == NAN_STEP:
                print(f"step {step}: loss={loss} -> skipped by the windows, no error")
            if step == CRASH_STEP:
                raise RuntimeError("CUDA out of memory")  # the run crashes
    except RuntimeError as exc:
        print(f"step {step}: the run crashed: {exc}")
        for delivery in dispatcher.handle(hw.Event.run_state(run, hw.RunState.FAILED)):
            print(f"step {step}: -> {delivery.automation} ({delivery.event_type})")


def main() -> None:
    logging.basicConfig(format="log: %(name)s %(levelname)s %(message)s")
    logging.getLogger("hookwise").setLevel(logging.DEBUG)

    # hooks.slack.com "resolves" to a public address: allowed, and no DNS query.
    network = hw.NetworkPolicy(resolver=lambda host, port: ["93.184.216.34"])
    store = hw.MemoryStorage()
    admin = hw.Admin(store, network=network)
    setup(admin)

    print("== training ==")
    with hw.Dispatcher(store, network=network, transport=httpx.MockTransport(slack)) as dispatcher:
        train(dispatcher)
        dispatcher.flush(timeout=5)

    print("\n== the requests Slack received ==")
    with lock:
        for request in received:
            print(f"{request.method} {request.url}")
            print(json.dumps(json.loads(request.content), indent=2))
        print(f"\nrequests sent: {len(received)}")

    print("\n== delivery history ==")
    for delivery in reversed(admin.deliveries(team=ENTITY)):
        print(f"{delivery.status}  {delivery.automation}  {delivery.event_type}")


if __name__ == "__main__":
    main()
