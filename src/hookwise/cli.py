"""The ``hookwise`` command: demo | keygen | apply | secrets | webhooks | automations |
rotate-key | deliveries | redeliver | test-webhook | worker | import-wandb.

A thin shell: each command parses its options and calls the library
(``hookwise.apply``, ``Admin``, the dispatcher), printing what it did.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import hookwise as hw
from hookwise.crypto import generate_key_text
from hookwise.logs import redact_urls

__all__ = ["main"]


class _Refused(Exception):
    """A command refused before it starts: printed as ``hookwise: ...``, exit code 2."""


def _store(args: argparse.Namespace) -> hw.SQLiteStorage:
    if args.db.strip() in ("", ":memory:") or args.db.startswith("file:"):
        # SQLite's names for a database that is gone when the command ends
        raise _Refused(f"--db {args.db!r}: give the path of a SQLite file")
    return hw.SQLiteStorage(args.db)  # the key comes from HOOKWISE_SECRET_KEY


def _existing_store(args: argparse.Namespace) -> hw.SQLiteStorage:
    """The store of a command that only reads or changes what is there: a
    missing (or empty) file is refused (SQLite would make a new database)."""
    if not os.path.isfile(args.db) or os.path.getsize(args.db) == 0:
        command = " ".join(filter(None, (args.command, getattr(args, "verb", None))))
        what = "an empty file" if os.path.isfile(args.db) else "no database"
        raise _Refused(
            f"{what} at {args.db!r}: `hookwise {command}` opens an existing "
            "database and never creates one (check --db)"
        )
    return _store(args)


def _seconds(text: str) -> float:
    """A duration option: a finite number of seconds, not negative."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (such as 3 or 0.5)")
    return value


_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _since(text: str) -> float:
    """``--since``: an ISO 8601 time (UTC when it has no offset) or an age
    back from now (``90s``, ``30m``, ``2h``, ``3d``, ``1w``), as a Unix time."""
    spelled = text.strip()
    age = _AGE.fullmatch(spelled.lower())
    try:
        if age is not None:
            since = time.time() - float(age[1]) * _AGE_UNITS[age[2]]
        else:
            if spelled[-1:] in ("z", "Z"):  # Python 3.10's fromisoformat takes no "Z"
                spelled = spelled[:-1] + "+00:00"
            when = datetime.fromisoformat(spelled)
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            since = when.timestamp()
    except (ValueError, OverflowError):
        since = math.nan
    if not math.isfinite(since):
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an ISO 8601 time (2026-12-01T10:00:00Z) nor an age (30m, 2h, 3d)"
        )
    return since


def _status(text: str) -> hw.DeliveryStatus:
    """``--status``, in any case."""
    try:
        return hw.DeliveryStatus(text.strip().upper())
    except ValueError:
        names = ", ".join(s.value for s in hw.DeliveryStatus)
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {names}") from None


def _network(args: argparse.Namespace) -> hw.NetworkPolicy:
    return hw.NetworkPolicy(allow=args.allow, allow_http=args.allow_http)


def _demo(args: argparse.Namespace) -> int:
    from hookwise.demo import run_demo

    return run_demo()


def _keygen(args: argparse.Namespace) -> int:
    print(generate_key_text())
    return 0


def _rotate_key(args: argparse.Namespace) -> int:
    from hookwise.vault import rotate_store

    with _existing_store(args) as store:
        key = store.key
        print(
            f"rotate-key: re-sealing {store.path} under key id {key.key_ids[0]} "
            f"(keys: {', '.join(key.key_ids)})"
        )
        step = max(1, args.every)

        def progress(done: int, total: int) -> None:
            if done == total or done % step == 0:
                print(f"rotate-key: {done}/{total} rows", flush=True)

        result = rotate_store(store, key, progress=progress)
    print(
        f"rotate-key: done: {result.secrets} secrets and {result.bodies} bodies re-sealed, "
        f"{result.skipped} already under the first key; key ids in use: "
        f"{', '.join(result.key_ids) or 'none'}"
    )
    unused = [kid for kid in key.key_ids if kid not in result.key_ids]
    if unused:
        print(
            f"rotate-key: key id(s) {', '.join(unused)} no longer needed: "
            "drop them from the key list"
        )
    return 0


