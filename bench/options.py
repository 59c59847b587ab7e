"""Run options shared by every benchmark, and the machine they ran on."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.infra import REPO_ROOT

SHARED_CPU_NOTE = (
    "load generator, server and database share this machine's {cpus} CPU cores: every figure, "
    "ceiling included, is measured under the same sharing"
)


@dataclass(frozen=True, slots=True)
class Options:
    """How long to measure, with how many server workers, and whether to profile."""

    duration_s: float
    warmup_s: float
    rounds: int
    workers: int
    profile: bool
    results_dir: Path
    workdir: Path

    @property
    def slice_s(self) -> float:
        """Seconds of each measured slice: the duration split over the rounds."""
        return self.duration_s / self.rounds


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def _git_commit() -> str | None:
    """The commit measured, ``+dirty`` when ``storekeeper/`` has uncommitted changes."""
    commit = _git("rev-parse", "--short", "HEAD")
    if not commit:
        return None
    return commit + ("+dirty" if _git("status", "--porcelain", "--", "storekeeper") else "")


def environment(background_busy: float | None = None) -> dict[str, Any]:
    """What the figures depend on besides the code."""
    cpus = os.cpu_count() or 0
    return {
        "cpus": cpus,
        "background_cpu_busy_before": (
            None if background_busy is None else round(background_busy, 3)
        ),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_generator": loadgen.generator_name(),
        "commit": _git_commit(),
        "note": SHARED_CPU_NOTE.format(cpus=cpus),
    }
