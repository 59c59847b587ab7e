"""Printing results and writing them as JSON to ``bench/results/``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def ratio(value: float, ceiling: float) -> float:
    """``value / ceiling``, 0 when there is no ceiling."""
    return value / ceiling if ceiling else 0.0


def verdict(value: float, goal: float) -> str:
    """How a ratio compares to its goal, for humans."""
    return f"{value:.2f} (goal >= {goal:.2f}: {'met' if value >= goal else 'NOT met'})"


def heading(text: str) -> None:
    """A section title on the console."""
    print(f"\n=== {text} " + "=" * max(0, 76 - len(text)), flush=True)


def line(label: str, text: str) -> None:
    """One aligned figure on the console."""
    print(f"  {label:<26} {text}", flush=True)


def write(results_dir: Path, name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` (plus a timestamp) to ``<results_dir>/<name>.json``."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    payload = {**data, "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path
