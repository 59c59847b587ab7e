"""``storekeeper worker`` logs like ``serve``: Celery's own loggers come out as our JSON lines."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from storekeeper.config import Settings
from storekeeper.tasks.celery_app import delete_broker_queues
from tests.conftest import env_for
from tests.payment_sim import storekeeper_script
from tests.processes import stop


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_celery_worker_logs_json_lines_through_our_handlers(
    settings: Settings, tmp_path: Path
) -> None:
    broker = settings.model_copy(
        update={
            "broker_url": "redis://127.0.0.1:6379/0",
            "broker_prefix": f"obslog{uuid.uuid4().hex[:8]}",
        }
    )
    log_path = tmp_path / "worker.log"
    with log_path.open("ab") as log:
        worker = subprocess.Popen(
            [storekeeper_script(), "worker", "--concurrency", "1"],
            env=env_for(broker),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text():
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
    finally:
        stop(worker)
        delete_broker_queues(broker)
    records = [
        json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")
    ]
    celery = [r for r in records if str(r["logger"]).startswith("celery")]
    assert any(str(r["msg"]).endswith("ready.") for r in celery), records
    assert all({"ts", "level", "logger", "msg", "pid"} <= r.keys() for r in records)
    # Celery installed no handler of its own: no line in its default "[date: LEVEL/...]" format.
    assert not [ln for ln in log_path.read_text().splitlines() if ln.startswith("[20")]
