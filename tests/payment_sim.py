"""The payment simulator as a real process, for the tests that need a card gateway."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.processes import free_port, stop, wait_healthy


def storekeeper_script() -> str:
    script = shutil.which("storekeeper", path=str(Path(sys.executable).parent))
    assert script is not None, "the storekeeper console script is not installed in this venv"
    return script


@dataclass
class Sim:
    """A running ``storekeeper payment-sim`` process and a client of its admin endpoints."""

    url: str
    process: subprocess.Popen[bytes]

    def stats(self) -> dict[str, Any]:
        """The simulator's counters."""
        response = httpx.get(f"{self.url}/_sim/stats", timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def configure(self, **changes: object) -> None:
        """Change faults while it runs."""
        httpx.patch(f"{self.url}/_sim/config", json=changes, timeout=5).raise_for_status()

    def outage(self, *, on: bool) -> None:
        """Flip the outage switch."""
        httpx.post(f"{self.url}/_sim/outage", json={"on": on}, timeout=5).raise_for_status()

    def reset(self) -> None:
        """Forget every payment, back to the start-up flags."""
        httpx.post(f"{self.url}/_sim/reset", timeout=5).raise_for_status()

    def wait_idle(self) -> None:
        """Wait until no request is in flight (slow ones outlive the client that gave up)."""
        deadline = time.monotonic() + 10
        while self.stats()["in_flight"] > 0:
            assert time.monotonic() < deadline, "the simulator never went idle"
            time.sleep(0.05)


def start_sim(log_path: Path, *flags: str) -> Sim:
    """Start the simulator on a free port and wait until it answers."""
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [storekeeper_script(), "payment-sim", "--port", str(port), *flags],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log_path)
    return Sim(url, process)


def stop_sim(sim: Sim) -> None:
    """Stop the process, killing it if it hangs."""
    stop(sim.process)