def _deliveries(args: argparse.Namespace) -> int:
    with _existing_store(args) as store:
        rows = hw.Admin(store).deliveries(
            team=args.team,
            automation=args.automation,
            webhook=args.webhook,
            status=args.status,
            since=args.since,
            limit=args.limit,
        )
        for d in rows:
            print(
                f"{d.id}  {d.status.value:<9} {d.team}/{d.automation} -> {d.webhook}  "
                f"{d.event_type}  attempts={d.attempts}  HTTP {d.response_status}  "
                f"{d.error or ''}"
            )
        print(f"{len(rows)} deliveries")
    return 0


def _redeliver(args: argparse.Namespace) -> int:
    code = 0
    with _existing_store(args) as store, hw.Dispatcher(store, worker=False) as dispatcher:
        for delivery_id in args.ids:
            try:
                d = dispatcher.redeliver(delivery_id)
            except hw.NotFoundError as exc:
                print(f"hookwise: {exc}", file=sys.stderr)
                code = 2
                continue
            print(
                f"requeued {d.id}: {d.status.value}, webhook-id {d.message_id}; "
                "a running `hookwise worker` sends it"
            )
    return code


def _test_webhook(args: argparse.Namespace) -> int:
    with (
        _existing_store(args) as store,
        hw.Dispatcher(store, network=_network(args), worker=False) as d,
    ):
        result = d.test_webhook(args.team, args.name)
    print(f"ok={result.ok} status={result.status_code} elapsed={result.elapsed:.3f}s")
    print(result.error or result.body)
    return 0 if result.ok else 1


