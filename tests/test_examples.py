"""The files in examples/ work: each payload template compiles, validates and
renders an event into the JSON a receiver expects, the quickstart script
runs offline without printing a secret, and the training-loop script sends
exactly the run alerts it describes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import hookwise as hw
from hookwise.intake import event_values
from tests.conftest import alias_event

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TEMPLATES = sorted(EXAMPLES.glob("*.json"))

VERSION_STRING = "ml-team/model-registry/churn:v12"


@pytest.fixture
def event() -> hw.Event:
    return alias_event(metadata={"accuracy": 0.93})


def render(name: str, event: hw.Event) -> Any:
    template = hw.compile_template((EXAMPLES / name).read_text(encoding="utf-8"))
    template.validate(allowed_secrets=set())  # the examples need no secret
    body = template.render(event_values(event, event.type), metadata=event.metadata)
    return json.loads(body)


def strings(value: Any) -> list[str]:
    """Every string value in a JSON tree."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def test_there_are_three_payload_examples() -> None:
    assert [p.name for p in TEMPLATES] == [
        "github_repository_dispatch.json",
        "microsoft_teams.json",
        "slack.json",
    ]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_every_placeholder_is_replaced(path: Path, event: hw.Event) -> None:
    template = hw.compile_template(path.read_text(encoding="utf-8"))
    assert template.variables, "an example without placeholders shows nothing"
    assert not template.secrets
    rendered = render(path.name, event)
    assert any(VERSION_STRING in text for text in strings(rendered))
    for text in strings(rendered):
        assert "${" not in text, text


def test_github_repository_dispatch(event: hw.Event) -> None:
    assert render("github_repository_dispatch.json", event) == {
        "event_type": "BUILD_AND_DEPLOY",
        "client_payload": {
            "event_author": "alice",
            "artifact_version": "v12",
            "artifact_version_string": VERSION_STRING,
            "artifact_collection_name": "churn",
            "project_name": "model-registry",
            "entity_name": "ml-team",
        },
    }


def test_microsoft_teams_message_card(event: hw.Event) -> None:
    card = render("microsoft_teams.json", event)
    assert card["@type"] == "MessageCard"
    assert card["@context"] == "http://schema.org/extensions"
    assert card["summary"] == "ADD_ARTIFACT_ALIAS on churn"
    (section,) = card["sections"]
    assert section["activityTitle"] == f"New model version: {VERSION_STRING}"
    assert section["text"] == "Alias **production** was added by alice."
    assert {fact["name"]: fact["value"] for fact in section["facts"]} == {
        "Author": "alice",
        "Event type": "ADD_ARTIFACT_ALIAS",
        "Collection": "churn",
        "Version": "v12",
        "Project": "ml-team/model-registry",
    }


def test_slack_blocks(event: hw.Event) -> None:
    message = render("slack.json", event)
    assert message["text"] == f"New version {VERSION_STRING} (ADD_ARTIFACT_ALIAS)"
    section = message["blocks"][0]
    assert section["type"] == "section"
    assert section["text"]["type"] == "mrkdwn"
    assert section["text"]["text"] == (
        f"New version *{VERSION_STRING}* of churn: alias `production` added by alice"
    )
    context = message["blocks"][1]["elements"][0]["text"]
    assert context == "Registry event: ADD_ARTIFACT_ALIAS in ml-team/model-registry"


def test_values_stay_data(event: hw.Event) -> None:
    """A hostile alias lands inside its string and adds no key."""
    hostile = hw.Event.artifact_alias_added(
        entity="ml-team",
        project="model-registry",
        collection="churn",
        version="v12",
        alias='"}, "x": "${ACCESS_TOKEN}',
        author="alice",
    )
    card = render("microsoft_teams.json", hostile)
    assert card["sections"][0]["text"] == 'Alias **"}, "x": "${ACCESS_TOKEN}** was added by alice.'
    assert set(card) == set(render("microsoft_teams.json", event))


def test_quickstart_runs_offline() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f'"version":"{VERSION_STRING}"' in out
    assert "signature verified: standard-webhooks" in out
    assert "signature verified: wandb" in out
    assert "SUCCEEDED" in out
    assert "[REDACTED]" in out
    # the example's fake secret values never reach the output
    source = (EXAMPLES / "quickstart.py").read_text(encoding="utf-8")
    for name in ("GITHUB_TOKEN", "SIGNING_KEY"):
        value = source.split(f'{name} = "', 1)[1].split('"', 1)[0]
        assert value not in out
        assert value not in done.stderr


def test_training_loop_runs_offline() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "training_loop.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # the first spike fires; the second falls inside the cooldown; the crash fires
    assert "step 40: loss=4.0 -> loss-spike (RUN_METRIC_ZSCORE)" in out
    assert "step 52: loss=6.0 -> nothing sent: loss-spike is cooling down" in out
    assert "step 55: -> run-failed (RUN_STATE)" in out
    assert "requests sent: 2" in out
    requests = [line for line in out.splitlines() if line.startswith("POST ")]
    assert requests == ["POST https://hooks.slack.com/services/T000/B000/XXXXXXXX"] * 2
    assert '"text": "loss jumped to 4.0 at step 40 in run lr-sweep-3"' in out
    assert '"text": "RUN_METRIC_ZSCORE in ml-team/churn-training"' in out
    assert '"text": "Run lr-sweep-3 FAILED in ml-team/churn-training"' in out
    assert '"text": "RUN_STATE in ml-team/churn-training"' in out
    assert out.count("SUCCEEDED") == 2
    # the NaN loss is skipped with a debug log, never an exception
    assert "value nan ignored (not a finite number)" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_api_reference_lists_every_public_name() -> None:
    reference = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [name for name in hw.__all__ if f"| [`{name}`][hookwise.{name}] |" not in reference]
    assert not missing, f"docs/api.md does not describe {missing}"
