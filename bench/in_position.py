"""Why ``handle()`` costs more inside a training loop than back to back.

Each piece of the metric path is timed twice: in position (right after
about 1 ms of busy work, as in a training step) and back to back (warm
caches). On shared VMs the in-position cost of Python code is several times
its back-to-back cost, and more so for code that reaches many objects; the
reference rows (an empty call, a plain object, a dict copy) show how much of
that is the machine rather than hookwise. The pieces take turns in one loop,
in a new order each time, so drift in the machine's speed hits them alike.

Run: ``python bench/in_position.py`` (add ``--quick`` for a short run).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from training_loop import METRICS, TEAM, calibrate_step, fill, work

import hookwise as hw

QUICK = "--quick" in sys.argv
Piece = Callable[[int, dict[str, float]], Any]


class _Plain:
    pass


def pieces() -> dict[str, Piece]:
    store = hw.MemoryStorage()
    fill(store, 990, watching=True)
    run = hw.Run(entity=TEAM, project="churn-training", id="3kd9x", user="alice")
    dispatcher = hw.Dispatcher(store, worker=False)
    dispatcher.handle(hw.Event.run_metrics(run, {"warm": 1.0}))
    series = [dict.fromkeys(METRICS, 0.5 + step % 7 * 0.01) for step in range(7)]
    events = [hw.Event.run_metrics(run, metrics, step=step) for step, metrics in enumerate(series)]
    return {
        "empty call (baseline)": lambda step, metrics: None,
        "plain object": lambda step, metrics: _Plain(),
        "dict copy": lambda step, metrics: dict(metrics),
        "Event.run_metrics": lambda step, metrics: hw.Event.run_metrics(run, metrics, step=step),
        "handle(prebuilt event)": lambda step, metrics: dispatcher.handle(events[step % 7]),
        "Event.run_metrics + handle": lambda step, metrics: dispatcher.handle(
            hw.Event.run_metrics(run, metrics, step=step)
        ),
    }


def in_position(named: dict[str, Piece], turns: int, cycles: int) -> dict[str, float]:
    clock = time.perf_counter
    costs: dict[str, list[float]] = {name: [] for name in named}
    order = list(named)
    shuffle = random.Random(0).shuffle
    for cycle in range(cycles):
        # a piece run 1 ms after one that reached the same objects finds some
        # still warm: a new order each cycle gives every piece the same odds
        shuffle(order)
        for name in order:
            piece = named[name]
            work(turns)
            metrics = dict.fromkeys(METRICS, 0.5 + cycle % 7 * 0.01)
            started = clock()
            piece(cycle, metrics)
            costs[name].append(clock() - started)
    return {name: statistics.median(seconds) for name, seconds in costs.items()}


def back_to_back(piece: Piece, calls: int) -> float:
    series = [dict.fromkeys(METRICS, 0.5 + step % 7 * 0.01) for step in range(7)]
    started = time.perf_counter()
    for step in range(calls):
        piece(step, series[step % 7])
    return (time.perf_counter() - started) / calls


def main() -> None:
    cycles, calls = (300, 2_000) if QUICK else (2_500, 20_000)
    turns = calibrate_step()
    named = pieces()
    placed = in_position(named, turns, cycles)
    base_placed = placed["empty call (baseline)"]
    base_tight = back_to_back(named["empty call (baseline)"], calls)
    print(f"{'':28} {'in position':>12} {'back to back':>13} {'ratio':>7}")
    print(f"{'empty call (baseline)':28} {base_placed * 1e6:9.1f} us {base_tight * 1e6:10.2f} us")
    for name, piece in named.items():
        if name == "empty call (baseline)":
            continue
        tight = back_to_back(piece, calls)
        # the empty call's own cost is taken off both, so the ratio is the piece's
        ratio = (placed[name] - base_placed) / (tight - base_tight)
        print(f"{name:28} {placed[name] * 1e6:9.1f} us {tight * 1e6:10.2f} us {ratio:7.1f}")


if __name__ == "__main__":
    main()
