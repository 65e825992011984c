"""The ``hookwise`` command: demo | keygen | deliveries | test-webhook | worker."""

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
