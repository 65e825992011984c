"""The ``hookwise`` command: demo | keygen | rotate-key | deliveries | redeliver | test-webhook |
worker | import-wandb."""

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

__all__ = ["main"]


class _Refused(Exception):
    """A command refused before it starts: printed as ``hookwise: ...``, exit code 2."""


def _store(args: argparse.Namespace) -> hw.SQLiteStorage:
    return hw.SQLiteStorage(args.db)  # the key comes from HOOKWISE_SECRET_KEY


def _existing_store(args: argparse.Namespace) -> hw.SQLiteStorage:
    """The store of a command that only reads or changes what is there: a
    missing file is refused (SQLite would create an empty database)."""
    if not os.path.exists(args.db):
        raise _Refused(
            f"no database at {args.db!r}: `hookwise {args.command}` opens an existing "
            "file and never creates one (check --db)"
        )
    return _store(args)


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

    with _store(args) as store:
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
    with _store(args) as store, hw.Dispatcher(store, network=_network(args), worker=False) as d:
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
    with _store(args) as store:
        dispatcher = hw.Dispatcher(store, **options)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        # SIGTERM or ^C: finish what is quick, give back the rest, go
        left = dispatcher.close(timeout=args.grace)
        print(f"worker: stopped, {left} deliveries left in the outbox", flush=True)
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
    with _store(args) as store:
        results = wandb.import_automations(hw.Admin(store), converted, dry_run=args.dry_run)
    done = "would create" if args.dry_run else "created"
    for item in results:
        automation = item.automation
        if automation is None:
            print(f"not carried over: {item.source}")
        else:
            scope = automation.scope
            where = "/".join(
                p for p in (scope.entity, scope.project_name, scope.collection_name) if p
            )
            event, action = type(automation.event).__name__, type(automation.action).__name__
            print(f"{done}: {automation.name}  ({scope.kind.value} {where}: {event} -> {action})")
        for note in item.notes:
            print(f"  - {note}")
    carried = sum(1 for item in results if item.automation is not None)
    noted = sum(1 for item in results if item.notes)
    print(f"{carried} of {len(results)} {done}, {noted} with notes")
    return 0 if noted == 0 else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookwise", description=hw.__doc__)
    parser.add_argument("--version", action="version", version=f"hookwise {hw.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("demo", help="run the whole loop locally").set_defaults(run=_demo)
    commands.add_parser("keygen", help="print a new key for HOOKWISE_SECRET_KEY").set_defaults(
        run=_keygen
    )

    def with_db(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help)
        sub.add_argument("--db", required=True, help="the SQLite file")
        return sub

    rotate = with_db(
        "rotate-key",
        "re-seal every secret and outbox body under the first key of HOOKWISE_SECRET_KEY "
        "(set it to new,old); safe to interrupt and run again",
    )
    rotate.add_argument("--every", type=int, default=100, help="print a progress line every N rows")
    rotate.set_defaults(run=_rotate_key)

    history = with_db(
        "deliveries",
        "show the delivery history, newest first (reads an existing database, creates none); "
        "the filters combine",
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

    again = with_db(
        "redeliver",
        "requeue deliveries to be sent again with the same webhook-id (a running "
        "`hookwise worker` sends them); reads an existing database, creates none",
    )
    again.add_argument(
        "ids", nargs="+", metavar="ID", help="a delivery id, as `hookwise deliveries` shows it"
    )
    again.set_defaults(run=_redeliver)

    for name, run, help in (
        ("test-webhook", _test_webhook, "send a test request through a webhook"),
        ("worker", _worker, "send deliveries from the outbox until stopped"),
    ):
        sub = with_db(name, help)
        sub.add_argument("--allow", action="append", default=[], help="a network to allow")
        sub.add_argument("--allow-http", action="store_true", help="allow plain http")
        if name == "test-webhook":
            sub.add_argument("team")
            sub.add_argument("name")
        else:
            sub.add_argument(
                "--concurrency", type=int, help="requests in flight at once (default 4)"
            )
            sub.add_argument(
                "--timeout", type=float, help="seconds one request may take, all told (default 10)"
            )
            sub.add_argument(
                "--grace",
                type=float,
                default=3.0,
                help="seconds to finish sends on SIGTERM before giving them back (default 3)",
            )
        sub.set_defaults(run=run)
    wandb = with_db("import-wandb", "import W&B automations (the W&B SDK's JSON)")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (hw.HookwiseError, _Refused) as exc:
        print(f"hookwise: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
