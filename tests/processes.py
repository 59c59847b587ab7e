"""Real child processes for tests: free ports, waiting until healthy, stopping."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Wait until ``url``/healthz answers 200; if it never does, kill it and show its log."""
    deadline = time.monotonic() + 60  # a loaded 2-core CI machine starts slowly
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(log_path.read_text())
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate gracefully, killing it if it hangs."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
