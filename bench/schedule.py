"""Interleaved measurement: the app and its ceiling take turns, A B B A.

The machine may be shared (other processes, CPU frequency, the database's own background work):
measuring both sides in alternating slices exposes them to the same conditions, so their
ratio stays meaningful even when the absolute figures drift.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

_BUSY_WARNING = 0.15


def alternate(runners: list[Callable[[int], None]], rounds: int) -> None:
    """Call every runner ``rounds`` times with the round number, order reversed every round."""
    for round_ in range(rounds):
        for runner in runners if round_ % 2 == 0 else reversed(runners):
            runner(round_)


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle


def background_busy(seconds: float = 1.0) -> float | None:
    """Share of the CPU other processes used over ``seconds`` while the bench idled (Linux)."""
    try:
        total_before, idle_before = _cpu_times()
        time.sleep(seconds)
        total_after, idle_after = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    total = total_after - total_before
    return 1 - (idle_after - idle_before) / total if total else None


def warn_if_busy(busy: float | None) -> None:
    """Say so when the machine was not idle before a benchmark."""
    if busy is not None and busy > _BUSY_WARNING:
        print(
            f"  WARNING: other processes kept {busy:.0%} of the CPU busy just before this "
            "benchmark; absolute figures will be low and noisy (ratios are interleaved)",
            flush=True,
        )