def _worker(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    options: dict[str, Any] = {"network": _network(args)}
    if args.concurrency is not None:
        options["concurrency"] = args.concurrency
    if args.timeout is not None:
        options["timeout"] = args.timeout
    with _existing_store(args) as store:
        dispatcher = hw.Dispatcher(store, **options)
        waiting, _ = store.outstanding()
        print(
            f"worker: sending from {store.path} ({waiting} deliveries waiting); "
            "stop with SIGTERM or ^C",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        # SIGTERM or ^C: finish what is quick, give back the rest, go
        print(
            f"worker: stopping: finishing sends for up to {args.grace:g}s, "
            "then giving the rest back to the outbox",
            flush=True,
        )
        left = dispatcher.close(timeout=args.grace)
        print(f"worker: stopped, {left} deliveries left in the outbox", flush=True)
    return 0


def _apply(args: argparse.Namespace) -> int:
    from hookwise.apply import apply, load_description

    description = load_description(args.file)  # every problem in the file, before the store
    opened: contextlib.AbstractContextManager[hw.Storage]
    if args.dry_run and not os.path.exists(args.db):  # a dry run creates no database either
        opened = contextlib.nullcontext(hw.MemoryStorage(hw.SecretKey.from_env()))
    else:
        opened = _store(args)
    with opened as store:
        prefix = "apply (dry run)" if args.dry_run else "apply"
        print(f"{prefix}: {args.file} -> {args.db}", flush=True)

        def progress(change: Any) -> None:
            print(change.describe(dry_run=args.dry_run), flush=True)

        changes = apply(
            store, description, network=_network(args), dry_run=args.dry_run, progress=progress
        )
    counts = {verb: sum(1 for c in changes if c.verb == verb) for verb in ("created", "updated")}
    same = len(changes) - sum(counts.values())
    if args.dry_run:
        print(
            f"{prefix}: would create {counts['created']}, would update {counts['updated']}, "
            f"{same} unchanged; nothing stored"
        )
    else:
        print(
            f"{prefix}: {counts['created']} created, {counts['updated']} updated, {same} unchanged"
        )
    return 0


def _scope_path(scope: hw.Scope) -> str:
    """``ml-team/model-registry[/churn]``: what a scope watches, as a path."""
    return "/".join(p for p in (scope.entity, scope.project_name, scope.collection_name) if p)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _list_secrets(args: argparse.Namespace) -> int:
    with _existing_store(args) as store:
        secrets = hw.Admin(store).list_secrets(args.team)
    for s in secrets:  # a SecretInfo holds no value: there is none to print
        print(f"{s.team}/{s.name}  created {_when(s.created_at)}  updated {_when(s.updated_at)}")
    print(f"{len(secrets)} secrets")
    return 0


def _list_webhooks(args: argparse.Namespace) -> int:
    with _existing_store(args) as store:
        webhooks = hw.Admin(store).list_webhooks(args.team)
    for w in webhooks:
        host = redact_urls(w.url)  # Slack and Discord URLs carry their token in the path
        uses = ", ".join(
            f"{role}={name}"
            for role, name in (("access_token", w.access_token), ("secret", w.secret))
            if name is not None
        )
        state = "enabled" if w.enabled else f"DISABLED ({w.disabled_reason or 'no reason'})"
        signing = ",".join(scheme.value for scheme in w.signing) or "unsigned"
        print(f"{w.team}/{w.name}  {host}  {state}  signing={signing}  {uses}".rstrip())
    print(f"{len(webhooks)} webhooks")
    return 0


def _list_automations(args: argparse.Namespace) -> int:
    with _existing_store(args) as store:
        automations = hw.Admin(store).list_automations(args.team)
    for a in automations:
        action = a.action
        if isinstance(action, hw.SendWebhook):
            does = f"webhook {action.webhook}"
        elif isinstance(action, hw.SendNotification):
            does = f"Slack via secret {action.secret}"
        else:
            does = "nothing"
        state = "enabled" if a.enabled else "DISABLED"
        print(
            f"{a.team}/{a.name}  {state}  {a.scope.kind.value} {_scope_path(a.scope)}: "
            f"{type(a.event).__name__} -> {does}"
        )
    print(f"{len(automations)} automations")
    return 0


def _pairs(items: Sequence[str], option: str) -> dict[str, str]:
    from hookwise.compat.wandb import WandbFormatError

    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.rpartition("=")  # W&B ids are base64: they may end in "="
        if not sep or not key or not value:
            raise WandbFormatError(option, f"{item!r}: write {option} W&B_ID=NAME")
        pairs[key] = value
    return pairs


def _import_wandb(args: argparse.Namespace) -> int:
    from hookwise.compat import wandb

    integrations = _pairs(args.map, "--map")
    table = {key: wandb.parse_scope(spec) for key, spec in _pairs(args.scope, "--scope").items()}
    converted = wandb.convert(
        wandb.load(args.file),
        integrations=integrations,
        scopes=wandb.scope_table(table, entity=args.entity),
    )
    with _existing_store(args) as store:  # the webhooks they send through are there already
        results = wandb.import_automations(hw.Admin(store), converted, dry_run=args.dry_run)
    done = "would create" if args.dry_run else "created"
    for item in results:
        automation = item.automation
        if automation is None:
            print(f"not carried over: {item.source}")
        else:
            scope = automation.scope
            event, action = type(automation.event).__name__, type(automation.action).__name__
            print(
                f"{done}: {automation.name}  "
                f"({scope.kind.value} {_scope_path(scope)}: {event} -> {action})"
            )
        for note in item.notes:
            print(f"  - {note}")
    carried = sum(1 for item in results if item.automation is not None)
    noted = sum(1 for item in results if item.notes)
    print(f"{carried} of {len(results)} {done}, {noted} with notes")
    return 0 if noted == 0 else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookwise",
        description=hw.__doc__,
        epilog="Commands that open a store read the key from HOOKWISE_SECRET_KEY "
        "(`hookwise keygen` makes one). `hookwise COMMAND --help` tells more.",
    )
    parser.add_argument("--version", action="version", version=f"hookwise {hw.__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", title="commands"
    )

    def command(
        name: str,
        help: str,
        description: str,
        *,
        group: Any = commands,
        db: bool = True,
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, help=help, description=description)
        if db:
            sub.add_argument(
                "--db", required=True, metavar="PATH", help="the SQLite file of the store"
            )
        return sub

    def network(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--allow",
            action="append",
            default=[],
            metavar="NETWORK",
            help="a network webhooks may reach though it is private (127.0.0.0/8, "
            "10.0.0.0/8, ::1); give it once per network",
        )
        sub.add_argument(
            "--allow-http", action="store_true", help="allow plain http:// webhook URLs"
        )

    command(
        "demo",
        "run the whole loop locally",
        "Start a receiver on 127.0.0.1, set up a team, send three events through "
        "a dispatcher and verify every request the receiver got. Needs no key and "
        "no network.",
        db=False,
    ).set_defaults(run=_demo)
    command(
        "keygen",
        "print a new key for HOOKWISE_SECRET_KEY",
        "Print a new random key. Keep it as HOOKWISE_SECRET_KEY: it seals every "
        "secret and outbox body, and a store cannot be read without it.",
        db=False,
    ).set_defaults(run=_keygen)

    setup = command(
        "apply",
        "make the store match a JSON or TOML description of secrets, webhooks, automations",
        "Create or update the secrets, webhooks and automations a file describes, "
        "and print what changed; running it again on the same file changes nothing. "
        "Secret values come from environment variables the file names (from_env), "
        "never from the file. Everything is checked before anything is stored, and "
        "nothing is deleted. Creates the database when it does not exist.",
    )
    setup.add_argument("file", metavar="FILE", help="the description: a .json or .toml file")
    setup.add_argument(
        "--dry-run", action="store_true", help="check everything and say what would change"
    )
    network(setup)
    setup.set_defaults(run=_apply)

    for noun, run, listed in (
        ("secrets", _list_secrets, "a team's secrets: team, name, created and updated (UTC)"),
        ("webhooks", _list_webhooks, "a team's webhooks: host (no path), state, signing, secrets"),
        (
            "automations",
            _list_automations,
            "automations, by team then name: state, scope, event and action",
        ),
    ):
        group = command(
            noun,
            f"list {noun}",
            f"Read-only commands on {noun}; they open an existing database and create none.",
            db=False,
        )
        verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB", title="verbs")
        show = command(
            "list",
            f"list {listed}",
            f"List {listed}. Reads an existing database, creates none"
            + ("; never prints a secret's value." if noun == "secrets" else "."),
            group=verbs,
        )
        show.add_argument(
            "--team",
            required=noun != "automations",  # a store lists secrets and webhooks per team
            help="the team whose "
            + noun
            + (" to list (default: every team)" if noun == "automations" else " to list"),
        )
        show.set_defaults(run=run)

    rotate = command(
        "rotate-key",
        "re-seal every secret and outbox body under the first key of HOOKWISE_SECRET_KEY",
        "Re-seal every secret and outbox body under the first key of "
        "HOOKWISE_SECRET_KEY (set it to new,old first), printing progress. Safe to "
        "interrupt and run again; when it is done, the old key can be dropped.",
    )
    rotate.add_argument(
        "--every", type=int, default=100, metavar="N", help="print a progress line every N rows"
    )
    rotate.set_defaults(run=_rotate_key)

    history = command(
        "deliveries",
        "show the delivery history, newest first",
        "Show the delivery history, newest first; the filters combine. Reads an "
        "existing database, creates none.",
    )
    history.add_argument("--team", help="only this team's deliveries")
    history.add_argument("--automation", help="only those of the automation of this name")
    history.add_argument(
        "--webhook",
        help="only those sent through the webhook of this name (with --team: one team's)",
    )
    history.add_argument(
        "--status",
        type=_status,
        metavar="STATUS",
        help="only those in this status: PENDING, RETRYING, SUCCEEDED or FAILED (any case)",
    )
    history.add_argument(
        "--since",
        type=_since,
        metavar="TIME",
        help="only those created at or after TIME: an ISO 8601 time (2026-12-01T10:00:00Z; "
        "UTC when it has no offset) or an age back from now (90s, 30m, 2h, 3d, 1w)",
    )
    history.add_argument(
        "--limit", type=int, default=50, metavar="N", help="show at most N deliveries (default: 50)"
    )
    history.set_defaults(run=_deliveries)

    again = command(
        "redeliver",
        "requeue deliveries to be sent again with the same webhook-id",
        "Requeue deliveries to be sent again with the same webhook-id, so a "
        "receiver that de-duplicates sees one event; a running `hookwise worker` "
        "sends them. Reads an existing database, creates none.",
    )
    again.add_argument(
        "ids", nargs="+", metavar="ID", help="a delivery id, as `hookwise deliveries` shows it"
    )
    again.set_defaults(run=_redeliver)

    probe = command(
        "test-webhook",
        "send a test request through a webhook",
        "Send one signed test request through a stored webhook and print the "
        "answer; exit code 1 when it failed. Reads an existing database, creates none.",
    )
    network(probe)
    probe.add_argument("team", metavar="TEAM", help="the team that owns the webhook")
    probe.add_argument("name", metavar="NAME", help="the webhook's name")
    probe.set_defaults(run=_test_webhook)

    worker = command(
        "worker",
        "send deliveries from the outbox until stopped",
        "Send deliveries from the outbox until SIGTERM or ^C, then finish what is "
        "quick for --grace seconds and give the rest back for the next worker. "
        "Several workers may share one database.",
    )
    network(worker)
    worker.add_argument(
        "--concurrency", type=int, metavar="N", help="requests in flight at once (default 4)"
    )
    worker.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="seconds one request may take, all told (default 10)",
    )
    worker.add_argument(
        "--grace",
        type=_seconds,
        default=3.0,
        metavar="SECONDS",
        help="seconds to finish sends on SIGTERM before giving them back (default 3)",
    )
    worker.set_defaults(run=_worker)

    wandb = command(
        "import-wandb",
        "import W&B automations (the W&B SDK's JSON)",
        "Create hookwise automations from W&B ones, as the W&B SDK writes them. "
        "Every part that cannot carry over is printed as a note (exit code 1); an "
        "automation whose meaning would change is not created.",
    )
    wandb.add_argument(
        "file", help="a JSON file: one W&B automation, a list, or {automations: [...]}"
    )
    wandb.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="INTEGRATION_ID=NAME",
        help="a W&B integration id and the hookwise webhook (or, for a Slack "
        "notification, the team secret holding the Slack URL) it becomes",
    )
    wandb.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="SCOPE=KIND:PATH",
        help="a W&B scope id or name and its hookwise scope: project:ENTITY/PROJECT, "
        "registry:ENTITY/REGISTRY or collection:ENTITY/PROJECT/COLLECTION",
    )
    wandb.add_argument(
        "--entity", help="the entity of W&B project scopes not named by --scope (by name)"
    )
    wandb.add_argument("--dry-run", action="store_true", help="check everything, store nothing")
    wandb.set_defaults(run=_import_wandb)
    return parser


_OPTION_HINT = (
    "hookwise: on the command line, --allow NETWORK and --allow-http open what "
    "NetworkPolicy(allow=[...], allow_http=True) opens"
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (hw.HookwiseError, _Refused) as exc:
        print(f"hookwise: {exc}", file=sys.stderr)
        if "NetworkPolicy(" in str(exc) and hasattr(args, "allow"):  # says how, in Python
            print(_OPTION_HINT, file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say to it
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
