"""The ``hookwise`` command: demo | keygen | rotate-key | deliveries | test-webhook | worker |
import-wandb."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence

import hookwise as hw
from hookwise.crypto import generate_key_text

__all__ = ["main"]


def _store(args: argparse.Namespace) -> hw.SQLiteStorage:
    return hw.SQLiteStorage(args.db)  # the key comes from HOOKWISE_SECRET_KEY


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
    with _store(args) as store:
        status = hw.DeliveryStatus(args.status) if args.status else None
        rows = store.list_deliveries(team=args.team, status=status, limit=args.limit)
        for d in rows:
            print(
                f"{d.id}  {d.status.value:<9} {d.team}/{d.automation} -> {d.webhook}  "
                f"{d.event_type}  attempts={d.attempts}  HTTP {d.response_status}  "
                f"{d.error or ''}"
            )
        print(f"{len(rows)} deliveries")
    return 0


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
    with (
        _store(args) as store,
        hw.Dispatcher(store, network=_network(args)),
        contextlib.suppress(KeyboardInterrupt),
    ):
        stop.wait()
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

    history = with_db("deliveries", "show the delivery history")
    history.add_argument("--team")
    history.add_argument("--status", choices=[s.value for s in hw.DeliveryStatus])
    history.add_argument("--limit", type=int, default=50)
    history.set_defaults(run=_deliveries)

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
    except hw.HookwiseError as exc:
        print(f"hookwise: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
