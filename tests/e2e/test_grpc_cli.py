"""``storekeeper grpc`` as a real process: serves the configured database, stops on SIGTERM."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from fastapi.testclient import TestClient

from storekeeper.config import Settings
from storekeeper.grpc.client import InventoryClient, InventoryError, StockChange
from tests.conftest import Actor, env_for
from tests.e2e.test_grpc import token_of
from tests.processes import free_port
from tests.shop import add_product, add_warehouses

pytestmark = pytest.mark.live

START_S = 30.0  # safety nets against a hung process, never a measure of speed
STOP_S = 15.0


def _wait_serving(target: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers a call (unauthenticated, as no token is sent)."""
    deadline = time.monotonic() + START_S
    with InventoryClient(target, "", timeout_s=1) as anonymous:
        while True:
            try:
                anonymous.get_stock("ANY")
            except InventoryError as exc:
                if exc.status is grpc.StatusCode.UNAUTHENTICATED:
                    return
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(log.read_text())
            time.sleep(0.1)


def test_cli_serves_and_stops_gracefully(
    settings: Settings, client: TestClient, manager: Actor, tmp_path: Path
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "CLI-1", stock={"BER": 4})
    script = shutil.which("storekeeper", path=str(Path(sys.executable).parent))
    assert script, "the storekeeper console script is not installed"
    port = free_port()
    log = tmp_path / "grpc.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [script, "grpc", "--host", "127.0.0.1", "--port", str(port), "--grace", "2"],
            env=env_for(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    target = f"127.0.0.1:{port}"
    try:
        _wait_serving(target, process, log)
        with InventoryClient(target, token_of(manager)) as inventory:
            assert inventory.get_stock("CLI-1").available == 4
            assert inventory.reserve("cli-1", {"CLI-1": 3}).allocations[0].qty == 3
            got: list[StockChange] = []
            watch = inventory.watch_stock(skus=["CLI-1"])
            reader = threading.Thread(target=lambda: got.extend(watch), daemon=True)
            reader.start()
            assert inventory.release("cli-1") == 3
            deadline = time.monotonic() + STOP_S
            while not got and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [(c.reason, c.reserved) for c in got] == [("released", 0)]

            process.terminate()  # SIGTERM: open streams end, the process exits 0
            assert process.wait(timeout=STOP_S) == 0, log.read_text()
            reader.join(STOP_S)
            assert not reader.is_alive(), "the watch stream did not end with the server"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text(), log.read_text()
